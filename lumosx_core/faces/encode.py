"""Photos -> face references: detect the face in each photo, pick one, crop it on white,
embed it. What the Face Encoder node computes, without ComfyUI (the node adds the progress
bar, interrupts and the insightface pack lookup)."""
from __future__ import annotations

import logging
from typing import Callable, List, Optional, Tuple

import numpy as np
import torch

from ..image_prep import letterbox, to_rgb
from .crop import crop_resized, face_box, passthrough_box, pixel_box, select_face, square_box
from .detector import detect_insightface, unit

log = logging.getLogger("LumosX")

SELECT_OPTIONS = ("largest", "index (left to right)")
CROP_RELEASED = "face box (released)"
CROP_SQUARE = "square with margin"
CROP_OPTIONS = (CROP_RELEASED, CROP_SQUARE)


def embedding_tensor(face) -> Optional[torch.Tensor]:
    """An insightface face's unit ArcFace embedding ``[512]`` as a float tensor, or None."""
    emb = unit(getattr(face, "embedding", None))
    return None if emb is None else torch.from_numpy(emb)


def crop_box(bbox, width: int, height: int, crop: str, margin: float):
    """Pixel box of the reference cut from a ``width x height`` photo around ``bbox``:
    the detector's box as it is (:data:`CROP_RELEASED`) or a square with ``margin``."""
    if crop == CROP_SQUARE:
        return pixel_box(square_box(bbox, margin))
    return face_box(bbox, width, height)


def encode_faces(app, images: torch.Tensor, select: str = "largest", index: int = 0,
                 margin: float = 0.3, size: int = 512, det_size: int = 640,
                 crop: str = CROP_RELEASED, progress: Optional[Callable[[int], None]] = None,
                 check_interrupt: Optional[Callable[[], None]] = None
                 ) -> Tuple[torch.Tensor, List[dict]]:
    """``images`` ``[B, H, W, C]`` (or one ``[H, W, C]``) -> (crops ``[B, size, size, 3]``,
    B info dicts: ``detected``, ``bbox``, ``kps``, ``det_score``, ``embedding``,
    ``crop_box``, ``image_size``, ``faces_found``). One crop per photo, each with the same
    ``crop`` mode; a photo without a face passes through whole, letterboxed on white.
    ``app``: a prepared insightface ``FaceAnalysis``; ``progress(1)`` after each photo."""
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4:
        raise ValueError(f"images: expected an IMAGE batch [B, H, W, C]; got "
                         f"{tuple(images.shape)}")
    mode = "index" if select.startswith("index") else select
    crops, infos = [], []
    for b, image in enumerate(images.detach().cpu()):
        if check_interrupt is not None:
            check_interrupt()
        rgb = to_rgb(image, drop_alpha=True)
        h, w = rgb.shape[:2]
        faces = detect_insightface(app, rgb, det_size)
        info = {"detected": False, "bbox": None, "kps": None, "det_score": None,
                "embedding": None, "crop_box": None, "image_size": (int(w), int(h)),
                "faces_found": len(faces)}
        if faces:
            try:
                face = faces[select_face([[float(v) for v in f.bbox[:4]] for f in faces],
                                         mode, index)]
            except ValueError as e:
                raise ValueError(f"photo {b} of the batch: {e}") from e
            bbox = [float(v) for v in face.bbox[:4]]
            box = crop_box(bbox, w, h, crop, margin)
            reference = crop_resized(rgb, box, size)
            kps = getattr(face, "kps", None)
            info.update(detected=True, bbox=bbox,
                        kps=None if kps is None else np.asarray(kps, dtype=float).tolist(),
                        det_score=float(face.det_score), embedding=embedding_tensor(face),
                        crop_box=[float(v) for v in box])
        else:
            log.warning("LumosX Face Encoder: no face detected in photo %d of the batch "
                        "(%dx%d); passing the whole photo through letterboxed on white", b, w, h)
            reference = letterbox(rgb, size, size)
            info["crop_box"] = [float(v) for v in passthrough_box(w, h)]
        crops.append(reference.float())
        infos.append(info)
        if progress is not None:
            progress(1)
    return torch.stack(crops), infos
