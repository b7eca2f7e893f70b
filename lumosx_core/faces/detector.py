"""Faces, one home for the Face Encoder node and the evaluation: insightface packs (where they
are, which are the defaults), ONNX Runtime providers, the prepared ``FaceAnalysis`` (cached),
detection with a padded retry, and the small detector interface the metrics use.

The metric code only needs a *detector*: a callable ``rgb [H, W, 3] float in [0, 1] ->
list[Face]``. :class:`InsightFaceDetector` is the real one (insightface + ONNX Runtime, both
imported lazily); tests and other tools can pass any callable with the same contract.

No ``comfy`` import: callers give the roots to search (the node: ComfyUI's registered
``models/insightface`` folders; the command line: its options and :func:`default_roots`).
A pack is ``<root>/models/<name>/`` holding ``.onnx`` files; nothing is ever downloaded.
"""
from __future__ import annotations

import glob
import logging
import os
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..image_prep import letterbox, letterbox_size, to_rgb, to_uint8
from ..limits import MissingFile
from .crop import pixel_box, square_box

log = logging.getLogger("LumosX")

Box = Tuple[float, float, float, float]

#: A face filling the whole picture (the LumosX authors' tight reference crops) defeats the
#: detector; a second try on the picture padded with this much white per side finds it.
RETRY_PAD = 0.5
MIN_DETECT_SIDE = 8
#: The packs LumosX is used with (detection + recognition), preferred in this order.
DEFAULT_PACKS = ("antelopev2", "buffalo_l")
PROVIDER_OPTIONS = ("auto", "CPU", "CUDA")


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


def unit(v) -> Optional[np.ndarray]:
    if v is None:
        return None
    a = np.asarray(v, dtype=np.float32).reshape(-1)
    n = float(np.linalg.norm(a))
    return a / n if n > 1e-12 else a


