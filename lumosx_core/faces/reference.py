"""A photo's face reference, one home for every node that makes one (the Face Encoder, and any
node that cuts people out of a photo): detect, select, measure the face again at one fixed
scale (:func:`~lumosx_core.faces.detector.refine_face`), and cut the box -- without
resampling: the result is a :class:`~lumosx_core.image_prep.Region` of the photo, resized
once, by whoever needs it at a size (the Face Encoder's square output, Bind's video size).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch

from ..image_prep import Region, to_rgb
from .crop import PixelBox, expand_box, face_box, pixel_box, select_face, square_box
from .detector import detect_insightface, refine_face

#: ``crop`` modes: the face box as the released references frame it, or a square with a
#: margin of the face's longer side on each side.
RELEASED = "released"
SQUARE = "square"
CROP_MODES = (RELEASED, SQUARE)

#: How far the released references reach past the face box this detector draws (measured at
#: one fixed scale, :func:`~lumosx_core.faces.detector.refine_face`), as fractions of the box's
#: width (left, right) and height (top, bottom): the medians over the authors' 8 shipped face
#: references (``LumosX/test_data``; SCRFD, the detector of the insightface packs), which
#: have their faces 2-7 % below the top edge and 2-5 % above the bottom one, the sides
#: averaged. The authors cut their crops with a detector of their own whose boxes are looser
#: than SCRFD's, more so for small faces; the box as SCRFD draws it made the face 1-11 %
#: taller than in their reference.
RELEASED_MARGINS = (0.055, 0.047, 0.055, 0.024)


def reference_box(bbox: Sequence[float], width: int, height: int, crop: str = RELEASED,
                  margin: float = 0.3) -> PixelBox:
    """The box a reference is cut with from a ``width x height`` photo, for the detector's
    face box ``bbox`` ``(x1, y1, x2, y2)``: ``released`` = the face box widened by
    :data:`RELEASED_MARGINS` (the released references' framing), in whole pixels, clipped to
    the photo; ``square`` = the square of side ``max(w, h) * (1 + 2 * margin)`` around it
    (it may reach past the photo: white there)."""
    if crop == RELEASED:
        return face_box(expand_box(bbox, *RELEASED_MARGINS), width, height)
    if crop == SQUARE:
        return pixel_box(square_box(bbox, margin))
    raise ValueError(f"unknown crop mode {crop!r}; expected one of {CROP_MODES}")


@dataclass(frozen=True, eq=False)
class FaceReference:
    """One photo's face reference: ``region`` (the photo and the box to cut, not resampled),
    ``face`` (insightface's face -- ``bbox``, ``kps``, ``embedding``, ``det_score`` in the
    photo's pixels -- or ``None`` when no face was found and the whole photo is passed
    through) and ``faces_found`` (how many faces the photo has)."""

    region: Region
    face: Optional[Any]
    faces_found: int


def face_reference(app, image: torch.Tensor, select: str = "largest", index: int = 0,
                   crop: str = RELEASED, margin: float = 0.3, det_size: int = 640,
                   refine: bool = True) -> FaceReference:
    """The face reference of one photo ``image`` ``[H, W, C]`` (alpha ignored): the face
    chosen by ``select`` (``largest`` or ``index``, counted left to right; raises
    ``ValueError`` naming ``index`` when out of range), measured again at one fixed scale
    (``refine``), cut with :func:`reference_box`. Without a face, the whole photo with
    ``face`` ``None``."""
    rgb = to_rgb(image, drop_alpha=True)
    h, w = rgb.shape[:2]
    faces = detect_insightface(app, rgb, det_size)
    if not faces:
        return FaceReference(Region(rgb, (0, 0, w, h)), None, 0)
    face = faces[select_face([[float(v) for v in f.bbox[:4]] for f in faces], select, index)]
    return reference_of(app, rgb, face, crop, margin, det_size, len(faces), refine)


def reference_of(app, rgb: torch.Tensor, face, crop: str = RELEASED, margin: float = 0.3,
                 det_size: int = 640, faces_found: int = 1,
                 refine: bool = True) -> FaceReference:
    """The face reference of one face already detected in ``rgb`` ``[H, W, 3]`` (what
    :func:`face_reference` does after choosing it; People From Photo calls it for everyone):
    the face measured again at one fixed scale (``refine``), cut with :func:`reference_box`."""
    h, w = rgb.shape[:2]
    if refine:
        face = refine_face(app, rgb, face, det_size)
    box = reference_box([float(v) for v in face.bbox[:4]], w, h, crop, margin)
    return FaceReference(Region(rgb, box), face, faces_found)
