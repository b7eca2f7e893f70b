"""The Face Encoder node (``lumosx_core.faces.encode``) and the face inputs People From Photo
and Evaluate share. Packs come from ``models/insightface/models/<pack>/``, never downloaded."""
from __future__ import annotations

import comfy.model_management
import comfy.utils
import folder_paths
from comfy_api.latest import io

from ..lumosx_core.evaluation.regions import (DEFAULT_BODY_HEIGHT as BODY_HEIGHT,
                                              DEFAULT_BODY_WIDTH as BODY_WIDTH)
from ..lumosx_core.faces.detector import DEFAULT_PACKS, PROVIDER_OPTIONS, FacePacks, release_with
from ..lumosx_core.faces.encode import CROP_OPTIONS, CROP_RELEASED, SELECT_OPTIONS, encode_faces
from ..lumosx_core.limits import Listed, MultipleOf
from ..lumosx_core.model_lookup import model_folder
from .validation import LumosXNode, check_inputs, schema

FOLDER = "insightface"
FACES_TYPE = io.Custom("LUMOSX_FACES")
#: the packs in the insightface model folders; ``pack_error`` lets ``/prompt`` refuse a pack
#: it cannot find, naming the folder to fill (one added after start is found)
PACKS = FacePacks(lambda: model_folder(folder_paths, FOLDER))
PACKS.roots()   # registers models/insightface now (other packs, the model browser)
available_packs, pack_error, load_analyzer = PACKS.available, PACKS.error, PACKS.analyzer
#: ComfyUI's "free memory" (the ``/free`` route, the Unload Models button) drops the detectors
release_with(comfy.model_management, "unload_all_models")


def crop_inputs() -> list:
    """``margin`` and ``size`` of the face crop (Face Encoder, People From Photo)."""
    return [io.Float.Input("margin", default=0.3, min=0.0, max=2.0, step=0.01, tooltip=(
                "With 'square with margin': space around the face on each side, as a fraction "
                "of the face box's longer side.")),
            io.Int.Input("size", default=512, min=64, max=2048, step=8, tooltip=(
                "Side of the square output crops, in pixels."))]


def body_region_inputs() -> list:
    """The body region under a face (``lumosx_core.evaluation.regions``; Evaluate, People From
    Photo)."""
    return [io.Float.Input("body_width", default=BODY_WIDTH, min=0.5, max=8.0, step=0.1,
                           tooltip="Width of a person's body region, in face widths."),
            io.Float.Input("body_height", default=BODY_HEIGHT, min=0.5, max=12.0,
                           step=0.1, tooltip=(
                               "Height of the body region under the face, in face heights."))]


#: The checks of a node with :func:`pack_input` and :func:`detector_inputs`.
FACE_CHECKS = (Listed("pack", pack_error), MultipleOf("det_size", 32, "the detector's strides"))


def pack_input() -> io.Combo.Input:
    """The insightface pack combo (Face Encoder, People From Photo, Evaluate)."""
    packs = available_packs() or list(DEFAULT_PACKS)
    return io.Combo.Input("pack", options=packs, default=packs[0], tooltip=(
        "insightface model pack from models/insightface/models/<pack>/ (its .onnx files)."))


def detector_inputs() -> list:
    """The face detector's size and ONNX Runtime device."""
    return [io.Int.Input("det_size", default=640, min=160, max=2048, step=32, tooltip=(
                "Detector input size; larger finds smaller faces.")),
            io.Combo.Input("provider", options=list(PROVIDER_OPTIONS), default="auto", tooltip=(
                "ONNX Runtime device: auto = CUDA when onnxruntime-gpu offers it, else CPU."))]


class LumosXFaceEncoder(LumosXNode):
    CHECKS = FACE_CHECKS

    @classmethod
    def define_schema(cls):
        return schema(
            "LumosXFaceEncoder", "LumosX Face Encoder",
            description=(
                "Turns photos into clean face references: detects the face (insightface), "
                "crops it like the released references (or a square with a margin) on white "
                "and returns its ArcFace embedding. Needs an insightface pack in "
                "models/insightface/models/<pack>/; nothing is downloaded."),
            inputs=[
                io.Image.Input("images", tooltip=(
                    "One or more photos; one crop per photo, each with the same settings.")),
                pack_input(),
                io.Combo.Input("select", options=list(SELECT_OPTIONS), default="largest",
                               tooltip=("Which face when a photo shows several: the largest, "
                                        "or the one at 'index' counted left to right.")),
                io.Int.Input("index", default=0, min=0, max=4096, step=1, tooltip=(
                    "With 'index (left to right)': 0 = leftmost face.")),
                *crop_inputs(),
                *detector_inputs(),
                io.Combo.Input(
                    "crop", options=list(CROP_OPTIONS), default=CROP_RELEASED, optional=True,
                    tooltip=(  # optional: graphs saved before it keep working
                        "face box (released): the face box framed like the released references, "
                        "what the model was trained on; square with margin: a looser square.")),
            ],
            outputs=[
                io.Image.Output("faces", display_name="faces", tooltip=(
                    "One face reference per photo, letterboxed on white (size x size): a "
                    "Person's face.")),
                FACES_TYPE.Output("face_info", display_name="face_info", tooltip=(
                    "Per photo: whether a face was found, its box, landmarks, score, crop box "
                    "and ArcFace embedding.")),
            ],
        )

    @classmethod
    def execute(cls, images, pack, select="largest", index=0, margin=0.3, size=512,
                det_size=640, provider="auto", crop=CROP_RELEASED) -> io.NodeOutput:
        check_inputs(cls, locals())
        bar = comfy.utils.ProgressBar(images.shape[0] if images.ndim == 4 else 1)
        crops, infos = encode_faces(
            load_analyzer(pack, provider, det_size), images, select, index, margin, size,
            det_size, crop, progress=bar.update,
            check_interrupt=comfy.model_management.throw_exception_if_processing_interrupted)
        return io.NodeOutput(crops, infos)


NODES = [LumosXFaceEncoder]
