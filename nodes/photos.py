"""From ordinary photos to references: Cut Out (masked pixels on white, cropped tight, like the
released attribute and object references), People From Photo (everyone in a group photo: the
Face Encoder's face crop per person, body regions, garment masks given to their wearers) and
Pick Person (person k of it, without detecting again). The work is in
``lumosx_core/photos``; faces are detected and cropped by the Face Encoder's own functions.
"""
from __future__ import annotations

import numpy as np
import torch

import comfy.model_management
from comfy_api.latest import io
from comfy_execution.graph_utils import ExecutionBlocker

from ..lumosx_core.faces.detector import detect_insightface
from ..lumosx_core.faces.encode import CROP_OPTIONS, CROP_RELEASED, crop_mode, reference_crop
from ..lumosx_core.faces.reference import reference_of
from ..lumosx_core.image_limits import fit_picture
from ..lumosx_core.image_prep import attach_regions, to_rgb
from ..lumosx_core.photos import garments as garments_core
from ..lumosx_core.photos.cutout import cut_out, cut_out_batch, stack
from ..lumosx_core.photos.masks import (as_images, as_masks, check_not_empty, check_size,
                                        item_name, kept, mask_view)
from ..lumosx_core.photos.people import (LEFT_TO_RIGHT, ORDERS, PeopleInPhoto, PhotoPerson,
                                         body_regions, order_faces, render_people)
from .faces import (FACE_CHECKS, body_region_inputs, crop_inputs, detector_inputs,
                    load_analyzer, pack_input)
from .validation import LumosXNode, check_inputs

PEOPLE_TYPE = io.Custom("LUMOSX_PEOPLE")
ALL_PARTS = "all parts"
LARGEST_PART = "largest part"
PARTS = (ALL_PARTS, LARGEST_PART)

MASK_TIP = ("1 = keep: the area painted in the mask editor (Load Image's MASK output), the "
            "object of a segmentation node (SAM, GroundingDINO packs) or any core mask node. "
            "Soft values blend over white.")


def _image(arr: np.ndarray) -> torch.Tensor:
    """uint8 ``[H, W, 3]`` -> IMAGE ``[1, H, W, 3]``."""
    return torch.from_numpy(arr.astype(np.float32) / 255.0).unsqueeze(0)


