"""Everyone in one group photo (People From Photo) and person k of them (Pick Person):
detection and the Face Encoder's crop per person, body regions, garment masks given to their
wearers, the preview and the report. No ComfyUI import: the node passes the face analyser and
its interrupt check.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch

from ..faces.detector import detect_insightface
from ..faces.encode import CROP_RELEASED, crop_mode, reference_crop
from ..faces.reference import reference_of
from ..image_limits import fit_picture
from ..image_prep import attach_regions, from_uint8, to_rgb
from . import garments as garments_core
from .cutout import cut_out
from .masks import as_images, as_masks, check_not_empty, check_size, item_name, kept, mask_view
from .people import (LEFT_TO_RIGHT, PeopleInPhoto, PhotoPerson, body_regions, order_faces,
                     render_people)


def check_one_photo(image: torch.Tensor) -> None:
    """An IMAGE holding several pictures is an error naming ``image``."""
    photos = as_images(image, "image")
    if photos.shape[0] != 1:
        raise ValueError(f"image: a batch of {photos.shape[0]} images (several photos, or "
                         f"the frames of an animated picture) where one group photo is "
                         f"expected; pick one (e.g. ImageFromBatch)")


def people_from_photo(app, image: torch.Tensor, det_size: int = 640,
                      order: str = LEFT_TO_RIGHT, max_people: int = 0, size: int = 512,
                      crop: str = CROP_RELEASED, margin: float = 0.3, body_width: float = 2.8,
                      body_height: float = 3.5, garments=None,
                      assign: str = garments_core.BY_PART,
                      min_overlap: float = garments_core.DEFAULT_MIN_OVERLAP,
                      check_interrupt: Optional[Callable[[], None]] = None) -> PeopleInPhoto:
    """People From Photo's work: the one photo of IMAGE ``image`` (reduced to the picture
    limit), everyone in it (:func:`find_people`) and, with ``garments`` (MASK on the same
    photo), the garments given to them (:func:`give_garments`)."""
    check_one_photo(image)
    photo = fit_picture(image.detach()[0] if image.ndim == 4 else image.detach(), "image")
    people = find_people(app, photo.cpu(), det_size, order, max_people, size, crop, margin,
                         body_width, body_height, check_interrupt)
    if garments is not None:
        people = give_garments(people, garments, assign, min_overlap, tuple(image.shape[-3:-1]))
    return people


def find_people(app, photo: torch.Tensor, det_size: int = 640, order: str = LEFT_TO_RIGHT,
                max_people: int = 0, size: int = 512, crop: str = CROP_RELEASED,
                margin: float = 0.3, body_width: float = 2.8, body_height: float = 3.5,
                check_interrupt: Optional[Callable[[], None]] = None) -> PeopleInPhoto:
    """Everyone in ``photo`` ``[H, W, C]``: detected as the Face Encoder detects, each face
    cropped by the Face Encoder's own crop (measured again at one scale, the released framing
    or a square), ordered, with body regions. ``check_interrupt`` runs before each person."""
    rgb = to_rgb(photo, drop_alpha=True)
    h, w = rgb.shape[:2]
    faces = detect_insightface(app, rgb, det_size)
    if not faces:
        raise ValueError(f"image: no face found in the {w}x{h} photo (det_size {det_size}: "
                         f"raise it to find small faces)")
    bboxes = [[float(v) for v in f.bbox[:4]] for f in faces]
    chosen = order_faces(bboxes, order, max_people)
    regions = body_regions([bboxes[i] for i in chosen], w, h, body_width, body_height)
    people = []
    for k, i in enumerate(chosen):
        if check_interrupt is not None:
            check_interrupt()
        ref = reference_of(app, rgb, faces[i], crop_mode(crop), margin, det_size, len(faces))
        reference, info = reference_crop(ref, size)
        people.append(PhotoPerson(tuple(bboxes[i]), reference, info, regions[k], ref.region))
    return PeopleInPhoto(rgb, tuple(people), order)


def give_garments(people: PeopleInPhoto, garments, mode: str, min_overlap: float,
                  photo_size=None) -> PeopleInPhoto:
    """``people`` with the garment masks (MASK, on the same photo) given to their wearers.
    ``photo_size``: ``(height, width)`` of the photo as given (before a size reduction)."""
    if photo_size is not None:
        check_size(mask_view(garments, "garments"), *photo_size, "garments", "image")
    masks = as_masks(garments, "garments")
    w, h = people.size
    check_size(masks, h, w, "garments", "image")
    for j in range(masks.shape[0]):
        check_not_empty(masks[j], item_name("garments", j, masks.shape[0]), "the garments")
    return people.with_assignment(garments_core.assign_garments(
        masks, people.regions(), [p.bbox for p in people.people], mode, min_overlap))


def preview(people: PeopleInPhoto) -> torch.Tensor:
    """People From Photo's preview IMAGE ``[1, H, W, 3]`` (:func:`render_people`)."""
    a = people.assignment
    worn = [a.person_keep(k) for k in range(len(people.people))] if a is not None else None
    return from_uint8(render_people(people.photo, [p.bbox for p in people.people],
                                    people.regions(), worn,
                                    a.unassigned() if a is not None else None)).unsqueeze(0)


def report(people: PeopleInPhoto) -> str:
    """Who was found where, then which garment went to whom (or that none are connected)."""
    a = people.assignment
    return people.describe() + "\n" + (a.report() if a is not None
                                       else "garments: none connected")


def faces_of(people: PeopleInPhoto) -> torch.Tensor:
    """Every person's face reference, in order: IMAGE ``[N, S, S, 3]`` carrying the photo
    boxes they were cropped from."""
    return attach_regions(torch.stack([p.face for p in people.people]),
                          [p.source for p in people.people])


def pick_person(people: PeopleInPhoto, index: int
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor], str, torch.Tensor, torch.Tensor]:
    """Person ``index``: ``(face [1, S, S, 3], garment [1, h, w, 3] or None, why none,
    region [1, H, W] float, worn [1, H, W])`` -- the garment is every piece given to them cut
    out on white; ``None`` with the message for the user when they got none."""
    if not isinstance(people, PeopleInPhoto):
        raise ValueError("people: expected the people output of LumosX People From Photo, "
                         f"got {type(people).__name__}")
    person = people.person(index)
    a = people.assignment
    worn = a.person_mask(int(index)) if a is not None else torch.zeros(people.photo.shape[:2])
    garment, why = None, ""
    if bool(kept(worn).any()):
        garment = cut_out(people.photo, worn).image.unsqueeze(0)
    else:
        why = (f"LumosX Pick Person: person {index} (index = {index}) has no garment: "
               + ("no garments are connected to People From Photo" if a is None else
                  "People From Photo gave this person no garment (see its report)")
               + ". Paint the garment on the group photo and connect that mask to People From "
                 "Photo's garments, or do not use the garment output of this person.")
    face = attach_regions(person.face.unsqueeze(0), [person.source])
    return face, garment, why, person.region.float().unsqueeze(0), worn.unsqueeze(0)
