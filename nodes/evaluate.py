"""The Evaluate node: generated frames + the people -> identity and binding scores, the
person x attribute heatmap and the sampled frames annotated. The metrics are
``lumosx_core.evaluation``; the node finds the insightface pack as the Face Encoder does."""
from __future__ import annotations

import json
import logging

import numpy as np
import torch
import torch.nn.functional as F

import comfy.model_management
import comfy.utils
from comfy_api.latest import io, ui

from ..lumosx_core.evaluation import (ColorTextureBackend, InsightFaceDetector, Settings,
                                      evaluate_video, summary_text)
from ..lumosx_core.evaluation.appearance import clip_vision_embedder
from ..lumosx_core.evaluation.render import render_matrix, render_overlay, stack_images
from ..lumosx_core.evaluation.report import json_safe
from ..lumosx_core.evaluation.video import sample_indices
from ..lumosx_core.image_limits import fit_picture
from .faces import FACE_CHECKS, body_region_inputs, detector_inputs, load_analyzer, pack_input
from .references import Refs
from .validation import LumosXNode, check_inputs

log = logging.getLogger("LumosX")


def split_masks(masks, n_people: int, n_frames: int, indices, height: int, width: int):
    """MASK ``[M, h, w]`` -> per sampled frame ``{person: [H, W] array}``. ``M`` = people
    (the same masks for every frame) or frames x people (frame-major: frame f, person p at
    ``f * people + p``) of the whole input."""
    if masks is None:
        return None
    if masks.ndim == 2:
        masks = masks.unsqueeze(0)
    m = masks.detach().float().cpu()
    if m.shape[-2:] != (height, width):
        m = F.interpolate(m.unsqueeze(1), size=(height, width), mode="bilinear",
                          align_corners=False).squeeze(1)
    count = m.shape[0]
    if count == n_people:
        per = {p: m[p].numpy() for p in range(n_people)}
        return [per for _ in indices]
    if count == n_people * n_frames:
        return [{p: m[f * n_people + p].numpy() for p in range(n_people)} for f in indices]
    raise ValueError(f"masks: {count} masks for {n_people} people and {n_frames} frames; give "
                     f"one mask per person ({n_people}) or one per frame and person "
                     f"({n_people * n_frames}, frame-major)")


def heatmap_image(ev) -> torch.Tensor:
    b = ev.binding
    acc = "n/a" if b["accuracy"] is None else f"{100 * b['accuracy']:.0f}%"
    swap = "n/a" if b["swap_rate"] is None else f"{100 * b['swap_rate']:.0f}%"
    v = b.get("verdicts") or {}
    counts = " ".join(f"{v.get(k, 0)} {k}" for k in ("correct", "wrong", "missing",
                                                      "undecided", "unscored") if v.get(k))
    title = (f"binding accuracy {acc} ({b.get('decided', 0)}/{b['total_pairs']} decided), "
             f"swap rate {swap}; {counts} ({ev.backend})" if b["phrases"]
             else "no attribute images to compare")
    if getattr(ev, "status", "scored") == "unscored":
        title = "UNSCORED (no face / nobody found): " + title
    arr = render_matrix(ev.matrix, [p["phrase"] for p in ev.people], b["phrases"],
                        b["owners"], title)
    return torch.from_numpy(arr.astype(np.float32) / 255.0).unsqueeze(0)


def overlay_images(frames, ev) -> torch.Tensor:
    labels = [p["phrase"] for p in ev.people]
    imgs = [render_overlay(f.numpy(), fi, reg, labels)
            for f, fi, reg in zip(frames, ev.frames, ev.regions)]
    return torch.from_numpy(stack_images(imgs).astype(np.float32) / 255.0)


