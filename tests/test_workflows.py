"""The shipped workflows (workflows/): both formats present and in sync (UI -> API with the
live server's /object_info gives exactly the shipped API file), only core nodes and ours,
notes naming every model file, model names as in README; and the UI -> API converter on the
cases the shipped files do not cover (reroutes, primitives, muted/bypassed nodes, seeds)."""
import copy
import os
import re

import pytest

import shipped
import workflow_specs as specs
from lumosx_core.cli.workflow_format import (WorkflowError, is_api_workflow, is_ui_workflow,
                                      ui_to_api)

pytestmark = pytest.mark.host_matrix  # run on every test host: the converter vs its /object_info

OUR_MODULE = "custom_nodes.ComfyUI-LumosX"


@pytest.fixture(scope="module")
def object_info(server):
    return server.get("/object_info", timeout=120)


def test_the_templates_browser_lists_exactly_the_ui_workflows_with_thumbnails(server):
    """ComfyUI's /api/workflow_templates (what the templates browser shows under this pack)
    lists the UI workflows and nothing else (an API file there opens an empty canvas), and
    each has its thumbnail ``<name>.jpg`` served beside its JSON."""
    import io

    import requests
    from PIL import Image
    templates = server.get("/api/workflow_templates")
    ours = [k for k, names in templates.items()
            if any(n in names for n in shipped.NAMES)]
    assert len(ours) == 1, templates
    assert sorted(templates[ours[0]]) == sorted(shipped.NAMES)
    for name in shipped.NAMES:
        base = f"{server.url}/api/workflow_templates/{ours[0]}/{name}"
        r = requests.get(base + ".json", timeout=30)
        assert r.status_code == 200 and is_ui_workflow(r.json()), name
        r = requests.get(base + ".jpg", timeout=30)
        assert r.status_code == 200, (name, r.status_code)
        with Image.open(io.BytesIO(r.content)) as im:
            assert im.format == "JPEG" and 256 <= im.width <= 1024, (name, im.size)


def test_every_workflow_ships_in_both_formats():
    """UI files (and their template thumbnails) in workflows/, API files in workflows/api/
    where the templates browser does not list them."""
    files = sorted(f for f in os.listdir(shipped.WORKFLOWS)
                   if os.path.isfile(os.path.join(shipped.WORKFLOWS, f)))
    assert files == sorted([n + ".json" for n in shipped.NAMES]
                           + [n + ".jpg" for n in shipped.NAMES])
    assert sorted(os.listdir(shipped.API_WORKFLOWS)) == sorted(n + ".api.json"
                                                               for n in shipped.NAMES)
    for name in shipped.NAMES:
        assert is_ui_workflow(shipped.load(shipped.ui_path(name)))
        assert is_api_workflow(shipped.load(shipped.api_path(name)))
    assert [make().name for make in specs.WORKFLOWS] == shipped.NAMES


@pytest.mark.parametrize("name", shipped.NAMES)
def test_ui_converts_to_the_shipped_api(name, object_info):
    """Our nodes exactly; core nodes as this host defines them, with no value lost (the
    browser test holds the converter to this host's own frontend export, exactly)."""
    ui = shipped.load(shipped.ui_path(name))
    api = shipped.load(shipped.api_path(name))
    assert shipped.api_differences(ui_to_api(ui, object_info), api, object_info) == []