def to_bgr_uint8(rgb: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(to_uint8(rgb)[..., ::-1])


def analyse(app, bgr: np.ndarray) -> list:
    """``app.get(bgr)``: the faces insightface finds, without the FutureWarning its alignment
    raises on every face (``SimilarityTransform.estimate``, deprecated since scikit-image
    0.26 and still there below 2.2, which requirements.txt caps): ignored here only, for that
    message from insightface's own modules."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`estimate` is deprecated",
                                category=FutureWarning, module=r"insightface\.")
        return list(app.get(bgr))


def detect_in_box(app, rgb: torch.Tensor, box: Sequence[int], width: int, height: int):
    """insightface faces of the ``box`` ``(x0, y0, x1, y1)`` of ``rgb`` ``[H, W, 3]`` (white
    where the box reaches past the photo), fitted into ``width x height`` with THE resize
    (:func:`letterbox`); boxes and landmarks come back in the photo's pixels."""
    x0, y0, x1, y1 = box
    nw, nh, ox, oy = letterbox_size(x1 - x0, y1 - y0, width, height)
    sx, sy = nw / (x1 - x0), nh / (y1 - y0)
    faces = analyse(app, to_bgr_uint8(letterbox(rgb, width, height, box=box)))
    for f in faces:
        f.bbox = ((np.asarray(f.bbox, dtype=np.float64) - [ox, oy, ox, oy]) / [sx, sy, sx, sy]
                  + [x0, y0, x0, y0]).astype(np.float32)
        if getattr(f, "kps", None) is not None:
            f.kps = ((np.asarray(f.kps, dtype=np.float64) - [ox, oy]) / [sx, sy]
                     + [x0, y0]).astype(np.float32)
    return faces


def detect_insightface(app, rgb: torch.Tensor, det_size: int = 640, retry: bool = True):
    """insightface faces of ``rgb`` ``[H, W, 3]``; when none and ``retry``, retried on the
    picture padded with white (:data:`RETRY_PAD` of its longer side on each side, shrunk so
    the canvas stays within ``2 * det_size``), with boxes and landmarks mapped back."""
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_DETECT_SIDE:
        return []
    faces = analyse(app, to_bgr_uint8(rgb))
    if faces or not retry:
        return faces
    pad = int(round(RETRY_PAD * max(h, w)))
    box = (-pad, -pad, w + pad, h + pad)
    scale = min(1.0, 2.0 * det_size / (max(h, w) + 2 * pad))
    return detect_in_box(app, rgb, box, max(1, int(round((w + 2 * pad) * scale))),
                         max(1, int(round((h + 2 * pad) * scale))))


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def refine_face(app, rgb: torch.Tensor, face, det_size: int = 640, min_iou: float = 0.3):
    """The same face detected again at one fixed scale: in the square window around its box
    (:data:`RETRY_PAD` of the box's longer side on each side, white past the photo) resized
    to ``det_size x det_size``, so the face spans about half the detector's input however
    small it was in the photo. Returns the face of that pass that overlaps ``face`` most
    (box, landmarks, embedding, score in the photo's pixels), or ``face`` itself when none
    overlaps it by ``min_iou``.

    Why: a face that is small in the detector's input (a group photo at ``det_size`` 640)
    gets a box several percent too tight or too loose, and which way changes with the photo
    size, ``det_size`` and the position; at one fixed scale the box is the one the same
    face gets as a tight crop on its own, the way the released references are cut."""
    bbox = [float(v) for v in np.asarray(face.bbox)[:4]]
    window = pixel_box(square_box(bbox, RETRY_PAD))
    found = detect_in_box(app, rgb, window, det_size, det_size)
    best = max(found, key=lambda f: _iou(bbox, np.asarray(f.bbox)[:4]), default=None)
    if best is None or _iou(bbox, np.asarray(best.bbox)[:4]) < min_iou:
        return face
    return best


class InsightFaceDetector:
    """Detector over a prepared insightface ``FaceAnalysis`` (detection + recognition)."""

    def __init__(self, app, det_size: int = 640, retry: bool = True):
        self.app = app
        self.det_size = int(det_size)
        self.retry = retry

    def __call__(self, rgb: torch.Tensor) -> List[Face]:
        out = []
        for f in detect_insightface(self.app, to_rgb(rgb, drop_alpha=True), self.det_size,
                                    self.retry):
            out.append(Face(tuple(float(v) for v in np.asarray(f.bbox)[:4]),
                            unit(getattr(f, "embedding", None)),
                            float(getattr(f, "det_score", 1.0))))
        return out


# -- packs ----------------------------------------------------------------------------------

def has_onnx(path: str) -> bool:
    return os.path.isdir(path) and bool(glob.glob(os.path.join(glob.escape(path), "*.onnx")))


def pack_in(name: str, roots: Sequence[str]) -> Optional[str]:
    """The first ``<root>/models/<name>/`` holding ``.onnx`` files, or ``None``."""
    for root in roots:
        path = os.path.join(root, "models", name)
        if has_onnx(path):
            return path
    return None


def list_packs(roots: Sequence[str]) -> List[str]:
    """Names of the packs under ``roots`` (every ``<root>/models/<name>/`` holding a ``.onnx``
    file), :data:`DEFAULT_PACKS` first, then by name."""
    found = set()
    for root in roots:
        models = os.path.join(root, "models")
        if not os.path.isdir(models):
            continue
        for name in os.listdir(models):
            if has_onnx(os.path.join(models, name)):
                found.add(name)
    rank = {n: i for i, n in enumerate(DEFAULT_PACKS)}
    return sorted(found, key=lambda n: (rank.get(n, len(rank)), n))


def find_pack(pack: str, roots: Sequence[str], target: Optional[str] = None) -> str:
    """Folder of the pack named ``pack``: the first ``<root>/models/<pack>/`` holding
    ``.onnx`` files. Raises ``ValueError`` for a name that is a path, else
    ``FileNotFoundError`` naming the folder to fill (``target``, default under the first
    root), with a hint when the files sit one folder too deep."""
    if not pack or os.path.basename(pack) != pack or pack in (".", ".."):
        raise ValueError(f"invalid insightface pack name {pack!r}")
    path = pack_in(pack, roots)
    if path is not None:
        return path
    if target is None and roots:
        target = os.path.join(roots[0], "models", pack)
    hint = ""
    for root in roots:
        nested = os.path.join(root, "models", pack, pack)
        if has_onnx(nested):
            hint = f" (they are one folder too deep in {nested}: move them up)"
            break
    raise FileNotFoundError(
        f"pack: insightface pack {pack!r} not found: put its .onnx files in {target}{hint}. "
        f"The node never downloads models; antelopev2 or buffalo_l (detection + recognition) "
        f"work{_fetch_hint(pack)}.")


def pack_error(pack, roots: Sequence[str]):
    """``None`` when ``pack`` names a pack found under ``roots``; else why not: a
    :class:`~lumosx_core.limits.MissingFile` naming the folder to fill (:func:`find_pack`), or
    that it must be a plain folder name."""
    try:
        if isinstance(pack, str) and len(pack) <= 255:
            find_pack(pack, roots)
            return None
    except FileNotFoundError as e:
        return MissingFile(e)
    except ValueError:          # a path, not a name
        pass
    return f"pack = {pack!r:.80}: give the name of a folder in models/insightface/models"


def _fetch_hint(pack: str) -> str:
    """How to get ``pack`` when the model manifest lists it (``lumosx models get``)."""
    from ..model_files import load_manifest
    m = load_manifest().find(pack)
    return f"; {m.fetch_hint()}" if m is not None and m.kind == "pack" else ""


def default_roots() -> List[str]:
    """Where the command looks for ``<root>/models/<pack>/``: ComfyUI's
    ``models/insightface`` under the current folder, then insightface's own ``~/.insightface``."""
    return [os.path.join(os.getcwd(), "models", "insightface"),
            os.path.join(os.path.expanduser("~"), ".insightface")]


def find_face_pack(pack: Optional[str] = None, roots: Sequence[str] = ()) -> str:
    """The command line's lookup: ``pack`` itself when it is a folder holding ``.onnx``
    files, else ``<root>/models/<pack>/`` under ``roots`` (then :func:`default_roots`);
    without ``pack`` the first of :data:`DEFAULT_PACKS` found. Never downloads: raises
    ``FileNotFoundError`` listing the places searched."""
    if pack and has_onnx(pack):
        return os.path.abspath(pack)
    search = [os.path.abspath(os.path.expanduser(r)) for r in roots] + default_roots()
    names = [pack] if pack else list(DEFAULT_PACKS)
    for name in names:
        if os.path.basename(name) != name:
            raise FileNotFoundError(f"insightface pack folder {name!r} does not exist or "
                                    f"holds no .onnx files")
        path = pack_in(name, search)
        if path is not None:
            return path
    tried = [os.path.join(root, "models", name) for name in names for root in search]
    raise FileNotFoundError(
        "no insightface pack found (looked in " + ", ".join(tried) + "). Pass --face-pack "
        "with a folder holding the pack's .onnx files (antelopev2 or buffalo_l: detection + "
        "recognition); nothing is downloaded.")


# -- providers and the prepared FaceAnalysis --------------------------------------------------

def resolve_providers(choice: str, available=None) -> Tuple[Tuple[str, ...], int]:
    """``(providers, ctx_id)`` for ONNX Runtime. ``auto``: CUDA when onnxruntime offers
    it, else CPU; ``CUDA`` fails clearly when it does not."""
    if choice not in PROVIDER_OPTIONS:
        raise ValueError(f"unknown provider {choice!r}; expected one of {PROVIDER_OPTIONS}")
    if available is None:
        import onnxruntime
        available = onnxruntime.get_available_providers()
    cuda = "CUDAExecutionProvider" in available
    if choice == "CPU" or (choice == "auto" and not cuda):
        return ("CPUExecutionProvider",), -1
    if not cuda:
        raise RuntimeError(
            "provider 'CUDA' was chosen but onnxruntime offers no CUDAExecutionProvider "
            "(install onnxruntime-gpu matching your CUDA, or pick 'auto' or 'CPU')")
    return ("CUDAExecutionProvider", "CPUExecutionProvider"), 0


#: Prepared detectors kept (the most recently used): each is the pack's ONNX sessions, about
#: 30 MB (a test pack) to 300 MB (antelopev2); each det_size is a detector of its own.
MAX_DETECTORS = 2
_CACHE: "OrderedDict[tuple, object]" = OrderedDict()
_LOCK = threading.Lock()


def cached_detectors() -> int:
    """How many prepared detectors are held now."""
    with _LOCK:
        return len(_CACHE)


def release_detectors() -> int:
    """Drop every cached detector (ComfyUI's "free memory"); returns how many there were."""
    with _LOCK:
        n = len(_CACHE)
        _CACHE.clear()
    return n


class FacePacks:
    """The insightface packs under the roots ``roots()`` gives (asked each time, so folders a
    host registers later count): list, find, check a name, load the analyser."""

    def __init__(self, roots: Callable[[], Sequence[str]]):
        self.roots = roots

    def available(self) -> List[str]:
        """Names of the packs found under every root (:func:`list_packs`)."""
        return list_packs(self.roots())

    def find(self, pack: str) -> str:
        """Folder of ``pack`` (:func:`find_pack`: ``FileNotFoundError`` naming the folder to
        fill; never downloads)."""
        return find_pack(pack, self.roots())

    def error(self, pack) -> Optional[str]:
        """Why ``pack`` cannot be used, else ``None`` (:func:`pack_error`)."""
        return pack_error(pack, self.roots())

    def analyzer(self, pack: str, provider: str = "auto", det_size: int = 640):
        """The prepared (cached) insightface ``FaceAnalysis`` of ``pack``."""
        return load_face_analysis(self.find(pack), provider, det_size)


def release_with(owner, name: str) -> bool:
    """Make the host's "free memory" function ``owner.<name>`` also drop the cached detectors
    (:func:`release_detectors`): it is wrapped once, where the host has it. ``False`` when it
    has none."""
    free = getattr(owner, name, None)
    if free is None or getattr(free, "_lumosx", False):
        return free is not None

    def free_and_release(*args, **kwargs):
        try:
            return free(*args, **kwargs)
        finally:
            release_detectors()
    free_and_release.__name__ = name
    free_and_release._lumosx = True
    free_and_release.__wrapped__ = free
    setattr(owner, name, free_and_release)
    return True


def load_face_analysis(pack_dir: str, provider: str = "auto", det_size: int = 640):
    """A prepared insightface ``FaceAnalysis`` (detection + recognition) for the pack folder
    ``pack_dir``, cached per (real folder, providers, det_size): the
    :data:`MAX_DETECTORS` most recently used are kept, :func:`release_detectors` drops all."""
    try:
        from insightface.app import FaceAnalysis
    except ImportError as e:
        raise RuntimeError("face detection needs insightface and onnxruntime: "
                           "pip install insightface onnxruntime") from e
    providers, ctx_id = resolve_providers(provider)
    path = os.path.realpath(pack_dir)
    key = (path, providers, int(det_size))
    with _LOCK:
        app = _CACHE.get(key)
        if app is not None:
            _CACHE.move_to_end(key)
        else:
            # An existing absolute folder as the name: insightface loads it as is (no
            # download, whatever the current directory holds).
            app = FaceAnalysis(name=path, root=os.path.dirname(os.path.dirname(path)),
                               providers=list(providers),
                               allowed_modules=["detection", "recognition"])
            app.prepare(ctx_id=ctx_id, det_size=(int(det_size), int(det_size)))
            log.info("LumosX: loaded insightface pack %s (%s, det_size %d)", path,
                     providers[0], det_size)
            _CACHE[key] = app
            while len(_CACHE) > MAX_DETECTORS:
                _CACHE.popitem(last=False)
    return app
