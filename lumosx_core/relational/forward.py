"""The relational forward: ComfyUI's own Wan 2.1 DiT computing the LumosX forward.

Nothing of the model is forked. :func:`relational_forward` appends the clean reference latents
after the video on the time axis, builds relational RoPE ids for the model's own embedder, and
runs the model's own ``forward_orig`` with an ``optimized_attention_override`` that turns the
model's self-attention calls into :func:`relational_self_attention` and its text
cross-attention calls into :func:`relational_cross_attention`. The host's attention backend
(or an override another pack installed, chained) still computes every unmasked attention.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Hashable, List, Optional, Tuple

import torch
import torch.nn.functional as F

from .attention import merge_heads, split_heads
from .cross_attention import biased_images, cell_index, relational_cross_attention, text_weights
from .layout import ConditionLayout
from .positions import apply_rope_options, check_rope_capacity, position_ids, rope_freqs
from .self_attention import SelfAttentionPlan, relational_self_attention, self_attention_plan


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

    @property
    def text_bias(self) -> bool:
        """Whether the text bias acts: references, ``cross_mask`` on and ``ratio`` not 0."""
        return bool(self.layout.num_images and self.cross_mask and self.ratio != 0)


class RelationalCache:
    """The set-up of :func:`relational_forward` that does not change between the steps of a
    sampling run -- RoPE tables of the relational positions, the self-attention gather indices,
    the text-bias cell indices, the text weights -- kept so that a run builds each once.

    Every entry is keyed by *value* on everything it is computed from (layout, latent sizes,
    switches, the phrase masks' contents, the RoPE embedder's parameters, device), never by
    object identity, so two jobs can share one cache without ever seeing each other's data:
    a job whose inputs differ computes (and stores) its own entries. At most ``per_kind``
    entries of each kind are kept (least recently used dropped first), so the memory held
    between runs is bounded: at 480x832 / 81 frames with 9 references the largest entry (the
    RoPE table) is 46,800 x 64 x 4 float32 = 48 MB.
    """

    def __init__(self, per_kind: int = 2):
        self.per_kind = int(per_kind)
        self._store: "dict[str, OrderedDict]" = {}
        self.hits = 0
        self.misses = 0

    def get(self, kind: str, key: Optional[Hashable], build: Callable[[], Any]) -> Any:
        """The cached value of ``(kind, key)``, built with ``build()`` on a miss. A ``None`` key
        means "not cacheable": ``build()`` runs every time."""
        if key is None:
            return build()
        store = self._store.setdefault(kind, OrderedDict())
        if key in store:
            store.move_to_end(key)
            self.hits += 1
            return store[key]
        self.misses += 1
        value = build()
        store[key] = value
        while len(store) > self.per_kind:
            store.popitem(last=False)
        return value

    def clear(self) -> None:
        self._store.clear()

    def __len__(self) -> int:
        return sum(len(s) for s in self._store.values())


def rope_key(model) -> Optional[Tuple]:
    """What the model's RoPE table depends on besides the ids, or ``None`` when the embedder is
    not the stock one (then its tables are never cached)."""
    emb = getattr(model, "rope_embedder", None)
    try:
        return (type(emb).__module__, type(emb).__qualname__, int(emb.dim), float(emb.theta),
                tuple(int(a) for a in emb.axes_dim))
    except (AttributeError, TypeError, ValueError):
        return None


def _rope_options_key(rope_options) -> Optional[Tuple]:
    """The six numbers :func:`apply_rope_options` reads, or ``None`` when they are not plain
    numbers (then the RoPE table is not cached)."""
    try:
        ro = rope_options or {}
        return tuple(float(ro.get(f"{kind}_{axis}", default)) for axis in ("t", "y", "x")
                     for kind, default in (("scale", 1.0), ("shift", 0.0)))
    except (AttributeError, TypeError, ValueError):
        return None


@dataclass
class ForwardSetup:
    """Everything :func:`relational_forward` builds outside the transformer blocks for one
    call: the RoPE table of the relational positions and the attention override's inputs."""

    freqs: torch.Tensor
    self_plan: Optional[SelfAttentionPlan]
    cells: Optional[torch.Tensor]
    weights: Optional[torch.Tensor]
    biased: Optional[List[bool]]


def _text_setup(layout: ConditionLayout, phrase_masks, B: int, context_len: int, device,
                cache: Optional[RelationalCache]):
    """Text weights ``[B, N_c, L_text]`` on ``device`` and the per-image "biased" flags, from
    the masks' contents (read back to the host once per call; cached by that content)."""
    masks = prepare_phrase_masks(phrase_masks, layout, B, context_len, "cpu")
    key = (layout, tuple(masks.shape), masks.to(torch.uint8).numpy().tobytes(), str(device))

    def build():
        w = text_weights(layout, masks)
        return w.to(device), biased_images(w)
    if cache is None:
        return build()
    return cache.get("text", key, build)


