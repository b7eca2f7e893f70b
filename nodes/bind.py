"""The Bind node: prompt + references -> LumosX conditioning, an empty video latent and a
binding report."""
from __future__ import annotations

import logging

import torch

import comfy.model_management
import comfy.utils
import nodes as comfy_nodes
from comfy_api.latest import io

from ..lumosx_core import RelationalConfig, check_rope_capacity
from ..lumosx_core.conditioning.binding import bind_phrases
from ..lumosx_core.conditioning.phrases import strip_special
from ..lumosx_core.conditioning.prompt import (TEXT_LEN, clean_prompt, cut_tokens, cut_warning,
                                              escape_weight_syntax)
from ..lumosx_core.conditioning.references import ReferenceSet
from .patch import attach
from .preview import render_preview
from .references import Refs
from .validation import check_inputs, multiple_error, validate, work_error

log = logging.getLogger("LumosX")

#: The released sampler's negative prompt (Wan 2.1's standard one).
WAN_NEGATIVE = ("色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，"
                "低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，"
                "毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走")

MAX_LENGTH = 1025   # frames; the token limit (validation.MAX_VIDEO_TOKENS) bounds the rest
MAX_BATCH = 16

UNCOND_PARITY = "positive phrase masks (released)"
UNCOND_NONE = "no bias"
MODES = ["parity", "fixed"]
UNCOND_CHOICES = [UNCOND_PARITY, UNCOND_NONE]


def released_text(text: str, weight_syntax: bool = False) -> str:
    """The text the released encoder reads (clean-up of ``lumosx_core.conditioning.prompt``),
    with ComfyUI's weight syntax escaped unless ``weight_syntax``: ``(word:1.2)`` is then
    plain text, as in the released code."""
    text = clean_prompt(text)
    return text if weight_syntax else escape_weight_syntax(text)


def tokenize_released(clip, text: str, weight_syntax: bool = False):
    """``(tokens, dropped)``: the CLIP's tokens of the released text, cut to 512 as the
    released tokenizer does; ``dropped`` = real tokens cut off."""
    tokens = clip.tokenize(released_text(text, weight_syntax))
    key = choose_key(tokens)
    chunks = tokens[key]
    if len(chunks) != 1 or len(chunks[0]) <= TEXT_LEN:
        return tokens, 0
    eos = _special(clip, key)[0]
    cut = cut_tokens(chunks[0], (eos, 1.0), TEXT_LEN, is_end=lambda t: t[0] == eos)
    return dict(tokens, **{key: [cut.tokens]}), cut.dropped


def _special(clip, key: str):
    inner = (getattr(clip.tokenizer, f"clip_{key}", None)
             or getattr(clip.tokenizer, key, None))
    return getattr(inner, "end_token", 1), getattr(inner, "pad_token", 0)


class PromptTokens:
    """Token ids of a text as the CLIP's own tokenizer produces them from the released text
    (positions = context positions), plus its special ids; ``dropped`` tokens were cut."""

    def __init__(self, clip, text: str, weight_syntax: bool = False):
        self.tokens, self.dropped = tokenize_released(clip, text, weight_syntax)
        self.key = choose_key(self.tokens)
        self.eos, self.pad = _special(clip, self.key)
        ids = []
        for chunk in self.tokens[self.key]:
            for tok in chunk:
                t = tok[0]
                ids.append(int(t) if isinstance(t, int) or (torch.is_tensor(t) and t.numel() == 1)
                           else -1)
        self.ids = ids
        real = [i for i, t in enumerate(ids) if t not in (self.eos, self.pad)]
        self.valid = (real[-1] + 1) if real else 0


def choose_key(tokens: dict) -> str:
    if "umt5xxl" in tokens:
        return "umt5xxl"
    raise ValueError(f"clip: expected the Wan umT5 text encoder, got a CLIP with "
                     f"tokenizers {sorted(tokens)}; load umt5_xxl with a CLIP loader of type 'wan'")


