"""How large a picture the pack processes, one home: every reader of picture files and every
node that takes an IMAGE or MASK calls this module before it touches the pixels, so a small
input cannot make the pack claim a lot of memory.

The limits follow from what the model uses. A reference is letterboxed into the video frame,
and the largest frame of a video of 9 or more frames the work limits allow is 11.2 Mpx (of 5
or more: 16.8 Mpx); the face detector's largest input is 2048 x 2048, a face crop at most
2048 x 2048. So:

* :data:`MAX_PICTURE_PIXELS` = 4096 x 4096 (16.8 Mpx; 201 MB as a float32 RGB tensor) per
  picture. A picture FILE the pack reads itself (``lumosx eval`` case folders and videos) that
  declares more is refused from its header, before one pixel is decoded
  (:func:`open_picture`, :func:`check_picture_size`). An IMAGE / MASK tensor a node receives
  (decoded by ComfyUI's own ``LoadImage`` before our nodes see it) that is larger is first
  reduced by an integer factor with an area average, strip by strip, so the reduction itself
  claims at most the reduced picture plus one strip (:func:`fit_picture`); pictures within the
  limit are used as they are.
* :data:`MAX_BATCH_PIXELS` = 2**27 (134 Mpx, the pixels of the largest video the work limits
  allow: 131,072 latent tokens x 16 x 16 pixels x 4 frames): what one call may produce or keep
  from a batch (face crops of a photo batch, the sampled frames of a video read from a file).

Shapes: IMAGE ``[H, W, C]`` (C = 1..4), MASK ``[H, W]``.
"""
from __future__ import annotations

import logging
from typing import Optional

import torch
import torch.nn.functional as F

log = logging.getLogger("LumosX")

MAX_PICTURE_SIDE = 4096
MAX_PICTURE_PIXELS = MAX_PICTURE_SIDE * MAX_PICTURE_SIDE
MAX_BATCH_PIXELS = 1 << 27
#: rows of the input converted at a time by :func:`fit_picture` (about this many bytes)
STRIP_BYTES = 8 << 20


class PictureTooLarge(ValueError):
    """A picture (or a batch of them) over the limits of this module, refused with the limit
    named."""


def _mpx(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} Mpx"


def picture_error(width: int, height: int, what: str,
                  limit: Optional[int] = None) -> Optional[str]:
    """``None`` when a ``width x height`` picture is within ``limit`` pixels (default
    :data:`MAX_PICTURE_PIXELS`), else a message naming the picture and the limit."""
    limit = MAX_PICTURE_PIXELS if limit is None else limit
    pixels = int(width) * int(height)
    if pixels <= limit:
        return None
    return (f"{what}: {width}x{height} = {_mpx(pixels)} is more than the limit of "
            f"{_mpx(limit)} ({limit:,} pixels) for one picture; scale it down first")


def check_picture_size(width: int, height: int, what: str,
                       limit: Optional[int] = None) -> None:
    err = picture_error(width, height, what, limit)
    if err:
        raise PictureTooLarge(err)


def check_batch_pixels(count: int, width: int, height: int, what: str, fix: str,
                       limit: Optional[int] = None) -> None:
    """Refuse ``count`` pictures of ``width x height`` when together over ``limit`` pixels
    (default :data:`MAX_BATCH_PIXELS`)."""
    limit = MAX_BATCH_PIXELS if limit is None else limit
    total = int(count) * int(width) * int(height)
    if total > limit:
        raise PictureTooLarge(
            f"{what}: {count} x {width}x{height} = {_mpx(total)} is more than the limit of "
            f"{_mpx(limit)} ({limit:,} pixels, the largest video's) at once; {fix}")


def open_picture(path: str, what: Optional[str] = None):
    """``PIL.Image.open(path)`` -- which reads only the header -- refused
    (:class:`PictureTooLarge`) when the declared size is over :data:`MAX_PICTURE_PIXELS`,
    before any pixel is decoded. Pillow's own decompression-bomb error (pictures over its
    process-wide limit, left as the host set it) is reported the same way."""
    from PIL import Image
    what = what or path
    try:
        im = Image.open(path)
    except Image.DecompressionBombError as e:
        raise PictureTooLarge(f"{what}: {e}; the limit for one picture is "
                              f"{_mpx(MAX_PICTURE_PIXELS)} ({MAX_PICTURE_PIXELS:,} pixels)"
                              ) from None
    err = picture_error(im.width, im.height, what)
    if err:
        im.close()
        raise PictureTooLarge(err)
    return im


def reduce_factor(height: int, width: int, limit: int) -> int:
    """The smallest integer ``k`` with ``ceil(height/k) * ceil(width/k) <= limit``."""
    k = 1
    while -(-height // k) * -(-width // k) > limit:
        k = max(k + 1, int(k * ((-(-height // k) * -(-width // k)) / limit) ** 0.5))
    return k


def _area_reduce(image: torch.Tensor, k: int) -> torch.Tensor:
    """``[H, W, C]`` -> float32 ``[ceil(H/k), ceil(W/k), C]`` on the CPU, each output pixel
    the mean of its ``k x k`` block (edge blocks: of the pixels there). Converts
    :data:`STRIP_BYTES` of input at a time."""
    h, w, c = image.shape
    oh, ow = -(-h // k), -(-w // k)
    out = torch.empty(oh, ow, c, dtype=torch.float32)
    rows = max(1, STRIP_BYTES // max(1, k * w * c * 4))   # output rows per strip
    for r0 in range(0, oh, rows):
        r1 = min(oh, r0 + rows)
        strip = image[r0 * k:min(h, r1 * k)].to(device="cpu", dtype=torch.float32)
        pooled = F.avg_pool2d(strip.permute(2, 0, 1).unsqueeze(0), k, stride=k,
                              ceil_mode=True)
        out[r0:r1] = pooled[0].permute(1, 2, 0)
    return out


def fit_picture(image: torch.Tensor, what: str,
                limit: Optional[int] = None) -> torch.Tensor:
    """``image`` ``[H, W, C]`` (IMAGE) or ``[H, W]`` (MASK) itself when it has at most
    ``limit`` pixels (default :data:`MAX_PICTURE_PIXELS`); otherwise a float32 copy reduced by the smallest integer factor that
    fits (area average, computed strip by strip: the reduction claims the reduced picture plus
    one strip, never a full-size copy), with a warning naming the limit."""
    limit = MAX_PICTURE_PIXELS if limit is None else limit
    if not torch.is_tensor(image) or image.ndim not in (2, 3):
        return image                     # the caller's own shape check reports it
    h, w = int(image.shape[0]), int(image.shape[1])
    if h * w <= limit:
        return image
    k = reduce_factor(h, w, limit)
    mask = image.ndim == 2
    out = _area_reduce(image.unsqueeze(-1) if mask else image, k)
    out = out[..., 0] if mask else out
    log.warning("LumosX: %s is %dx%d = %s, more than the limit of %s per picture; using it "
                "reduced %dx to %dx%d", what, w, h, _mpx(h * w), _mpx(limit), k,
                out.shape[1], out.shape[0])
    return out
