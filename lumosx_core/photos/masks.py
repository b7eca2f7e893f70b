"""ComfyUI masks, one home: what a MASK may look like, which values mean *keep*, how a batch
of masks pairs with a batch of images, boxes and connected parts.

ComfyUI's MASK is float ``[B, H, W]`` in [0, 1] (a single ``[H, W]`` is accepted too, and
``[B, 1, H, W]``). **1 means keep**: the area painted in ComfyUI's mask editor (Load Image's
MASK is ``1 - alpha``, and the editor makes the painted pixels transparent), the object of a
segmentation node (SAM, GroundingDINO-style packs), a ``SolidMask`` of value 1. Values in
between are partial (soft edges); values outside [0, 1] are clipped. A pixel counts as kept
when its value is at least :data:`KEEP_LEVEL` (half an 8-bit step): below that it cannot
change an 8-bit picture, so it is treated as 0.

Every check raises ``ValueError`` naming the input (``mask``, ``image``, ``garments``...) and
what to do, never returns a plausible wrong mask.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np
import torch

from ..image_limits import MAX_PICTURE_PIXELS, fit_picture
from ..image_prep import to_rgb

#: Mask values below this count as 0 (they cannot change an 8-bit pixel).
KEEP_LEVEL = 0.5 / 255.0
#: Load Image's MASK when the picture has no alpha channel (nothing painted): 64x64 zeros.
UNPAINTED_SIZE = (64, 64)

PixelBox = Tuple[int, int, int, int]


def mask_view(mask, name: str = "mask") -> torch.Tensor:
    """A MASK from any node as ``[B, H, W]`` -- a view, no copy: ``[H, W]``, ``[B, H, W]`` and
    ``[B, 1, H, W]`` are accepted; other shapes and empty sizes are refused naming ``name``."""
    if not torch.is_tensor(mask):
        raise ValueError(f"{name}: expected a MASK (a tensor [B, H, W] with values 0 to 1), "
                         f"got {type(mask).__name__}")
    m = mask.detach()
    if m.ndim == 4 and m.shape[1] == 1:
        m = m[:, 0]
    if m.ndim == 2:
        m = m.unsqueeze(0)
    if m.ndim != 3 or m.shape[0] < 1 or min(m.shape[1:]) < 1:
        raise ValueError(f"{name}: expected a MASK [B, H, W]; got shape {tuple(mask.shape)}")
    return m


def _fit_each(batch: torch.Tensor, name: str) -> torch.Tensor:
    """Every item of ``batch`` ``[B, H, W(, C)]`` within the picture size limit
    (:func:`~lumosx_core.image_limits.fit_picture`: a larger one is reduced, strip by strip)."""
    n = batch.shape[0]
    h, w = batch.shape[1], batch.shape[2]
    if h * w <= MAX_PICTURE_PIXELS:
        return batch
    return torch.stack([fit_picture(batch[b], item_name(name, b, n)) for b in range(n)])


def as_masks(mask, name: str = "mask") -> torch.Tensor:
    """A MASK from any node -> float32 ``[B, H, W]`` in [0, 1] on the CPU (:func:`mask_view`;
    a mask over the picture size limit reduced as pictures are); refuses NaN/inf."""
    m = _fit_each(mask_view(mask, name), name).float().cpu()
    if not torch.isfinite(m).all():
        raise ValueError(f"{name}: the mask holds NaN or infinite values; give a mask with "
                         f"values from 0 to 1")
    return m.clamp(0.0, 1.0)


def as_images(image, name: str = "image") -> torch.Tensor:
    """An IMAGE ``[B, H, W, C]`` (or one ``[H, W, C]``) -> float32 RGB ``[B, H, W, 3]`` on the
    CPU (grey repeated, transparency composited onto white, as everywhere in the pack; a
    picture over the size limit reduced, :func:`~lumosx_core.image_limits.fit_picture`)."""
    if not torch.is_tensor(image):
        raise ValueError(f"{name}: expected an IMAGE tensor [B, H, W, C], got "
                         f"{type(image).__name__}")
    img = image.detach()
    if img.ndim == 3:
        img = img.unsqueeze(0)
    if img.ndim != 4 or img.shape[0] < 1 or min(img.shape[1:3]) < 1 \
            or not 1 <= img.shape[-1] <= 4:
        raise ValueError(f"{name}: expected an IMAGE [B, H, W, C] with 1 to 4 channels; got "
                         f"shape {tuple(image.shape)}")
    img = _fit_each(img, name).float().cpu()
    if not torch.isfinite(img).all():
        raise ValueError(f"{name}: the image holds NaN or infinite values")
    return torch.stack([to_rgb(img[b]) for b in range(img.shape[0])])


def size_text(h: int, w: int) -> str:
    return f"{w}x{h}"


def check_size(mask: torch.Tensor, height: int, width: int, mask_name: str,
               image_name: str) -> None:
    """``mask`` ``[B, H, W]`` must be ``height x width``; the error names both sizes (and
    recognises Load Image's 64x64 stand-in for "nothing painted")."""
    mh, mw = mask.shape[-2:]
    if (mh, mw) == (height, width):
        return
    hint = ""
    if (mh, mw) == UNPAINTED_SIZE and not bool((mask >= KEEP_LEVEL).any()):
        hint = (" (an empty 64x64 mask is what Load Image gives for a picture without a "
                "painted mask: right-click the Load Image node, Open in MaskEditor, paint "
                "what to keep and save)")
    raise ValueError(f"{mask_name} is {size_text(mh, mw)} but {image_name} is "
                     f"{size_text(height, width)} (width x height): give a mask of the "
                     f"picture's own size{hint}, e.g. from the same Load Image node")


def pair_batches(n_images: int, n_masks: int, image_name: str = "image",
                 mask_name: str = "mask") -> List[Tuple[int, int]]:
    """Which image goes with which mask: one mask per image; one mask for every image; or one
    image with several masks (several cut-outs of one photo). Returns ``[(image, mask)]``."""
    if n_images == n_masks:
        return [(i, i) for i in range(n_images)]
    if n_masks == 1:
        return [(i, 0) for i in range(n_images)]
    if n_images == 1:
        return [(0, j) for j in range(n_masks)]
    raise ValueError(f"{image_name} is a batch of {n_images} pictures but {mask_name} a batch "
                     f"of {n_masks} masks: give one mask per picture, one mask for all of "
                     f"them, or one picture with any number of masks")


def kept(mask: torch.Tensor) -> torch.Tensor:
    """bool: the pixels of ``mask`` (any shape) that count as kept."""
    return mask >= KEEP_LEVEL


def item_name(name: str, index: int, count: int) -> str:
    """``mask`` or ``mask (item 2 of 3)`` (1-based, as the user counts)."""
    return name if count == 1 else f"{name} (item {index + 1} of {count})"


def check_not_empty(mask: torch.Tensor, name: str, what: str = "what to keep") -> None:
    """A mask ``[H, W]`` (or any shape) with no kept pixel is refused, naming the input."""
    if not bool(kept(mask).any()):
        raise ValueError(f"{name} is empty (every value below {KEEP_LEVEL:.4f}): paint "
                         f"{what} (in the mask editor the painted area is the mask, value 1), "
                         f"or check the node that made the mask")


def mask_box(keep: torch.Tensor) -> Optional[PixelBox]:
    """``(x1, y1, x2, y2)`` of the True pixels of bool ``keep`` ``[H, W]`` (``x2``/``y2``
    exclusive), or ``None`` when there are none."""
    rows = torch.nonzero(keep.any(dim=1)).flatten()
    cols = torch.nonzero(keep.any(dim=0)).flatten()
    if rows.numel() == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def label_parts(keep: torch.Tensor) -> Tuple[np.ndarray, int]:
    """Connected parts (8-connected: pixels touching at a corner belong together) of bool
    ``keep`` ``[H, W]``: ``(labels int [H, W] with 0 = not kept, count)``."""
    try:
        from scipy import ndimage
    except ImportError as e:  # scipy comes with scikit-image (requirements.txt)
        raise RuntimeError("connected mask parts need SciPy: pip install scipy") from e
    labels, n = ndimage.label(keep.cpu().numpy(), structure=np.ones((3, 3), dtype=bool))
    return labels, int(n)


def part_weights(labels: np.ndarray, count: int, weights: torch.Tensor) -> np.ndarray:
    """float64 ``[count]``: the sum of ``weights`` (``[H, W]``) over each labelled part (label
    k at position k - 1)."""
    return np.bincount(labels.ravel(), weights=weights.double().cpu().numpy().ravel(),
                       minlength=count + 1)[1:]


def largest_part(keep: torch.Tensor) -> torch.Tensor:
    """bool ``[H, W]``: the largest connected part of ``keep`` (by pixel count; ties: the one
    met first scanning rows top-down)."""
    labels, n = label_parts(keep)
    if n == 0:
        return keep.clone()
    sizes = part_weights(labels, n, keep)
    return torch.from_numpy(labels == int(np.argmax(sizes)) + 1)
