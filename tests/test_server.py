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
