"""Face encoder node: photos -> tight face references on white, plus ArcFace embeddings.

Detection and recognition run through insightface (ONNX Runtime) with a model pack the user
puts in ``models/insightface/models/<pack>/`` (antelopev2 or buffalo_l). Nothing is ever
downloaded: a missing pack is an error naming the folder to fill.
"""
from __future__ import annotations

import logging
import os

import numpy as np
import torch

import comfy.model_management
import comfy.utils
import folder_paths
from comfy_api.latest import io

from ..lumosx_core.faces.crop import face_reference, passthrough_box, select_face
from ..lumosx_core.faces.detector import (DEFAULT_PACKS, PROVIDER_OPTIONS, detect_insightface,
                                         list_packs, load_face_analysis, unit)
from ..lumosx_core.faces.detector import find_pack as find_pack_in
from ..lumosx_core.evaluation.regions import DEFAULT_BODY_HEIGHT, DEFAULT_BODY_WIDTH
from ..lumosx_core.image_prep import letterbox, to_rgb
from .validation import MissingFile, check_inputs, multiple_error, validate

log = logging.getLogger("LumosX")

FOLDER = "insightface"
SELECT_OPTIONS = ("largest", "index (left to right)")
CROP_RELEASED = "face box (released)"
CROP_SQUARE = "square with margin"
CROP_OPTIONS = (CROP_RELEASED, CROP_SQUARE)
FACES_TYPE = io.Custom("LUMOSX_FACES")


def register_insightface_folder() -> None:
    """Give ComfyUI an ``insightface`` model folder (``models/insightface``) unless another
    pack or extra_model_paths.yaml registered one already."""
    if FOLDER not in folder_paths.folder_names_and_paths:
        folder_paths.folder_names_and_paths[FOLDER] = (
            [os.path.join(folder_paths.models_dir, FOLDER)], set())


register_insightface_folder()


def insightface_roots() -> list:
    try:
        return folder_paths.get_folder_paths(FOLDER)
    except KeyError:
        register_insightface_folder()
        return folder_paths.get_folder_paths(FOLDER)


def available_packs() -> list:
    """Names of the packs found under every registered insightface root."""
    return list_packs(insightface_roots())


def pack_options() -> list:
    """Combo options: the packs found, else the usual names so a graph can still be built
    (running it then says where to put the files)."""
    return available_packs() or list(DEFAULT_PACKS)


def pack_name_error(pack):
    """``None`` unless ``pack`` (a combo value) is not a plain folder name."""
    if pack is None:
        return None
    if not isinstance(pack, str) or not pack or os.path.basename(pack) != pack \
            or pack in (".", "..") or len(pack) > 255:
        return f"pack = {pack!r:.80}: give the name of a folder in models/insightface/models"
    return None


def pack_error(pack):
    """:func:`pack_name_error`, then whether the pack is installed: ``/prompt`` refuses a
    pack it cannot find (naming the folder to fill) before anything runs. (The combo's
    choices are the packs found at start; one added since is found here.)"""
    err = pack_name_error(pack)
    if err or pack is None:
        return err
    try:
        find_pack(pack)
    except FileNotFoundError as e:
        return MissingFile(e)
    except ValueError as e:
        return str(e)
    return None


def pack_input() -> io.Combo.Input:
    """The insightface pack combo of the Face Encoder and Evaluate nodes."""
    packs = pack_options()
    return io.Combo.Input("pack", options=packs, default=packs[0],
                          tooltip="insightface model pack from "
                                  "models/insightface/models/<pack>/ (its .onnx files).")


def detector_inputs() -> list:
    """The face detector's size and ONNX Runtime device, shared by the Face Encoder and
    Evaluate nodes."""
    return [io.Int.Input("det_size", default=640, min=160, max=2048, step=32,
                         tooltip="Detector input size; larger finds smaller faces."),
            io.Combo.Input("provider", options=list(PROVIDER_OPTIONS), default="auto",
                           tooltip="ONNX Runtime device: auto = CUDA when onnxruntime-gpu "
                                   "offers it, else CPU.")]


def crop_inputs() -> list:
    """``margin`` and ``size`` of the face crop, shared by the Face Encoder and People From
    Photo (one crop, one set of inputs)."""
    return [io.Float.Input("margin", default=0.3, min=0.0, max=2.0, step=0.01,
                           tooltip="With 'square with margin': space around the face on "
                                   "each side, as a fraction of the face box's longer "
                                   "side."),
            io.Int.Input("size", default=512, min=64, max=2048, step=8,
                         tooltip="Side of the square output crops, in pixels.")]


def body_region_inputs() -> list:
    """``body_width`` and ``body_height`` of the body region under a face (the prior of
    ``lumosx_core.evaluation.regions``), shared by Evaluate and People From Photo."""
    return [io.Float.Input("body_width", default=DEFAULT_BODY_WIDTH, min=0.5, max=8.0, step=0.1,
                           tooltip="Width of a person's body region, in face widths."),
            io.Float.Input("body_height", default=DEFAULT_BODY_HEIGHT, min=0.5, max=12.0,
                           step=0.1,
                           tooltip="Height of the body region under the face, in face "
                                   "heights.")]


def validate_face_inputs(cls, values: dict):
    """``validate_inputs`` of a node with :func:`pack_input` and :func:`detector_inputs`: its
    schema, then a pack that is not installed (naming the folder to fill) and a ``det_size``
    off the detector's strides."""
    return validate(cls, values, pack_error(values.get("pack")),
                    multiple_error("det_size", values.get("det_size"), 32,
                                   "the detector's strides"), custom=("pack",))


