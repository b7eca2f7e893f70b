"""Image preparation, one home: the colour conversion (:func:`to_rgb`: grey and transparency
onto white), THE resize of every reference and picture the pack shows (:func:`letterbox`:
the released references' fit on white), the 8-bit conversions (:func:`to_uint8`,
:func:`from_uint8`) and :class:`Region` (a box of a photo that has not been resampled yet, carried along an IMAGE so
a later node resizes the original pixels once).

Images follow ComfyUI's IMAGE convention: float ``[H, W, C]`` (or ``[B, H, W, C]``) in [0, 1].

The resize is the one of the authors' inference scripts (``resize_crop_to_fill_img`` in
``LumosX/scripts/WanX2.1/lumosx_inference_t2v_*.py``), the same for faces, attributes,
objects and the background: scale ``min(width / w, height / h)``, new size
``int(w * scale) x int(h * scale)`` (truncated), Pillow's ``BICUBIC`` on the 8-bit image
(Keys cubic a = -0.5, with Pillow's antialiasing support when shrinking), pasted at the
floored centre offset on a white canvas, then ``(x / 255 - 0.5) / 0.5`` (that last step is
the Wan VAE's own ``x * 2 - 1`` in ComfyUI, bit for bit the same).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image


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
    if im.mode in ("RGBA", "LA", "P", "PA"):
        rgba = im.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        canvas.alpha_composite(rgba)
        im = canvas
    return np.asarray(im.convert("RGB"))


def letterbox_size(w: int, h: int, width: int, height: int):
    """New size and offset of a ``w x h`` image fitted inside ``width x height``, as the
    released code computes them: scale ``min(width/w, height/h)``, sizes truncated with
    ``int`` (at least 1 pixel), offsets floored (centred)."""
    ratio = min(width / w, height / h)
    nw = max(1, min(width, int(w * ratio)))
    nh = max(1, min(height, int(h * ratio)))
    return nw, nh, (width - nw) // 2, (height - nh) // 2


#: rows converted at a time by :func:`to_uint8` (about this many float bytes per strip)
_STRIP_BYTES = 8 << 20


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """Float ``[H, W, C]`` in [0, 1] -> uint8 ``[H, W, C]`` (rounded): the exact 8-bit values
    of an image ComfyUI's LoadImage read (``u / 255``). Converted strip by strip, so a large
    picture costs its uint8 result plus one strip, never float copies of the whole."""
    image = image.detach()
    out = torch.empty(image.shape, dtype=torch.uint8)
    rows = max(1, _STRIP_BYTES // max(1, math.prod(image.shape[1:]) * 4))
    for r in range(0, image.shape[0], rows):
        strip = image[r:r + rows].float().cpu().clamp(0, 1).mul_(255.0).round_()
        out[r:r + rows] = strip.to(torch.uint8)
    return out.numpy()


def from_uint8(arr: np.ndarray) -> torch.Tensor:
    """uint8 ``[..., H, W, 3]`` -> float in [0, 1] (the inverse of :func:`to_uint8`)."""
    return torch.from_numpy(np.asarray(arr).astype(np.float32) / 255.0)


def box_intersection(box, width: int, height: int):
    """The part ``(x0, y0, x1, y1)`` of integer ``box`` inside a ``width x height`` photo, or
    ``None`` when they do not overlap."""
    x0, y0, x1, y1 = box
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if ix1 <= ix0 or iy1 <= iy0:
        return None
    return ix0, iy0, ix1, iy1


#: a picture at least this large given to Pillow: afterwards the freed heap is handed back
_TRIM_PIXELS = 4 << 20


@functools.lru_cache(maxsize=None)
def _malloc_trim():
    """glibc's ``malloc_trim``, or ``None`` where there is none."""
    try:
        import ctypes
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _return_freed_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc ``malloc_trim``; nothing
    elsewhere). Pillow keeps a large picture in blocks below glibc's mmap threshold, so after
    one the server's resident memory would otherwise stay that much higher."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def letterbox(image, width: int, height: int, alpha: Optional[torch.Tensor] = None,
              box: Optional[Sequence[int]] = None) -> torch.Tensor:
    """THE resize: fit ``image`` ``[H, W, C]`` (values in [0, 1]; or only its ``box``
    ``(x0, y0, x1, y1)``, whole pixels, which may reach past the photo: white there) inside
    ``width x height`` on white, as the released inference scripts prepare every reference
    (see the module docstring). Returns float ``[height, width, 3]`` in [0, 1] holding
    8-bit values ``k / 255`` (on the input's device).

    A box inside the photo gives exactly the released resize of that crop. Only the part of
    a box inside the photo is resampled, into its place in the fitted box, so a loose box on
    a large photo stays cheap (at the photo's edge the released code would have resampled
    the white in too)."""
    img = to_rgb(image, alpha)
    h, w = img.shape[:2]
    x0, y0, x1, y1 = (0, 0, w, h) if box is None else (int(v) for v in box)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"empty box {tuple(box)}")
    bw, bh = x1 - x0, y1 - y0
    nw, nh, ox, oy = letterbox_size(bw, bh, width, height)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    inter = box_intersection((x0, y0, x1, y1), w, h)
    if inter is not None:
        ix0, iy0, ix1, iy1 = inter
        sx, sy = nw / bw, nh / bh

        def span(a: int, b: int, origin: int, scale: float, size: int):
            d0 = min(max(int(round((a - origin) * scale)), 0), size - 1)
            return d0, min(max(int(round((b - origin) * scale)), d0 + 1), size)

        dx0, dx1 = span(ix0, ix1, x0, sx, nw)
        dy0, dy1 = span(iy0, iy1, y0, sy, nh)
        part = Image.fromarray(to_uint8(img[iy0:iy1, ix0:ix1]))
        large = part.width * part.height >= _TRIM_PIXELS
        if part.size != (dx1 - dx0, dy1 - dy0):
            part = part.resize((dx1 - dx0, dy1 - dy0), Image.BICUBIC)
        canvas.paste(part, (ox + dx0, oy + dy0))
        del part
        if large:
            _return_freed_memory()
    out = torch.from_numpy(np.asarray(canvas).copy()).float().div(255.0)
    return out.to(img.device)


