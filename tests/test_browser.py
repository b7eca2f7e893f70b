"""The frontend extension in a real browser: Debian's headless chromium (Playwright) on the
test host's own ComfyUI frontend. Every shipped UI workflow loads through the app with no
missing node types and gives exactly the shipped API workflow; the Person node grows and
shrinks its attribute inputs; people get the preview's colours in chain order; the Bind node
shows the binding report of an ``executed`` message; our script logs no console errors.
Screenshots go to output/test-artifacts/ (``$LUMOSX_ARTIFACTS``)."""
import ast

import pytest

import frontend
import shipped


pytestmark = pytest.mark.skipif(not frontend.chromium_available(),
                                reason=f"{frontend.CHROMIUM} is not installed")


@pytest.fixture(scope="module")
def app(server):
    pytest.importorskip("playwright.sync_api")
    with frontend.open_app(server.url) as app:
        yield app
        ours = app.errors(ours_only=True)
        assert not ours, f"console errors from the LumosX script: {ours}"


def _person_colors():
    """``PERSON_COLORS`` the binding preview uses (defined with the evaluation renderer),
    read from the source."""
    with open(shipped.ROOT + "/lumosx_core/evaluation/render.py", encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PERSON_COLORS":
            return ast.literal_eval(node.value)
    raise AssertionError("lumosx_core/evaluation/render.py has no PERSON_COLORS")


PERSON_COLORS = _person_colors()


def test_script_is_served_and_registered(app):
    assert app.js("() => window.app.extensions.some(e => e.name === 'LumosX.Frontend')")
    colors = app.js("""async () => (await import('/extensions/ComfyUI-LumosX/lumosx.js'))
                       .PERSON_COLORS""")
    assert colors == PERSON_COLORS  # the same list as the binding preview's


@pytest.mark.parametrize("name", shipped.NAMES)
def test_shipped_workflow_loads_in_the_app(app, name):
    ui = shipped.load(shipped.ui_path(name))
    api = shipped.load(shipped.api_path(name))
    app.load_workflow(ui)
    assert app.missing_node_types(ui) == []
    assert not app.missing_nodes_dialog()
    assert app.js("() => (window.app.graph._nodes || window.app.graph.nodes).length") == \
        len(ui["nodes"])
    workflow, output = app.graph_to_prompt()
    assert output == api  # the app's own export of the loaded graph is the shipped API file
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


def test_bind_node_shows_the_report_after_a_run(app):
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
    assert output == shipped.load(shipped.api_path("subject_consistent"))
    app.screenshot(shipped.artifact("browser_bind_report.png"), canvas_only=False)


def test_bind_report_from_a_real_run(app, server):
    """Queue the stand-in version of the loaded workflow for the browser's own client id: the
    server's ``executed`` message reaches the page and the Bind node shows the real report."""
    import requests
    from lumosx_core.cli import workflow_edit as _workflow
    import demo
    ui = shipped.load(shipped.ui_path("subject_consistent"))
    app.load_workflow(ui)
    bind = next(n["id"] for n in ui["nodes"] if n["type"] == "LumosXBind")
    prompt = shipped.load(shipped.api_path("subject_consistent"))
    args = demo.standin_overrides(server.assets["standin_spiece"],
                                  size={"width": 64, "height": 48, "length": 5}, steps=1)
    pairs = list(zip(args[::2], args[1::2]))
    _workflow.apply_replacements(prompt, [v for k, v in pairs if k == "--replace"])
    _workflow.apply_sets(prompt, [_workflow.parse_assignment(v) for k, v in pairs if k == "--set"])
    _workflow.apply_sets(prompt, [("LumosXSampler", "seed", 4242)])  # not cached
    client_id = app.js("() => window.comfyAPI.api.api.clientId")
    assert client_id
    r = requests.post(server.url + "/prompt", json={"prompt": prompt, "client_id": client_id},
                      timeout=30)
    assert r.status_code == 200, r.text
    hist = server.wait(r.json()["prompt_id"], timeout=300)
    assert hist["status"]["status_str"] == "success", hist["status"]
    (report,) = hist["outputs"][str(bind)]["text"]
    app.page.wait_for_function(
        """([id, text]) => { const w = window.app.graph.getNodeById(id).widgets
            .find(w => w.name === 'binding_report'); return w && w.value === text; }""",
        arg=[bind, report], timeout=30000)
    assert "person 1 face 'man'" in report and "person 2 attribute 'yellow scarf'" in report
    app.screenshot(shipped.artifact("browser_bind_report_real_run.png"), canvas_only=False)
