"""Image preparation, one home: the colour conversion (:func:`to_rgb`: grey and transparency
onto white) and the letterbox on white (:func:`letterbox`) every node and metric uses, and the
reference preparation (letterbox at the video size, scaled to [-1, 1]).

Images follow ComfyUI's IMAGE convention: float ``[H, W, C]`` (or ``[B, H, W, C]``) in [0, 1].
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F


def to_rgb(image, alpha: Optional[torch.Tensor] = None, drop_alpha: bool = False
           ) -> torch.Tensor:
    """THE colour conversion of every picture the pack handles: ``[H, W, C]`` (a tensor, or a
    numpy array; uint8 is scaled by 1/255) with C in 1..4 -> float ``[H, W, 3]`` in [0, 1] on
    the input's device. Grey (C = 1, 2) is repeated; transparency (C = 2 or 4, or ``alpha``
    ``[H, W]`` in [0, 1]) is composited onto white -- references, letterboxes, metrics -- or,
    with ``drop_alpha``, ignored: face detection and face crops see the photo as shot."""
    img = image if torch.is_tensor(image) else torch.from_numpy(np.ascontiguousarray(image))
    if img.ndim != 3:
        raise ValueError(f"expected one image [H, W, C]; got shape {tuple(img.shape)}")
    c = img.shape[-1]
    if not 1 <= c <= 4:
        raise ValueError(f"expected 1 to 4 channels; got {c}")
    img = img.detach().float() / 255.0 if img.dtype == torch.uint8 else img.detach().float()
    if c in (2, 4) and alpha is None:
        alpha = img[..., -1]
    img = img[..., :3] if c >= 3 else img[..., :1].expand(*img.shape[:2], 3)
    if alpha is not None and not drop_alpha:
        a = alpha.to(img).clamp(0, 1).unsqueeze(-1)
        img = img * a + (1.0 - a)
    return img.clamp(0, 1)


def pil_rgb(im) -> np.ndarray:
    """A Pillow image (a file's frame) as uint8 ``[H, W, 3]``: transparency (RGBA, LA, P, PA)
    composited onto white with Pillow's integer compositing, like :func:`to_rgb` does for
    tensors. The image files the evaluation reads (case references, frames) come through
    here."""
    from PIL import Image
    if im.mode in ("RGBA", "LA", "P", "PA"):
        rgba = im.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        canvas.alpha_composite(rgba)
        im = canvas
    return np.asarray(im.convert("RGB"))


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
    img = to_rgb(image, alpha)
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
