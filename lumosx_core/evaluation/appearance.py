"""Appearance descriptors for the binding check: attribute images vs. person regions.

Two backends with one interface (``describe_attributes`` and ``describe_regions`` return unit
vectors; similarity = dot product):

* :class:`ColorTextureBackend` -- weight-free. A soft CIELAB colour histogram (few lightness
  bins, more chroma bins: lighting changes matter less than hue) plus a histogram of the
  lightness gradient (texture) of the attribute's *non-white* pixels, resp. of the person's
  region. Each part is square-rooted so the dot product of two descriptors is
  ``COLOR_WEIGHT * BC(colour) + (1 - COLOR_WEIGHT) * BC(texture)``, BC = the Bhattacharyya
  coefficient (1 = same distribution). It also names the dominant colours, which explains
  the usual failure: the colours of one person's attribute on another person.
* :class:`EmbeddingBackend` -- any image embedder ``crops [N, S, S, 3] -> [N, D]``, e.g. a
  CLIP-vision model (the ComfyUI node wraps ComfyUI's ``CLIP_VISION``). Attributes and region
  crops (outside the region whitened) are letterboxed on white to ``S x S``.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import numpy as np
import torch
from PIL import Image

from ..image_prep import letterbox, to_rgb
from .regions import bounding_box

# background of an attribute image: near-white pixels connected to the image border
WHITE_LEVEL = 0.94
# an odd number of a/b bins puts the neutral axis (white, greys, black) in a bin's middle
L_BINS, AB_BINS, AB_RANGE = 5, 11, 72.0
GRAD_BINS = 8
COLOR_WEIGHT = 0.8
TEXTURE_SIDE = 128          # texture is measured at this size (longer side of the region)
MIN_PIXELS = 16


# -- pixels -----------------------------------------------------------------------------------

def to_numpy_rgb(image) -> np.ndarray:
    """:func:`lumosx_core.image_prep.to_rgb` as a float32 numpy ``[H, W, 3]`` in [0, 1]."""
    return to_rgb(image).cpu().numpy()


def attribute_mask(image) -> np.ndarray:
    """Foreground of an attribute reference on white: bool ``[H, W]``. Near-white pixels
    (every channel >= ``WHITE_LEVEL``) connected to the border are background, so an
    off-white garment with an outline keeps its inside; an alpha channel < 0.5 is also
    background. When that leaves (almost) nothing, every non-near-white pixel counts."""
    arr = image.detach().float().cpu().numpy() if torch.is_tensor(image) else np.asarray(image)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    rgb = to_numpy_rgb(arr)
    white = rgb.min(axis=-1) >= WHITE_LEVEL
    if arr.ndim == 3 and arr.shape[-1] == 4:
        white |= arr[..., 3] < 0.5
    background = white
    try:
        from scipy import ndimage
    except ImportError:
        pass
    else:
        labels, _ = ndimage.label(white)
        border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        border = border[border > 0]
        background = np.isin(labels, border)
    fg = ~background
    if fg.sum() < MIN_PIXELS:
        fg = ~white
    if fg.sum() < MIN_PIXELS:
        fg = np.ones_like(white)
    return fg


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] ``[..., 3]`` -> CIELAB (D65) ``[..., 3]``."""
    c = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375],
                  [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
    e = 216.0 / 24389.0
    k = 24389.0 / 27.0
    f = np.where(xyz > e, np.cbrt(xyz), (k * xyz + 16.0) / 116.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]),
                     200.0 * (f[..., 1] - f[..., 2])], axis=-1)


def _smooth(h: np.ndarray) -> np.ndarray:
    """[1, 2, 1] / 4 along every axis (edges reflected): soft bins."""
    for ax in range(h.ndim):
        if h.shape[ax] < 3:
            continue
        p = np.concatenate([np.take(h, [0], ax), h, np.take(h, [-1], ax)], axis=ax)
        n = h.shape[ax]
        h = (np.take(p, range(0, n), ax) + 2 * np.take(p, range(1, n + 1), ax)
             + np.take(p, range(2, n + 2), ax)) / 4.0
    return h


