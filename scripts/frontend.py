"""Driving ComfyUI's own frontend in a headless Chromium (Playwright): shared by the browser
tests and the scripts that make the shipped workflows and their screenshots.

Uses Debian's ``/usr/bin/chromium`` (``$LUMOSX_CHROMIUM`` overrides), never a downloaded
browser, with background networking off and a fresh profile. A missing browser is a failure of
the browser tests, not a skip, unless ``LUMOSX_NO_BROWSER=1`` (docs/development-browser.md).

The frontends the browser tests run (:func:`frontends`): the host's own pinned one, and on the
newest test host also :data:`~lumosx_core.cli.host.NEWEST_FRONTEND` (``--front-end-root``).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
import urllib.request

from typing import List, Optional, Tuple

from lumosx_core.cli.host import NEWEST_FRONTEND, Host, built_hosts, find_comfyui, host_of

CHROMIUM = os.environ.get("LUMOSX_CHROMIUM", "/usr/bin/chromium")
#: ``LUMOSX_NO_BROWSER=1``: no browser here (your own install): the build does not ask for one
#: and the browser tests skip instead of failing
NO_BROWSER_ENV = "LUMOSX_NO_BROWSER"
#: the frontend ComfyUI pins (served from its venv's comfyui-frontend-package)
PINNED = "pinned"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
OUR_SCRIPT = "/extensions/ComfyUI-LumosX/"

# Settings that keep first-run dialogs (templates browser, release notes) out of the way.
SETTINGS = {
    "Comfy.TutorialCompleted": True,
    "Comfy.Validation.Workflows": True,
    "Comfy.Workflow.ShowMissingModelsWarning": False,
    "Comfy.Release.Timestamp": 9999999999999,
    "Comfy.Release.Version": "99.0.0",
    "Comfy.Release.Status": "skipped",
}


def chromium_available() -> bool:
    return os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)


def browser_opted_out() -> bool:
    return os.environ.get(NO_BROWSER_ENV) == "1"


def browser_missing() -> Optional[str]:
    """Why the browser tests cannot run here (no Chromium, no Playwright), or None."""
    if not chromium_available():
        return f"{CHROMIUM} is not installed (apt-get install chromium; or LUMOSX_CHROMIUM=PATH)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -r requirements-test.txt)"
    return None


def frontends(comfy_dir: str) -> List[Tuple[str, Optional[str]]]:
    """``[(name, --front-end-root folder or None)]`` to run the browser tests with on the
    ComfyUI ``comfy_dir``: its pinned frontend, and on the newest built test host also
    :data:`NEWEST_FRONTEND` from the folder the host build installs it in (listed even when
    that folder is missing, so that a broken build fails the tests instead of skipping)."""
    out = [(PINNED, None)]
    host, hosts = host_of(comfy_dir), built_hosts()
    if host is not None and hosts and host.version == hosts[0].version:
        out.append((NEWEST_FRONTEND, host.newest_frontend))
    return out


def start_host(base_dir: str) -> Host:
    """The test host, headless on the CPU, with ``base_dir`` as its base directory: the server
    the workflow-making and screenshot scripts drive the app on. Call ``.stop()`` when done."""
    host = Host(find_comfyui(), base_directory=base_dir, cpu=True,
                extra_args=["--dont-print-server", "--disable-api-nodes"],
                log_path=os.path.join(base_dir, "server.log"))
    host.start(timeout=300)
    return host


def _post_json(url: str, value) -> None:
    req = urllib.request.Request(url, data=json.dumps(value).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(req, timeout=10).read()
    except OSError:
        pass


def prime_settings(url: str) -> None:
    """Store the settings above on the server before the app starts."""
    for key, value in SETTINGS.items():
        _post_json(f"{url}/settings/{key}", value)


def server_settings(url: str) -> dict:
    """The server's user settings (``GET /settings``; empty when it does not answer)."""
    try:
        with urllib.request.urlopen(f"{url}/settings", timeout=10) as r:
            return json.loads(r.read())
    except (OSError, ValueError):
        return {}


