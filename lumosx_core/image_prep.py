"""Reference image preparation: letterbox on white at the video size, scaled to [-1, 1].

Images follow ComfyUI's IMAGE convention: float ``[H, W, C]`` (or ``[B, H, W, C]``) in [0, 1].
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F


def to_rgb_on_white(image: torch.Tensor, alpha: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``[H, W, C]`` with C in {1, 3, 4} -> ``[H, W, 3]``; transparency (an alpha channel or
    ``alpha`` ``[H, W]`` in [0, 1]) is composited onto white."""
    if image.ndim != 3:
        raise ValueError(f"expected one image [H, W, C]; got shape {tuple(image.shape)}")
    c = image.shape[-1]
    img = image.float()
    if c == 4:
        alpha = img[..., 3] if alpha is None else alpha
        img = img[..., :3]
    elif c == 1:
        img = img.expand(*img.shape[:2], 3)
    elif c != 3:
        raise ValueError(f"expected 1, 3 or 4 channels; got {c}")
    if alpha is not None:
        a = alpha.float().clamp(0, 1).unsqueeze(-1)
        img = img * a + (1.0 - a)
    return img.clamp(0, 1)


def letterbox_size(w: int, h: int, width: int, height: int):
    """New size and offset of a ``w x h`` image fitted inside ``width x height``:
    scale ``min(width/w, height/h)`` (floored sizes), centred (floored offsets)."""
    ratio = min(width / w, height / h)
    nw = max(1, min(width, int(w * ratio)))
    nh = max(1, min(height, int(h * ratio)))
    return nw, nh, (width - nw) // 2, (height - nh) // 2


def letterbox(image: torch.Tensor, width: int, height: int,
              alpha: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Fit ``image`` ``[H, W, C]`` (values in [0, 1]) inside ``width x height`` with bicubic
    resampling (antialiased when shrinking) and paste it centred on a pure white canvas.
    Returns ``[height, width, 3]`` in [0, 1]."""
    img = to_rgb_on_white(image, alpha)
    h, w = img.shape[:2]
    nw, nh, ox, oy = letterbox_size(w, h, width, height)
    chw = img.permute(2, 0, 1).unsqueeze(0)
    if (nw, nh) != (w, h):
        chw = F.interpolate(chw, size=(nh, nw), mode="bicubic", align_corners=False,
                            antialias=nw < w or nh < h).clamp(0, 1)
    canvas = torch.ones(height, width, 3, dtype=img.dtype, device=img.device)
    canvas[oy:oy + nh, ox:ox + nw] = chw[0].permute(1, 2, 0)
    return canvas


def to_model_range(image: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1]."""
    return image * 2.0 - 1.0


def prepare_reference(image: torch.Tensor, width: int, height: int,
                      alpha: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Letterbox then scale to [-1, 1]: ``[height, width, 3]``, ready to encode as a one-frame
    video."""
    return to_model_range(letterbox(image, width, height, alpha))
