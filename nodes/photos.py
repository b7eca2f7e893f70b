"""Photo nodes: Cut Out (masked pixels on white, cropped tight, like the released references),
People From Photo (everyone in a group photo) and Pick Person (person k of it, without detecting
again). The work is ``lumosx_core/photos``; faces are cropped by the Face Encoder's functions."""
from __future__ import annotations

import comfy.model_management
from comfy_api.latest import io
from comfy_execution.graph_utils import ExecutionBlocker

from ..lumosx_core.faces.encode import CROP_OPTIONS, CROP_RELEASED
from ..lumosx_core.photos import cutout, garments as garments_core, group
from ..lumosx_core.photos.people import LEFT_TO_RIGHT, ORDERS
from .faces import (BODY_HEIGHT, BODY_WIDTH, FACE_CHECKS, body_region_inputs, crop_inputs,
                    detector_inputs, load_analyzer, pack_input)
from .validation import LumosXNode, check_inputs, schema

PEOPLE_TYPE = io.Custom("LUMOSX_PEOPLE")
ALL_PARTS = "all parts"
LARGEST_PART = "largest part"
PARTS = (ALL_PARTS, LARGEST_PART)

MASK_TIP = ("1 = keep: painted in the mask editor (Load Image's MASK), a segmentation node's "
            "object (SAM, GroundingDINO) or any mask node. Soft values blend over white.")


class LumosXCutOut(LumosXNode):
    @classmethod
    def define_schema(cls):
        return schema(
            "LumosXCutOut", "LumosX Cut Out",
            description=(
                "Makes an attribute or object reference from an ordinary photo the way the "
                "released references are made: only the masked pixels, on pure white, cropped "
                "tight to the mask's box. A soft mask blends the pixels over white."),
            inputs=[
                io.Image.Input("image", tooltip="The photo (or a batch of photos) to cut from."),
                io.Mask.Input("mask", tooltip=(
                    "What to keep, same size as the image: " + MASK_TIP + " One mask per "
                    "photo, one for all, or several masks for one photo (one cut-out each).")),
                io.Combo.Input("parts", options=list(PARTS), default=ALL_PARTS, tooltip=(
                    "all parts: every disconnected piece of the mask is kept (a jacket split by "
                    "a strap stays whole); largest part: only the biggest piece (drops stray "
                    "brush strokes).")),
            ],
            outputs=[
                io.Image.Output("cutout", display_name="cut-out", tooltip=(
                    "The cut-out: masked pixels on white, cropped to the mask's box. A batch "
                    "whose boxes differ in size is centred on white at the largest size.")),
                io.Mask.Output("cutout_mask", display_name="mask", tooltip=(
                    "The mask inside the same box (1 = the cut-out's pixels).")),
            ],
        )

    @classmethod
    def execute(cls, image, mask, parts=ALL_PARTS) -> io.NodeOutput:
        check_inputs(cls, locals())
        cuts = cutout.cut_out_batch(image, mask, largest=parts == LARGEST_PART)
        images, masks = cutout.stack(cuts)
        return io.NodeOutput(images, masks)


