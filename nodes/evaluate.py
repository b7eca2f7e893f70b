"""The Evaluate node: generated frames + the people -> identity and binding scores, a person x
attribute heatmap and the sampled frames annotated (``lumosx_core.evaluation``)."""
from __future__ import annotations

import logging

import comfy.model_management
import comfy.utils
from comfy_api.latest import io, ui

from ..lumosx_core.evaluation import (ColorTextureBackend, InsightFaceDetector, Settings,
                                      appearance, evaluate_video, inputs, render, report,
                                      summary_text)
from .faces import (BODY_HEIGHT, BODY_WIDTH, FACE_CHECKS, body_region_inputs, detector_inputs,
                    load_analyzer, pack_input)
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
                               tooltip=("A face goes to a person only when its ArcFace similarity "
                                        "reaches this; else the person counts as not found.")),
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
                body_width=BODY_WIDTH, body_height=BODY_HEIGHT, det_size=640, provider="auto",
                clip_vision=None, masks=None) -> io.NodeOutput:
        check_inputs(cls, locals())
        chosen, idx, total, user_masks = inputs.evaluation_inputs(
            frames, references, sample_frames, masks)
        detector = InsightFaceDetector(load_analyzer(pack, provider, det_size), det_size)
        backend = ColorTextureBackend() if clip_vision is None else \
            appearance.clip_vision_embedder(clip_vision)
        bar = comfy.utils.ProgressBar(len(idx))
        ev = evaluate_video(
            chosen, references, detector, backend, masks=user_masks, frame_indices=idx,
            settings=Settings(min_face_similarity=float(min_face_similarity),
                              body_width=float(body_width), body_height=float(body_height)),
            progress=lambda done, n: bar.update_absolute(done, n),
            check_interrupt=comfy.model_management.throw_exception_if_processing_interrupted)
        text = summary_text(ev)
        log.info("LumosX Evaluate:\n%s", text)
        return io.NodeOutput(text, report.evaluation_json(ev, total), render.heatmap_image(ev),
                             render.overlay_images(chosen, ev), ui=ui.PreviewText(text))


NODES = [LumosXEvaluate]
