"""The frontend extension in a real browser: Debian's headless chromium (Playwright) on the
test host's own pinned ComfyUI frontend and, on the newest test host, also on the newest
frontend (``frontend.frontends``: a second server with ``--front-end-root``; every test that
takes ``app`` runs once per frontend). Every shipped UI workflow loads through the app with no
missing node types and gives exactly the shipped API workflow; the Person node grows and
shrinks its attribute inputs; people get the preview's colours in chain order; the Bind node
shows the binding report of an ``executed`` message; opened without its model files, a
workflow makes the app offer each one with its download address and folder; our script logs
no console errors.
A missing browser fails these tests (it does not skip them) unless ``LUMOSX_NO_BROWSER=1``.
Screenshots go to output/test-artifacts/ (``$LUMOSX_ARTIFACTS``)."""
import os

import pytest

import frontend
import shipped
from host_server import COMFY, e2e_server, ComfyServer
from lumosx_core.cli.host import NEWEST_FRONTEND
from lumosx_core.cli.workflow_format import ui_to_api
from lumosx_core.drawing import PERSON_COLORS

FRONTENDS = frontend.frontends(COMFY)

pytestmark = [pytest.mark.host_matrix, pytest.mark.browser]  # every test host; see conftest


@pytest.fixture(scope="module", params=FRONTENDS, ids=[name for name, _ in FRONTENDS])
def front_end_root(request):
    """None: the host's pinned frontend; else the folder of the newest frontend."""
    root = request.param[1]
    if root is not None and not os.path.isfile(os.path.join(root, "index.html")):
        pytest.fail(f"{root}/index.html is missing: the host build installs frontend "
                    f"{request.param[0]} there (make host)", pytrace=False)
    return root


def _front_end_args(root):
    return ["--front-end-root", root] if root else []


@pytest.fixture(scope="module")
def app_server(front_end_root, server, tmp_path_factory):
    """The server whose app the browser drives: the session's for the pinned frontend, one
    more (same pack, stand-in models) serving the newest frontend."""
    if front_end_root is None:
        yield server
        return
    with e2e_server(str(tmp_path_factory.mktemp("comfy_newest_frontend")),
                    extra_args=_front_end_args(front_end_root)) as srv:
        yield srv


@pytest.fixture(scope="module")
def object_info(server):
    return server.get("/object_info", timeout=120)


@pytest.fixture(scope="module")
def app(app_server, front_end_root):
    with frontend.open_app(app_server.url) as app:
        if front_end_root is not None:  # the page runs the frontend asked for
            assert app.js("() => window.__COMFYUI_FRONTEND_VERSION__") == NEWEST_FRONTEND
        yield app
        ours = app.errors(ours_only=True)
        assert not ours, f"console errors from the LumosX script: {ours}"


def test_script_is_served_and_registered(app):
    assert app.js("() => window.app.extensions.some(e => e.name === 'LumosX.Frontend')")
    colors = app.js("""async () => (await import('/extensions/ComfyUI-LumosX/lumosx.js'))
                       .PERSON_COLORS""")
    assert colors == PERSON_COLORS  # the same list as the binding preview's


@pytest.mark.parametrize("name", shipped.NAMES)
def test_shipped_workflow_loads_in_the_app(app, name, object_info):
    ui = shipped.load(shipped.ui_path(name))
    api = shipped.load(shipped.api_path(name))
    app.load_workflow(ui)
    assert app.missing_node_types(ui) == []
    assert not app.missing_nodes_dialog()
    assert app.js("() => (window.app.graph._nodes || window.app.graph.nodes).length") == \
        len(ui["nodes"])
    workflow, output = app.graph_to_prompt()
    # this host's own export of the loaded graph: the converter gives exactly it, and it is the
    # shipped API file (our nodes exactly, core nodes as this host defines them, nothing lost)
    assert ui_to_api(ui, object_info) == output
    assert shipped.api_differences(output, api, object_info) == []
    # people coloured in chain order, as in the binding preview
    people = app.js("""() => (window.app.graph._nodes || window.app.graph.nodes)
        .filter(n => n.type === 'LumosXPerson')
        .map(n => [n.title, n.color, n.__lumosxPerson])""")
    for title, color, index in people:
        number = int(title.split()[1].rstrip(":"))  # "Person 2: woman"
        assert index == number - 1 and color == PERSON_COLORS[index], (title, color, index)
    # each Person shows its connected attribute pairs plus one empty pair
    for node in [n for n in ui["nodes"] if n["type"] == "LumosXPerson"]:
        inputs = app.js("""(id) => window.app.graph.getNodeById(id).inputs
            .filter(i => i.name.startsWith('attribute_')).map(i => [i.name, i.link != null])""",
                        node["id"])
        used = sum(1 for _, linked in inputs if linked)
        assert [n for n, _ in inputs] == [f"attribute_{i}" for i in range(1, used + 2)]
    app.fit_view()
    app.screenshot(shipped.artifact(f"browser_{name}.png"), canvas_only=False)
    new_errors = app.errors(ours_only=True)
    assert not new_errors, new_errors