def phrase_ids(clip, phrase: str, key: str, eos: int, pad: int, weight_syntax: bool = False):
    toks = clip.tokenize(released_text(phrase, weight_syntax))
    if key not in toks:
        raise ValueError("clip: phrase tokenization gave no umT5 tokens")
    return strip_special([t[0] for t in toks[key][0]], eos_id=eos, pad_id=pad)


def encode_references(vae, refs, width: int, height: int) -> torch.Tensor:
    """VAE-encode each reference, resized once as released (``RefImage.letterboxed``) at the
    video size, as a one-frame video: ``[1, 16, N_c, height/8, width/8]`` raw (un-normalised)
    latents."""
    bar = comfy.utils.ProgressBar(len(refs))
    latents = []
    for ref in refs:
        comfy.model_management.throw_exception_if_processing_interrupted()
        pixels = ref.letterboxed(width, height).unsqueeze(0)
        lat = vae.encode(pixels)
        if lat.ndim != 5 or lat.shape[2] != 1:
            raise ValueError(f"vae: expected the Wan 2.1 VAE (one latent frame per image), got "
                             f"latents of shape {tuple(lat.shape)}")
        latents.append(lat.float().cpu())
        bar.update(1)
    return torch.cat(latents, dim=2)


def fit_masks(masks: torch.Tensor, length: int) -> torch.Tensor:
    if masks.shape[-1] >= length:
        return masks[..., :length]
    return torch.nn.functional.pad(masks, (0, length - masks.shape[-1]), value=False)


