"""Cut-outs: the masked pixels of a photo on white, cropped tight to the mask's box -- the
framing of the authors' attribute and object references (``LumosX/test_data``): measured on
all seven of them (jackets, shirt, sweater, lamp, bedside table), the box of the non-white
pixels *is* the image (margin 0 on every side), everything else is pure white (255, 255,
255), and the edges are either hard (segmentation cut-outs: no pixel within 5 levels of
white) or blended towards white (product shots with antialiased edges). So:

* the output is cropped to the box of the kept pixels (``masks.KEEP_LEVEL``), no margin;
* outside the mask it is exactly 1.0 (white);
* inside, ``image * m + (1 - m)``: a binary mask copies the pixels unchanged (hard edge), a
  soft mask blends them over white (antialiased edge).

Images are ComfyUI IMAGEs ``[B, H, W, C]`` in [0, 1], masks ComfyUI MASKs ``[B, H, W]``
(1 = keep; see :mod:`.masks`). Pure torch (SciPy only for ``largest`` parts).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import torch

from .masks import (PixelBox, as_images, as_masks, check_not_empty, check_size, item_name,
                    kept, largest_part, mask_box, mask_view, pair_batches)


@dataclass(frozen=True, eq=False)
class CutOut:
    """One cut-out: ``image`` float ``[h, w, 3]`` (white outside the mask), ``mask`` float
    ``[h, w]`` (the mask inside the box, after ``largest``), ``box`` ``(x1, y1, x2, y2)`` in
    the source picture (``x2``/``y2`` exclusive; ``w = x2 - x1``)."""

    image: torch.Tensor
    mask: torch.Tensor
    box: PixelBox


def cut_out(image: torch.Tensor, mask: torch.Tensor, largest: bool = False,
            name: str = "mask") -> CutOut:
    """Cut ``mask`` ``[H, W]`` (values 0..1, 1 = keep) out of ``image`` ``[H, W, 3]`` on white,
    cropped tight to the mask's box. ``largest``: keep only the largest connected part (else
    every part). Raises ``ValueError`` naming ``name`` when the mask keeps nothing."""
    check_not_empty(mask, name)
    keep = kept(mask)
    if largest:
        keep = largest_part(keep)
    m = torch.where(keep, mask, torch.zeros_like(mask))
    x1, y1, x2, y2 = box = mask_box(keep)
    mb = m[y1:y2, x1:x2]
    a = mb.unsqueeze(-1)
    out = image[y1:y2, x1:x2] * a + (1.0 - a)
    return CutOut(out.clamp(0.0, 1.0), mb, box)


def cut_out_batch(images, masks, largest: bool = False, image_name: str = "image",
                  mask_name: str = "mask") -> List[CutOut]:
    """Cut-outs of an IMAGE batch with a MASK batch, paired by :func:`masks.pair_batches`
    (one mask per picture, one mask for all, or one picture with several masks). Sizes must
    agree; every mask must keep something. Errors name ``image_name`` / ``mask_name``."""
    if torch.is_tensor(images) and images.ndim in (3, 4):   # sizes as given, before reducing
        check_size(mask_view(masks, mask_name), images.shape[-3], images.shape[-2], mask_name,
                   image_name)
    imgs = as_images(images, image_name)
    ms = as_masks(masks, mask_name)
    check_size(ms, imgs.shape[1], imgs.shape[2], mask_name, image_name)
    pairs = pair_batches(imgs.shape[0], ms.shape[0], image_name, mask_name)
    return [cut_out(imgs[i], ms[j], largest, item_name(mask_name, j, ms.shape[0]))
            for i, j in pairs]


def stack(cuts: Sequence[CutOut]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Cut-outs as an IMAGE batch ``[B, h, w, 3]`` and a MASK batch ``[B, h, w]``. When their
    sizes differ each is centred on white (mask 0) at the largest width and height -- only a
    batch of equal boxes keeps the tight framing for every item."""
    h = max(c.image.shape[0] for c in cuts)
    w = max(c.image.shape[1] for c in cuts)
    images = torch.ones(len(cuts), h, w, 3)
    masks = torch.zeros(len(cuts), h, w)
    for b, c in enumerate(cuts):
        ch, cw = c.image.shape[:2]
        oy, ox = (h - ch) // 2, (w - cw) // 2
        images[b, oy:oy + ch, ox:ox + cw] = c.image
        masks[b, oy:oy + ch, ox:ox + cw] = c.mask
    return images, masks