def color_histogram(pixels: np.ndarray, lab: Optional[np.ndarray] = None) -> np.ndarray:
    """Soft Lab histogram (``L_BINS x AB_BINS x AB_BINS``, sums to 1) of ``[N, 3]`` RGB
    (or of ``lab`` ``[N, 3]`` when given)."""
    lab = srgb_to_lab(pixels.reshape(-1, 3).astype(np.float64)) if lab is None else lab
    li = np.clip((lab[:, 0] / 100.0 * L_BINS).astype(int), 0, L_BINS - 1)
    ab = np.clip((lab[:, 1:] + AB_RANGE) / (2 * AB_RANGE) * AB_BINS, 0, AB_BINS - 1e-6)
    ai, bi = ab[:, 0].astype(int), ab[:, 1].astype(int)
    h = np.bincount((li * AB_BINS + ai) * AB_BINS + bi,
                    minlength=L_BINS * AB_BINS * AB_BINS).astype(np.float64)
    h = _smooth(h.reshape(L_BINS, AB_BINS, AB_BINS))
    return h.reshape(-1) / max(h.sum(), 1e-12)


def _resized_lightness(L: np.ndarray, mask: np.ndarray):
    """Crop lightness ``L`` and ``mask`` to the mask's bounding box, resized (Pillow,
    antialiased) so the longer side is ``TEXTURE_SIDE``."""
    box = bounding_box(mask)
    if box is None:
        return L[:0, :0], mask[:0, :0]
    x1, y1, x2, y2 = box
    L, mask = L[y1:y2, x1:x2], mask[y1:y2, x1:x2]
    h, w = mask.shape
    s = TEXTURE_SIDE / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    Lr = np.asarray(Image.fromarray(np.ascontiguousarray(L, dtype=np.float32), mode="F")
                    .resize(size, Image.BILINEAR), dtype=np.float64)
    m = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.BILINEAR)) > 127
    return Lr, m


def texture_histogram(rgb: np.ndarray, mask: np.ndarray,
                      lightness: Optional[np.ndarray] = None) -> np.ndarray:
    """Histogram (``GRAD_BINS``, log-spaced, sums to 1) of the lightness gradient magnitude
    inside ``mask`` (eroded by one pixel, so the outline against white does not count),
    measured at a common scale. ``lightness``: CIELAB L of ``rgb`` when already known."""
    if lightness is None:
        lightness = srgb_to_lab(rgb.astype(np.float64))[..., 0]
    L, mask = _resized_lightness(lightness, mask)
    if mask.size == 0 or min(mask.shape) < 3:
        h = np.zeros(GRAD_BINS)
        h[0] = 1.0
        return h
    gy, gx = np.gradient(L)
    mag = np.hypot(gx, gy)
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    if inner.sum() < MIN_PIXELS:
        inner = mask
    edges = np.concatenate([[0.0], np.geomspace(0.5, 40.0, GRAD_BINS - 1), [np.inf]])
    h, _ = np.histogram(mag[inner], bins=edges)
    h = _smooth(h.astype(np.float64))
    return h / max(h.sum(), 1e-12)


def dominant_colors(pixels: np.ndarray, k: int = 3) -> List[dict]:
    """The ``k`` most frequent colours of ``[N, 3]`` RGB pixels (coarse Lab bins): mean
    colour as ``#rrggbb`` and its share."""
    px = pixels.reshape(-1, 3)
    if len(px) == 0:
        return []
    lab = srgb_to_lab(px.astype(np.float64))
    li = np.clip((lab[:, 0] / 100.0 * L_BINS).astype(int), 0, L_BINS - 1)
    ab = np.clip((lab[:, 1:] + AB_RANGE) / (2 * AB_RANGE) * 6, 0, 5.999).astype(int)
    key = li * 36 + ab[:, 0] * 6 + ab[:, 1]
    counts = np.bincount(key, minlength=L_BINS * 36)
    out = []
    for b in np.argsort(-counts)[:k]:
        if counts[b] == 0:
            break
        mean = px[key == b].mean(axis=0)
        out.append({"hex": "#%02x%02x%02x" % tuple(int(round(v * 255)) for v in mean),
                    "share": round(float(counts[b] / len(px)), 3)})
    return out


