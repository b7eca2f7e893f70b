"""The node help pages and the Chinese translations in the real app (Debian's headless chromium
on the test host's own frontend): selecting a LumosX node and pressing the selection toolbox's
"Node Info" button shows our ``web/docs/<NodeId>.md`` in the help panel; with the frontend's
locale set to zh, the app shows our Chinese node name from ``locales/zh/nodeDefs.json`` and the
help panel shows ``web/docs/<NodeId>/zh.md``. Both host frontends fetch
``/extensions/<pack>/docs/<NodeId>/<locale>.md`` (then ``<NodeId>.md``) for a custom node's help.
A missing browser fails these tests (it does not skip them) unless ``LUMOSX_NO_BROWSER=1``."""
import json
import os

import pytest
import requests

import frontend

pytestmark = [pytest.mark.host_matrix, pytest.mark.browser]  # every test host; see conftest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NODE = "LumosXBind"

NEW_NODE_JS = """async (type) => {
    await window.app.loadGraphData({nodes: [], links: [], groups: [], config: {}, extra: {},
                                    version: 0.4, last_node_id: 0, last_link_id: 0});
    const n = LiteGraph.createNode(type); n.pos = [300, 300]; window.app.graph.add(n);
    window.app.canvas.deselectAll?.(); window.app.canvas.selectNode(n);
    window.app.canvas.setDirty(true, true);
    return n.title;
}"""
HELP_TEXT_JS = """() => [...document.querySelectorAll('.node-help-content, [class*="help"]')]
    .map(e => e.textContent).join('\\n')"""


def _first_line(path):
    """The page's first sentence after its title: text the help panel must show."""
    with open(path, encoding="utf-8") as f:
        body = [l for l in f.read().splitlines() if l and not l.startswith(("#", "<!--"))]
    return body[0].split("：")[0].split(":")[0][:30]


def _open_help(app, node):
    title = app.js(NEW_NODE_JS, node)
    app.page.wait_for_timeout(600)
    info = app.page.locator(".selection-toolbox button").nth(1) if not app.page.locator(
        'button[aria-label="Node Info"]').count() else app.page.locator(
        'button[aria-label="Node Info"]').first
    info.click()
    return title


def _shows(app, text, timeout=15000):
    app.page.wait_for_function(
        f"(t) => ({HELP_TEXT_JS})().replace(/\\s+/g, ' ').includes(t)", arg=" ".join(text.split()),
        timeout=timeout)
    return True


@pytest.fixture(scope="module")
def app(server):
    with frontend.open_app(server.url) as app:
        yield app


def test_help_panel_shows_our_page(app):
    _open_help(app, NODE)
    assert _shows(app, _first_line(os.path.join(ROOT, "web", "docs", f"{NODE}.md")))
    # the picture of the page is served from web/docs/ under the help panel's base address
    src = app.js("() => [...document.querySelectorAll('img')].map(i => i.src)"
                 ".find(s => s.includes('bind_report')) || null")
    assert src and src.endswith("/extensions/ComfyUI-LumosX/docs/bind_report.png"), src
    assert app.js("(s) => fetch(s).then(r => r.ok)", src)


def test_zh_locale_shows_chinese_name_and_page(app, server):
    zh = json.load(open(os.path.join(ROOT, "locales", "zh", "nodeDefs.json"), encoding="utf-8"))
    requests.post(f"{server.url}/settings/Comfy.Locale", json="zh", timeout=10).raise_for_status()
    try:
        with frontend.another_page(app, server.url) as page:
            _open_help(page, NODE)
            assert _shows(page, _first_line(os.path.join(ROOT, "web", "docs", NODE, "zh.md")))
            # the help panel heads the page with the node's (translated) display name
            page.page.wait_for_function("(t) => document.body.innerText.includes(t)",
                                        arg=zh[NODE]["display_name"], timeout=10000)
    finally:
        requests.post(f"{server.url}/settings/Comfy.Locale", json="en", timeout=10)
