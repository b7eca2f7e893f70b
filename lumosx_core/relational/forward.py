"""The relational forward: ComfyUI's own Wan 2.1 DiT computing the LumosX forward.

Nothing of the model is forked. :func:`relational_forward` appends the clean reference latents
after the video on the time axis, builds relational RoPE ids for the model's own embedder, and
runs the model's own ``forward_orig`` with an ``optimized_attention_override`` that turns the
model's self-attention calls into :func:`relational_self_attention` and its text
cross-attention calls into :func:`relational_cross_attention`. The host's attention backend
(or an override another pack installed, chained) still computes every unmasked attention.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F

from .attention import merge_heads, split_heads
from .cross_attention import relational_cross_attention, text_weights
from .layout import ConditionLayout
from .positions import apply_rope_options, check_rope_capacity, position_ids, rope_freqs
from .self_attention import relational_self_attention


@dataclass(frozen=True)
class RelationalConfig:
    """Everything about one generation's references that is not a tensor: the layout and the
    relational switches. Frozen and compared by value, so ComfyUI can batch cond and uncond
    passes that carry equal configs."""

    layout: ConditionLayout
    ratio: float = 0.5
    r2pe: bool = True
    self_mask: bool = True
    cross_mask: bool = True
    parity: bool = True

    def options(self) -> dict:
        """Keyword arguments of :func:`relational_forward` other than the tensors/layout."""
        return dict(ratio=self.ratio, r2pe=self.r2pe, self_mask=self.self_mask,
                    cross_mask=self.cross_mask, parity=self.parity)


def pad_to_patch(x: torch.Tensor, patch_size) -> torch.Tensor:
    """Pad ``[B, C, T, H, W]`` up to multiples of the patch size the way ComfyUI's Wan does
    (circular)."""
    pad = ()
    for i in range(x.ndim - 2):
        pad = (0, (patch_size[i] - x.shape[i + 2] % patch_size[i]) % patch_size[i]) + pad
    if not any(pad):
        return x
    return F.pad(x, pad, mode="circular")


class RelationalAttention:
    """``optimized_attention_override`` that applies the LumosX masks to one forward pass.

    Recognises the model's calls by shape: queries over the whole sequence with keys over the
    whole sequence are self-attention; keys of the text length are text cross-attention (when
    the two lengths coincide, calls alternate self / cross as they do in every Wan block).
    Any other call passes through untouched.
    """

    def __init__(self, layout: ConditionLayout, frames: int, Hp: int, Wp: int,
                 context_len: int, weights: Optional[torch.Tensor], ratio: float,
                 self_mask: bool, cross_mask: bool, parity: bool,
                 previous: Optional[Callable] = None):
        self.layout = layout
        self.frames = frames
        self.Hp, self.Wp = Hp, Wp
        self.seq_len = layout.sequence_length(frames, Hp * Wp)
        self.context_len = context_len
        self.weights = weights
        self.ratio = ratio
        self.self_mask = self_mask
        self.cross_mask = cross_mask
        self.parity = parity
        self.previous = previous
        self._expect_self = True

    def _host(self, func, args, kwargs) -> Callable:
        def attn(q, k, v, heads):
            if self.previous is not None:
                return self.previous(func, q, k, v, heads, *args, **kwargs)
            return func(q, k, v, heads, *args, **kwargs)
        return attn

    def __call__(self, func, q, k, v, heads, *args, **kwargs):
        if args or kwargs.get("mask") is not None:
            return self._passthrough(func, q, k, v, heads, args, kwargs)
        skip_in = kwargs.get("skip_reshape", False)
        skip_out = kwargs.get("skip_output_reshape", False)
        if skip_in:
            q, k, v = merge_heads(q), merge_heads(k), merge_heads(v)
        lq, lk = q.shape[1], k.shape[1]
        if lq != self.seq_len:
            return self._passthrough(func, q, k, v, heads, args, kwargs, repacked=skip_in)
        if lk == self.seq_len and (lk != self.context_len or self._expect_self):
            kind = "self"
        elif lk == self.context_len:
            kind = "cross"
        else:
            return self._passthrough(func, q, k, v, heads, args, kwargs, repacked=skip_in)
        self._expect_self = kind == "cross"
        kw = dict(kwargs, skip_reshape=False, skip_output_reshape=False)
        attn = self._host(func, args, kw)
        if kind == "self":
            out = relational_self_attention(q, k, v, heads, self.layout, self.frames,
                                            self.Hp * self.Wp, attn=attn,
                                            self_mask=self.self_mask)
        else:
            out = relational_cross_attention(
                q, k, v, heads, self.layout, self.frames, self.Hp, self.Wp,
                self.weights if self.cross_mask else None, ratio=self.ratio,
                parity=self.parity, attn=attn)
        return split_heads(out, heads) if skip_out else out

    def _passthrough(self, func, q, k, v, heads, args, kwargs, repacked=False):
        if repacked:  # undo our repacking so the call is exactly what the model made
            q, k, v = (split_heads(t, heads) for t in (q, k, v))
        if self.previous is not None:
            return self.previous(func, q, k, v, heads, *args, **kwargs)
        return func(q, k, v, heads, *args, **kwargs)


def as_layout(layout) -> ConditionLayout:
    """Accept a :class:`ConditionLayout` or anything with ``non_person`` and ``groups``."""
    if isinstance(layout, ConditionLayout):
        return layout
    if hasattr(layout, "non_person") and hasattr(layout, "groups"):
        return ConditionLayout(layout.non_person, layout.groups)
    if isinstance(layout, dict):
        return ConditionLayout.from_dict(layout)
    raise TypeError(f"layout must be a ConditionLayout, got {type(layout).__name__}")


def _batch(t: torch.Tensor, B: int, name: str) -> torch.Tensor:
    if t.shape[0] == B:
        return t
    if t.shape[0] == 1:
        return t.expand(B, *t.shape[1:])
    raise ValueError(f"{name} has batch size {t.shape[0]}; expected 1 or {B} (the video batch)")


def prepare_phrase_masks(phrase_masks: Optional[torch.Tensor], layout: ConditionLayout,
                         B: int, context_len: int, device) -> torch.Tensor:
    """Validate masks ``[B or 1, N_c, L]`` and fit them to the context length (padding
    positions beyond the masks are never marked). Returns bool ``[B, N_c, context_len]``."""
    n_c = layout.num_images
    if phrase_masks is None:
        return torch.zeros(B, n_c, context_len, dtype=torch.bool, device=device)
    m = phrase_masks
    if m.ndim == 2:
        m = m.unsqueeze(0)
    if m.ndim != 3 or m.shape[1] != n_c:
        raise ValueError(
            f"phrase_masks must have shape [B or 1, {n_c}, L_text] (one row per reference image "
            f"in layout order); got {tuple(phrase_masks.shape)}")
    m = (m > 0.5) if m.is_floating_point() else m.bool()
    m = _batch(m.to(device), B, "phrase_masks")
    L = m.shape[-1]
    if L < context_len:
        m = F.pad(m, (0, context_len - L), value=False)
    elif L > context_len:
        if m[..., context_len:].any():
            raise ValueError(
                f"phrase_masks mark text token positions beyond the text context length "
                f"{context_len}; they must come from the same tokenizer as the context")
        m = m[..., :context_len]
    return m


def relational_forward(model, x: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor,
                       cond_latents: Optional[torch.Tensor], layout: ConditionLayout,
                       phrase_masks: Optional[torch.Tensor] = None, ratio: float = 0.5,
                       r2pe: bool = True, self_mask: bool = True, cross_mask: bool = True,
                       parity: bool = True, transformer_options: Optional[dict] = None,
                       **kwargs: Any) -> torch.Tensor:
    """LumosX forward of a ComfyUI ``WanModel`` (T2V).

    ``x``: ``[B, 16, T, H, W]`` noisy video latent; ``timestep``: ``[B]``; ``context``:
    ``[B, L_text, text_dim]`` raw text embeddings; ``cond_latents``: ``[B or 1, 16, N_c, H, W]``
    clean reference latents in layout order (``None`` or ``N_c = 0``: no references);
    ``phrase_masks``: bool ``[B or 1, N_c, L_text]``. ``ratio``: text-bias strength;
    ``r2pe`` / ``self_mask`` / ``cross_mask``: the three relational features (off = ablation);
    ``parity``: reproduce the released code's score-grid quirk (else the fixed indexing).
    ``transformer_options["rope_options"]`` (ComfyUI's RoPE scale/shift) applies to every
    token's position, references included, as the host does for Phantom's reference frames.

    Returns the video-only prediction ``[B, 16, T, H, W]``.
    """
    layout = as_layout(layout)
    if x.ndim != 5:
        raise ValueError(f"x must be a video latent [B, C, T, H, W]; got shape {tuple(x.shape)}")
    B, C, T, H, W = x.shape
    n_c = layout.num_images
    pt, ph, pw = model.patch_size
    if pt != 1:
        raise ValueError(f"LumosX needs a temporal patch size of 1 (Wan 2.1); model has {pt}")
    parts = [pad_to_patch(x, model.patch_size)]
    if n_c:
        if cond_latents is None:
            raise ValueError(f"the layout has {n_c} reference images but cond_latents is None")
        if (cond_latents.ndim != 5 or cond_latents.shape[1] != C or cond_latents.shape[2] != n_c
                or cond_latents.shape[3:] != x.shape[3:]):
            raise ValueError(
                f"cond_latents must have shape [B or 1, {C}, {n_c}, {H}, {W}] (one clean latent "
                f"frame per reference, at the video's latent size); got {tuple(cond_latents.shape)}")
        cond = _batch(cond_latents.to(device=x.device, dtype=x.dtype), B, "cond_latents")
        parts.append(pad_to_patch(cond, model.patch_size))
    elif cond_latents is not None and cond_latents.numel() and cond_latents.shape[2] != 0:
        raise ValueError("cond_latents holds frames but the layout has no reference images")
    x_full = torch.cat(parts, dim=2) if len(parts) > 1 else parts[0]
    Hp, Wp = x_full.shape[3] // ph, x_full.shape[4] // pw
    if n_c:
        check_rope_capacity(layout, T, Hp, Wp, r2pe)
    topts = dict(transformer_options or {})
    ids = apply_rope_options(position_ids(layout, T, Hp, Wp, r2pe), topts.get("rope_options"))
    freqs = rope_freqs(model, ids, device=x.device)

    if n_c:
        weights = None
        if cross_mask and ratio != 0:
            masks = prepare_phrase_masks(phrase_masks, layout, B, context.shape[1], x.device)
            weights = text_weights(layout, masks)
        topts["optimized_attention_override"] = RelationalAttention(
            layout, T, Hp, Wp, context.shape[1], weights, float(ratio), self_mask, cross_mask,
            parity, previous=topts.get("optimized_attention_override"))
    out = model.forward_orig(x_full, timestep, context, freqs=freqs,
                             transformer_options=topts, **kwargs)
    return out[:, :, :T, :H, :W]
