"""End to end in a real headless ComfyUI: queue an API-format LumosX graph through /prompt."""
import os

import pytest
from PIL import Image

import e2e_setup

pytestmark = pytest.mark.host_matrix  # run on every test host


def _outputs(server, hist, node):
    files = []
    for item in hist["outputs"].get(node, {}).get("images", []):
        files.append(os.path.join(server.base, "output", item.get("subfolder", ""), item["filename"]))
    return files


def combo_options(spec):
    """Options of a combo input in /object_info (V1 list or V3 "COMBO" form)."""
    if isinstance(spec[0], list):
        return spec[0]
    assert spec[0] == "COMBO", spec
    return spec[1]["options"]


def test_object_info_has_every_node(server):
    info = server.get("/object_info")
    ours = [k for k in info if k.startswith("LumosX") and not k.startswith("LumosXTest")]
    assert set(ours) >= {"LumosXModelLoader", "LumosXApply", "LumosXFaceEncoder", "LumosXPerson",
                         "LumosXReference", "LumosXBind", "LumosXSampler"}
    assert e2e_setup.DIT in combo_options(info["LumosXModelLoader"]["input"]["required"]["model_name"])
    assert e2e_setup.FACE_PACK in combo_options(info["LumosXFaceEncoder"]["input"]["required"]["pack"])


def test_full_graph_through_the_api(server):
    graph = e2e_setup.lumosx_graph(server.assets["spiece"], width=64, height=48, length=5)
    hist = server.run(graph, timeout=900)
    status = hist["status"]
    assert status["status_str"] == "success", (status, server.log()[-3000:])
    (video,) = _outputs(server, hist, "17")
    with Image.open(video) as im:
        assert im.size == (64, 48)
        assert getattr(im, "n_frames", 1) == 5
    (preview,) = _outputs(server, hist, "18")
    with Image.open(preview) as im:
        assert im.size[0] >= 192 and im.size[1] > 40


def test_bad_width_is_refused_before_running(server):
    graph = e2e_setup.lumosx_graph(server.assets["spiece"], width=70)
    r = server.queue(graph)
    assert r.status_code == 400
    body = r.json()
    errs = body["node_errors"]["14"]["errors"]
    assert any("width = 70" in e["details"] for e in errs), body
