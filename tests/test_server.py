"""The pack inside a real headless ComfyUI server (the test host)."""
import pytest

from host_server import import_failures

pytestmark = pytest.mark.host_matrix  # run on every test host

NODE_IDS = ["LumosXApply"]


def test_pack_imports_cleanly(server):
    log = server.log()
    assert not import_failures(log), log
    assert "ComfyUI-LumosX" in log  # listed among the loaded custom nodes


def test_object_info_lists_our_nodes(server):
    info = server.get("/object_info")
    for node_id in NODE_IDS:
        assert node_id in info, node_id
        assert info[node_id]["display_name"].startswith("LumosX")
        assert info[node_id]["category"].startswith("LumosX")
    assert info["LumosXApply"]["input"]["required"]["model"][0] == "MODEL"
    assert info["LumosXApply"]["output"] == ["MODEL"]


def test_frontend_extension_is_served(server):
    import requests
    exts = server.get("/extensions")
    ours = [e for e in exts if e.endswith("lumosx.js")]
    assert len(ours) == 1, exts          # registered once (a second copy would clash)
    assert requests.get(server.url + ours[0], timeout=10).ok


def test_every_input_and_output_of_every_node_has_a_tooltip(server, pack):
    """What ComfyUI shows on hover, as the live server serves it: every input (required and
    optional) and every output of every node of this pack has a tooltip."""
    import ComfyUI_LumosX.nodes as nodes_pkg
    info = server.get("/object_info")
    ours = {cls.GET_SCHEMA().node_id for cls in nodes_pkg.NODE_LIST}
    assert ours <= set(info)
    # every node the server lists as this pack's (the test pack's aside), the photo nodes too
    assert {k for k in info if k.startswith("LumosX") and not k.startswith("LumosXTest")} == ours
    assert {"LumosXCutOut", "LumosXPeopleFromPhoto", "LumosXPickPerson"} <= ours
    missing = []
    for node_id in sorted(ours):
        node = info[node_id]
        for section in ("required", "optional"):
            for name, spec in (node["input"].get(section) or {}).items():
                opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                if not str(opts.get("tooltip") or "").strip():
                    missing.append(f"{node_id} input {name}")
        tips = node.get("output_tooltips") or []
        for i, name in enumerate(node.get("output_name") or node["output"]):
            if i >= len(tips) or not str(tips[i] or "").strip():
                missing.append(f"{node_id} output {name}")
    assert not missing, "no tooltip: " + ", ".join(missing)


def test_a_refused_value_never_stops_the_prompt_worker(server):
    """cfg = NaN on the Sampler through /prompt (raw JSON: a client can send it): the Sampler's
    output is refused naming the input, whatever ComfyUI queues of the rest runs, and the
    next job still runs (a refused value that ComfyUI cannot copy used to kill the worker)."""
    import json
    import requests
    import e2e_setup
    graph = e2e_setup.lumosx_graph(server.assets["spiece"], prefix="refused_cfg")
    graph["15"]["inputs"]["cfg"] = float("nan")
    r = requests.post(server.url + "/prompt", data=json.dumps({"prompt": graph}), timeout=30,
                      headers={"Content-Type": "application/json"})
    body = r.json()
    errors = json.dumps(body.get("node_errors", {}).get("15", {}))
    assert "cfg" in errors and "finite" in errors, body
    if r.status_code == 200:                     # the valid rest (the preview) was queued
        assert server.wait(body["prompt_id"], timeout=180)["status"]["status_str"] == "success"
    hist = server.run(e2e_setup.lumosx_graph(server.assets["spiece"], prefix="after_refused"),
                      timeout=180)
    assert hist["status"]["status_str"] == "success", hist["status"]