class LumosXBind(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="LumosXBind",
            display_name="LumosX Bind",
            category="LumosX",
            description=("Encodes the prompt and the references, binds every reference to the "
                         "words that name it in the prompt, and returns LumosX conditioning, an "
                         "empty video latent, a binding report and (last) the negative without "
                         "references for dual CFG."),
            inputs=[
                io.Clip.Input("clip", tooltip="The Wan umT5-XXL text encoder."),
                io.Vae.Input("vae", tooltip="The Wan 2.1 VAE."),
                io.String.Input("prompt", multiline=True, default="",
                                tooltip="Every reference's phrase must occur here verbatim."),
                io.String.Input("negative_prompt", multiline=True, default=WAN_NEGATIVE),
                Refs.Input("references"),
                io.Int.Input("width", default=832, min=16, max=comfy_nodes.MAX_RESOLUTION, step=16),
                io.Int.Input("height", default=480, min=16, max=comfy_nodes.MAX_RESOLUTION, step=16),
                io.Int.Input("length", default=81, min=1, max=MAX_LENGTH, step=4,
                             tooltip="Frames (4k+1)."),
                io.Int.Input("batch_size", default=1, min=1, max=MAX_BATCH),
                io.Float.Input("ratio", default=0.5, min=0.0, max=5.0, step=0.05,
                               tooltip="Strength of the relational text bias (0.5 released)."),
                io.Boolean.Input("r2pe", default=True, tooltip="Relational RoPE positions."),
                io.Boolean.Input("self_mask", default=True,
                                 tooltip="Relational self-attention (people see only themselves)."),
                io.Boolean.Input("cross_mask", default=True, tooltip="Relational text bias."),
                io.Combo.Input("mode", options=MODES, default="parity",
                               tooltip="parity: the released code's score-grid indexing; fixed: "
                                       "the corrected one."),
                io.Combo.Input("uncond_bias", options=UNCOND_CHOICES,
                               default=UNCOND_PARITY,
                               tooltip="Text bias on the negative pass: the positive prompt's "
                                       "phrase masks (what the released sampler does) or none."),
                io.Boolean.Input("strict", default=False,
                                 tooltip="Fail when a phrase does not occur in the prompt "
                                         "(otherwise a warning)."),
                io.Boolean.Input("weight_syntax", default=False, optional=True,
                                 tooltip="Off (released): parentheses are plain text. On: "
                                         "ComfyUI's (word:1.2) weights. The released clean-up "
                                         "(ftfy, HTML entities, whitespace) and "
                                         "the 512-token cut apply either way."),
            ],
            outputs=[
                io.Conditioning.Output(display_name="positive"),
                io.Conditioning.Output(display_name="negative"),
                io.Latent.Output(display_name="latent"),
                io.String.Output(display_name="report"),
                io.Image.Output(display_name="preview"),
                io.Conditioning.Output(
                    display_name="negative_no_refs",
                    tooltip="The negative prompt without references (no LumosX data): the "
                            "'negative' input of DualCFGGuider, with positive as cond1 and "
                            "negative as cond2, to guide towards the references and the "
                            "text separately (Phantom-style dual CFG)."),
            ],
        )

    @classmethod
    def validate_inputs(cls, **values):
        why = "the VAE downsamples by 8 and the DiT patches by 2"
        prompt = values.get("prompt")
        return validate(
            cls, values,
            multiple_error("width", values.get("width"), 16, why),
            multiple_error("height", values.get("height"), 16, why),
            "prompt is empty: describe the video and name every reference in it"
            if isinstance(prompt, str) and not prompt.strip() else None,
            work_error(values.get("width"), values.get("height"), values.get("length"),
                       values.get("batch_size", 1)))

    @classmethod
    def execute(cls, clip, vae, prompt, negative_prompt, references, width, height, length,
                batch_size, ratio, r2pe, self_mask, cross_mask, mode, uncond_bias,
                strict, weight_syntax=False) -> io.NodeOutput:
        check_inputs(cls, locals())
        if clip is None:
            raise ValueError("clip: no text encoder connected (load umt5_xxl with a CLIP loader "
                             "of type 'wan')")
        if not isinstance(references, ReferenceSet):
            raise ValueError("references: connect a LumosX Person or LumosX Reference node")
        refs = references.ordered()
        layout = references.layout()
        frames = (length - 1) // 4 + 1
        if refs:
            try:
                check_rope_capacity(layout, frames, height // 16, width // 16, r2pe)
            except ValueError as e:
                raise ValueError(f"references: {e}") from None

        weight_syntax = bool(weight_syntax)
        pos_tokens = PromptTokens(clip, prompt, weight_syntax)
        neg_tokens, neg_dropped = tokenize_released(clip, negative_prompt or "", weight_syntax)
        positive = clip.encode_from_tokens_scheduled(pos_tokens.tokens)
        negative = clip.encode_from_tokens_scheduled(neg_tokens)
        negative_no_refs = negative  # text only: the third conditioning of dual CFG
        context_len = positive[0][0].shape[1]
        phrases = []
        for r in refs:
            comfy.model_management.throw_exception_if_processing_interrupted()
            phrases.append(phrase_ids(clip, r.phrase, pos_tokens.key, pos_tokens.eos,
                                      pos_tokens.pad, weight_syntax))
        masks, report = bind_phrases(refs, pos_tokens.ids, phrases, context_len,
                                     pos_tokens.valid, strict=strict)
        if pos_tokens.dropped:
            report.warnings.append(cut_warning(pos_tokens.dropped))
        if neg_dropped:
            report.warnings.append("negative " + cut_warning(neg_dropped))
        if report.errors:
            raise ValueError("prompt: binding failed (strict is on):\n" + "\n".join(report.errors))
        for w in report.warnings:
            log.warning("LumosX Bind: %s", w)

        latent = torch.zeros([batch_size, 16, frames, height // 8, width // 8],
                             device=comfy.model_management.intermediate_device())
        if refs:
            ref_latents = encode_references(vae, refs, width, height)
            config = RelationalConfig(layout, ratio=float(ratio), r2pe=bool(r2pe),
                                      self_mask=bool(self_mask), cross_mask=bool(cross_mask),
                                      parity=(mode == "parity"))
            pos_masks = masks.unsqueeze(0)
            neg_len = negative[0][0].shape[1]
            neg_masks = (fit_masks(pos_masks, neg_len) if uncond_bias == UNCOND_PARITY
                         else torch.zeros(1, len(refs), neg_len, dtype=torch.bool))
            positive = attach(positive, ref_latents, pos_masks, config)
            negative = attach(negative, ref_latents, neg_masks, config)
        text = report.text()
        preview = render_preview(refs, report, width, height)
        return io.NodeOutput(positive, negative, {"samples": latent}, text, preview,
                             negative_no_refs, ui={"text": [text]})


NODES = [LumosXBind]