ATTRS_JS = """(id) => {
    const n = window.app.graph.getNodeById(id);
    return {
        inputs: n.inputs.filter(i => i.name.startsWith('attribute_')).map(i => i.name),
        phrases: n.widgets.filter(w => w.name.startsWith('phrase_') && !w.hidden).map(w => w.name),
        height: n.size[1],
    };
}"""


def test_person_inputs_grow_and_shrink(app):
    app.js("""async () => { await window.app.loadGraphData({nodes: [], links: [], groups: [],
        config: {}, extra: {}, version: 0.4, last_node_id: 0, last_link_id: 0}); }""")
    ids = app.js("""async () => {
        const g = window.app.graph;
        const p = LiteGraph.createNode('LumosXPerson'); p.pos = [500, 100]; g.add(p);
        const imgs = [];
        for (let i = 0; i < 7; i++) {
            const n = LiteGraph.createNode('LoadImage'); n.pos = [100, 60 + 60 * i]; g.add(n);
            imgs.push(n.id);
        }
        return {person: p.id, images: imgs};
    }""")
    person = ids["person"]
    fresh = app.js(ATTRS_JS, person)
    assert fresh["inputs"] == ["attribute_1"] and fresh["phrases"] == ["phrase_1"]

    connect = """async ([p, img, name]) => {
        const g = window.app.graph, person = g.getNodeById(p);
        const slot = person.inputs.findIndex(i => i.name === name);
        if (slot < 0) throw new Error('no input ' + name);
        g.getNodeById(img).connect(0, person, slot);
        await new Promise(r => setTimeout(r, 0));
    }"""
    disconnect = """async ([p, name]) => {
        const person = window.app.graph.getNodeById(p);
        person.disconnectInput(person.inputs.findIndex(i => i.name === name));
        await new Promise(r => setTimeout(r, 0));
    }"""
    app.js(connect, [person, ids["images"][0], "attribute_1"])
    grown = app.js(ATTRS_JS, person)
    assert grown["inputs"] == ["attribute_1", "attribute_2"]
    assert grown["phrases"] == ["phrase_1", "phrase_2"]
    assert grown["height"] > fresh["height"]
    app.js(connect, [person, ids["images"][1], "attribute_2"])
    assert app.js(ATTRS_JS, person)["inputs"] == ["attribute_1", "attribute_2", "attribute_3"]
    app.fit_view()
    app.screenshot(shipped.artifact("browser_person_grown.png"), canvas_only=False)

    # removing the last connected attribute shrinks back to used + one empty pair
    app.js(disconnect, [person, "attribute_2"])
    shrunk = app.js(ATTRS_JS, person)
    assert shrunk["inputs"] == ["attribute_1", "attribute_2"]
    assert shrunk["phrases"] == ["phrase_1", "phrase_2"]
    app.js(disconnect, [person, "attribute_1"])
    assert app.js(ATTRS_JS, person)["inputs"] == ["attribute_1"]

    # at most six pairs
    for i in range(6):
        app.js(connect, [person, ids["images"][i], f"attribute_{i + 1}"])
    full = app.js(ATTRS_JS, person)
    assert full["inputs"] == [f"attribute_{i}" for i in range(1, 7)]
    assert full["phrases"] == [f"phrase_{i}" for i in range(1, 7)]

    # the graph still serialises to a valid API prompt with every link in place
    _, output = app.graph_to_prompt()
    p = output[str(person)]["inputs"]
    assert [p[f"attribute_{i}"] for i in range(1, 7)] == \
        [[str(ids["images"][i]), 0] for i in range(6)]
    assert p["face_phrase"] == "man" and p["phrase_6"] == ""


