"""Photos -> face references: detect the face in each photo, pick one, crop it on white,
embed it. What the Face Encoder node computes, without ComfyUI (the node adds the progress
bar, interrupts and the insightface pack lookup)."""
from __future__ import annotations

import logging
from typing import Callable, List, Optional, Tuple

import numpy as np
import torch

from ..image_limits import check_batch_pixels, fit_picture
from ..image_prep import attach_regions
from .detector import unit
from .reference import RELEASED, SQUARE, FaceReference, face_reference

log = logging.getLogger("LumosX")

SELECT_OPTIONS = ("largest", "index (left to right)")
CROP_RELEASED = "face box (released)"
CROP_SQUARE = "square with margin"
CROP_OPTIONS = (CROP_RELEASED, CROP_SQUARE)


def embedding_tensor(face) -> Optional[torch.Tensor]:
    """An insightface face's unit ArcFace embedding ``[512]`` as a float tensor, or None."""
    emb = unit(getattr(face, "embedding", None))
    return None if emb is None else torch.from_numpy(emb)


def crop_mode(crop: str) -> str:
    """The ``crop`` option of the nodes (:data:`CROP_OPTIONS`) as a
    :mod:`~lumosx_core.faces.reference` crop mode."""
    return SQUARE if crop == CROP_SQUARE else RELEASED


def reference_crop(ref: FaceReference, size: int) -> Tuple[torch.Tensor, dict]:
    """One face reference as the Face Encoder outputs it: ``(crop [size, size, 3]`` float,
    letterboxed on white from the photo's own pixels, ``info`` -- ``detected``, ``bbox``,
    ``kps``, ``det_score``, ``embedding``, ``crop_box``, ``image_size``, ``faces_found``)."""
    h, w = ref.region.image.shape[:2]
    face = ref.face
    info = {"detected": face is not None, "bbox": None, "kps": None, "det_score": None,
            "embedding": None, "crop_box": [float(v) for v in ref.region.box],
            "image_size": (int(w), int(h)), "faces_found": ref.faces_found}
    if face is not None:
        kps = getattr(face, "kps", None)
        info.update(bbox=[float(v) for v in face.bbox[:4]],
                    kps=None if kps is None else np.asarray(kps, dtype=float).tolist(),
                    det_score=float(face.det_score), embedding=embedding_tensor(face))
    return ref.region.letterbox(size, size).float(), info


def encode_faces(app, images: torch.Tensor, select: str = "largest", index: int = 0,
                 margin: float = 0.3, size: int = 512, det_size: int = 640,
                 crop: str = CROP_RELEASED, progress: Optional[Callable[[int], None]] = None,
                 check_interrupt: Optional[Callable[[], None]] = None
                 ) -> Tuple[torch.Tensor, List[dict]]:
    """``images`` ``[B, H, W, C]`` (or one ``[H, W, C]``) -> (crops ``[B, size, size, 3]``,
    B info dicts: ``detected``, ``bbox``, ``kps``, ``det_score``, ``embedding``,
    ``crop_box``, ``image_size``, ``faces_found``). One crop per photo, each with the same
    ``crop`` mode (the face box framed as released, or a square with ``margin``),
    letterboxed on white; a photo without a face passes through whole; a photo over the
    size limit is reduced first (:func:`~lumosx_core.image_limits.fit_picture`). The crops
    carry their regions of the photos (``attach_regions``): Bind resizes those original
    pixels to the video size, once. ``app``: a prepared insightface ``FaceAnalysis``; ``progress(1)``
    after each photo."""
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4:
        raise ValueError(f"images: expected an IMAGE batch [B, H, W, C]; got "
                         f"{tuple(images.shape)}")
    mode = "index" if select.startswith("index") else select
    check_batch_pixels(images.shape[0], size, size, "images: the face crops",
                       "give fewer photos at once or a smaller size")
    crops, infos, regions = [], [], []
    for b, image in enumerate(images.detach()):
        if check_interrupt is not None:
            check_interrupt()
        photo = fit_picture(image, f"images: photo {b}").cpu()
        try:
            ref = face_reference(app, photo, mode, index, crop_mode(crop), margin, det_size)
        except ValueError as e:
            raise ValueError(f"photo {b} of the batch: {e}") from e
        crop_image, info = reference_crop(ref, size)
        if ref.face is None:
            w, h = info["image_size"]
            log.warning("LumosX Face Encoder: no face detected in photo %d of the batch "
                        "(%dx%d); passing the whole photo through letterboxed on white", b, w, h)
        crops.append(crop_image)
        regions.append(ref.region)
        infos.append(info)
        if progress is not None:
            progress(1)
    return attach_regions(torch.stack(crops), regions), infos
