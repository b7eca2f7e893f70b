"""Hostile jobs on the real headless host (issue #25): face detectors are cached by a bounded
policy and released by ComfyUI's ``/free``; an animated GIF/WebP (several frames, as ComfyUI's
LoadImage gives them) into an input that takes one picture is an error naming the input, and
the next job runs."""
import os
import time

import numpy as np
import pytest
import requests
from PIL import Image

import e2e_setup

from lumosx_core.faces.detector import MAX_DETECTORS

pytestmark = pytest.mark.host_matrix  # run on every test host


def _detectors(server) -> int:
    hist = server.run({"1": {"class_type": "LumosXTestDetectors", "inputs": {}}})
    return int(hist["outputs"]["1"]["text"][0])


def _face_job(det_size):
    return {"1": {"class_type": "LoadImage", "inputs": {"image": "t1.jpg"}},
            "2": {"class_type": "LumosXFaceEncoder",
                  "inputs": {"images": ["1", 0], "pack": e2e_setup.FACE_PACK,
                             "select": "largest", "index": 0, "margin": 0.3, "size": 128,
                             "det_size": det_size, "provider": "CPU"}},
            "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}}


def test_detector_cache_is_bounded_and_freed(server):
    for det_size in (160, 192, 224, 256):
        hist = server.run(_face_job(det_size))
        assert hist["status"]["status_str"] == "success", hist["status"]
    assert _detectors(server) == MAX_DETECTORS
    r = requests.post(server.url + "/free", json={"unload_models": True}, timeout=30)
    assert r.ok, r.text
    deadline = time.time() + 30
    while _detectors(server):        # the worker acts on the flag between jobs
        assert time.time() < deadline, "the face detectors survived /free"
        time.sleep(0.2)
    hist = server.run(_face_job(320))
    assert hist["status"]["status_str"] == "success", hist["status"]
    assert _detectors(server) == 1


def _animation(path, fmt):
    frames = [Image.fromarray(np.full((64, 48, 3), c, np.uint8)) for c in (40, 120, 200)]
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], duration=100,
                   loop=0)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
@pytest.mark.parametrize("node,name", [("LumosXReference", "image"), ("LumosXPerson", "face"),
                                       ("LumosXPerson", "attribute_1")])
def test_animated_picture_into_one_picture_input(server, fmt, node, name):
    picture = f"animated_{fmt.lower()}.{fmt.lower()}"
    path = os.path.join(server.base, "input", picture)
    if not os.path.exists(path):
        _animation(path, fmt)
    g = {"1": {"class_type": "LoadImage", "inputs": {"image": picture}},
         "2": {"class_type": "LoadImage", "inputs": {"image": "garden.png"}}}
    if node == "LumosXReference":
        g["3"] = {"class_type": "LumosXReference",
                  "inputs": {"image": ["1", 0], "phrase": "sunny garden", "kind": "background"}}
    else:
        g["3"] = {"class_type": "LumosXPerson",
                  "inputs": {"face": ["2", 0], "face_phrase": "astronaut",
                             "attribute_1": ["2", 0], "phrase_1": "red jacket"}}
        g["3"]["inputs"][name] = ["1", 0]
    g["4"] = {"class_type": "LumosXBind",
              "inputs": {"clip": ["5", 0], "vae": ["6", 0], "prompt": e2e_setup.PROMPT,
                         "negative_prompt": "", "references": ["3", 0], "width": 64,
                         "height": 48, "length": 1, "batch_size": 1, "ratio": 0.5,
                         "r2pe": True, "self_mask": True, "cross_mask": True, "mode": "parity",
                         "uncond_bias": "positive phrase masks (released)", "strict": False}}
    g["5"] = {"class_type": "LumosXTestTinyTextEncoder",
              "inputs": {"spiece_path": server.assets["spiece"], "seed": 0}}
    g["6"] = {"class_type": "VAELoader", "inputs": {"vae_name": e2e_setup.VAE}}
    g["7"] = {"class_type": "PreviewImage", "inputs": {"images": ["4", 4]}}
    hist = server.run(g)
    assert hist["status"]["status_str"] == "error", hist["status"]
    err = [m for k, m in hist["status"]["messages"] if k == "execution_error"][0]
    assert err["node_id"] == "3", err
    msg = err["exception_message"]
    assert msg.startswith(f"{name}: ") and "a batch of 3 images" in msg, msg
    g["3"]["inputs"][name] = ["2", 0]                   # the next job, one picture: runs
    assert server.run(g)["status"]["status_str"] == "success"