def test_person_colours_follow_the_chain(app):
    app.load_workflow(shipped.load(shipped.ui_path("three_people")))
    colour = """(title) => { const n = (window.app.graph._nodes || window.app.graph.nodes)
        .find(n => n.title === title); return [n.id, n.color]; }"""
    p1, c1 = app.js(colour, "Person 1: man on the left")
    p2, c2 = app.js(colour, "Person 2: woman in the middle")
    p3, c3 = app.js(colour, "Person 3: man on the right")
    assert [c1, c2, c3] == PERSON_COLORS[:3]
    # the Face Encoder and photo feeding only person 3 take a shade of its colour
    face3 = app.js(colour, "Face: man on the right")[1]
    assert face3 not in (None, c1, c2) and face3 != "#2a3b55"
    # cut person 2 out of the chain: person 3 becomes the second person
    app.js("""async ([p1, p2, p3]) => {
        const g = window.app.graph;
        const n3 = g.getNodeById(p3);
        g.getNodeById(p1).connect(0, n3, n3.inputs.findIndex(i => i.name === 'references'));
        await new Promise(r => setTimeout(r, 0));
    }""", [p1, p2, p3])
    assert app.js(colour, "Person 3: man on the right")[1] == PERSON_COLORS[1]
    # a colour the user chose is kept
    app.js("""async (id) => { const n = window.app.graph.getNodeById(id); n.color = '#123456';
        const p1 = (window.app.graph._nodes || window.app.graph.nodes)
            .find(n => n.title === 'Person 1: man on the left');
        n.disconnectInput(n.inputs.findIndex(i => i.name === 'references'));
        await new Promise(r => setTimeout(r, 0)); }""", p3)
    assert app.js(colour, "Person 3: man on the right")[1] == "#123456"


REPORT = ("background 'cozy, warmly lit room': tokens 28-33\n"
          "person 1 face 'man': tokens 1-1\n"
          "person 1 attribute 'white jacket': tokens 4-5\n"
          "person 2 face 'woman': tokens 8-8\n"
          "person 2 attribute 'yellow scarf': NOT FOUND in the prompt\n"
          "warning: phrase 'yellow scarf' does not occur in the prompt")


def test_bind_node_shows_the_report_after_a_run(app, object_info):
    ui = shipped.load(shipped.ui_path("subject_consistent"))
    app.load_workflow(ui)
    bind = next(n["id"] for n in ui["nodes"] if n["type"] == "LumosXBind")
    state = """(id) => { const n = window.app.graph.getNodeById(id);
        const w = n.widgets.find(w => w.name === 'binding_report');
        const el = w && w.element;
        return w ? {value: w.value, status: el ? el.dataset.lumosxStatus : null,
                    serialize: w.serialize, api: w.options && w.options.serialize} : null; }"""
    before = app.js(state, bind)
    assert before is not None and before["value"] == ""
    # what the server sends when the Bind node has run: {"type": "executed", "data": {...}}
    app.js("""([id, text]) => window.comfyAPI.api.api.dispatchEvent(new CustomEvent('executed',
        {detail: {node: String(id), display_node: String(id), output: {text: [text]},
                  prompt_id: 'test'}}))""", [bind, REPORT])
    after = app.js(state, bind)
    assert after["value"] == REPORT
    assert after["status"] == "warning"  # a phrase was not found: framed red
    assert after["serialize"] is False and after["api"] is False
    ok = REPORT.split("\nperson 2 attribute")[0]
    app.js("([id, text]) => window.app.graph.getNodeById(id).onExecuted({text: [text]})",
           [bind, ok])
    assert app.js(state, bind)["status"] == "ok"
    # the report is display only: neither in the saved workflow nor in the API prompt
    workflow, output = app.graph_to_prompt()
    assert "binding_report" not in output[str(bind)]["inputs"]
    saved = next(n for n in workflow["nodes"] if n["id"] == bind)
    assert ok not in [v for v in saved["widgets_values"] if isinstance(v, str)]
    assert ui_to_api(workflow, object_info) == output
    assert shipped.api_differences(output, shipped.load(shipped.api_path("subject_consistent")),
                                   object_info) == []
    app.screenshot(shipped.artifact("browser_bind_report.png"), canvas_only=False)