def descriptor(rgb: np.ndarray, mask: np.ndarray,
               lab: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
    """Unit vector ``[sqrt(w) sqrt(colour hist), sqrt(1 - w) sqrt(texture hist)]`` of the
    pixels of ``rgb`` ``[H, W, 3]`` under ``mask``; ``None`` when the mask is (nearly) empty.
    ``lab``: CIELAB of ``rgb`` ``[H, W, 3]`` when already known (one conversion per frame)."""
    if mask.sum() < MIN_PIXELS:
        return None
    if lab is None:
        lab = srgb_to_lab(rgb.astype(np.float64))
    c = np.sqrt(color_histogram(None, lab[mask]))
    t = np.sqrt(texture_histogram(rgb, mask, lab[..., 0]))
    v = np.concatenate([np.sqrt(COLOR_WEIGHT) * c, np.sqrt(1.0 - COLOR_WEIGHT) * t])
    return (v / max(np.linalg.norm(v), 1e-12)).astype(np.float32)


class ColorTextureBackend:
    """The weight-free backend (see the module docs)."""

    name = "color"
    description = "weight-free colour (CIELAB) + texture histograms of non-white pixels"

    def describe_attributes(self, images: Sequence) -> List[Optional[np.ndarray]]:
        out = []
        for img in images:
            rgb = to_numpy_rgb(img)
            out.append(descriptor(rgb, attribute_mask(img)))
        return out

    def describe_regions(self, frame, masks: Sequence[np.ndarray]) -> List[Optional[np.ndarray]]:
        rgb = to_numpy_rgb(frame)
        lab = srgb_to_lab(rgb.astype(np.float64))
        return [descriptor(rgb, m, lab) for m in masks]

    # explanations ------------------------------------------------------------------------
    def attribute_colors(self, image, k: int = 3) -> List[dict]:
        return dominant_colors(to_numpy_rgb(image)[attribute_mask(image)], k)

    def region_colors(self, frame, mask: np.ndarray, k: int = 3) -> List[dict]:
        return dominant_colors(to_numpy_rgb(frame)[mask], k)


def region_crop(rgb: np.ndarray, mask: np.ndarray) -> Optional[np.ndarray]:
    """The mask's bounding box of ``rgb``, pixels outside the mask set to white."""
    box = bounding_box(mask)
    if box is None or mask.sum() < MIN_PIXELS:
        return None
    x1, y1, x2, y2 = box
    crop = rgb[y1:y2, x1:x2].copy()
    crop[~mask[y1:y2, x1:x2]] = 1.0
    return crop


class EmbeddingBackend:
    """Appearance by an image embedder: ``embed([N, size, size, 3] float in [0, 1]) ->
    [N, D]`` (tensor or array). Attribute images are used whole (on white), regions as
    their bounding-box crop with the outside whitened."""

    def __init__(self, embed: Callable, size: int = 224, name: str = "clip_vision",
                 description: str = "CLIP-vision image embeddings (cosine)",
                 batch_size: int = 16):
        self.embed = embed
        self.size = int(size)
        self.name = name
        self.description = description
        self.batch_size = int(batch_size)

    def _run(self, crops: Sequence[Optional[np.ndarray]]) -> List[Optional[np.ndarray]]:
        idx = [i for i, c in enumerate(crops) if c is not None]
        out: List[Optional[np.ndarray]] = [None] * len(crops)
        for s in range(0, len(idx), self.batch_size):
            part = idx[s:s + self.batch_size]
            batch = torch.stack([letterbox(torch.from_numpy(crops[i]), self.size, self.size)
                                 for i in part])
            emb = self.embed(batch)
            emb = emb.detach().float().cpu().numpy() if torch.is_tensor(emb) else np.asarray(emb)
            emb = emb.reshape(len(part), -1).astype(np.float32)
            emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
            for i, e in zip(part, emb):
                out[i] = e
        return out

    def describe_attributes(self, images: Sequence) -> List[Optional[np.ndarray]]:
        return self._run([to_numpy_rgb(img) for img in images])

    def describe_regions(self, frame, masks: Sequence[np.ndarray]) -> List[Optional[np.ndarray]]:
        rgb = to_numpy_rgb(frame)
        return self._run([region_crop(rgb, m) for m in masks])


# -- background and plain baselines ----------------------------------------------------------

#: Width of the frame border sampled as background, as a fraction of the shorter side.
BORDER_FRACTION = 0.06
#: A region pixel is background when its colour is at least this many times more frequent
#: at the frame border (outside every person) than in the region itself.
BACKGROUND_RATIO = 1.5
#: Least share of a region kept after background removal (else the region is used whole).
MIN_FOREGROUND = 0.25
_BG_L, _BG_AB = 10, 15

#: Plain patches a region is compared with to test whether an attribute is there at all:
#: greys from near-black to near-white and four skin tones (sRGB 0-255).
NEUTRAL_COLORS = {
    **{f"grey {v}": (v, v, v) for v in (20, 50, 85, 120, 150, 180, 210, 235)},
    "light skin": (224, 177, 145), "medium skin": (198, 134, 99),
    "brown skin": (141, 85, 54), "dark skin": (90, 56, 37),
}
PATCH_SIDE = 48
PATCH_NOISE = 0.004


def border_mask(height: int, width: int, exclude: Optional[np.ndarray] = None) -> np.ndarray:
    """bool ``[H, W]``: the outer ``BORDER_FRACTION`` of the frame on all four sides, minus
    ``exclude`` (people's regions and faces)."""
    b = max(2, int(round(BORDER_FRACTION * min(height, width))))
    m = np.zeros((height, width), dtype=bool)
    m[:b], m[-b:], m[:, :b], m[:, -b:] = True, True, True, True
    if exclude is not None:
        m &= ~exclude
    return m


def _bg_bins(rgb_pixels: np.ndarray) -> np.ndarray:
    lab = srgb_to_lab(rgb_pixels.reshape(-1, 3).astype(np.float64))
    li = np.clip((lab[:, 0] / 100.0 * _BG_L).astype(int), 0, _BG_L - 1)
    ab = np.clip((lab[:, 1:] + AB_RANGE) / (2 * AB_RANGE) * _BG_AB, 0, _BG_AB - 1e-6).astype(int)
    return (li * _BG_AB + ab[:, 0]) * _BG_AB + ab[:, 1]


def _bg_hist(bins: np.ndarray) -> np.ndarray:
    h = np.bincount(bins, minlength=_BG_L * _BG_AB * _BG_AB).astype(np.float64)
    h = _smooth(h.reshape(_BG_L, _BG_AB, _BG_AB)).reshape(-1)
    return h / max(h.sum(), 1e-12)


def foreground_mask(rgb: np.ndarray, region: np.ndarray, border: np.ndarray) -> np.ndarray:
    """``region`` without the pixels whose colour belongs to the background: a pixel is
    dropped when its (fine Lab bin) colour is at least ``BACKGROUND_RATIO`` times more
    frequent among the ``border`` pixels than in the region. When less than
    ``MIN_FOREGROUND`` of the region (or fewer than ``MIN_PIXELS``) would be left, or the
    border has too few pixels, the region is returned unchanged."""
    if border.sum() < 4 * MIN_PIXELS or region.sum() < MIN_PIXELS:
        return region
    h_bg = _bg_hist(_bg_bins(rgb[border]))
    bins = _bg_bins(rgb[region])
    h_reg = _bg_hist(bins)
    keep = ~(h_bg[bins] >= BACKGROUND_RATIO * h_reg[bins])
    if keep.sum() < max(MIN_PIXELS, MIN_FOREGROUND * len(bins)):
        return region
    out = np.zeros_like(region)
    out[region] = keep
    return out


def neutral_patches() -> dict:
    """``{name: [PATCH_SIDE, PATCH_SIDE, 3] float}``: the plain patches of
    :data:`NEUTRAL_COLORS` with a little fixed noise (like a compressed flat area)."""
    rng = np.random.default_rng(0)
    out = {}
    for name, c in NEUTRAL_COLORS.items():
        noise = rng.normal(0.0, PATCH_NOISE, size=(PATCH_SIDE, PATCH_SIDE, 1))
        out[name] = np.clip(np.asarray(c, np.float32)[None, None] / 255.0 + noise,
                            0, 1).astype(np.float32)
    return out


def describe_patches(backend, patches: dict) -> dict:
    """Descriptors of whole patches with ``backend`` (``{name: vector}``)."""
    out = {}
    for name, img in patches.items():
        full = np.ones(img.shape[:2], dtype=bool)
        (d,) = backend.describe_regions(torch.from_numpy(np.ascontiguousarray(img)), [full])
        if d is not None:
            out[name] = d
    return out


def clip_vision_embedder(clip_vision) -> "EmbeddingBackend":
    """An :class:`EmbeddingBackend` over a ComfyUI ``CLIP_VISION`` object (duck-typed:
    ``encode_image(batch [N, S, S, 3]).image_embeds``, ``image_size``); used by the node and
    by ``lumosx eval --clip-vision`` alike."""
    size = int(getattr(clip_vision, "image_size", 224) or 224)

    def embed(batch: torch.Tensor) -> torch.Tensor:
        return clip_vision.encode_image(batch).image_embeds

    return EmbeddingBackend(embed, size=size, name="clip_vision",
                            description="CLIP-vision image embeddings (cosine)")


#: Region cells: the 2 x 2 and 3 x 3 grids over the (foreground) region. An attribute is
#: scored at the cell that resembles it most, so one garment among others (a shirt under
#: an open jacket) or a garment narrower than the region is not averaged away, and a
#: mixture of several plain areas (a grey block, a white sheet, a brown blanket) is not
#: mistaken for a garment of mixed colours.
CELL_GRIDS = (2, 3)
MIN_CELL_SHARE = 0.35


def region_cells(mask: np.ndarray) -> List[np.ndarray]:
    """The mask cut by a 2 x 2 and a 3 x 3 grid over its bounding box; cells with less than
    ``MIN_CELL_SHARE`` of their box (or ``4 * MIN_PIXELS``) in the mask are left out (the
    whole mask when no cell is left)."""
    out = []
    box = bounding_box(mask)
    if box is None:
        return [mask]
    x1, y1, x2, y2 = box
    for g in CELL_GRIDS:
        xs = np.linspace(x1, x2, g + 1).round().astype(int)
        ys = np.linspace(y1, y2, g + 1).round().astype(int)
        for i in range(g):
            for j in range(g):
                cell = np.zeros_like(mask)
                cell[ys[i]:ys[i + 1], xs[j]:xs[j + 1]] = mask[ys[i]:ys[i + 1], xs[j]:xs[j + 1]]
                area = (ys[i + 1] - ys[i]) * (xs[j + 1] - xs[j])
                n = int(cell.sum())
                if n >= max(4 * MIN_PIXELS, MIN_CELL_SHARE * area):
                    out.append(cell)
    return out or [mask]