def restore_settings(url: str, before: dict) -> None:
    """Put back every setting that differs from ``before`` (one the app added: ``null``, the
    frontend's default), so that the next app on this server opens as a new user's would
    (0.33's frontend keeps, e.g., the open side panel there)."""
    after = server_settings(url)
    changed = {k: before.get(k) for k in after if after[k] != before.get(k)}
    if changed:
        _post_json(f"{url}/settings", changed)


class App:
    """One page with the ComfyUI app loaded; collects console messages and page errors."""

    def __init__(self, page):
        self.page = page
        self.console = []   # (type, text, url)
        page.on("console", lambda m: self.console.append(
            (m.type, m.text, (m.location or {}).get("url", ""))))
        page.on("pageerror", lambda e: self.console.append(
            ("pageerror", f"{e}\n{getattr(e, 'stack', '') or ''}", "")))

    def errors(self, ours_only: bool = True):
        """Console errors / page errors (``ours_only``: those raised by this pack's script or
        with it in their stack)."""
        out = []
        for kind, text, url in self.console:
            if kind not in ("error", "pageerror"):
                continue
            if ours_only and OUR_SCRIPT not in url and OUR_SCRIPT not in text:
                continue  # not raised by (and not in a stack through) this pack's script
            out.append((kind, text, url))
        return out

    def js(self, code: str, arg=None):
        return self.page.evaluate(code, arg)

    def wait_ready(self, timeout: float = 90.0) -> None:
        self.page.wait_for_function(
            "() => window.app && window.app.graph && window.app.canvas && window.LiteGraph"
            " && window.LiteGraph.registered_node_types"
            " && Object.keys(window.LiteGraph.registered_node_types).some(k => k.startsWith('LumosX'))",
            timeout=timeout * 1000)
        # let the app finish restoring its (empty) workflow before we replace it
        self.page.wait_for_timeout(500)
        self.close_dialogs()

    def close_dialogs(self) -> None:
        self.js("""() => { for (const b of document.querySelectorAll(
            '.p-dialog-close-button, .p-dialog-header-close')) b.click(); }""")

    def load_workflow(self, workflow: dict) -> None:
        self.js("""async (wf) => { await window.app.loadGraphData(wf, true, true, null,
                     {showMissingModelsDialog: false}); }""", workflow)
        self.page.wait_for_timeout(300)

    def missing_node_types(self, workflow: dict):
        types = sorted({n["type"] for n in workflow.get("nodes", [])})
        return self.js("""(types) => types.filter(t => !(t in LiteGraph.registered_node_types))""",
                       types)

    def missing_nodes_dialog(self) -> bool:
        return bool(self.js("""() => [...document.querySelectorAll('.p-dialog')].some(
            d => /missing/i.test(d.textContent || '') && /node/i.test(d.textContent || ''))"""))

    def graph_to_prompt(self):
        """The app's own (workflow, API prompt) for the current graph, as plain JSON."""
        text = self.js("""async () => { const p = await window.app.graphToPrompt();
                          return JSON.stringify({workflow: p.workflow, output: p.output}); }""")
        data = json.loads(text)
        return data["workflow"], data["output"]

    def graph_bounds(self):
        """``[x0, y0, x1, y1]`` of all nodes (titles included), in canvas units."""
        return self.js("""() => {
            const nodes = window.app.graph._nodes || window.app.graph.nodes;
            let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
            const th = LiteGraph.NODE_TITLE_HEIGHT;
            for (const n of nodes) {
                x0 = Math.min(x0, n.pos[0]); y0 = Math.min(y0, n.pos[1] - th);
                x1 = Math.max(x1, n.pos[0] + n.size[0]); y1 = Math.max(y1, n.pos[1] + n.size[1]);
            }
            return [x0, y0, x1, y1];
        }""")

    def frame(self, scale: float = 0.9, margin: int = 40, max_side: int = 2800) -> None:
        """Resize the page so the whole graph shows at ``scale`` (readable text), then fit."""
        x0, y0, x1, y1 = self.graph_bounds()
        w = int(min(max_side, (x1 - x0) * scale + 2 * margin))
        h = int(min(max_side, (y1 - y0) * scale + 2 * margin))
        self.page.set_viewport_size({"width": max(w, 800), "height": max(h, 600)})
        self.page.wait_for_timeout(400)
        self.fit_view(margin)

    def fit_view(self, margin: int = 40) -> None:
        self.js("""(margin) => {
            const nodes = window.app.graph._nodes || window.app.graph.nodes;
            if (!nodes.length) return;
            let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
            const th = LiteGraph.NODE_TITLE_HEIGHT;
            for (const n of nodes) {
                x0 = Math.min(x0, n.pos[0]); y0 = Math.min(y0, n.pos[1] - th);
                x1 = Math.max(x1, n.pos[0] + n.size[0]); y1 = Math.max(y1, n.pos[1] + n.size[1]);
            }
            const c = window.app.canvas, el = c.canvas;
            const w = el.clientWidth || el.width, h = el.clientHeight || el.height;
            const scale = Math.min((w - 2 * margin) / (x1 - x0), (h - 2 * margin) / (y1 - y0), 1.2);
            c.ds.scale = scale;
            c.ds.offset[0] = (w / scale - (x1 - x0)) / 2 - x0;
            c.ds.offset[1] = (h / scale - (y1 - y0)) / 2 - y0;
            c.setDirty(true, true); c.draw(true, true);
        }""", margin)
        self.page.wait_for_timeout(400)

    def hide_chrome(self) -> None:
        """Hide the app's menus, side bar, tabs, minimap and toasts (for clean pictures of the
        graph); DOM widgets (notes, prompts, the Bind report) stay."""
        self.js("""() => {
            if (document.getElementById('lumosx-shot-css')) return;
            const st = document.createElement('style');
            st.id = 'lumosx-shot-css';
            st.textContent = `.splitter-overlay-root, .comfyui-body-top, .comfyui-body-bottom,
              .comfyui-body-left, .comfyui-body-right, .p-toast, .comfy-menu-hamburger,
              .p-dialog-mask { display: none !important; }`;
            document.head.appendChild(st);
            window.dispatchEvent(new Event('resize'));
        }""")
        self.page.wait_for_timeout(300)

    def screenshot(self, path: str, canvas_only: bool = True) -> str:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        if canvas_only:
            el = self.page.query_selector("#graph-canvas-container") or \
                self.page.query_selector("canvas#graph-canvas")
            if el is not None:
                el.screenshot(path=path)
                return path
        self.page.screenshot(path=path)
        return path