def test_bind_report_from_a_real_run(app, app_server):
    """Queue the stand-in version of the loaded workflow for the browser's own client id: the
    server's ``executed`` message reaches the page and the Bind node shows the real report."""
    import requests
    ui = shipped.load(shipped.ui_path("subject_consistent"))
    app.load_workflow(ui)
    bind = next(n["id"] for n in ui["nodes"] if n["type"] == "LumosXBind")
    prompt = shipped.standin_prompt(shipped.load(shipped.api_path("subject_consistent")),
                                    app_server.assets["standin_spiece"], seed=4242)  # not cached
    client_id = app.js("() => window.comfyAPI.api.api.clientId")
    assert client_id
    r = requests.post(app_server.url + "/prompt",
                      json={"prompt": prompt, "client_id": client_id}, timeout=30)
    assert r.status_code == 200, r.text
    hist = app_server.wait(r.json()["prompt_id"], timeout=300)
    assert hist["status"]["status_str"] == "success", hist["status"]
    (report,) = hist["outputs"][str(bind)]["text"]
    app.page.wait_for_function(
        """([id, text]) => { const w = window.app.graph.getNodeById(id).widgets
            .find(w => w.name === 'binding_report'); return w && w.value === text; }""",
        arg=[bind, report], timeout=30000)
    assert "person 1 face 'man'" in report and "person 2 attribute 'yellow scarf'" in report
    app.screenshot(shipped.artifact("browser_bind_report_real_run.png"), canvas_only=False)


# ------------------------------------------------------------------------------------------
# the UI -> API converter against this host's own app, on every node type it has
# ------------------------------------------------------------------------------------------
EVERY_NODE_JS = """async (dynamicCombos) => {
    const app = window.app;
    await app.loadGraphData({nodes: [], links: [], groups: [], config: {}, extra: {},
        version: 0.4, last_node_id: 0, last_link_id: 0}, true, false, null,
        {showMissingNodesDialog: false, showMissingModelsDialog: false});
    const skip = ['Note', 'MarkdownNote', 'Reroute', 'PrimitiveNode'];
    const cases = [], failed = [];
    const snap = async (label) => {
        const p = await app.graphToPrompt();
        cases.push([label, JSON.parse(JSON.stringify(p.workflow)),
                    JSON.parse(JSON.stringify(p.output))]);
    };
    for (const type of Object.keys(LiteGraph.registered_node_types)) {
        if (skip.includes(type)) continue;
        let n = null;
        try {
            n = LiteGraph.createNode(type);
            if (!n) { failed.push(type); continue; }
            app.graph.add(n);
            await snap(type);
            for (const name of dynamicCombos[type] || []) {  // every choice, one at a time
                const w = (n.widgets || []).find((w) => w.name === name);
                if (!w) continue;
                for (const v of [...(w.options?.values || [])]) {
                    w.value = v;
                    await snap(`${type} ${name}=${v}`);
                }
            }
        } catch (e) { failed.push(`${type}: ${e}`); }
        if (n) app.graph.remove(n);
    }
    return [cases, failed];
}"""

#: core nodes to which a frontend extension adds widgets of its own (by node class, not by
#: input kind): converting them must fail naming the node, never give a different prompt
EXTENSION_WIDGET_NODES = {"LoadImageOutput", "LoadAudio", "RecordAudio", "Load3D", "Preview3D",
                          "SaveGLB", "CustomCombo", "WebcamCapture"}


def _as_the_server_reads(value):
    """A widget value as the server reads it: it unwraps ``{"__value__": x}`` (typed or not);
    only a list must stay wrapped (a bare list is a link). Older frontends send a curve that
    is not a list bare, newer ones wrapped: the same input."""
    if isinstance(value, dict) and "__value__" in value and not isinstance(value["__value__"],
                                                                           list):
        return value["__value__"]
    return value


def _dynamic_combos(object_info):
    """``{node type: [dynamic combo widget names, nested ones as "a.b"]}``."""
    out = {}

    def walk(kind, inputs, prefix=""):
        for section in ("required", "optional"):
            for name, spec in (inputs.get(section) or {}).items():
                if isinstance(spec, list) and spec and spec[0] == "COMFY_DYNAMICCOMBO_V3":
                    names = out.setdefault(kind, [])
                    if prefix + name not in names:
                        names.append(prefix + name)
                    for option in spec[1].get("options") or []:
                        walk(kind, option.get("inputs") or {}, prefix + name + ".")

    for kind, node_def in object_info.items():
        walk(kind, node_def.get("input") or {})
    return out


def _defined(node_def, key):
    inputs = node_def.get("input") or {}
    names = set(inputs.get("required") or {}) | set(inputs.get("optional") or {})
    return key in names or key.split(".")[0] in names


