"""What a user sees when a shipped workflow opens (from the templates browser or dragged onto
the canvas), in a real browser at a 1920x1080 window on the test host's own frontend: the view
saved in the workflow (``extra.ds``) is readable (scale >= 0.8: below that the frontend draws
nodes as blank boxes) with the top row on screen, and no node overlaps another -- as opened,
and again after a run of the workflow (its stand-in version, queued for the page's own client
id) has filled the Bind report, the video player and the preview images.
Screenshots go to output/test-artifacts/ (``$LUMOSX_ARTIFACTS``).
A missing browser fails these tests (it does not skip them) unless ``LUMOSX_NO_BROWSER=1``."""
import pytest
import requests

import frontend
import shipped

pytestmark = [pytest.mark.host_matrix, pytest.mark.browser]  # every test host; see conftest

WINDOW = (1920, 1080)
MIN_SCALE = 0.8

#: every node's box on the canvas (title bar included) and where the top row shows on screen
LAYOUT_JS = """() => {
  const c = window.app.canvas, el = c.canvas, th = LiteGraph.NODE_TITLE_HEIGHT;
  const r = el.getBoundingClientRect();
  const nodes = (window.app.graph._nodes || window.app.graph.nodes).filter((n) => !n.flags?.collapsed);
  const boxes = nodes.map((n) => ({id: n.id, title: n.title, type: n.type,
      box: [n.pos[0], n.pos[1] - th, n.pos[0] + n.size[0], n.pos[1] + n.size[1]]}));
  const top = Math.min(...boxes.map((b) => b.box[1]));
  const left = Math.min(...boxes.map((b) => b.box[0]));
  const s = c.ds.scale, o = c.ds.offset;
  // the nodes of the top row that fit the window: what is drawn at their title's middle
  const seen = boxes.filter((b) => b.box[1] === top).map((b) => {
    const x = r.left + (b.box[0] + 60 + o[0]) * s, y = r.top + (b.box[1] + th / 2 + o[1]) * s;
    const hit = document.elementFromPoint(x, y);
    const what = hit && hit !== el ? `${hit.tagName}.${hit.className}`.slice(0, 80) : null;
    return {title: b.title, x, y, onCanvas: hit === el, what};
  });
  return {scale: s, boxes, seen,
          corner: [r.left + (left + o[0]) * s, r.top + (top + o[1]) * s]};
}"""


#: (title, title bar colour, title text colour) of our nodes, as the app draws them
TITLES_JS = """() => (window.app.graph._nodes || window.app.graph.nodes)
  .filter((n) => (n.type || '').startsWith('LumosX') && n.color)
  .map((n) => [n.title, n.color, n.constructor.title_text_color || LiteGraph.NODE_TITLE_COLOR])"""


def luminance(color: str) -> float:
    """WCAG relative luminance of ``#rgb`` / ``#rrggbb``."""
    h = color.lstrip("#")
    h = "".join(c * 2 for c in h) if len(h) == 3 else h
    lin = [(c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4)
           for c in (int(h[i:i + 2], 16) / 255 for i in (0, 2, 4))]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def overlaps(boxes) -> list:
    """Pairs of nodes whose boxes share area (touching edges is fine)."""
    found = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = a["box"], b["box"]
            if min(ax1, bx1) - max(ax0, bx0) > 0.5 and min(ay1, by1) - max(ay0, by0) > 0.5:
                found.append((f"{a['title']} #{a['id']}", f"{b['title']} #{b['id']}"))
    return found


@pytest.fixture(scope="module")
def app(server):
    with frontend.open_app(server.url, width=WINDOW[0], height=WINDOW[1]) as app:
        yield app
        ours = app.errors(ours_only=True)
        assert not ours, f"console errors from the LumosX script: {ours}"


def run_in_page(app, server, name: str, seed: int) -> dict:
    """Queue the stand-in version of shipped workflow ``name`` for the page's client id (the
    page gets its ``executed`` messages and shows the outputs); the finished history entry."""
    prompt = shipped.standin_prompt(shipped.load(shipped.api_path(name)),
                                    server.assets["standin_spiece"], seed=seed)
    client_id = app.js("() => window.comfyAPI.api.api.clientId")
    r = requests.post(server.url + "/prompt", json={"prompt": prompt, "client_id": client_id},
                      timeout=30)
    assert r.status_code == 200, r.text
    hist = server.wait(r.json()["prompt_id"], timeout=600)
    assert hist["status"]["status_str"] == "success", hist["status"]
    return hist


@pytest.mark.parametrize("name", shipped.NAMES)
def test_workflow_opens_readable_and_stays_tidy_after_a_run(app, server, name):
    ui = shipped.load(shipped.ui_path(name))
    ds = ui["extra"]["ds"]
    assert ds["scale"] >= MIN_SCALE, ds
    app.load_workflow(ui)
    app.page.wait_for_timeout(500)
    seen = app.js(LAYOUT_JS)
    # the app restored the saved view, readable, with the top-left of the graph on screen
    assert seen["scale"] >= MIN_SCALE, seen["scale"]
    assert 0 <= seen["corner"][0] < WINDOW[0] / 4 and 0 <= seen["corner"][1] < WINDOW[1] / 4, \
        seen["corner"]
    # the top row's titles left of the notifications' corner (top right: toasts come and go)
    top = [s for s in seen["seen"] if s["x"] < 0.7 * WINDOW[0]]
    covered = [(s["title"], round(s["x"]), s["what"]) for s in top if not s["onCanvas"]]
    assert top and not covered, covered  # no panel covers them
    assert overlaps(seen["boxes"]) == [], "nodes overlap as opened"
    # reference titles (grey bars, the binding preview's colour for them) read clearly
    refs = [t for t in app.js(TITLES_JS) if t[0].startswith("Reference")]
    assert all(contrast(bar, text) >= 4.5 for _, bar, text in refs), refs
    app.screenshot(shipped.artifact(f"browser_open_{name}.png"), canvas_only=False)

    hist = run_in_page(app, server, name, seed=5150)
    outputs = hist["outputs"]
    # the page received the outputs: the Bind report shows and the save nodes have results
    binds = [n["id"] for n in ui["nodes"] if n["type"] == "LumosXBind"]
    for bind in binds:
        (report,) = outputs[str(bind)]["text"]
        app.page.wait_for_function(
            """([id, text]) => { const w = window.app.graph.getNodeById(id).widgets
                .find(w => w.name === 'binding_report'); return w && w.value === text; }""",
            arg=[bind, report], timeout=30000)
    # ... and the save / preview nodes show their results (images, the video player)
    shown = [n["id"] for n in ui["nodes"] if n["type"] in ("SaveVideo", "SaveImage",
                                                          "PreviewImage")]
    assert all(outputs.get(str(i)) for i in shown), (shown, sorted(outputs))
    app.fit_view()  # the app fills a node's results in when it draws it: draw them all
    app.page.wait_for_function(
        """(ids) => ids.every((id) => { const n = window.app.graph.getNodeById(id);
              return (n.imgs && n.imgs.length) || n.videoContainer; })""",
        arg=shown, timeout=60000)
    app.page.wait_for_timeout(1500)  # players and images take their size
    after = app.js(LAYOUT_JS)
    app.screenshot(shipped.artifact(f"browser_after_run_{name}.png"), canvas_only=False)
    assert overlaps(after["boxes"]) == [], "nodes overlap after a run"