def _load(app: App, url: str, timeout: float) -> App:
    t0 = time.time()
    app.page.goto(url, wait_until="domcontentloaded", timeout=timeout * 1000)
    app.wait_ready(max(10.0, timeout - (time.time() - t0)))
    return app


@contextlib.contextmanager
def another_page(app: App, url: str, timeout: float = 90.0):
    """A second page in ``app``'s browser with the app of another server (``url``) loaded
    (one browser per process: Playwright's sync API cannot start a second); that server's
    user settings are as before afterwards."""
    before = server_settings(url)
    prime_settings(url)
    page = app.page.context.new_page()
    try:
        yield _load(App(page), url, timeout)
    finally:
        page.close()
        restore_settings(url, before)


@contextlib.contextmanager
def open_app(url: str, width: int = 1600, height: int = 1000, timeout: float = 90.0):
    """Yield an :class:`App` with ComfyUI's frontend loaded from ``url``; the server's user
    settings are as before afterwards (:func:`restore_settings`)."""
    from playwright.sync_api import sync_playwright
    if not chromium_available():
        raise FileNotFoundError(f"{CHROMIUM} not found (apt-get install chromium)")
    before = server_settings(url)
    prime_settings(url)
    profile = tempfile.mkdtemp(prefix="lumosx-chromium-")
    try:
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
                viewport={"width": width, "height": height})
            try:
                page = ctx.pages[0] if ctx.pages else ctx.new_page()
                yield _load(App(page), url, timeout)
            finally:
                ctx.close()
    finally:
        restore_settings(url, before)
        shutil.rmtree(profile, ignore_errors=True)
