"""The Bind node: prompt + references -> LumosX conditioning, an empty video latent and a
binding report (the text work: ``lumosx_core.conditioning.tokens``)."""
from __future__ import annotations

import logging

import torch

import comfy.model_management
import comfy.utils
import nodes as comfy_nodes
from comfy_api.latest import io

from ..lumosx_core import RelationalConfig, VideoSize
from ..lumosx_core.conditioning import binding, preview, references as refs_core, tokens
from ..lumosx_core.conditioning.prompt import RELEASED_NEGATIVE
from ..lumosx_core.limits import MultipleOf, NotBlank, VideoWork
from .patch import attach
from .references import Refs
from .validation import LumosXNode, check_inputs, schema

log = logging.getLogger("LumosX")
UNCOND_PARITY = "positive phrase masks (released)"
SIZE_WHY = "the VAE downsamples by 8 and the DiT patches by 2"


class LumosXBind(LumosXNode):
    CHECKS = (MultipleOf("width", 16, SIZE_WHY), MultipleOf("height", 16, SIZE_WHY),
              NotBlank("prompt", "prompt is empty: describe the video and name every "
                                 "reference in it"),
              VideoWork())

    @classmethod
    def define_schema(cls):
        size = dict(min=16, max=comfy_nodes.MAX_RESOLUTION, step=16)
        return schema(
            "LumosXBind", "LumosX Bind",
            description=(
                "Encodes the prompt and the references, binds every reference to the words "
                "that name it in the prompt, and returns LumosX conditioning, an empty video "
                "latent, a binding report and (last) the negative without references for dual "
                "CFG."),
            inputs=[
                io.Clip.Input("clip", tooltip=(
                    "The Wan umT5-XXL text encoder (CLIP loader, type wan).")),
                io.Vae.Input("vae", tooltip="The Wan 2.1 VAE: encodes the references."),
                io.String.Input("prompt", multiline=True, default="", tooltip=(
                    "Every reference's phrase must occur here verbatim.")),
                io.String.Input("negative_prompt", multiline=True, default=RELEASED_NEGATIVE,
                                tooltip="What to avoid (default: Wan 2.1's negative, as "
                                        "released)."),
                Refs.Input("references", tooltip=(
                    "The people and references (a LumosX Person / Reference chain).")),
                io.Int.Input("width", default=832, **size, tooltip=(
                    "Video width in pixels, a multiple of 16.")),
                io.Int.Input("height", default=480, **size, tooltip=(
                    "Video height in pixels, a multiple of 16.")),
                io.Int.Input("length", default=81, min=1, max=1025, step=4,
                             tooltip="Frames (4k+1)."),
                io.Int.Input("batch_size", default=1, min=1, max=16, tooltip=(
                    "Videos sampled at once (each its own noise).")),
                io.Float.Input("ratio", default=0.5, min=0.0, max=5.0, step=0.05, tooltip=(
                    "Strength of the relational text bias (0.5 released).")),
                io.Boolean.Input("r2pe", default=True, tooltip="Relational RoPE positions."),
                io.Boolean.Input("self_mask", default=True, tooltip=(
                    "Relational self-attention (people see only themselves).")),
                io.Boolean.Input("cross_mask", default=True, tooltip="Relational text bias."),
                io.Combo.Input("mode", options=["parity", "fixed"], default="parity", tooltip=(
                    "parity: the released code's score-grid indexing; fixed: the corrected "
                    "one.")),
                io.Combo.Input("uncond_bias", options=[UNCOND_PARITY, "no bias"],
                               default=UNCOND_PARITY, tooltip=(
                                   "Text bias on the negative pass: the positive prompt's "
                                   "phrase masks (what the released sampler does) or none.")),
                io.Boolean.Input("strict", default=False, tooltip=(
                    "Fail when a phrase does not occur in the prompt (otherwise a warning).")),
                io.Boolean.Input("weight_syntax", default=False, optional=True, tooltip=(
                    "Off (released): parentheses are plain text. On: ComfyUI's (word:1.2) "
                    "weights. The released clean-up and 512-token cut apply either way.")),
            ],
            outputs=[
                io.Conditioning.Output(display_name="positive", tooltip=(
                    "The prompt with the references, their phrase masks and switches.")),
                io.Conditioning.Output(display_name="negative", tooltip=(
                    "The negative prompt with the references (and, per uncond_bias, the "
                    "positive prompt's phrase masks).")),
                io.Latent.Output(display_name="latent", tooltip=(
                    "An empty video latent of width x height x length (x batch_size).")),
                io.String.Output(display_name="report", tooltip=(
                    "Where each phrase matched (token positions) and the warnings.")),
                io.Image.Output(display_name="preview", tooltip=(
                    "Each reference in its person's colour with its phrase and tokens.")),
                io.Conditioning.Output(display_name="negative_no_refs", tooltip=(
                    "The negative prompt without references: the 'negative' of DualCFGGuider "
                    "(cond1 = positive, cond2 = negative) for Phantom-style dual CFG.")),
            ],
        )

    @classmethod
    def execute(cls, clip, vae, prompt, negative_prompt, references, width, height, length,
                batch_size, ratio, r2pe, self_mask, cross_mask, mode, uncond_bias,
                strict, weight_syntax=False) -> io.NodeOutput:
        check_inputs(cls, locals())
        interrupt = comfy.model_management.throw_exception_if_processing_interrupted
        size = VideoSize(width, height, length, batch_size)
        refs, layout = refs_core.bind_references(references, size.grid, r2pe)
        positive, negative, masks, report = tokens.encode_and_bind(
            clip, refs, prompt, negative_prompt, strict, bool(weight_syntax), interrupt)
        negative_no_refs = negative
        for w in report.warnings:
            log.warning("LumosX Bind: %s", w)
        if refs:
            latents = refs_core.encode_references(
                vae, refs, width, height, comfy.utils.ProgressBar(len(refs)).update, interrupt)
            config = RelationalConfig(layout, float(ratio), bool(r2pe), bool(self_mask),
                                      bool(cross_mask), mode == "parity")
            neg_masks = binding.negative_masks(masks, negative[0][0].shape[1],
                                       uncond_bias == UNCOND_PARITY)
            positive = attach(positive, latents, masks.unsqueeze(0), config)
            negative = attach(negative, latents, neg_masks.unsqueeze(0), config)
        latent = torch.zeros(size.latent_shape,
                             device=comfy.model_management.intermediate_device())
        text = report.text()
        return io.NodeOutput(positive, negative, {"samples": latent}, text,
                             preview.render_preview(refs, report, width, height), negative_no_refs,
                             ui={"text": [text]})


NODES = [LumosXBind]