class LumosXPeopleFromPhoto(LumosXNode):
    CHECKS = FACE_CHECKS

    @classmethod
    def define_schema(cls):
        return schema(
            "LumosXPeopleFromPhoto", "LumosX People From Photo",
            description=(
                "Finds every person in one group photo: a face reference each (the Face "
                "Encoder's crop), their body region as a mask, and the garment masks you "
                "connect given to the person each overlaps most, with a preview and a report. "
                "Take one person with LumosX Pick Person."),
            inputs=[
                io.Image.Input("image", tooltip="One photo with the people in it."),
                pack_input(),
                io.Combo.Input("order", options=list(ORDERS), default=LEFT_TO_RIGHT, tooltip=(
                    "How people are counted (from 0): left to right by face centre (person k = "
                    "the Face Encoder's index k), or largest face first.")),
                io.Int.Input("max_people", default=0, min=0, max=256, step=1, tooltip=(
                    "Keep only this many people, the largest faces (0 = everyone found); they "
                    "are then counted in 'order'.")),
                io.Combo.Input("crop", options=list(CROP_OPTIONS), default=CROP_RELEASED,
                               tooltip="The Face Encoder's crop: the face box framed like the "
                                       "released references, or a square with 'margin'."),
                *crop_inputs(),
                *detector_inputs(),
                *body_region_inputs(),
                io.Combo.Input("assign", options=list(garments_core.MODES),
                               default=garments_core.BY_PART, tooltip=(
                                   "How garment masks go to people: each connected part, or each "
                                   "whole mask, to the person it overlaps most; or each mask "
                                   "split at the borders between the people it overlaps.")),
                io.Float.Input("min_overlap", default=garments_core.DEFAULT_MIN_OVERLAP,
                               min=0.0, max=1.0, step=0.01, tooltip=(
                                   "A garment piece goes to nobody (reported) unless at least "
                                   "this fraction of it lies in a person's region.")),
                io.Mask.Input("garments", optional=True, tooltip=(
                    "Garments painted or segmented on this same photo (one mask or a batch, "
                    "same size as the photo): " + MASK_TIP)),
            ],
            outputs=[
                io.Image.Output("faces", display_name="faces", tooltip=(
                    "One face reference per person, in order (a batch).")),
                io.Mask.Output("regions", display_name="regions", tooltip=(
                    "Each person's body region on the photo, in order (a batch of masks, 1 = the "
                    "person's).")),
                PEOPLE_TYPE.Output("people", display_name="people", tooltip=(
                    "Everyone found, with their garments: connect to LumosX Pick Person.")),
                io.Image.Output("preview", display_name="preview", tooltip=(
                    "The photo with each person's face box, number and region in their colour, "
                    "their garments tinted, pieces given to nobody hatched.")),
                io.String.Output("report", display_name="report", tooltip=(
                    "Who was found where, and which garment mask went to which person with the "
                    "overlap fractions.")),
            ],
        )

    @classmethod
    def execute(cls, image, pack, order=LEFT_TO_RIGHT, max_people=0, crop=CROP_RELEASED,
                margin=0.3, size=512, det_size=640, provider="auto", body_width=BODY_WIDTH,
                body_height=BODY_HEIGHT, assign=garments_core.BY_PART,
                min_overlap=garments_core.DEFAULT_MIN_OVERLAP,
                garments=None) -> io.NodeOutput:
        group.check_one_photo(image)
        check_inputs(cls, locals())
        people = group.people_from_photo(
            load_analyzer(pack, provider, det_size), image, det_size, order, max_people, size,
            crop, margin, body_width, body_height, garments, assign, min_overlap,
            comfy.model_management.throw_exception_if_processing_interrupted)
        text = group.report(people)
        return io.NodeOutput(group.faces_of(people), people.regions().float(), people,
                             group.preview(people), text, ui={"text": [text]})


class LumosXPickPerson(LumosXNode):
    @classmethod
    def define_schema(cls):
        return schema(
            "LumosXPickPerson", "LumosX Pick Person",
            description=(
                "Takes one person of LumosX People From Photo without detecting again: the "
                "face reference (for a LumosX Person's face), the garments given to them cut "
                "out on white (for its attribute inputs), and their region."),
            inputs=[
                PEOPLE_TYPE.Input("people", tooltip=(
                    "The people output of LumosX People From Photo.")),
                io.Int.Input("index", default=0, min=0, max=4096, step=1, tooltip=(
                    "Which person, counted from 0 in People From Photo's order (left to right "
                    "by default), as its preview numbers them.")),
            ],
            outputs=[
                io.Image.Output("face", display_name="face", tooltip=(
                    "This person's face reference (the Face Encoder's crop).")),
                io.Image.Output("garment", display_name="garment", tooltip=(
                    "Every garment piece given to this person, cut out on white and cropped "
                    "tight (as Cut Out does); for a person who got none the run stops.")),
                io.Mask.Output("region", display_name="region", tooltip=(
                    "This person's body region on the photo.")),
                io.Mask.Output("garment_mask", display_name="garment_mask", tooltip=(
                    "The garment pixels given to this person, on the whole photo (all 0 when "
                    "none).")),
            ],
        )

    @classmethod
    def execute(cls, people, index=0) -> io.NodeOutput:
        check_inputs(cls, locals())
        face, garment, why, region, worn = group.pick_person(people, index)
        return io.NodeOutput(face, ExecutionBlocker(why) if garment is None else garment,
                             region, worn)


NODES = [LumosXCutOut, LumosXPeopleFromPhoto, LumosXPickPerson]