def test_the_comparison_catches_a_lost_value_and_any_change_to_our_nodes(object_info):
    ui = shipped.load(shipped.ui_path("subject_consistent"))
    api = shipped.load(shipped.api_path("subject_consistent"))
    good = ui_to_api(ui, object_info)
    (save,) = [k for k, n in good.items() if n["class_type"] == "SaveVideo"]
    (bind,) = [k for k, n in good.items() if n["class_type"] == "LumosXBind"]
    bad = copy.deepcopy(good)  # the codec dropped, wherever this host keeps it
    for key in [k for k in bad[save]["inputs"] if k == "codec" or k.endswith(".codec")]:
        del bad[save]["inputs"][key]
    assert any("codec='h264' lost" in p for p in shipped.api_differences(bad, api, object_info))
    bad = copy.deepcopy(good)
    bad[save]["inputs"]["filename_prefix"] = "other"
    assert shipped.api_differences(bad, api, object_info)
    bad = copy.deepcopy(good)
    bad[save]["inputs"]["surprise"] = 1
    assert shipped.api_differences(bad, api, object_info)
    bad = copy.deepcopy(good)
    bad[bind]["inputs"]["ratio"] = 0.25  # our nodes: any change is ours to explain
    assert shipped.api_differences(bad, api, object_info)
    bad = copy.deepcopy(good)
    del bad[bind]["inputs"]["negative_prompt"]
    assert shipped.api_differences(bad, api, object_info)


@pytest.mark.parametrize("name", shipped.NAMES)
def test_only_core_nodes_and_ours(name, object_info):
    ui = shipped.load(shipped.ui_path(name))
    api = shipped.load(shipped.api_path(name))
    for node in api.values():
        kind = node["class_type"]
        assert kind in object_info, kind
        module = object_info[kind]["python_module"]
        assert module == OUR_MODULE or module == "nodes" or module.startswith("comfy_extras."), \
            (kind, module)
        assert not kind.startswith("LumosXTest")
    assert {n["type"] for n in ui["nodes"]} - set(object_info) == {"Note"}


@pytest.mark.parametrize("fmt", ["api", "ui"])
@pytest.mark.parametrize("name", shipped.NAMES)
def test_shipped_workflow_runs_through_prompt(name, fmt, server, object_info):
    """Every shipped workflow, as shipped (API file) and as the canvas saves it (UI file,
    converted with this host's /object_info), queued on /prompt in its stand-in run: it is
    accepted, every node runs and the video and the binding preview are written."""
    if fmt == "api":
        prompt = shipped.load(shipped.api_path(name))
    else:
        prompt = ui_to_api(shipped.load(shipped.ui_path(name)), object_info)
    seed = 7000 + 2 * shipped.NAMES.index(name) + (fmt == "ui")  # fresh: nothing cached
    prompt = shipped.standin_prompt(prompt, server.assets["standin_spiece"], seed=seed)
    hist = server.run(prompt, timeout=900)
    status = hist["status"]
    assert status["status_str"] == "success", (status, server.log()[-3000:])
    files = shipped.output_files(server, hist)
    videos = [f for f in files if f.endswith(".mp4")]
    previews = [f for f in files if f.endswith(".png")]
    assert len(videos) == 1 and previews, files
    import av
    with av.open(videos[0]) as c:
        stream = c.streams.video[0]
        frames = sum(1 for _ in c.decode(stream))
        width = stream.codec_context.width
    assert frames == shipped.STANDIN_SIZE["length"]
    size = shipped.STANDIN_SIZE["width"]
    assert width == (2 * size + 16 if name == "ab_relational" else size)  # A/B side by side


def _notes(ui):
    return "\n".join(n["widgets_values"][0] for n in ui["nodes"] if n["type"] == "Note")


@pytest.mark.parametrize("name", shipped.NAMES)
def test_notes_say_which_file_goes_in_which_folder(name):
    text = _notes(shipped.load(shipped.ui_path(name)))
    for needle in (f"diffusion_models/{specs.DIT}", f"text_encoders/{specs.UMT5}",
                   f"vae/{specs.VAE}", f"insightface/models/{specs.FACE_PACK}/"):
        assert needle in text, (name, needle)