class LumosXEvaluate(LumosXNode):
    """Identity and attribute-binding scores of generated frames."""

    CHECKS = FACE_CHECKS

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="LumosXEvaluate",
            display_name="LumosX Evaluate",
            category="LumosX",
            is_output_node=True,
            description=(
                "Scores a generated video against its people: for each person, does the face "
                "keep their identity (ArcFace similarity, detection rate, identity swaps "
                "between frames), and does each attribute land on them and not on someone "
                "else (binding accuracy, swap rate, margin)? Faces are assigned to people by "
                "maximum total similarity per frame; where each attribute is worn (head, "
                "eyes, neck, torso or legs, from the face box, or a mask) every person's "
                "region is compared with it, light-corrected from the faces, by a "
                "weight-free colour/texture descriptor or, when connected, a CLIP vision "
                "model."),
            inputs=[
                io.Image.Input("frames", tooltip="The generated video frames."),
                Refs.Input("references", tooltip="The people (LumosX Person nodes) the video "
                                                 "was made from."),
                pack_input(),
                io.Int.Input("sample_frames", default=8, min=0, max=4096, step=1,
                             tooltip="Frames scored, spread evenly over the video (0 = all)."),
                io.Float.Input("min_face_similarity", default=0.2, min=-1.0, max=1.0,
                               step=0.01,
                               tooltip="A detected face is only given to a person when its "
                                       "ArcFace similarity reaches this; below it the face "
                                       "is a stranger and the person counts as not found."),
                *body_region_inputs(),
                *detector_inputs(),
                io.ClipVision.Input("clip_vision", optional=True,
                                    tooltip="Optional CLIP vision model (Load CLIP Vision): "
                                            "compares regions and attributes by its image "
                                            "embeddings instead of colour/texture."),
                io.Mask.Input("masks", optional=True,
                              tooltip="Optional person regions: one mask per person (every "
                                      "frame), or one per frame and person (frame-major). "
                                      "Replaces the body box derived from the face."),
            ],
            outputs=[
                io.String.Output("scores", display_name="scores",
                                 tooltip="Identity and binding scores with every pair's verdict "
                                         "and reason, as text."),
                io.String.Output("json", display_name="json",
                                 tooltip="The same scores and verdicts as JSON."),
                io.Image.Output("heatmap", display_name="heatmap",
                                tooltip="Person x attribute similarities, own attributes "
                                        "framed."),
                io.Image.Output("overlay", display_name="overlay",
                                tooltip="The sampled frames with each person's face box and "
                                        "regions."),
            ],
        )

    @classmethod
    def execute(cls, frames, references, pack, sample_frames=8, min_face_similarity=0.2,
                body_width=2.8, body_height=3.5, det_size=640, provider="auto",
                clip_vision=None, masks=None) -> io.NodeOutput:
        check_inputs(cls, locals())
        if not isinstance(getattr(references, "people", None), tuple):
            raise ValueError("references: expected the output of LumosX Person nodes, got "
                             f"{type(references).__name__}")
        if not references.people:
            raise ValueError("references: no people to evaluate (add LumosX Person nodes)")
        if frames.ndim == 3:
            frames = frames.unsqueeze(0)
        if frames.ndim != 4 or frames.shape[0] == 0:
            raise ValueError(f"frames: expected an IMAGE batch [F, H, W, C]; got "
                             f"{tuple(frames.shape)}")
        total = int(frames.shape[0])
        idx = sample_indices(total, int(sample_frames))
        chosen = torch.stack([fit_picture(frames[i, ..., :3].detach(), f"frames: frame {i}")
                              .float().cpu() for i in idx])
        if chosen.shape[-1] < 3:                                   # grey frames
            chosen = chosen[..., :1].expand(*chosen.shape[:-1], 3).contiguous()
        h, w = chosen.shape[1:3]
        user_masks = split_masks(masks, len(references.people), total, idx, h, w)
        detector = InsightFaceDetector(load_analyzer(pack, provider, det_size), det_size)
        backend = clip_vision_embedder(clip_vision) if clip_vision is not None \
            else ColorTextureBackend()
        bar = comfy.utils.ProgressBar(len(idx))
        ev = evaluate_video(
            chosen, references, detector, backend, masks=user_masks, frame_indices=idx,
            settings=Settings(min_face_similarity=float(min_face_similarity),
                              body_width=float(body_width), body_height=float(body_height)),
            progress=lambda done, n: bar.update_absolute(done, n),
            check_interrupt=comfy.model_management.throw_exception_if_processing_interrupted)
        text = summary_text(ev)
        data = ev.to_dict()
        data["frames_total"] = total
        log.info("LumosX Evaluate:\n%s", text)
        return io.NodeOutput(text, json.dumps(json_safe(data)), heatmap_image(ev),
                             overlay_images(chosen, ev), ui=ui.PreviewText(text))


NODES = [LumosXEvaluate]