class LumosXCutOut(LumosXNode):
    """IMAGE + MASK -> the masked pixels on white, cropped tight to the mask's box."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="LumosXCutOut",
            display_name="LumosX Cut Out",
            category="LumosX",
            description=("Makes an attribute or object reference from an ordinary photo the "
                         "way the released references are made: only the masked pixels, on "
                         "pure white, cropped tight to the mask's box (no margin). A hard mask "
                         "copies the pixels as they are; a soft mask blends them over white. "
                         "Mask and image must have the same size; an empty mask is an error."),
            inputs=[
                io.Image.Input("image", tooltip="The photo (or a batch of photos) to cut from."),
                io.Mask.Input("mask", tooltip="What to keep, same size as the image: " + MASK_TIP
                              + " One mask per photo, one for all, or several masks for one "
                                "photo (one cut-out each)."),
                io.Combo.Input("parts", options=list(PARTS), default=ALL_PARTS,
                               tooltip="all parts: every disconnected piece of the mask is "
                                       "kept (a jacket split by a strap stays whole); largest "
                                       "part: only the biggest piece (drops stray brush "
                                       "strokes)."),
            ],
            outputs=[
                io.Image.Output("cutout", display_name="cut-out",
                                tooltip="The cut-out: masked pixels on white, cropped to the "
                                        "mask's box. A batch whose boxes differ in size is "
                                        "centred on white at the largest size."),
                io.Mask.Output("cutout_mask", display_name="mask",
                               tooltip="The mask inside the same box (1 = the cut-out's "
                                       "pixels)."),
            ],
        )

    @classmethod
    def execute(cls, image, mask, parts=ALL_PARTS) -> io.NodeOutput:
        check_inputs(cls, locals())
        cuts = cut_out_batch(image, mask, largest=parts == LARGEST_PART)
        images, masks = stack(cuts)
        return io.NodeOutput(images, masks)


def find_people(app, photo: torch.Tensor, det_size: int = 640, order: str = LEFT_TO_RIGHT,
                max_people: int = 0, size: int = 512, crop: str = CROP_RELEASED,
                margin: float = 0.3, body_width: float = 2.8,
                body_height: float = 3.5) -> PeopleInPhoto:
    """Everyone in ``photo`` ``[H, W, C]``: detected as the Face Encoder detects, each face
    cropped by the Face Encoder's own crop (measured again at one scale, the released framing
    or a square), ordered, with body regions."""
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
        comfy.model_management.throw_exception_if_processing_interrupted()
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
    return _image(render_people(people.photo, [p.bbox for p in people.people],
                                people.regions(), worn,
                                a.unassigned() if a is not None else None))


class LumosXPeopleFromPhoto(LumosXNode):
    """Everyone in a group photo: face crops (the Face Encoder's), body regions, garments."""

    CHECKS = FACE_CHECKS

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="LumosXPeopleFromPhoto",
            display_name="LumosX People From Photo",
            category="LumosX",
            description=("Finds every person in one group photo: one face reference per "
                         "person (the same crop the Face Encoder makes), counted left to right "
                         "(or largest first), each person's body region as a mask (head and "
                         "body under the face box, scaled by the face size) and a preview. "
                         "Connect garment masks painted on the same photo and each goes to the "
                         "person it overlaps most; the report says who got what. Take one "
                         "person with LumosX Pick Person."),
            inputs=[
                io.Image.Input("image", tooltip="One photo with the people in it."),
                pack_input(),
                io.Combo.Input("order", options=list(ORDERS), default=LEFT_TO_RIGHT,
                               tooltip="How people are counted (from 0): left to right by face "
                                       "centre (person k = the Face Encoder's index k), or "
                                       "largest face first."),
                io.Int.Input("max_people", default=0, min=0, max=256, step=1,
                             tooltip="Keep only this many people, the largest faces (0 = "
                                     "everyone found); they are then counted in 'order'."),
                io.Combo.Input("crop", options=list(CROP_OPTIONS), default=CROP_RELEASED,
                               tooltip="The Face Encoder's crop: the face box framed like the "
                                       "released references, or a square with 'margin'."),
                *crop_inputs(),
                *detector_inputs(),
                *body_region_inputs(),
                io.Combo.Input("assign", options=list(garments_core.MODES),
                               default=garments_core.BY_PART,
                               tooltip="How garment masks go to people: each connected part "
                                       "to the person it overlaps most; each whole mask to "
                                       "the person it overlaps most; or each mask split at "
                                       "the region borders between the people it overlaps."),
                io.Float.Input("min_overlap", default=garments_core.DEFAULT_MIN_OVERLAP,
                               min=0.0, max=1.0, step=0.01,
                               tooltip="A garment piece goes to nobody (reported) unless at "
                                       "least this fraction of it lies in a person's region."),
                io.Mask.Input("garments", optional=True,
                              tooltip="Garments painted or segmented on this same photo (one "
                                      "mask or a batch, same size as the photo): " + MASK_TIP),
            ],
            outputs=[
                io.Image.Output("faces", display_name="faces",
                                tooltip="One face reference per person, in order (a batch)."),
                io.Mask.Output("regions", display_name="regions",
                               tooltip="Each person's body region on the photo, in order (a "
                                       "batch of masks, 1 = the person's)."),
                PEOPLE_TYPE.Output("people", display_name="people",
                                   tooltip="Everyone found, with their garments: connect to "
                                           "LumosX Pick Person."),
                io.Image.Output("preview", display_name="preview",
                                tooltip="The photo with each person's face box, number and "
                                        "region in their colour, their garments tinted "
                                        "strongly, garment pieces given to nobody hatched."),
                io.String.Output("report", display_name="report",
                                 tooltip="Who was found where, and which garment mask went to "
                                         "which person with the overlap fractions."),
            ],
        )

    @classmethod
    def execute(cls, image, pack, order=LEFT_TO_RIGHT, max_people=0, crop=CROP_RELEASED,
                margin=0.3, size=512, det_size=640, provider="auto", body_width=2.8,
                body_height=3.5, assign=garments_core.BY_PART,
                min_overlap=garments_core.DEFAULT_MIN_OVERLAP,
                garments=None) -> io.NodeOutput:
        photos = as_images(image, "image")
        if photos.shape[0] != 1:
            raise ValueError(f"image: a batch of {photos.shape[0]} images (several photos, or "
                             f"the frames of an animated picture) where one group photo is "
                             f"expected; pick one (e.g. ImageFromBatch)")
        check_inputs(cls, locals())
        app = load_analyzer(pack, provider, det_size)
        photo = fit_picture(image.detach()[0] if image.ndim == 4 else image.detach(), "image")
        people = find_people(app, photo.cpu(), det_size, order, max_people, size, crop, margin,
                             body_width, body_height)
        if garments is not None:
            people = give_garments(people, garments, assign, min_overlap,
                                   tuple(image.shape[-3:-1]))
        text = people.describe() + "\n" + (people.assignment.report()
                                           if people.assignment is not None
                                           else "garments: none connected")
        faces = attach_regions(torch.stack([p.face for p in people.people]),
                               [p.source for p in people.people])
        return io.NodeOutput(faces, people.regions().float(), people, preview(people), text,
                             ui={"text": [text]})