@pytest.mark.parametrize("name", shipped.NAMES)
def test_loader_nodes_carry_the_download_metadata_of_the_manifest(name):
    """Each loader of a manifest file offers its download (name, url, folder, sha256 where
    published) to the frontend's missing-models dialog, for the file its widget names."""
    from lumosx_core.model_files import load_manifest
    manifest = load_manifest()
    seen = set()
    for node in shipped.load(shipped.ui_path(name))["nodes"]:
        files = [m for m in manifest.for_node(node["type"]) if m.kind != "pack"]
        if not files:
            assert "models" not in node.get("properties", {}), node["type"]
            continue
        (m,) = files
        assert node["properties"]["models"] == [m.frontend_entry()], node["type"]
        assert m.name in node["widgets_values"]
        assert m.url.startswith("https://huggingface.co/")  # a source the dialog allows
        seen.add(m.id)
    assert seen == {"lumosx_dit", "umt5", "wan_vae"}
    dit = manifest.get("lumosx_dit").frontend_entry()
    assert dit["url"].endswith("/tree/main/LumosX_models")  # no direct file: its source folder


def _readme_models_section():
    with open(os.path.join(shipped.ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    m = re.search(r"^## Models and folders\n(.*?)(?=^## )", readme, re.S | re.M)
    assert m, "README has no 'Models and folders' section"
    return m.group(1)


@pytest.mark.parametrize("name", shipped.NAMES)
def test_model_names_are_the_readme_ones(name):
    section = _readme_models_section()
    api = shipped.load(shipped.api_path(name))
    by_class = {}
    for node in api.values():
        by_class.setdefault(node["class_type"], []).append(node["inputs"])
    (loader,) = by_class["LumosXModelLoader"]
    (clip,) = by_class["CLIPLoader"]
    (vae,) = by_class["VAELoader"]
    assert clip["type"] == "wan"
    for file, folder in ((loader["model_name"], "models/diffusion_models/"),
                         (clip["clip_name"], "models/text_encoders/"),
                         (vae["vae_name"], "models/vae/")):
        assert f"`{file}`" in section, file
        assert folder in section
    faces = by_class.get("LumosXFaceEncoder", []) + by_class.get("LumosXPeopleFromPhoto", [])
    assert faces
    for face in faces:
        assert face["pack"] in section


def test_shipped_defaults_are_the_released_ones():
    api = shipped.load(shipped.api_path("subject_consistent"))
    (bind,) = [n["inputs"] for n in api.values() if n["class_type"] == "LumosXBind"]
    (samp,) = [n["inputs"] for n in api.values() if n["class_type"] == "LumosXSampler"]
    assert (bind["width"], bind["height"], bind["length"], bind["ratio"]) == (832, 480, 81, 0.5)
    assert bind["r2pe"] and bind["self_mask"] and bind["cross_mask"]
    assert (samp["steps"], samp["cfg"], samp["shift"], samp["sampler_name"],
            samp["scheduler"]) == (50, 6.0, 8.0, "lumosx_released", "lumosx_released")
    assert not bind["weight_syntax"]
    (loader,) = [n["inputs"] for n in api.values() if n["class_type"] == "LumosXModelLoader"]
    assert loader["compute_dtype"] == "bf16 (released)"
    for face in [n["inputs"] for n in api.values() if n["class_type"] == "LumosXFaceEncoder"]:
        assert face["crop"] == "face box (released)"
    photos = shipped.load(shipped.api_path("from_photos"))
    (people,) = [n["inputs"] for n in photos.values()
                 if n["class_type"] == "LumosXPeopleFromPhoto"]
    assert people["crop"] == "face box (released)" and people["order"] == "left to right"
    refs = [n for n in api.values() if n["class_type"] in ("LumosXPerson", "LumosXReference")]
    phrases = [n["inputs"].get("face_phrase") or n["inputs"].get("phrase") for n in refs]
    phrases += [n["inputs"]["phrase_1"] for n in refs if n["class_type"] == "LumosXPerson"]
    for p in phrases:  # every phrase occurs in the prompt verbatim
        assert p and p in bind["prompt"], p


def test_ab_workflow_renders_the_same_seed_on_and_off():
    api = shipped.load(shipped.api_path("ab_relational"))
    binds = {n["_meta"]["title"]: n["inputs"] for n in api.values()
             if n["class_type"] == "LumosXBind"}
    on, off = binds["Bind: relational ON"], binds["Bind: relational OFF"]
    assert on["r2pe"] and on["self_mask"] and on["cross_mask"]
    assert not (off["r2pe"] or off["self_mask"] or off["cross_mask"])
    same = {k: v for k, v in on.items() if k not in ("r2pe", "self_mask", "cross_mask")}
    assert same == {k: v for k, v in off.items() if k in same}
    samplers = [n["inputs"] for n in api.values() if n["class_type"] == "LumosXSampler"]
    assert len(samplers) == 2 and samplers[0]["seed"] == samplers[1]["seed"]
    ui = shipped.load(shipped.ui_path("ab_relational"))
    controls = [n["widgets_values"][1] for n in ui["nodes"] if n["type"] == "LumosXSampler"]
    assert controls == ["fixed", "fixed"]  # the seed does not move between runs
    (stitch,) = [n for n in api.values() if n["class_type"] == "ImageStitch"]
    assert stitch["inputs"]["direction"] == "right"


# ------------------------------------------------------------------------------------------
# the converter on hand-made graphs (frontend behaviour of ComfyUI_frontend 1.16+)
# ------------------------------------------------------------------------------------------
INFO = {
    "KSampler": {"input": {"required": {
        "model": ["MODEL"], "seed": ["INT", {"default": 0, "control_after_generate": True}],
        "steps": ["INT", {"default": 20}], "cfg": ["FLOAT", {"default": 8.0}],
        "sampler_name": [["euler", "dpmpp_2m"]], "scheduler": [["normal", "simple"]],
        "positive": ["CONDITIONING"], "negative": ["CONDITIONING"],
        "latent_image": ["LATENT"], "denoise": ["FLOAT", {"default": 1.0}]}},
        "input_order": {"required": ["model", "seed", "steps", "cfg", "sampler_name", "scheduler",
                                     "positive", "negative", "latent_image", "denoise"]},
        "display_name": "KSampler"},
    "Loader": {"input": {"required": {"name": [["a.safetensors", "b.safetensors"]]}},
               "display_name": "Loader"},
    "Cond": {"input": {"required": {"model": ["MODEL"], "text": ["STRING", {"multiline": True}]}},
             "display_name": "Cond"},
    "Old": {"input": {"required": {"noise_seed": ["INT", {}], "x": ["FLOAT", {"forceInput": True}],
                                   "pick": ["COMBO", {"options": ["p", "q"],
                                                      "control_after_generate": True}],
                                   "tag": ["STRING", {}]}},
            "display_name": "Old"},
    "LoadImage": {"input": {"required": {"image": [["x.png"], {"image_upload": True}]}},
                  "input_order": {"required": ["image"]}, "display_name": "Load Image"},
    "Filter": {"input": {"required": {"model": ["MODEL"], "strength": ["FLOAT", {"default": 1.0}]}},
               "display_name": "Filter"},
}


def _graph():
    return {
        "nodes": [
            {"id": 1, "type": "Loader", "mode": 0, "inputs": [],
             "outputs": [{"name": "MODEL", "type": "MODEL", "links": [1]}],
             "widgets_values": ["b.safetensors"]},
            {"id": 2, "type": "Filter", "mode": 0,
             "inputs": [{"name": "model", "type": "MODEL", "link": 1}],
             "outputs": [{"name": "MODEL", "type": "MODEL", "links": [2]}],
             "widgets_values": [0.5]},
            {"id": 3, "type": "Reroute", "mode": 0,
             "inputs": [{"name": "", "type": "*", "link": 2}],
             "outputs": [{"name": "", "type": "MODEL", "links": [3]}]},
            {"id": 4, "type": "KSampler", "mode": 0, "title": "my sampler",
             "inputs": [{"name": "model", "type": "MODEL", "link": 3},
                        {"name": "steps", "type": "INT", "widget": {"name": "steps"}, "link": 4}],
             "outputs": [], "widgets_values": [7, "fixed", 20, 6.5, "dpmpp_2m", "simple", 1.0]},
            {"id": 5, "type": "PrimitiveNode", "mode": 0, "inputs": [],
             "outputs": [{"name": "INT", "type": "INT", "links": [4],
                          "widget": {"name": "steps"}}], "widgets_values": [33, "fixed"]},
            {"id": 6, "type": "Note", "mode": 0, "widgets_values": ["hello"]},
        ],
        "links": [[1, 1, 0, 2, 0, "MODEL"], [2, 2, 0, 3, 0, "MODEL"], [3, 3, 0, 4, 0, "MODEL"],
                  [4, 5, 0, 4, 1, "INT"]],
        "version": 0.4,
    }


def test_converter_reroutes_primitives_seed_control_and_titles():
    api = ui_to_api(_graph(), INFO)
    assert set(api) == {"1", "2", "4"}  # Reroute, PrimitiveNode and Note are frontend-only
    k = api["4"]
    assert k["_meta"]["title"] == "my sampler" and api["2"]["_meta"]["title"] == "Filter"
    assert k["inputs"] == {"seed": 7, "steps": 33, "cfg": 6.5, "sampler_name": "dpmpp_2m",
                           "scheduler": "simple", "denoise": 1.0, "model": ["2", 0]}
    assert api["1"]["inputs"] == {"name": "b.safetensors"}


def test_converter_bypass_and_mute():
    g = _graph()
    g["nodes"][1]["mode"] = 4  # bypass Filter: the sampler takes the loader's model
    api = ui_to_api(g, INFO)
    assert "2" not in api and api["4"]["inputs"]["model"] == ["1", 0]
    g = _graph()
    g["nodes"][0]["mode"] = 2  # mute the loader: the links from it go too
    api = ui_to_api(g, INFO)
    assert "1" not in api and "model" not in api["2"]["inputs"]


def test_converter_widget_layout_legacy_seed_force_input_combo_control_upload():
    # noise_seed INT (+control by name), x forceInput: no widget, pick combo (+control,
    # +filter), tag
    node = {"id": 9, "type": "Old", "mode": 0, "inputs": [],
            "widgets_values": [5, "randomize", "q", "fixed", "", ["a", "b"]]}
    api = ui_to_api({"nodes": [node], "links": []}, INFO)
    assert api["9"]["inputs"] == {"noise_seed": 5, "pick": "q", "tag": {"__value__": ["a", "b"]}}
    img = {"id": 1, "type": "LoadImage", "mode": 0, "widgets_values": ["x.png", "image"]}
    assert ui_to_api({"nodes": [img], "links": []}, INFO)["1"]["inputs"] == {"image": "x.png"}


def test_converter_defaults_and_dict_values():
    node = {"id": 1, "type": "KSampler", "mode": 0, "widgets_values": [3]}
    inputs = ui_to_api({"nodes": [node], "links": []}, INFO)["1"]["inputs"]
    assert inputs == {"seed": 3, "steps": 20, "cfg": 8.0, "sampler_name": "euler",
                      "scheduler": "normal", "denoise": 1.0}
    node = {"id": 1, "type": "Cond", "mode": 0, "widgets_values": {"text": "hi"}}
    assert ui_to_api({"nodes": [node], "links": []}, INFO)["1"]["inputs"] == {"text": "hi"}


def test_converter_refuses_unknown_nodes_groups_and_subgraphs():
    g = _graph()
    g["nodes"].append({"id": 7, "type": "SomePackNode", "mode": 0})
    with pytest.raises(WorkflowError, match="SomePackNode"):
        ui_to_api(g, INFO)
    g = _graph()
    g["nodes"].append({"id": 7, "type": "workflow>my group", "mode": 0})
    with pytest.raises(WorkflowError, match="group nodes"):
        ui_to_api(g, INFO)
    g = copy.deepcopy(_graph())
    g["definitions"] = {"subgraphs": [{"id": "x"}]}
    with pytest.raises(WorkflowError, match="subgraphs"):
        ui_to_api(g, INFO)
    with pytest.raises(WorkflowError):
        ui_to_api({"1": {"class_type": "X", "inputs": {}}}, INFO)


def test_converter_links_in_object_form():
    g = _graph()
    g["links"] = [{"id": l[0], "origin_id": l[1], "origin_slot": l[2], "target_id": l[3],
                   "target_slot": l[4], "type": l[5]} for l in g["links"]]
    assert ui_to_api(g, INFO) == ui_to_api(_graph(), INFO)


# ComfyUI 0.4+ input kinds, in the shapes /object_info gives them (from 0.33's SaveVideo,
# TextGenerate, an autogrow batch node and a multi-typed input with a widget)
def _codec(optional=False):
    encoding = ["COMFY_DYNAMICCOMBO_V3", {"options": [
        {"key": "auto", "inputs": {"required": {}}},
        {"key": "re-encode", "inputs": {"required": {
            "crf": ["FLOAT", {"default": 23.0}],
            "color_space": ["COMBO", {"default": "auto", "options": ["auto", "sRGB"]}]}}}]}]
    spec = ["COMFY_DYNAMICCOMBO_V3", {"options": [
        {"key": "auto", "inputs": {"required": {}}},
        {"key": "h264", "inputs": {"required": {}, "optional": {"encoding": encoding}}}]}]
    if optional:
        spec[1]["hidden"] = True
    return spec


INFO_V3 = {
    "SaveVideo": {"input": {
        "required": {"video": ["VIDEO", {}], "filename_prefix": ["STRING", {"default": "v"}],
                     "format": ["COMFY_DYNAMICCOMBO_V3", {"options": [
                         {"key": "auto", "inputs": {"required": {"codec": _codec()}}},
                         {"key": "mp4", "inputs": {"required": {"codec": _codec()}}}]}]},
        "optional": {"codec": _codec(optional=True)}},
        "input_order": {"required": ["video", "filename_prefix", "format"],
                        "optional": ["codec"]}, "display_name": "Save Video"},
    "TextGenerate": {"input": {"required": {
        "prompt": ["STRING", {}],
        "sampling": ["COMFY_DYNAMICCOMBO_V3", {"options": [
            {"key": "on", "inputs": {"required": {"seed": ["INT", {"default": 0}],
                                                  "top_k": ["INT", {"default": 64}]}}},
            {"key": "off", "inputs": {"required": {}}}]}],
        "seed": ["INT", {"default": 1}]}}, "display_name": "Text Generate"},
    "Batch": {"input": {"required": {
        "images": ["COMFY_AUTOGROW_V3", {"template": {"input": {"required": {
            "image": ["IMAGE", {}]}}, "prefix": "image", "min": 1, "max": 10}}],
        "value": ["INT,FLOAT", {"default": 2, "widgetType": "INT"}],
        "any": ["IMAGE,MASK", {}],
        "box": ["BOUNDING_BOX", {"default": {"x": 0, "y": 0, "width": 8, "height": 8},
                                 "component": "ImageCrop"}],
        "curve": ["CURVE", {}], "tags": ["COMBO", {"options": ["a", "b"], "multiselect": True}]}},
        "display_name": "Batch"},
}


def _node(nid, kind, values, inputs=()):
    return {"id": nid, "type": kind, "mode": 0, "inputs": list(inputs), "outputs": [],
            "widgets_values": values}


def test_converter_dynamic_combos_nested_in_order_with_the_hidden_legacy_input():
    # frontend 1.49: the chosen option's widgets follow the combo, depth first, named a.b.c
    node = _node(1, "SaveVideo", ["lumosx", "mp4", "h264", "re-encode", 20.0, "sRGB", "auto"])
    assert ui_to_api({"nodes": [node], "links": []}, INFO_V3)["1"]["inputs"] == {
        "filename_prefix": "lumosx", "format": "mp4", "format.codec": "h264",
        "format.codec.encoding": "re-encode", "format.codec.encoding.crf": 20.0,
        "format.codec.encoding.color_space": "sRGB", "codec": "auto"}
    # a file saved before 0.4 (format, codec): the codec lands in format.codec, as in the app
    node = _node(1, "SaveVideo", ["lumosx", "mp4", "h264"])
    assert ui_to_api({"nodes": [node], "links": []}, INFO_V3)["1"]["inputs"] == {
        "filename_prefix": "lumosx", "format": "mp4", "format.codec": "h264",
        "format.codec.encoding": "auto", "codec": "auto"}
    # dict-form values by name
    node = _node(1, "SaveVideo", {"format": "mp4", "format.codec": "h264"})
    assert ui_to_api({"nodes": [node], "links": []}, INFO_V3)["1"]["inputs"] == {
        "filename_prefix": "v", "format": "mp4", "format.codec": "h264",
        "format.codec.encoding": "auto", "codec": "auto"}


def test_converter_nested_seed_has_no_control_widget_top_level_seed_has():
    node = _node(1, "TextGenerate", ["hi", "on", 5, 32, 9, "fixed"])
    assert ui_to_api({"nodes": [node], "links": []}, INFO_V3)["1"]["inputs"] == {
        "prompt": "hi", "sampling": "on", "sampling.seed": 5, "sampling.top_k": 32, "seed": 9}
    node = _node(1, "TextGenerate", ["hi", "off", 9, "fixed"])
    assert ui_to_api({"nodes": [node], "links": []}, INFO_V3)["1"]["inputs"] == {
        "prompt": "hi", "sampling": "off", "seed": 9}


def test_converter_autogrow_multitype_box_component_curve_multiselect():
    graph = {"nodes": [
        _node(1, "Loader", ["a.safetensors"]),
        _node(2, "Batch", [3.5, {"x": 1, "y": 2, "width": 3, "height": 4}, 1, 2, 3, 4,
                           [[0, 0], [1, 1]], ["a", "b"]],
              inputs=[{"name": "images.image0", "type": "IMAGE", "link": 1},
                      {"name": "images.image1", "type": "IMAGE", "link": 2},
                      {"name": "images.image2", "type": "IMAGE", "link": None}])],
        "links": [[1, 1, 0, 2, 0, "IMAGE"], [2, 1, 0, 2, 1, "IMAGE"]]}
    info = dict(INFO_V3, Loader=INFO["Loader"])
    assert ui_to_api(graph, info)["2"]["inputs"] == {
        "images.image0": ["1", 0], "images.image1": ["1", 0], "value": 3.5,
        "box": {"x": 1, "y": 2, "width": 3, "height": 4},
        "curve": {"__type__": "CURVE", "__value__": [[0, 0], [1, 1]]},
        "tags": {"__value__": ["a", "b"]}}


def test_converter_refuses_values_it_cannot_place_naming_node_and_input():
    node = _node(3, "SaveVideo", ["lumosx", "mov", "h264"])  # not an option of format
    with pytest.raises(WorkflowError, match=r"node 3 \(SaveVideo.*'format': 'mov' is not one"):
        ui_to_api({"nodes": [node], "links": []}, INFO_V3)
    node = _node(4, "SaveVideo", ["lumosx", "mp4", "auto", "auto", "extra"])  # one too many
    with pytest.raises(WorkflowError, match=r"node 4 \(SaveVideo.*cannot map \['extra'\]"):
        ui_to_api({"nodes": [node], "links": []}, INFO_V3)
    node = _node(5, "Cond", {"text": "hi", "gone": 1})  # a name the node does not have
    with pytest.raises(WorkflowError, match=r"node 5 \(Cond.*'gone'"):
        ui_to_api({"nodes": [node], "links": []}, INFO)