# -- regions: original pixels carried along a resampled IMAGE --------------------------------

@dataclass(frozen=True, eq=False)
class Region:
    """A box of a photo, not resampled yet: ``image`` ``[H, W, C]`` float in [0, 1] (the
    photo as given) and ``box`` ``(x0, y0, x1, y1)`` in its whole pixels (it may reach past
    the photo: white there). :meth:`letterbox` resizes these original pixels, once."""

    image: torch.Tensor
    box: Tuple[int, int, int, int]

    @property
    def size(self) -> Tuple[int, int]:
        """``(width, height)`` of the box."""
        return self.box[2] - self.box[0], self.box[3] - self.box[1]

    def letterbox(self, width: int, height: int) -> torch.Tensor:
        return letterbox(self.image, width, height, box=self.box)


_REGIONS = "lumosx_regions"


def _fingerprint(image: torch.Tensor) -> Tuple:
    """Shape and sum of one ``[H, W, C]`` picture: changes when its pixels are changed."""
    return tuple(image.shape), float(image.detach().double().sum())


def attach_regions(images: torch.Tensor, regions: Sequence[Optional[Region]]) -> torch.Tensor:
    """Record on an IMAGE batch ``[B, H, W, C]`` that item ``b`` was resampled from
    ``regions[b]``, so a later node (Bind) resizes the original pixels instead of resampling
    the resampled ones. The record rides on this tensor object only: any node that makes a
    new image (scale, crop, batch...) drops it, and a change of this one's pixels voids it
    (:func:`region_of` compares a fingerprint; ComfyUI runs nodes in inference mode, where
    tensors keep no version counter). Returns ``images``."""
    if len(regions) != images.shape[0]:
        raise ValueError(f"{len(regions)} regions for a batch of {images.shape[0]} images")
    setattr(images, _REGIONS, tuple((r, _fingerprint(images[b])) for b, r in enumerate(regions)))
    return images


def region_of(images: torch.Tensor, index: int = 0) -> Optional[Region]:
    """The :class:`Region` item ``index`` of an IMAGE batch was made from (see
    :func:`attach_regions`), or ``None`` (an ordinary image, or one changed since)."""
    record = getattr(images, _REGIONS, None)
    if record is None or not 0 <= index < len(record) or images.ndim != 4:
        return None
    region, fingerprint = record[index]
    if region is None or _fingerprint(images[index]) != fingerprint:
        return None
    return region