@torch.compiler.disable
def forward_setup(model, config: RelationalConfig, T: int, Hp: int, Wp: int, B: int,
                  context_len: int, phrase_masks, device,
                  cache: Optional[RelationalCache] = None,
                  rope_options: Optional[dict] = None) -> ForwardSetup:
    """The LumosX work of one forward outside the blocks (positions, RoPE table, gather
    indices, text weights); with a ``cache`` each piece is built once per distinct input.
    ``rope_options``: ComfyUI's RoPE scale/shift (see :func:`apply_rope_options`).

    Under ``torch.compile`` it runs eagerly (one graph break per forward, by design): it
    keys the cache by the masks' bytes and reads flags back to the host, which a graph
    cannot hold, and its results are the same on every step of a run."""
    layout, r2pe = config.layout, bool(config.r2pe)
    device = torch.device(device)
    c = cache if cache is not None else RelationalCache()
    rk = rope_key(model) if cache is not None else None
    ro = _rope_options_key(rope_options)
    key = None if rk is None or ro is None else (layout, T, Hp, Wp, r2pe, rk, ro, str(device))
    freqs = c.get("freqs", key, lambda: rope_freqs(
        model, apply_rope_options(position_ids(layout, T, Hp, Wp, r2pe), rope_options),
        device=device))
    self_plan = cells = weights = biased = None
    if layout.num_images and config.self_mask:
        self_plan = c.get("self_plan", (layout, T, Hp * Wp, str(device)),
                          lambda: self_attention_plan(layout, T, Hp * Wp, device))
    if config.text_bias:
        cells = c.get("cells", (Hp, Wp, bool(config.parity), str(device)),
                      lambda: cell_index(Hp, Wp, config.parity, device=device))
        weights, biased = _text_setup(layout, phrase_masks, B, context_len, device, cache)
    return ForwardSetup(freqs, self_plan, cells, weights, biased)


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

    def __init__(self, config: RelationalConfig, frames: int, Hp: int, Wp: int,
                 context_len: int, setup: ForwardSetup, previous: Optional[Callable] = None):
        self.config = config
        self.layout = config.layout
        self.frames = frames
        self.Hp, self.Wp = Hp, Wp
        self.seq_len = config.layout.sequence_length(frames, Hp * Wp)
        self.context_len = context_len
        self.setup = setup
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
        cfg, setup = self.config, self.setup
        if kind == "self":
            out = relational_self_attention(q, k, v, heads, self.layout, self.frames,
                                            self.Hp * self.Wp, attn=attn,
                                            self_mask=cfg.self_mask, plan=setup.self_plan)
        else:
            out = relational_cross_attention(
                q, k, v, heads, self.layout, self.frames, self.Hp, self.Wp, setup.weights,
                ratio=cfg.ratio, parity=cfg.parity, attn=attn, cells=setup.cells,
                biased=setup.biased)
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
                       cache: Optional[RelationalCache] = None, **kwargs: Any) -> torch.Tensor:
    """LumosX forward of a ComfyUI ``WanModel`` (T2V).

    ``x``: ``[B, 16, T, H, W]`` noisy video latent; ``timestep``: ``[B]``; ``context``:
    ``[B, L_text, text_dim]`` raw text embeddings; ``cond_latents``: ``[B or 1, 16, N_c, H, W]``
    clean reference latents in layout order (``None`` or ``N_c = 0``: no references);
    ``phrase_masks``: bool ``[B or 1, N_c, L_text]``. ``ratio``: text-bias strength;
    ``r2pe`` / ``self_mask`` / ``cross_mask``: the three relational features (off = ablation);
    ``parity``: reproduce the released code's score-grid quirk (else the fixed indexing).
    ``transformer_options["rope_options"]`` (ComfyUI's RoPE scale/shift) applies to every
    token's position, references included, as the host does for Phantom's reference frames.
    ``cache``: a :class:`RelationalCache` kept across the steps of a sampling run, so the
    set-up (RoPE table, indices, text weights) is built once per run instead of every step.

    Returns the video-only prediction ``[B, 16, T, H, W]``.
    """
    config = RelationalConfig(as_layout(layout), float(ratio), bool(r2pe), bool(self_mask),
                              bool(cross_mask), bool(parity))
    return config_forward(model, x, timestep, context, cond_latents, config, phrase_masks,
                          transformer_options=transformer_options, cache=cache, **kwargs)


def config_forward(model, x: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor,
                   cond_latents: Optional[torch.Tensor], config: RelationalConfig,
                   phrase_masks: Optional[torch.Tensor] = None,
                   transformer_options: Optional[dict] = None,
                   cache: Optional[RelationalCache] = None, **kwargs: Any) -> torch.Tensor:
    """:func:`relational_forward` with the layout and switches as one
    :class:`RelationalConfig` (what the Bind node attaches to the conditioning)."""
    layout = config.layout
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
        check_rope_capacity(layout, T, Hp, Wp, config.r2pe)
    topts = dict(transformer_options or {})
    setup = forward_setup(model, config, T, Hp, Wp, B, context.shape[1], phrase_masks,
                          x.device, cache=cache, rope_options=topts.get("rope_options"))
    if n_c:
        topts["optimized_attention_override"] = RelationalAttention(
            config, T, Hp, Wp, context.shape[1], setup,
            previous=topts.get("optimized_attention_override"))
    out = model.forward_orig(x_full, timestep, context, freqs=setup.freqs,
                             transformer_options=topts, **kwargs)
    return out[:, :, :T, :H, :W]
