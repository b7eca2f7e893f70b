"""Attention primitives shared by the relational paths.

Tensors follow ComfyUI's convention: ``[B, L, heads * d]`` with heads packed in the last dim.
An ``AttnFn`` is ``fn(q, k, v, heads) -> [B, Lq, heads * d]`` with no mask; inside ComfyUI it is
the host's backend (sage / flash / xformers / SDPA / sub-quadratic).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F

AttnFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int], torch.Tensor]


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``[B, L, heads*d]`` -> ``[B, heads, L, d]``."""
    b, l, c = x.shape
    return x.view(b, l, heads, c // heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``[B, heads, L, d]`` -> ``[B, L, heads*d]``."""
    b, h, l, d = x.shape
    return x.transpose(1, 2).reshape(b, l, h * d)


def sdpa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int,
                   bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Plain scaled-dot-product attention, optionally with an additive logit ``bias``
    broadcastable to ``[B, heads, Lq, Lk]``. Returns ``[B, Lq, heads*d]``."""
    if bias is not None:
        bias = bias.to(q.dtype)
    out = F.scaled_dot_product_attention(split_heads(q, heads), split_heads(k, heads),
                                         split_heads(v, heads), attn_mask=bias)
    return merge_heads(out)