class LumosXPickPerson(LumosXNode):
    """Person k of People From Photo: face, garments, region -- no second detection."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="LumosXPickPerson",
            display_name="LumosX Pick Person",
            category="LumosX",
            description=("Takes one person of LumosX People From Photo without detecting "
                         "again: the face reference (for a LumosX Person's face), the garments "
                         "given to them cut out on white (for its attribute inputs), and their "
                         "region."),
            inputs=[
                PEOPLE_TYPE.Input("people", tooltip="The people output of LumosX People From "
                                                    "Photo."),
                io.Int.Input("index", default=0, min=0, max=4096, step=1,
                             tooltip="Which person, counted from 0 in People From Photo's "
                                     "order (left to right by default), as its preview "
                                     "numbers them."),
            ],
            outputs=[
                io.Image.Output("face", display_name="face",
                                tooltip="This person's face reference (the Face Encoder's "
                                        "crop)."),
                io.Image.Output("garment", display_name="garment",
                                tooltip="Every garment piece given to this person, cut out on "
                                        "white and cropped tight (as LumosX Cut Out does). "
                                        "Using it for a person who got none stops the run "
                                        "with a message."),
                io.Mask.Output("region", display_name="region",
                               tooltip="This person's body region on the photo."),
                io.Mask.Output("garment_mask", display_name="garment_mask",
                               tooltip="The garment pixels given to this person, on the whole "
                                       "photo (all 0 when none)."),
            ],
        )

    @classmethod
    def execute(cls, people, index=0) -> io.NodeOutput:
        check_inputs(cls, locals())
        if not isinstance(people, PeopleInPhoto):
            raise ValueError("people: expected the people output of LumosX People From Photo, "
                             f"got {type(people).__name__}")
        person = people.person(index)
        a = people.assignment
        worn = a.person_mask(int(index)) if a is not None else torch.zeros(people.photo.shape[:2])
        if bool(kept(worn).any()):
            cut = cut_out(people.photo, worn)
            garment = cut.image.unsqueeze(0)
        else:
            why = ("no garments are connected to People From Photo" if a is None else
                   "People From Photo gave this person no garment (see its report)")
            garment = ExecutionBlocker(
                f"LumosX Pick Person: person {index} (index = {index}) has no garment: {why}. "
                f"Paint the garment on the group photo and connect that mask to People From "
                f"Photo's garments, or do not use the garment output of this person.")
        face = attach_regions(person.face.unsqueeze(0), [person.source])
        return io.NodeOutput(face, garment,
                             person.region.float().unsqueeze(0), worn.unsqueeze(0))


NODES = [LumosXCutOut, LumosXPeopleFromPhoto, LumosXPickPerson]
