"""Appearance descriptors for the binding check: attribute images vs. person regions.

Two backends with one interface (``describe_attributes`` and ``describe_regions`` return unit
vectors; similarity = dot product):

* :class:`ColorTextureBackend` -- weight-free (and ``describe_cells``: a region's cells,
  each grid's texture measured on one resize). A soft CIELAB colour histogram (few lightness
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
ATTRIBUTE_SIDE = 256        # attribute photos are described at most this big
MIN_PIXELS = 16


# -- pixels -----------------------------------------------------------------------------------

def to_numpy_rgb(image) -> np.ndarray:
    """:func:`lumosx_core.image_prep.to_rgb` as a float32 numpy ``[H, W, 3]`` in [0, 1]
    (float RGB arrays are only clipped)."""
    if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[-1] == 3 \
            and image.dtype == np.float32:
        return np.clip(image, 0.0, 1.0)
    return to_rgb(image).cpu().numpy()


def attribute_mask(image, see_through: bool = False) -> np.ndarray:
    """Foreground of an attribute reference on white: bool ``[H, W]``. Near-white pixels
    (every channel >= ``WHITE_LEVEL``) connected to the border are background, so an
    off-white garment with an outline keeps its inside; an alpha channel < 0.5 is also
    background. When that leaves (almost) nothing, every non-near-white pixel counts.
    ``see_through`` (glasses: the white inside a frame is the lens): every near-white pixel
    is background."""
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
        ndimage = None
    if ndimage is not None and not see_through:
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


def shrink(image, side: int = ATTRIBUTE_SIDE):
    """``image`` ``[H, W, C]`` (tensor or array) as float ``[h, w, C]``, its longer side at
    most ``side`` (antialiased): an attribute photo's colours and texture do not need more."""
    arr = image.detach().float().cpu().numpy() if torch.is_tensor(image) else np.asarray(image)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    h, w = arr.shape[:2]
    if max(h, w) <= side:
        return arr
    s = side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(arr[..., c], dtype=np.float32),
                                        mode="F").resize(size, Image.BOX), dtype=np.float32)
             for c in range(arr.shape[-1])]
    return np.stack(chans, -1)


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
    inner = _erode(mask)
    if inner.sum() < MIN_PIXELS:
        inner = mask
    return _gradient_histogram(np.hypot(gx, gy)[inner])


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


def _gradient_histogram(mag: np.ndarray) -> np.ndarray:
    edges = np.concatenate([[0.0], np.geomspace(0.5, 40.0, GRAD_BINS - 1), [np.inf]])
    h, _ = np.histogram(mag, bins=edges)
    h = _smooth(h.astype(np.float64))
    return h / max(h.sum(), 1e-12)


def _erode(mask: np.ndarray) -> np.ndarray:
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return inner


def _combine(color: np.ndarray, texture: np.ndarray) -> np.ndarray:
    v = np.concatenate([np.sqrt(COLOR_WEIGHT) * np.sqrt(color),
                        np.sqrt(1.0 - COLOR_WEIGHT) * np.sqrt(texture)])
    return (v / max(np.linalg.norm(v), 1e-12)).astype(np.float32)


