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
                                      ui_to_api, widget_layout)

OUR_MODULE = "custom_nodes.ComfyUI-LumosX"


@pytest.fixture(scope="module")
def object_info(server):
    return server.get("/object_info", timeout=120)


def test_every_workflow_ships_in_both_formats():
    files = sorted(os.listdir(shipped.WORKFLOWS))
    expected = sorted([n + ".json" for n in shipped.NAMES]
                      + [n + ".api.json" for n in shipped.NAMES])
    assert files == expected
    for name in shipped.NAMES:
        assert is_ui_workflow(shipped.load(shipped.ui_path(name)))
        assert is_api_workflow(shipped.load(shipped.api_path(name)))
    assert [make().name for make in specs.WORKFLOWS] == shipped.NAMES


@pytest.mark.parametrize("name", shipped.NAMES)
def test_ui_converts_to_exactly_the_shipped_api(name, object_info):
    ui = shipped.load(shipped.ui_path(name))
    api = shipped.load(shipped.api_path(name))
    assert ui_to_api(ui, object_info) == api


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


def _notes(ui):
    return "\n".join(n["widgets_values"][0] for n in ui["nodes"] if n["type"] == "Note")


@pytest.mark.parametrize("name", shipped.NAMES)
def test_notes_say_which_file_goes_in_which_folder(name):
    text = _notes(shipped.load(shipped.ui_path(name)))
    for needle in (f"diffusion_models/{specs.DIT}", f"text_encoders/{specs.UMT5}",
                   f"vae/{specs.VAE}", f"insightface/models/{specs.FACE_PACK}/"):
        assert needle in text, (name, needle)


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
    for face in by_class["LumosXFaceEncoder"]:
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
    layout = widget_layout(INFO["Old"])
    # noise_seed INT (+control by name), x forceInput: no widget, pick combo (+control,
    # +filter), tag
    assert [n for n, *_ in layout] == ["noise_seed", None, "pick", None, None, "tag"]
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