def find_pack(pack: str) -> str:
    """Folder of ``pack`` under the registered insightface roots. Raises
    ``FileNotFoundError`` naming the folder to fill; never downloads."""
    roots = insightface_roots()
    target = None if roots else os.path.join(folder_paths.models_dir, FOLDER, "models", pack)
    return find_pack_in(pack, roots, target)


def load_analyzer(pack: str, provider: str = "auto", det_size: int = 640):
    """The prepared (cached) insightface ``FaceAnalysis`` of ``pack``."""
    return load_face_analysis(find_pack(pack), provider, det_size)


def _embedding(face):
    """The face's unit ArcFace embedding as a float tensor, or None."""
    emb = unit(getattr(face, "embedding", None))
    return None if emb is None else torch.from_numpy(emb)


def crop_face(rgb: torch.Tensor, face, size: int = 512, crop: str = CROP_RELEASED,
              margin: float = 0.3):
    """The Face Encoder's reference of one detected insightface ``face`` in ``rgb``
    ``[H, W, 3]`` (People From Photo crops with it too, so its crops are the Face Encoder's):
    ``(crop [size, size, 3] float, face info fields)``."""
    bbox = [float(v) for v in face.bbox[:4]]
    reference, box = face_reference(rgb, bbox, size, square=crop == CROP_SQUARE, margin=margin)
    kps = getattr(face, "kps", None)
    return reference.float(), {
        "detected": True, "bbox": bbox,
        "kps": None if kps is None else np.asarray(kps, dtype=float).tolist(),
        "det_score": float(face.det_score), "embedding": _embedding(face),
        "crop_box": [float(v) for v in box]}


def encode_faces(app, images: torch.Tensor, select: str = "largest", index: int = 0,
                 margin: float = 0.3, size: int = 512, det_size: int = 640,
                 crop: str = CROP_RELEASED):
    """``images`` ``[B, H, W, C]`` -> (crops ``[B, size, size, 3]``, list of B info dicts).

    ``crop``: the detector's box as it is (released) or a square with ``margin``; either
    is letterboxed on white at ``size``."""
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4:
        raise ValueError(f"expected an IMAGE batch [B, H, W, C]; got {tuple(images.shape)}")
    mode = "index" if select.startswith("index") else select
    images = images.detach().cpu()
    pbar = comfy.utils.ProgressBar(images.shape[0])
    crops, infos = [], []
    for b in range(images.shape[0]):
        comfy.model_management.throw_exception_if_processing_interrupted()
        rgb = to_rgb(images[b], drop_alpha=True)
        h, w = rgb.shape[:2]
        faces = detect_insightface(app, rgb, det_size)
        info = {"detected": False, "bbox": None, "kps": None, "det_score": None,
                "embedding": None, "crop_box": None, "image_size": (int(w), int(h)),
                "faces_found": len(faces)}
        if faces:
            bboxes = [[float(v) for v in f.bbox[:4]] for f in faces]
            try:
                face = faces[select_face(bboxes, mode, index)]
            except ValueError as e:
                raise ValueError(f"photo {b} of the batch: {e}") from e
            reference, found = crop_face(rgb, face, size, crop, margin)
            info.update(found)
        else:
            log.warning("LumosX Face Encoder: no face detected in photo %d of the batch "
                        "(%dx%d); passing the whole photo through letterboxed on white", b, w, h)
            reference = letterbox(rgb, size, size)
            info["crop_box"] = [float(v) for v in passthrough_box(w, h)]
        crops.append(reference.float())
        infos.append(info)
        pbar.update(1)
    return torch.stack(crops), infos


class LumosXFaceEncoder(io.ComfyNode):
    """Detect the face in each photo, crop it (the face box, or a square with a margin) on
    white, embed it."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="LumosXFaceEncoder",
            display_name="LumosX Face Encoder",
            category="LumosX",
            description=("Turns photos into clean face references for LumosX: detects the face "
                         "in each photo (insightface), crops it (by default the detector's face "
                         "box as it is, like the released references; or a square with a "
                         "margin) and letterboxes it on white, and returns the ArcFace identity "
                         "embedding. A photo without a detectable face passes through whole. "
                         "Put insightface packs (antelopev2, buffalo_l) in "
                         "models/insightface/models/<pack>/; nothing is downloaded."),
            inputs=[
                io.Image.Input("images", tooltip="One or more photos; one crop per photo."),
                pack_input(),
                io.Combo.Input("select", options=list(SELECT_OPTIONS), default="largest",
                               tooltip="Which face when a photo shows several: the largest, "
                                       "or the one at 'index' counted left to right."),
                io.Int.Input("index", default=0, min=0, max=4096, step=1,
                             tooltip="With 'index (left to right)': 0 = leftmost face."),
                *crop_inputs(),
                *detector_inputs(),
                io.Combo.Input("crop", options=list(CROP_OPTIONS), default=CROP_RELEASED,
                               optional=True,  # graphs saved before it keep working
                               tooltip="face box (released): the detector's face box as it is "
                                       "(not squared), what the released model was trained "
                                       "on; square with margin: a looser square crop."),
            ],
            outputs=[
                io.Image.Output("faces", display_name="faces"),
                FACES_TYPE.Output("face_info", display_name="face_info"),
            ],
        )

    @classmethod
    def validate_inputs(cls, **values):
        return validate_face_inputs(cls, values)

    @classmethod
    def execute(cls, images, pack, select="largest", index=0, margin=0.3, size=512,
                det_size=640, provider="auto", crop=CROP_RELEASED) -> io.NodeOutput:
        check_inputs(cls, locals())
        app = load_analyzer(pack, provider, det_size)
        crops, infos = encode_faces(app, images, select, index, margin, size, det_size, crop)
        return io.NodeOutput(crops, infos)


NODES = [LumosXFaceEncoder]
