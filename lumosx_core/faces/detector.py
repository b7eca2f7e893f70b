"""Face detection + ArcFace embedding behind a small interface.

The metric code only needs a *detector*: a callable ``rgb [H, W, 3] float in [0, 1] ->
list[Face]``. :class:`InsightFaceDetector` is the real one (insightface + ONNX Runtime, both
imported lazily); tests and other tools can pass any callable with the same contract.

No ``comfy`` import: the ComfyUI node finds and caches its ``FaceAnalysis`` through the face
encoder's pack handling (``models/insightface/models/<pack>/``) and hands it in; the command
line finds a pack folder with :func:`find_face_pack`.
"""
from __future__ import annotations

import glob
import os
import threading
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch

Box = Tuple[float, float, float, float]

#: A face filling the whole picture (the LumosX authors' tight reference crops) defeats the
#: detector; a second try on the picture padded with this much white per side finds it.
RETRY_PAD = 0.5
MIN_DETECT_SIDE = 8
DEFAULT_PACKS = ("antelopev2", "buffalo_l")


@dataclass(frozen=True)
class Face:
    """One detected face: ``bbox`` ``(x1, y1, x2, y2)`` in the picture's pixels, a unit
    ``embedding`` (``None`` when the detector does not embed), the detector's ``score``."""

    bbox: Box
    embedding: Optional[np.ndarray] = None
    score: float = 1.0

    @property
    def width(self) -> float:
        return max(self.bbox[2] - self.bbox[0], 0.0)

    @property
    def height(self) -> float:
        return max(self.bbox[3] - self.bbox[1], 0.0)

    @property
    def center(self) -> Tuple[float, float]:
        return ((self.bbox[0] + self.bbox[2]) / 2.0, (self.bbox[1] + self.bbox[3]) / 2.0)


Detector = Callable[[torch.Tensor], List[Face]]


def unit(v) -> Optional[np.ndarray]:
    if v is None:
        return None
    a = np.asarray(v, dtype=np.float32).reshape(-1)
    n = float(np.linalg.norm(a))
    return a / n if n > 1e-12 else a


def rgb3(image: torch.Tensor) -> torch.Tensor:
    """``[H, W, C]`` (C = 1..4) -> ``[H, W, 3]`` float in [0, 1]; alpha dropped."""
    if image.ndim != 3:
        raise ValueError(f"expected one image [H, W, C]; got shape {tuple(image.shape)}")
    img = image.detach().float().cpu()
    if img.shape[-1] >= 3:
        return img[..., :3].clamp(0, 1)
    return img[..., :1].expand(*img.shape[:2], 3).clamp(0, 1)