def test_converter_gives_what_the_app_sends_for_every_node(app, object_info):
    """Each node type of this host alone on the canvas (and each choice of each of its dynamic
    combos): converting the app's saved workflow gives the app's own API prompt. Inputs the
    host does not define (frontend-only placeholders such as ``audioUI``) are ignored, as the
    server ignores them; titles are compared where the workflow saves one."""
    from lumosx_core.cli.workflow_format import WorkflowError
    cases, failed = app.js(EVERY_NODE_JS, _dynamic_combos(object_info))
    assert len(cases) > 200, (len(cases), failed)
    problems, refused = [], set()
    for label, workflow, output in cases:
        (node,) = workflow["nodes"]
        kind = node["type"]
        try:
            got = ui_to_api(workflow, object_info)
        except WorkflowError as e:
            if kind in EXTENSION_WIDGET_NODES and f"({kind}" in str(e):
                refused.add(kind)
                continue
            problems.append(f"{label}: {e}")
            continue
        want = {nid: {"inputs": {k: _as_the_server_reads(v) for k, v in n["inputs"].items()
                                 if _defined(object_info[kind], k)},
                      "class_type": n["class_type"]} for nid, n in output.items()}
        got = {nid: {"inputs": {k: _as_the_server_reads(v) for k, v in n["inputs"].items()},
                     "class_type": n["class_type"]} for nid, n in got.items()}
        if node.get("title"):
            assert all(n["_meta"]["title"] == node["title"] for n in output.values())
        if got != want:
            problems.append(f"{label}: converter {got} != app {want} "
                            f"(widgets_values {node.get('widgets_values')})")
    assert not problems, "\n".join(p[:1500] for p in problems)


# -- the missing-models offer: each loader's download address and folder ---------------------

MISSING_MODELS_JS = """async () => {
    // the dialog of frontends that have one (1.32: .comfy-missing-models), else the missing-
    // model store behind the errors panel (1.49): feature detection, not versions
    for (let t = 0; t < 100; t++) {
        const items = [...document.querySelectorAll('.comfy-missing-models li, '
                                                    + '.comfy-missing-models [role=option]')];
        if (items.length) return {kind: 'dialog', items: items.map((li) => ({
            label: (li.textContent || '').split('Download')[0].trim(),
            urls: [...li.querySelectorAll('button[title]')].map((b) => b.title)}))};
        const el = document.querySelector('#vue-app');
        const pinia = el && el.__vue_app__ && el.__vue_app__.config.globalProperties.$pinia;
        if (pinia) for (const [, st] of pinia._s) {
            if (st.missingModelCandidates && st.missingModelCandidates.length)
                return {kind: 'store', items: JSON.parse(JSON.stringify(st.missingModelCandidates))};
        }
        await new Promise((r) => setTimeout(r, 100));
    }
    return null;
}"""


@pytest.fixture(scope="module")
def bare_server(front_end_root, tmp_path_factory):
    """A host with this pack and no model file at all (serving the frontend under test)."""
    srv = ComfyServer(str(tmp_path_factory.mktemp("comfy_bare")),
                      extra_args=_front_end_args(front_end_root)).start()
    yield srv
    srv.stop()


def test_missing_models_are_offered_with_their_download_and_folder(app, bare_server):
    """A workflow opened without its files: the app offers each one (the manifest's name,
    folder and download address: the DiT's points at the authors' release folder)."""
    from lumosx_core.model_files import load_manifest
    manifest = load_manifest()
    want = {m.name: m for m in manifest.models if m.kind != "pack"}
    ui = shipped.load(shipped.ui_path("subject_consistent"))
    with frontend.another_page(app, bare_server.url) as bare:
        bare.js("""async () => window.app.extensionManager.setting.set(
            'Comfy.Workflow.ShowMissingModelsWarning', true)""")
        bare.js("async (wf) => { await window.app.loadGraphData(wf, true, true, null, {}); }", ui)
        found = bare.js(MISSING_MODELS_JS)
        assert found, "the app offered no missing model"
        if found["kind"] == "dialog":
            got = {item["label"]: item["urls"] for item in found["items"]}
            assert got == {f"{m.folder} / {m.name}": [m.url] for m in want.values()}, got
        else:
            got = {c["name"]: (c["directory"], c["url"]) for c in found["items"]}
            assert got == {n: (m.folder, m.url) for n, m in want.items()}, got
            # and the errors panel shows them with a download button each
            bare.page.click("[data-testid=error-overlay-see-errors]")
            bare.page.wait_for_selector("[data-testid=missing-model-importable-rows]")
            rows = bare.js("""() => document.querySelector(
                '[data-testid=missing-model-importable-rows]').textContent""")
            for m in want.values():
                assert m.name in rows and m.folder in rows, rows
            assert bare.js("""() => document.querySelectorAll(
                '[data-testid=missing-model-download]').length""") == len(want)
        bare.page.screenshot(path=shipped.artifact("browser_missing_models.png"))
        ours = bare.errors(ours_only=True)
        assert not ours, ours