def descriptor(rgb: np.ndarray, mask: np.ndarray,
               lab: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
    """Unit vector ``[sqrt(w) sqrt(colour hist), sqrt(1 - w) sqrt(texture hist)]`` of the
    pixels of ``rgb`` ``[H, W, 3]`` under ``mask``; ``None`` when the mask is (nearly) empty.
    ``lab``: CIELAB of ``rgb`` ``[H, W, 3]`` when already known (one conversion per frame)."""
    if mask.sum() < MIN_PIXELS:
        return None
    if lab is None:
        lab = srgb_to_lab(rgb.astype(np.float64))
    return _combine(color_histogram(None, lab[mask]), texture_histogram(rgb, mask, lab[..., 0]))


class ColorTextureBackend:
    """The weight-free backend (see the module docs)."""

    name = "color"
    description = "weight-free colour (CIELAB) + texture histograms of non-white pixels"

    def describe_attributes(self, images: Sequence,
                            see_through: Optional[Sequence[bool]] = None
                            ) -> List[Optional[np.ndarray]]:
        """Descriptors of the attribute photos' foreground (:func:`attribute_mask`;
        ``see_through[i]``: photo ``i`` is of glasses)."""
        out = []
        for i, img in enumerate(images):
            img = shrink(img)
            clear = bool(see_through[i]) if see_through is not None else False
            out.append(descriptor(to_numpy_rgb(img), attribute_mask(img, clear)))
        return out

    def describe_regions(self, frame, masks: Sequence[np.ndarray]) -> List[Optional[np.ndarray]]:
        rgb = to_numpy_rgb(frame)
        lab = srgb_to_lab(rgb.astype(np.float64))
        return [descriptor(rgb, m, lab) for m in masks]

    def describe_cells(self, frame, mask: np.ndarray, lab: Optional[np.ndarray] = None):
        """``(cells, descriptors)``: :func:`region_cells` of ``mask`` and their descriptors,
        the texture of each grid measured on one resize of the region (each cell's longer
        side at ``TEXTURE_SIDE``) instead of one per cell. ``lab``: CIELAB of ``frame``
        when already known."""
        rgb = to_numpy_rgb(frame)
        box = bounding_box(mask)
        if box is None or mask.sum() < MIN_PIXELS:
            return [mask], [None]
        lab = srgb_to_lab(rgb.astype(np.float64)) if lab is None else lab
        x1, y1, x2, y2 = box
        L, m = lab[y1:y2, x1:x2, 0], mask[y1:y2, x1:x2]
        cells, descs = [], []
        for g, (ys, xs, kept) in _grid_cells(mask, box).items():
            if not kept:
                continue
            s = TEXTURE_SIDE / max((x2 - x1) / g, (y2 - y1) / g)
            size = (max(1, round((x2 - x1) * s)), max(1, round((y2 - y1) * s)))
            Lr = np.asarray(Image.fromarray(np.ascontiguousarray(L, dtype=np.float32),
                                            mode="F").resize(size, Image.BILINEAR),
                            dtype=np.float64)
            mr = np.asarray(Image.fromarray(m.astype(np.uint8) * 255)
                            .resize(size, Image.BILINEAR)) > 127
            if min(Lr.shape) >= 2:
                gy, gx = np.gradient(Lr)
                mag = np.hypot(gx, gy)
            else:
                mag = np.zeros_like(Lr)
            inner = _erode(mr)
            for i, j, cell in kept:
                ra, rb = (int(round((v - y1) * s)) for v in (ys[i], ys[i + 1]))
                ca, cb = (int(round((v - x1) * s)) for v in (xs[j], xs[j + 1]))
                sub = inner[ra:rb, ca:cb]
                if sub.sum() < MIN_PIXELS:
                    sub = mr[ra:rb, ca:cb]
                texture = _gradient_histogram(mag[ra:rb, ca:cb][sub])
                cells.append(cell)
                descs.append(_combine(color_histogram(None, lab[cell]), texture))
        if not cells:
            return [mask], [descriptor(rgb, mask, lab)]
        return cells, descs

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

    def describe_attributes(self, images: Sequence,
                            see_through: Optional[Sequence[bool]] = None
                            ) -> List[Optional[np.ndarray]]:
        """Embeddings of the attribute photos, whole (``see_through`` changes nothing)."""
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


def background_histogram(rgb: np.ndarray, border: np.ndarray) -> Optional[np.ndarray]:
    """The fine-bin Lab histogram of the ``border`` pixels of ``rgb`` (``None`` when the
    border has too few pixels), for :func:`foreground_mask`."""
    if border.sum() < 4 * MIN_PIXELS:
        return None
    return _bg_hist(_bg_bins(rgb[border]))


def foreground_mask(rgb: np.ndarray, region: np.ndarray, background) -> np.ndarray:
    """``region`` without the pixels whose colour belongs to the background: a pixel is
    dropped when its (fine Lab bin) colour is at least ``BACKGROUND_RATIO`` times more
    frequent in ``background`` (:func:`background_histogram`, or a border mask of ``rgb``)
    than in the region. When less than ``MIN_FOREGROUND`` of the region (or fewer than
    ``MIN_PIXELS``) would be left, or there is no background, the region is returned
    unchanged."""
    if background is not None and background.dtype == bool:
        background = background_histogram(rgb, background)
    if background is None or region.sum() < MIN_PIXELS:
        return region
    bins = _bg_bins(rgb[region])
    h_reg = _bg_hist(bins)
    keep = ~(background[bins] >= BACKGROUND_RATIO * h_reg[bins])
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


def _grid_cells(mask: np.ndarray, box) -> dict:
    """``{grid: (row edges, column edges, [(i, j, cell mask)])}`` of the cells kept (see
    :func:`region_cells`)."""
    x1, y1, x2, y2 = box
    out = {}
    for g in CELL_GRIDS:
        xs = np.linspace(x1, x2, g + 1).round().astype(int)
        ys = np.linspace(y1, y2, g + 1).round().astype(int)
        kept = []
        for i in range(g):
            for j in range(g):
                cell = np.zeros_like(mask)
                cell[ys[i]:ys[i + 1], xs[j]:xs[j + 1]] = mask[ys[i]:ys[i + 1], xs[j]:xs[j + 1]]
                area = (ys[i + 1] - ys[i]) * (xs[j + 1] - xs[j])
                if int(cell.sum()) >= max(4 * MIN_PIXELS, MIN_CELL_SHARE * area):
                    kept.append((i, j, cell))
        out[g] = (ys, xs, kept)
    return out


def region_cells(mask: np.ndarray) -> List[np.ndarray]:
    """The mask cut by a 2 x 2 and a 3 x 3 grid over its bounding box; cells with less than
    ``MIN_CELL_SHARE`` of their box (or ``4 * MIN_PIXELS``) in the mask are left out (the
    whole mask when no cell is left)."""
    box = bounding_box(mask)
    if box is None:
        return [mask]
    out = [cell for _, _, kept in _grid_cells(mask, box).values() for _, _, cell in kept]
    return out or [mask]


# -- colour shifts and body looks -------------------------------------------------------------

def hue_turned(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """``rgb`` ``[..., 3]`` in [0, 1] with its hue turned by ``degrees`` (HSV; greys, value
    and saturation unchanged)."""
    rgb = np.clip(np.asarray(rgb, np.float32), 0.0, 1.0)
    mx, mn = rgb.max(-1), rgb.min(-1)
    delta = mx - mn
    safe = np.where(delta > 1e-6, delta, 1.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    h = np.where(mx == r, ((g - b) / safe) % 6.0,
                 np.where(mx == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0))
    h = np.where(delta > 1e-6, (h + degrees / 60.0) % 6.0, 0.0)
    s = np.where(mx > 1e-6, delta / np.where(mx > 1e-6, mx, 1.0), 0.0)
    i = np.floor(h).astype(int) % 6
    f = h - np.floor(h)
    p, q, t = mx * (1 - s), mx * (1 - s * f), mx * (1 - s * (1 - f))
    choices = [np.stack(c, -1) for c in ((mx, t, p), (q, mx, p), (p, mx, t), (p, q, mx),
                                         (t, p, mx), (mx, p, q))]
    out = np.zeros_like(rgb)
    for k in range(6):
        out = np.where((i == k)[..., None], choices[k], out)
    return out


def look(rgb: np.ndarray, mask: np.ndarray) -> Optional[np.ndarray]:
    """A coarse appearance of the pixels under ``mask`` (fine-bin Lab histogram, square
    rooted: unit vector; dot product = Bhattacharyya coefficient); ``None`` when empty."""
    if mask.sum() < MIN_PIXELS:
        return None
    v = np.sqrt(_bg_hist(_bg_bins(rgb[mask])))
    return (v / max(np.linalg.norm(v), 1e-12)).astype(np.float32)