def to_bgr_uint8(rgb: torch.Tensor) -> np.ndarray:
    u8 = (rgb.detach().float().cpu().clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()
    return np.ascontiguousarray(u8[..., ::-1])


def detect_insightface(app, rgb: torch.Tensor, det_size: int = 640, retry: bool = True):
    """insightface faces of ``rgb`` ``[H, W, 3]``; when none and ``retry``, retried on the
    picture padded with white (shrunk so the canvas stays within ``2 * det_size``), with
    boxes and landmarks mapped back. Same behaviour as the face encoder node."""
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_DETECT_SIDE:
        return []
    faces = app.get(to_bgr_uint8(rgb))
    if faces or not retry:
        return list(faces)
    scale = min(1.0, 2.0 * det_size / ((1.0 + 2.0 * RETRY_PAD) * max(h, w)))
    small = rgb
    if scale < 1.0:
        sh, sw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
        small = torch.nn.functional.interpolate(
            rgb.permute(2, 0, 1).unsqueeze(0).float(), size=(sh, sw), mode="bicubic",
            align_corners=False, antialias=True).clamp(0, 1)[0].permute(1, 2, 0)
    sh, sw = small.shape[:2]
    pad = int(round(RETRY_PAD * max(sh, sw)))
    padded = np.full((sh + 2 * pad, sw + 2 * pad, 3), 255, dtype=np.uint8)
    padded[pad:pad + sh, pad:pad + sw] = to_bgr_uint8(small)
    faces = list(app.get(padded))
    sx, sy = w / sw, h / sh
    for f in faces:
        f.bbox = (f.bbox - pad) * np.array([sx, sy, sx, sy], dtype=np.float32)
        if getattr(f, "kps", None) is not None:
            f.kps = (f.kps - pad) * np.array([sx, sy], dtype=np.float32)
    return faces


class InsightFaceDetector:
    """Detector over a prepared insightface ``FaceAnalysis`` (detection + recognition)."""

    def __init__(self, app, det_size: int = 640, retry: bool = True):
        self.app = app
        self.det_size = int(det_size)
        self.retry = retry

    def __call__(self, rgb: torch.Tensor) -> List[Face]:
        out = []
        for f in detect_insightface(self.app, rgb3(rgb), self.det_size, self.retry):
            out.append(Face(tuple(float(v) for v in np.asarray(f.bbox)[:4]),
                            unit(getattr(f, "embedding", None)),
                            float(getattr(f, "det_score", 1.0))))
        return out


# -- finding and loading a pack without ComfyUI --------------------------------------------

def has_onnx(path: str) -> bool:
    return os.path.isdir(path) and bool(glob.glob(os.path.join(glob.escape(path), "*.onnx")))


def default_roots() -> List[str]:
    """Where the command looks for ``<root>/models/<pack>/``: ComfyUI's
    ``models/insightface`` under the current folder, then insightface's own ``~/.insightface``."""
    return [os.path.join(os.getcwd(), "models", "insightface"),
            os.path.join(os.path.expanduser("~"), ".insightface")]


def find_face_pack(pack: Optional[str] = None, roots: Sequence[str] = ()) -> str:
    """Folder of an insightface pack: ``pack`` itself when it is a folder holding ``.onnx``
    files, else ``<root>/models/<pack>/`` under ``roots`` (then :func:`default_roots`);
    without ``pack`` the first of antelopev2 / buffalo_l found. Never downloads: raises
    ``FileNotFoundError`` listing the places searched."""
    if pack and has_onnx(pack):
        return os.path.abspath(pack)
    search = [os.path.abspath(os.path.expanduser(r)) for r in roots] + default_roots()
    names = [pack] if pack else list(DEFAULT_PACKS)
    tried = []
    for name in names:
        if os.path.basename(name) != name:
            raise FileNotFoundError(f"insightface pack folder {name!r} does not exist or "
                                    f"holds no .onnx files")
        for root in search:
            path = os.path.join(root, "models", name)
            tried.append(path)
            if has_onnx(path):
                return path
    raise FileNotFoundError(
        "no insightface pack found (looked in " + ", ".join(tried) + "). Pass --face-pack "
        "with a folder holding the pack's .onnx files (antelopev2 or buffalo_l: detection + "
        "recognition); nothing is downloaded.")


_CACHE: dict = {}
_LOCK = threading.Lock()


def load_face_analysis(pack_dir: str, provider: str = "auto", det_size: int = 640):
    """A prepared insightface ``FaceAnalysis`` for the pack folder ``pack_dir`` (cached)."""
    try:
        import onnxruntime
        from insightface.app import FaceAnalysis
    except ImportError as e:
        raise RuntimeError("face scores need insightface and onnxruntime: "
                           "pip install insightface onnxruntime") from e
    available = onnxruntime.get_available_providers()
    cuda = "CUDAExecutionProvider" in available
    if provider == "CUDA" and not cuda:
        raise RuntimeError("provider CUDA was chosen but onnxruntime offers no "
                           "CUDAExecutionProvider (install onnxruntime-gpu, or use auto/CPU)")
    if provider not in ("auto", "CPU", "CUDA"):
        raise ValueError(f"unknown provider {provider!r}; expected auto, CPU or CUDA")
    use_cuda = cuda and provider != "CPU"
    providers = (["CUDAExecutionProvider", "CPUExecutionProvider"] if use_cuda
                 else ["CPUExecutionProvider"])
    path = os.path.realpath(pack_dir)
    key = (path, tuple(providers), int(det_size))
    with _LOCK:
        app = _CACHE.get(key)
        if app is None:
            app = FaceAnalysis(name=path, root=os.path.dirname(os.path.dirname(path)),
                               providers=providers,
                               allowed_modules=["detection", "recognition"])
            app.prepare(ctx_id=0 if use_cuda else -1, det_size=(int(det_size), int(det_size)))
            _CACHE[key] = app
    return app
