"""The Evaluate node: generated frames + the people -> identity and binding scores, the
person x attribute heatmap and the sampled frames annotated. The metrics are
``lumosx_core.evaluation``; the node finds the insightface pack as the Face Encoder does."""
from __future__ import annotations

import logging

import comfy.model_management
import comfy.utils
from comfy_api.latest import io, ui

from ..lumosx_core.evaluation import (ColorTextureBackend, InsightFaceDetector, Settings,
                                      evaluate_video, summary_text)
from ..lumosx_core.evaluation.appearance import clip_vision_embedder
from ..lumosx_core.evaluation.inputs import check_people, sampled_frames, split_masks
from ..lumosx_core.evaluation.render import heatmap_image, overlay_images
from ..lumosx_core.evaluation.report import evaluation_json
from .faces import FACE_CHECKS, body_region_inputs, detector_inputs, load_analyzer, pack_input
from .references import Refs
from .validation import LumosXNode, check_inputs, schema

log = logging.getLogger("LumosX")


class LumosXEvaluate(LumosXNode):
    CHECKS = FACE_CHECKS

    @classmethod
    def define_schema(cls):
        return schema(
            "LumosXEvaluate", "LumosX Evaluate", is_output_node=True,
            description=(
                "Scores a generated video against its people: does each face keep its identity "
                "(ArcFace), and does each attribute land on its owner and not on someone else? "
                "Attributes are compared with every person's body region by colour and texture "
                "or, when connected, a CLIP vision model."),
            inputs=[
                io.Image.Input("frames", tooltip="The generated video frames."),
                Refs.Input("references", tooltip=(
                    "The people (LumosX Person nodes) the video was made from.")),
                pack_input(),
                io.Int.Input("sample_frames", default=8, min=0, max=4096, step=1, tooltip=(
                    "Frames scored, spread evenly over the video (0 = all).")),
                io.Float.Input("min_face_similarity", default=0.2, min=-1.0, max=1.0, step=0.01,
                               tooltip=("A detected face is only given to a person when its "
                                        "ArcFace similarity reaches this; below it the face is "
                                        "a stranger and the person counts as not found.")),
                *body_region_inputs(),
                *detector_inputs(),
                io.ClipVision.Input("clip_vision", optional=True, tooltip=(
                    "Optional CLIP vision model (Load CLIP Vision): compares regions and "
                    "attributes by its image embeddings instead of colour/texture.")),
                io.Mask.Input("masks", optional=True, tooltip=(
                    "Optional person regions: one mask per person (every frame), or one per "
                    "frame and person (frame-major). Replaces the body box derived from the "
                    "face.")),
            ],
            outputs=[
                io.String.Output("scores", display_name="scores", tooltip=(
                    "Identity and binding scores with every pair's verdict and reason, as "
                    "text.")),
                io.String.Output("json", display_name="json", tooltip=(
                    "The same scores and verdicts as JSON.")),
                io.Image.Output("heatmap", display_name="heatmap", tooltip=(
                    "Person x attribute similarities, own attributes framed.")),
                io.Image.Output("overlay", display_name="overlay", tooltip=(
                    "The sampled frames with each person's face box and regions.")),
            ],
        )

    @classmethod
    def execute(cls, frames, references, pack, sample_frames=8, min_face_similarity=0.2,
                body_width=2.8, body_height=3.5, det_size=640, provider="auto",
                clip_vision=None, masks=None) -> io.NodeOutput:
        check_inputs(cls, locals())
        check_people(references)
        chosen, idx, total = sampled_frames(frames, sample_frames)
        h, w = chosen.shape[1:3]
        user_masks = split_masks(masks, len(references.people), total, idx, h, w)
        detector = InsightFaceDetector(load_analyzer(pack, provider, det_size), det_size)
        backend = ColorTextureBackend() if clip_vision is None else \
            clip_vision_embedder(clip_vision)
        bar = comfy.utils.ProgressBar(len(idx))
        ev = evaluate_video(
            chosen, references, detector, backend, masks=user_masks, frame_indices=idx,
            settings=Settings(min_face_similarity=float(min_face_similarity),
                              body_width=float(body_width), body_height=float(body_height)),
            progress=lambda done, n: bar.update_absolute(done, n),
            check_interrupt=comfy.model_management.throw_exception_if_processing_interrupted)
        text = summary_text(ev)
        log.info("LumosX Evaluate:\n%s", text)
        return io.NodeOutput(text, evaluation_json(ev, total), heatmap_image(ev),
                             overlay_images(chosen, ev), ui=ui.PreviewText(text))


NODES = [LumosXEvaluate]
