"""Ground-truth videos for the evaluation (issues 16 and 27): videos whose right answer is
known, made from real faces (the LumosX authors' reference cases in
``../shared/testdata/lumosx_reference_cases`` and photos that ship in installed wheels:
insightface's t1.jpg and Tom Hanks, vectron's yaoming / gdp / players, scikit-image's
astronaut), the authors' attribute photos, and garments, caps, glasses and scarves drawn
here.

Each shown person is a face with their garments under it (torso; a second garment between
the fronts of the first), a cap on the head, glasses over the eyes, a scarf at the neck; over
a panning background; every frame jitters each person (position, size, brightness) and the
people drift; the frame is then lit (dark, tinted, hue-shifted, light from one side) and the
video can be round-tripped through H.264 (``crf``).

What is worn where (:class:`Scene`) decides the truth of every (person, attribute) pair:
the attribute on its owner in every frame is ``correct``; on someone else only, ``wrong``;
on nobody (a grey block, or left out), ``missing``; on its owner in some frames and on
someone else in others (faces exchanged mid-video), ``mixed``; and any pair of a
hue-shifted video whose colours no longer match is ``ambiguous`` (the honest verdict is
undecided; greys, whites and blacks do not change). Identity truth: the frames where a
body's face changes (an identity swap).

Two disjoint sets (:data:`SPLITS`): ``calibration`` (the thresholds are chosen on it) and
``heldout`` (the claims are measured on it) differ in people, garments, backgrounds and
lighting. :func:`scenes` draws a set of scenes; :func:`render` makes one video.

Nothing is copied into the repository; tests skip when the shared cases or the wheels'
photos are absent.
"""
from __future__ import annotations

import colorsys
import io
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_CASES = os.path.join(os.path.dirname(ROOT), "shared", "testdata",
                            "lumosx_reference_cases")
ROOM = os.path.join(SHARED_CASES, "subject_consistency_test_data", "2", "background",
                    "cozy, warmly lit room.png")
KINDS = ("correct", "swapped", "rotated", "moved", "missing", "crossing", "identity_swap",
         "no_face", "stranger")

#: where an attribute is worn on a body
TORSO, INNER, HEAD, EYES, NECK = "torso", "inner", "head", "eyes", "neck"


@dataclass
class GTPerson:
    """A person of a ground-truth case: face crop ``[H, W, 3]`` float, its phrase, and
    attributes ``[(phrase, image [H, W, 3] float on white)]``; ``slots[k]``: where
    attribute ``k`` is worn (default: the first on the torso, a second between its
    fronts)."""

    phrase: str
    face: torch.Tensor
    attributes: List[Tuple[str, torch.Tensor]] = field(default_factory=list)
    slots: Optional[List[str]] = None

    def slot(self, k: int) -> str:
        if self.slots is not None:
            return self.slots[k]
        return TORSO if k == 0 else INNER


@dataclass
class GTVideo:
    kind: str
    frames: torch.Tensor                      # [F, H, W, 3] float in [0, 1]
    people: List[GTPerson]
    face_boxes: List[Dict[int, tuple]]        # per frame: shown identity -> pasted face box
    truth: dict
    seed: int

    def references(self):
        from lumosx_core.conditioning.references import ReferenceSet
        refs = ReferenceSet()
        for p in self.people:
            refs = refs.with_person(p.face, p.phrase, [(img, ph) for ph, img in p.attributes])
        return refs


# -- sources ----------------------------------------------------------------------------------

def load_rgb(path: str) -> torch.Tensor:
    with Image.open(path) as im:
        return torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0)


def shared_people(case: str) -> List[GTPerson]:
    """The people of a shared reference case (``subject_consistency_test_data/1``, ...)."""
    from lumosx_core.evaluation.cases import load_case
    c = load_case(os.path.join(SHARED_CASES, case))
    return [GTPerson(p.face.phrase, p.face.image, [(a.phrase, a.image) for a in p.attributes])
            for p in c.references.people]


def shared_attributes() -> List[Tuple[str, torch.Tensor]]:
    """Every attribute photo of the shared cases (white / black / denim jacket, white shirt,
    light brown sweater)."""
    from lumosx_core.evaluation.cases import discover_cases, load_case
    return [(a.phrase, a.image) for d in discover_cases(SHARED_CASES)
            for p in load_case(d).references.people for a in p.attributes]


def stranger_face() -> torch.Tensor:
    """A face from insightface's t1.jpg (nobody of the shared cases)."""
    return face_library()["t1:1"]


# faces located once with the vectron SCRFD detector (x1, y1, x2, y2) in their photos
T1_BOXES = [(745, 342, 847, 480), (463, 266, 572, 415), (55, 260, 168, 397),
            (906, 59, 1011, 206), (1130, 272, 1227, 400), (270, 144, 371, 270)]
GDP_BOXES = [(348, 115, 412, 206), (129, 38, 193, 117), (266, 56, 328, 154)]
PLAYER_BOXES = [(171, 419, 212, 470), (1041, 222, 1088, 274), (658, 440, 699, 492),
                (118, 251, 159, 298), (1158, 255, 1202, 309), (867, 434, 908, 483),
                (486, 435, 529, 494), (324, 415, 364, 467), (575, 176, 612, 223),
                (980, 207, 1020, 254)]
SHARED_FACES = {"sh:s1a": ("subject_consistency_test_data/1", 0),
                "sh:s1b": ("subject_consistency_test_data/1", 1),
                "sh:s2a": ("subject_consistency_test_data/2", 0),
                "sh:s2b": ("subject_consistency_test_data/2", 1),
                # identity_consistency_test_data/1 person 1 is sh:s1b (ArcFace 0.97)
                "sh:i1b": ("identity_consistency_test_data/1", 1),
                "sh:i2a": ("identity_consistency_test_data/2", 0),
                "sh:i2b": ("identity_consistency_test_data/2", 1)}


@lru_cache(maxsize=1)
def face_library() -> Dict[str, torch.Tensor]:
    """Every usable real face: key -> reference crop ``[H, W, 3]`` float (one person per
    key; different keys are different people)."""
    import eval_frames as ef
    from face_fixtures import astronaut, insightface_image, vectron_image
    from lumosx_core.evaluation.cases import load_case
    out = {}
    if os.path.isdir(SHARED_CASES):
        for key, (case, i) in SHARED_FACES.items():
            out[key] = load_case(os.path.join(SHARED_CASES, case)).references.people[i].face.image
    t1 = insightface_image("t1.jpg")
    for i, b in enumerate(T1_BOXES):
        out[f"t1:{i}"] = ef.reference_face(t1, b)
    gdp = vectron_image("gdp.jpg")
    for i, b in enumerate(GDP_BOXES):
        out[f"gdp:{i}"] = ef.reference_face(gdp, b)
    players = vectron_image("players.jpg")
    for i, b in enumerate(PLAYER_BOXES):
        out[f"pl:{i}"] = ef.reference_face(players, b, 0.35)
    out["tom"] = ef.reference_face(insightface_image("Tom_Hanks_54745.png"), (6, 1, 84, 112), 0.1)
    out["astronaut"] = ef.reference_face(astronaut(), ef.ASTRONAUT_FACE)
    out["yao"] = ef.reference_face(vectron_image("yaoming.jpg"), ef.YAO_FACE)
    return out


# -- drawn attributes (on white, like the authors' attribute photos) --------------------------

def _canvas(w: int = 320, h: int = 320):
    img = Image.new("RGB", (w, h), (255, 255, 255))
    return img, ImageDraw.Draw(img)


def _shade(color, f: float):
    return tuple(int(np.clip(c * f, 0, 255)) for c in color)


def _pattern(img: Image.Image, mask: Image.Image, pattern: str, color2, seed: int):
    """Stripes / checks / dots of ``color2`` over the garment under ``mask``."""
    if pattern == "solid":
        return img
    over = img.copy()
    d = ImageDraw.Draw(over)
    w, h = img.size
    rng = np.random.default_rng(seed)
    if pattern == "stripes":
        for y in range(int(rng.integers(0, 12)), h, 26):
            d.rectangle([0, y, w, y + 10], fill=color2)
    elif pattern == "checks":
        for y in range(0, h, 36):
            for x in range(0, w, 36):
                if (x // 36 + y // 36) % 2 == 0:
                    d.rectangle([x, y, x + 35, y + 35], fill=color2)
    elif pattern == "dots":
        for y in range(10, h, 30):
            for x in range(10 + (y // 30 % 2) * 15, w, 30):
                d.ellipse([x - 6, y - 6, x + 6, y + 6], fill=color2)
    return Image.composite(over, img, mask)


def draw_top(color, style: str = "jacket", pattern: str = "solid", color2=(255, 255, 255),
             seed: int = 0) -> torch.Tensor:
    """An upper-body garment on white: ``style`` jacket (lapels, buttons), sweater (ribbed
    cuffs) or hoodie (hood, pocket); ``pattern`` solid / stripes / checks / dots."""
    img, d = _canvas()
    mask = Image.new("L", img.size, 0)
    md = ImageDraw.Draw(mask)
    body = [(96, 58), (224, 58), (292, 112), (276, 262), (250, 254), (250, 304),
            (70, 304), (70, 254), (44, 262), (28, 112)]
    for dd, fill in ((d, color), (md, 255)):
        dd.polygon(body, fill=fill)
    img = _pattern(img, mask, pattern, color2, seed)
    d = ImageDraw.Draw(img)
    dark = _shade(color, 0.6)
    if style == "jacket":
        d.line([(160, 70), (160, 304)], fill=dark, width=3)
        d.polygon([(126, 58), (160, 118), (194, 58)], fill=_shade(color, 1.15), outline=dark)
        for y in (150, 195, 240):
            d.ellipse([154, y, 166, y + 12], fill=dark)
    elif style == "sweater":
        for x0, x1 in ((44, 74), (246, 276)):
            d.rectangle([x0, 244, x1, 262], fill=dark)
        d.rectangle([70, 286, 250, 304], fill=dark)
        d.ellipse([128, 46, 192, 80], fill=(255, 255, 255), outline=dark, width=5)
    else:                                                   # hoodie
        d.ellipse([108, 24, 212, 96], fill=_shade(color, 0.85), outline=dark, width=4)
        d.rectangle([112, 196, 208, 250], outline=dark, width=4)
        d.line([(148, 80), (146, 140)], fill=(240, 240, 240), width=3)
        d.line([(172, 80), (174, 140)], fill=(240, 240, 240), width=3)
    noise = np.random.default_rng(seed).normal(0, 5, (img.height, img.width, 1))
    arr = np.asarray(img, np.float32)
    inside = np.asarray(mask) > 0
    arr[inside] = np.clip(arr[inside] + noise[inside], 0, 254)
    return torch.from_numpy(arr / 255.0)


def draw_cap(color, seed: int = 0, logo=None) -> torch.Tensor:
    """A baseball cap (crown, visor, seams; optional logo) on white."""
    img, d = _canvas(320, 240)
    dark = _shade(color, 0.65)
    d.pieslice([50, 40, 270, 250], 180, 360, fill=color, outline=dark, width=4)
    d.polygon([(40, 145), (280, 145), (300, 170), (20, 170)], fill=_shade(color, 0.8),
              outline=dark)
    d.line([(160, 42), (160, 145)], fill=dark, width=3)
    d.arc([90, 60, 230, 250], 200, 340, fill=dark, width=3)
    d.ellipse([152, 34, 168, 48], fill=dark)
    if logo is not None:
        d.rectangle([130, 90, 190, 125], fill=logo)
    noise = np.random.default_rng(seed).normal(0, 4, (240, 320, 1))
    arr = np.asarray(img, np.float32)
    inside = arr.min(-1) < 250
    arr[inside] = np.clip(arr[inside] + noise[inside], 0, 254)
    return torch.from_numpy(arr / 255.0)


def draw_glasses(color=(20, 20, 20), lens=None) -> torch.Tensor:
    """Glasses: two thick frames and a bridge (``lens``: tinted lenses) on white."""
    img, d = _canvas(320, 120)
    for x in (30, 180):
        d.rounded_rectangle([x, 24, x + 110, 96], radius=26, fill=lens, outline=color, width=12)
    d.arc([130, 30, 190, 80], 200, 340, fill=color, width=10)
    d.line([(30, 46), (4, 36)], fill=color, width=10)
    d.line([(290, 46), (316, 36)], fill=color, width=10)
    return torch.from_numpy(np.asarray(img, np.float32) / 255.0)


def draw_scarf(color, color2=None) -> torch.Tensor:
    """A scarf (a band with a hanging end; stripes of ``color2``) on white."""
    img, d = _canvas(320, 220)
    mask = Image.new("L", img.size, 0)
    md = ImageDraw.Draw(mask)
    shapes = [("rr", [20, 20, 300, 90]), ("poly", [(190, 70), (250, 70), (262, 210),
                                                     (202, 210)])]
    for dd, fill in ((d, color), (md, 255)):
        for k, s in shapes:
            if k == "rr":
                dd.rounded_rectangle(s, radius=30, fill=fill)
            else:
                dd.polygon(s, fill=fill)
    if color2 is not None:
        img = _pattern(img, mask, "stripes", color2, 0)
    return torch.from_numpy(np.asarray(img, np.float32) / 255.0)


def recolor(img: torch.Tensor, hue: float = 0.0, tint=None) -> torch.Tensor:
    """An attribute photo with its non-white pixels hue-rotated by ``hue`` degrees, or
    multiplied by ``tint`` (0-1 per channel; colours a white garment)."""
    from lumosx_core.evaluation.appearance import attribute_mask
    arr = img.numpy().copy()
    m = attribute_mask(img)
    if tint is not None:
        arr[m] = arr[m] * np.asarray(tint, np.float32)
    if hue:
        arr[m] = hue_rotate(arr[m], hue)
    return torch.from_numpy(arr)


def hue_rotate(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate the hue of ``[..., 3]`` RGB in [0, 1] (HSV, greys unchanged): the core's."""
    from lumosx_core.evaluation.appearance import hue_turned
    return hue_turned(rgb, degrees)


@lru_cache(maxsize=1)
def _authors() -> Dict[str, torch.Tensor]:
    return dict(shared_attributes()) if os.path.isdir(SHARED_CASES) else {}


def _named_color(rgb) -> str:
    h, l, s = colorsys.rgb_to_hls(*(c / 255.0 for c in rgb))
    if s < 0.2 or l < 0.12 or l > 0.9:
        return "black" if l < 0.3 else ("white" if l > 0.75 else "grey")
    names = [(15, "red"), (40, "orange"), (65, "yellow"), (160, "green"), (200, "teal"),
             (255, "blue"), (290, "purple"), (340, "pink"), (361, "red")]
    deg = h * 360
    return next(n for lim, n in names if deg < lim)


#: attribute recipes per split: (phrase, slot, how to make it). Held-out garments never
#: share a colour-and-shape with calibration ones.
def _recipes(split: str) -> List[Tuple[str, str, tuple]]:
    if split == "calibration":
        tops = [((200, 30, 30), "jacket", "solid", None), ((40, 150, 60), "hoodie", "solid", None),
                ((230, 200, 40), "sweater", "stripes", (120, 90, 20)),
                ((110, 60, 160), "jacket", "checks", (60, 30, 90)),
                ((230, 230, 225), "hoodie", "solid", None),
                ((40, 40, 45), "sweater", "dots", (200, 200, 200))]
        caps = [((200, 30, 30), None), ((30, 30, 30), (240, 240, 240))]
        glasses = [((20, 20, 20), None)]
        scarves = [((200, 40, 40), (250, 250, 250)), ((240, 200, 40), None)]
        authors = [("white jacket", TORSO, ("authors", "white jacket", 0, None)),
                   ("black jacket", TORSO, ("authors", "black jacket", 0, None)),
                   ("light brown sweater", TORSO, ("authors", "light brown sweater", 0, None)),
                   ("dark green sweater", TORSO, ("authors", "light brown sweater", 90, None)),
                   ("pink jacket", TORSO, ("authors", "white jacket", 0, (0.95, 0.6, 0.7)))]
    else:
        tops = [((30, 60, 190), "jacket", "solid", None),
                ((230, 120, 30), "sweater", "solid", None),
                ((20, 150, 150), "hoodie", "stripes", (230, 230, 230)),
                ((220, 90, 150), "jacket", "dots", (250, 250, 250)),
                ((120, 80, 40), "hoodie", "checks", (200, 170, 120)),
                ((150, 150, 155), "jacket", "solid", None)]
        caps = [((40, 70, 200), None), ((240, 240, 235), (200, 30, 30))]
        glasses = [((150, 100, 30), None), ((30, 30, 30), (60, 50, 40))]
        scarves = [((40, 150, 70), None), ((40, 60, 170), (240, 220, 60))]
        authors = [("denim jacket", TORSO, ("authors", "denim jacket", 0, None)),
                   ("white shirt", INNER, ("authors", "white shirt", 0, None)),
                   ("red denim jacket", TORSO, ("authors", "denim jacket", 150, None)),
                   ("yellow shirt", INNER, ("authors", "white shirt", 0, (1.0, 0.85, 0.3)))]
    out = list(authors) if _authors() else []
    for i, (c, style, pat, c2) in enumerate(tops):
        word = {"jacket": "jacket", "sweater": "sweater", "hoodie": "hoodie"}[style]
        extra = "" if pat == "solid" else f" {pat[:-1] if pat != 'stripes' else 'striped'}"
        extra = {" check": " checked", " dot": " dotted"}.get(extra, extra)
        out.append((f"{_named_color(c)}{extra} {word}", TORSO, ("top", c, style, pat, c2, i)))
    for i, (c, logo) in enumerate(caps):
        out.append((f"{_named_color(c)} baseball cap", HEAD, ("cap", c, logo, i)))
    for c, lens in glasses:
        out.append(("sunglasses" if lens else f"{_named_color(c)} glasses", EYES,
                    ("glasses", c, lens)))
    for c, c2 in scarves:
        out.append((f"{_named_color(c)}{' striped' if c2 else ''} scarf", NECK,
                    ("scarf", c, c2)))
    return out


@lru_cache(maxsize=None)
def _attribute_image(recipe: tuple) -> torch.Tensor:
    kind = recipe[0]
    if kind == "authors":
        _, name, hue, tint = recipe
        img = _authors()[name]
        return recolor(img, hue, tint) if (hue or tint) else img
    if kind == "top":
        _, c, style, pat, c2, seed = recipe
        return draw_top(c, style, pat, c2 or (255, 255, 255), seed)
    if kind == "cap":
        _, c, logo, seed = recipe
        return draw_cap(c, seed, logo)
    if kind == "glasses":
        return draw_glasses(recipe[1], recipe[2])
    return draw_scarf(recipe[1], recipe[2])


# -- splits -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Split:
    faces: Tuple[str, ...]
    backgrounds: Tuple[str, ...]
    lights: Tuple[tuple, ...]


SPLITS = {
    "calibration": Split(
        faces=("sh:s1a", "sh:s1b", "sh:s2a", "sh:s2b", "t1:0", "t1:1", "t1:2", "gdp:0",
               "pl:0", "pl:2", "pl:4", "pl:6", "pl:8"),
        backgrounds=("room", "coffee", "brick", "gradient", "night:a", "busy:a"),
        lights=(("normal",), ("normal",), ("normal",), ("dark", 0.15), ("dark", 0.3),
                ("tint", (1.0, 0.8, 0.55)), ("tint", (0.85, 1.0, 0.8)), ("side", 0.45),
                ("hue", 25), ("hue", -25))),
    "heldout": Split(
        faces=("sh:i1b", "sh:i2a", "sh:i2b", "t1:3", "t1:4", "t1:5", "gdp:1", "gdp:2", "tom",
               "astronaut", "yao", "pl:1", "pl:3", "pl:5", "pl:7", "pl:9"),
        backgrounds=("rocket", "chelsea", "grass", "hubble", "night:b", "busy:b", "motorcycle"),
        lights=(("normal",), ("normal",), ("normal",), ("dark", 0.12), ("dark", 0.25),
                ("tint", (0.7, 0.85, 1.0)), ("tint", (1.0, 0.75, 0.85)), ("side", 0.35),
                ("hue", 30), ("hue", -30))),
}


# -- backgrounds ------------------------------------------------------------------------------

def _skimage(name: str) -> Optional[Image.Image]:
    try:
        import skimage.data as sd
        arr = getattr(sd, name)()
    except Exception:                                       # pragma: no cover
        return None
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, -1)
    return Image.fromarray(arr[..., :3].astype(np.uint8))


def _night(w: int, h: int, variant: str) -> Image.Image:
    rng = np.random.default_rng(7 if variant == "a" else 11)
    top, bottom = ((10, 15, 60), (40, 70, 150)) if variant == "a" else ((30, 60, 150),
                                                                         (8, 14, 50))
    t = np.linspace(0, 1, h)[:, None, None]
    arr = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t
    arr = np.repeat(arr, w, axis=1)
    for _ in range(w * h // 900):
        y, x = rng.integers(0, h), rng.integers(0, w)
        arr[y:y + 2, x:x + 2] = 235
    im = Image.fromarray(arr.astype(np.uint8))
    if variant == "b":
        ImageDraw.Draw(im).ellipse([w * 0.8, h * 0.08, w * 0.8 + h * 0.15, h * 0.23],
                                   fill=(240, 240, 220))
    return im


def _busy(w: int, h: int, variant: str) -> Image.Image:
    rng = np.random.default_rng(3 if variant == "a" else 5)
    im = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(60, 200, 3)))
    d = ImageDraw.Draw(im)
    for _ in range(90):
        x, y = rng.integers(-40, w), rng.integers(-40, h)
        s = int(rng.integers(15, 80))
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        (d.rectangle if variant == "a" else d.ellipse)([x, y, x + s, y + s * 0.8], fill=c)
    return im.filter(ImageFilter.GaussianBlur(0.8))


def background_picture(width: int, height: int, name: str = "room") -> Image.Image:
    """A background wide enough to pan over: a photo (the shared room, scikit-image's
    pictures) or a drawn one (``gradient``, ``night:a|b`` sky, ``busy:a|b`` shapes)."""
    W = int(width * 1.4)
    if name.startswith("night:"):
        return _night(W, height, name[-1])
    if name.startswith("busy:"):
        return _busy(W, height, name[-1])
    im = None
    if name == "room" and os.path.isfile(ROOM):
        im = Image.open(ROOM).convert("RGB")
    elif name in ("coffee", "brick", "rocket", "chelsea", "grass", "motorcycle", "hubble"):
        im = _skimage({"motorcycle": "motorcycle_left",
                       "hubble": "hubble_deep_field"}.get(name, name))
    if im is None:                                          # "gradient", or a fallback
        import assets
        im = Image.fromarray(assets.scene(size=(96, 200), seed=0))
    scale = max(height / im.height, W / im.width)
    im = im.resize((max(int(im.width * scale), W), max(int(im.height * scale), height)),
                   Image.BICUBIC)
    return im.crop((0, 0, W, height))


# -- drawing ----------------------------------------------------------------------------------

def _u8(t) -> np.ndarray:
    a = t.numpy() if torch.is_tensor(t) else np.asarray(t)
    return (np.clip(a[..., :3], 0, 1) * 255).round().astype(np.uint8)


def _oval(w: int, h: int) -> Image.Image:
    m = Image.new("L", (w, h), 0)
    ImageDraw.Draw(m).ellipse([w * 0.06, h * 0.02, w * 0.94, h * 0.98], fill=255)
    return m.filter(ImageFilter.GaussianBlur(max(1.0, w * 0.03)))


@lru_cache(maxsize=256)
def _layer_source(key, see_through: bool) -> Tuple[Image.Image, Image.Image]:
    img = _LAYER_IMAGES[key]
    from lumosx_core.evaluation.appearance import attribute_mask
    return (Image.fromarray(_u8(img)),
            Image.fromarray(attribute_mask(img, see_through).astype(np.uint8) * 255))


_LAYER_IMAGES: Dict[int, torch.Tensor] = {}


def _layer(img, width: int, max_height: int, see_through: bool = False):
    key = id(img)
    _LAYER_IMAGES[key] = img
    pic, alpha = _layer_source(key, see_through)
    h = min(max_height, int(round(width * pic.height / pic.width)))
    w = int(round(h * pic.width / pic.height)) if h == max_height else width
    w, h = max(w, 2), max(h, 2)
    return pic.resize((w, h), Image.BICUBIC), alpha.resize((w, h), Image.BILINEAR)


def _grey(size, level: float):
    v = int(round(255 * level))
    return Image.new("RGB", size, (v, v, v)), Image.new("L", size, 255)


def _paste_person(frame: Image.Image, face, worn, cx: float, top: float, side: float):
    """``worn``: ``[(slot, image or ("grey", level))]``. Garments under the face at centre
    ``cx`` (torso: full width; inner: between the fronts; neck: a scarf under the chin),
    the face, then glasses over its eyes and a cap on its head. Returns the face box."""
    fh = side * 1.3
    if face is not None:
        fimg = Image.fromarray(_u8(face))
        fh = side * fimg.height / fimg.width
    face_top = top + side * 1.25 - fh
    g_top = top + side * 1.22

    def put(img, width, max_h, x_c, y, anchor_bottom=False, see_through=False):
        if isinstance(img, tuple):          # ("grey", level, image): a block in its place
            pic, _ = _layer(img[2], width, max_h)
            pic, alpha = _grey(pic.size, img[1])
        else:                               # glasses: the eyes show through the lenses
            pic, alpha = _layer(img, width, max_h, see_through)
        yy = y - pic.height if anchor_bottom else y
        frame.paste(pic, (int(x_c - pic.width / 2), int(yy)), alpha)

    order = {TORSO: 0, INNER: 1, NECK: 2, EYES: 4, HEAD: 5}
    for slot, img in sorted(worn, key=lambda si: order[si[0]]):
        if slot == TORSO:
            put(img, int(side * 2.4), int(side * 3.0), cx, g_top)
        elif slot == INNER:
            put(img, int(side * 0.8), int(side * 2.0), cx, g_top + side * 0.25)
        elif slot == NECK:
            put(img, int(side * 1.3), int(side * 0.9), cx, top + side * 1.18)
    box = None
    if face is not None:
        patch = fimg.resize((int(side), int(round(fh))), Image.BICUBIC)
        x0, y0 = int(cx - side / 2), int(face_top)
        frame.paste(patch, (x0, y0), _oval(int(side), int(round(fh))))
        box = (x0, y0, x0 + int(side), y0 + int(round(fh)))
    for slot, img in worn:
        if slot == EYES:
            put(img, int(side * 0.95), int(side * 0.5), cx, face_top + fh * 0.3,
                see_through=True)
        elif slot == HEAD:
            put(img, int(side * 1.15), int(side * 0.9), cx, face_top + fh * 0.42,
                anchor_bottom=True)
    return box


def _light(arr: np.ndarray, light: tuple, rng) -> np.ndarray:
    """uint8-range float ``[H, W, 3]`` under ``light``: ("normal",), ("dark", factor),
    ("tint", per-channel gains), ("side", darkest factor, light from the left or right),
    ("hue", degrees)."""
    kind = light[0]
    if kind == "dark":
        return arr * light[1]
    if kind == "tint":
        return arr * np.asarray(light[1], np.float32)
    if kind == "side":
        ramp = np.linspace(1.0, light[1], arr.shape[1], dtype=np.float32)
        return arr * (ramp if light[1] < 1 else ramp[::-1])[None, :, None]
    if kind == "hue":
        return hue_rotate(arr / 255.0, light[1]) * 255.0
    return arr


def _mp4_roundtrip(frames: List[np.ndarray], crf: int) -> List[np.ndarray]:
    import av
    buf = io.BytesIO()
    h, w = frames[0].shape[:2]
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=8)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"crf": str(int(crf)), "preset": "ultrafast"}
        for a in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    buf.seek(0)
    with av.open(buf) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


# -- scenes -----------------------------------------------------------------------------------

@dataclass
class Scene:
    """One ground-truth video. ``wear[b]``: what body ``b`` wears, ``[(owner, attribute)
    or ("grey", level, (owner, attribute))]`` in the slots of the owner's attribute (a grey
    block takes the place and outline of the attribute it replaces); ``faces[b]``: the person whose
    face body ``b`` shows (-1: a stranger, None: no face); ``face_swap``: from this frame on
    bodies 0 and 1 show each other's faces; ``cross``: the bodies exchange places
    (0 <-> n-1, 1 <-> n-2) between these frames."""

    people: List[GTPerson]
    kind: str = "correct"
    wear: Optional[List[List[tuple]]] = None
    faces: Optional[List[Optional[int]]] = None
    face_swap: Optional[int] = None
    cross: Optional[Tuple[int, int]] = None
    background: str = "room"
    light: tuple = ("normal",)
    n_frames: int = 16
    size: Tuple[int, int] = (512, 320)
    seed: int = 0
    jitter: float = 3.0
    drift: float = 1.0
    pan: float = 4.0
    brightness: float = 0.04
    crf: Optional[int] = 26
    face_side: Optional[float] = None
    stranger: Optional[torch.Tensor] = None
    split: str = ""

    def worn_by(self) -> List[List[tuple]]:
        if self.wear is not None:
            return self.wear
        return [[(b, k) for k in range(len(p.attributes))] for b, p in enumerate(self.people)]


def colourful(img: torch.Tensor, degrees: float = 30.0, level: float = 0.04) -> bool:
    """Whether turning the hue of attribute photo ``img`` by ``degrees`` changes its
    pixels by more than ``level`` on average (greys, whites and blacks do not change)."""
    from lumosx_core.evaluation.appearance import attribute_mask
    px = img.numpy()[attribute_mask(img)]
    return float(np.abs(hue_rotate(px, degrees) - px).mean()) > level


def truth_of(scene: Scene) -> dict:
    """``{"pairs": {(person, attribute k): truth}, "identity_swaps": [frames]}`` (see the
    module docs)."""
    wear = scene.worn_by()
    n = len(scene.people)
    faces = scene.faces if scene.faces is not None else list(range(n))
    shown_before = list(faces)
    shown_after = list(faces)
    if scene.face_swap is not None:
        shown_after[0], shown_after[1] = faces[1], faces[0]
    pairs = {}
    for p, person in enumerate(scene.people):
        for k in range(len(person.attributes)):
            where = [b for b, items in enumerate(wear) if (p, k) in items]
            on_before = {shown_before[b] for b in where}
            on_after = {shown_after[b] for b in where}
            if p in on_before and p in on_after:
                t = "correct"
            elif not where:
                t = "missing"
            elif p not in on_before and p not in on_after:
                t = "wrong" if (on_before | on_after) - {None, -1} else "missing"
            else:
                t = "mixed"
            if scene.light[0] == "hue" and t in ("correct", "wrong") and \
                    colourful(person.attributes[k][1]):
                t = "ambiguous"                 # a hue shift changes what it looks like
            pairs[(p, k)] = t
    return {"kind": scene.kind, "pairs": pairs,
            "identity_swaps": [scene.face_swap] if scene.face_swap is not None else [],
            "light": scene.light, "background": scene.background}


def render(scene: Scene) -> GTVideo:
    """The video of ``scene`` (deterministic in ``scene.seed``)."""
    rng = np.random.default_rng(scene.seed)
    W, H = scene.size
    people = scene.people
    n = len(people)
    wear = scene.worn_by()
    faces = scene.faces if scene.faces is not None else list(range(n))
    side = scene.face_side or min(W / (2.6 * n), H / 4.2)
    bg = background_picture(W, H, scene.background)
    xs = [W * (k + 0.5) / n for k in range(n)]
    top = H * 0.06
    frames, boxes = [], []
    for t in range(scene.n_frames):
        x0 = int(min(bg.width - W, scene.pan * t + rng.uniform(0, 2)))
        frame = bg.crop((x0, 0, x0 + W, H))
        shown: Dict[int, tuple] = {}
        cross = 0.0
        if scene.cross is not None:
            a, b = scene.cross
            u = float(np.clip((t - a) / max(b - a, 1), 0, 1))
            cross = u * u * (3 - 2 * u)
        order = list(range(n))
        if scene.cross is not None:                          # who is in front alternates
            order = order[::-1] if t % 2 else order
        for k in order:
            items = []
            for it in wear[k]:
                if it[0] == "grey":                          # ("grey", level, (owner, k))
                    o, j = it[2]
                    items.append((people[o].slot(j),
                                  ("grey", it[1], people[o].attributes[j][1])))
                else:
                    o, j = it
                    items.append((people[o].slot(j), people[o].attributes[j][1]))
            who = faces[k]
            if scene.face_swap is not None and t >= scene.face_swap and k < 2:
                who = faces[1 - k]
            face = None if who is None else (scene.stranger if who == -1 else people[who].face)
            s = side * (1 + rng.uniform(-0.03, 0.03))
            target = xs[n - 1 - k]
            x = xs[k] + (target - xs[k]) * cross
            cx = x + scene.drift * t * (1 if k % 2 == 0 else -1) + rng.normal(0, scene.jitter)
            ty = top + rng.normal(0, scene.jitter) + (side * 0.12 * (k % 2) if scene.cross else 0)
            box = _paste_person(frame, face, items, cx, ty, s)
            if box is not None and who is not None:
                shown[who] = box
        arr = np.asarray(frame, dtype=np.float32)
        arr = arr * (1 + rng.uniform(-scene.brightness, scene.brightness))
        arr = _light(arr, scene.light, rng)
        frames.append(np.clip(arr, 0, 255).round().astype(np.uint8))
        boxes.append(shown)
    if scene.crf is not None:
        frames = _mp4_roundtrip(frames, scene.crf)
    video = torch.from_numpy(np.stack(frames).astype(np.float32) / 255.0)
    truth = truth_of(scene)
    truth.update(kind=scene.kind, split=scene.split)
    return GTVideo(scene.kind, video, list(people), boxes, truth, scene.seed)


def _pairwise(wear: list) -> list:
    """Bodies 0 <-> 1, 2 <-> 3, ... exchange what they wear (an odd last one keeps it)."""
    out = list(wear)
    for b in range(0, len(out) - 1, 2):
        out[b], out[b + 1] = out[b + 1], out[b]
    return out


def make_video(people: Sequence[GTPerson], kind: str = "correct", n_frames: int = 16,
               seed: int = 0, size: Tuple[int, int] = (512, 320), jitter: float = 3.0,
               drift: float = 1.0, pan: float = 4.0, brightness: float = 0.04,
               crf: Optional[int] = 26, grey: float = 0.5, missing: Tuple[int, int] = (0, 0),
               swap_frame: int = 8, stranger: Optional[torch.Tensor] = None,
               stranger_person: int = 1, face_side: Optional[float] = None,
               background: str = "room", light: tuple = ("normal",)) -> GTVideo:
    """A ground-truth video of ``people`` (2 or more) of ``kind``: ``correct``, ``swapped``
    (bodies 0 and 1, 2 and 3 wear each other's attributes), ``rotated`` (each body wears the next
    one's), ``moved`` (person ``missing[0]``'s attribute ``missing[1]`` is worn by the next
    person instead of their own in that slot; the owner shows a grey block there),
    ``missing`` (that attribute is a grey block of level ``grey``), ``crossing`` (the
    people exchange places with their clothes), ``identity_swap`` (the faces exchange
    bodies from ``swap_frame`` on), ``no_face``, ``stranger`` (person ``stranger_person``
    shows ``stranger``'s face)."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}; expected one of {KINDS}")
    if kind == "stranger" and stranger is None:
        raise ValueError("a stranger video needs the stranger's face")
    people = list(people)
    n = len(people)
    wear = [[(b, k) for k in range(len(p.attributes))] for b, p in enumerate(people)]
    faces: List[Optional[int]] = list(range(n))
    kw = {}
    if kind == "swapped":
        wear = _pairwise(wear)
    elif kind == "rotated":
        wear = wear[1:] + wear[:1]
    elif kind in ("missing", "moved"):
        p, k = missing
        slot = people[p].slot(k)
        wear[p] = [("grey", grey, (p, k)) if it == (p, k) else it for it in wear[p]]
        if kind == "moved":
            q = (p + 1) % n
            wear[q] = [it for it in wear[q] if it[0] == "grey" or people[it[0]].slot(it[1]) != slot]
            wear[q].append((p, k))
    elif kind == "crossing":
        kw["cross"] = (n_frames // 4, 3 * n_frames // 4)
    elif kind == "identity_swap":
        kw["face_swap"] = swap_frame
    elif kind == "no_face":
        faces = [None] * n
    elif kind == "stranger":
        faces[stranger_person] = -1
    scene = Scene(people, kind, wear, faces, n_frames=n_frames, size=size, seed=seed,
                  jitter=jitter, drift=drift, pan=pan, brightness=brightness, crf=crf,
                  face_side=face_side, stranger=stranger, background=background, light=light,
                  **kw)
    video = render(scene)
    if kind == "missing":
        video.truth["missing"] = list(missing)
    if kind == "identity_swap":
        video.truth["swap_frame"] = swap_frame
    if kind == "stranger":
        video.truth["stranger_person"] = stranger_person
    return video


# -- drawing sets of scenes -------------------------------------------------------------------

PHRASES = ("man", "woman", "person", "boy", "girl")


def cast(split: str, rng, n_people: int) -> List[GTPerson]:
    """``n_people`` people of ``split``: distinct faces, each with one torso garment (an
    authors' photo or a drawn one), sometimes a shirt, a cap, glasses or a scarf."""
    lib = face_library()
    pool = [f for f in SPLITS[split].faces if f in lib]
    keys = list(rng.choice(pool, size=n_people, replace=False))
    recipes = _recipes(split)
    by_slot: Dict[str, list] = {}
    for r in recipes:
        by_slot.setdefault(r[1], []).append(r)
    used = set()
    people = []

    def pick(slot):
        free = [r for r in by_slot.get(slot, []) if r[0] not in used]
        if not free:
            return None
        r = free[int(rng.integers(len(free)))]
        used.add(r[0])
        return r

    for i, key in enumerate(keys):
        attrs, slots = [], []
        wanted = [TORSO]
        extra = rng.random()
        if extra < 0.15:
            wanted.append(INNER)
        elif extra < 0.35:
            wanted.append(HEAD)
        elif extra < 0.45:
            wanted.append(EYES)
        elif extra < 0.6:
            wanted.append(NECK)
        for slot in wanted:
            r = pick(slot)
            if r is None:
                continue
            attrs.append((r[0], _attribute_image(r[2])))
            slots.append(slot)
        people.append(GTPerson(f"{PHRASES[i % len(PHRASES)]} {i + 1}", lib[key], attrs, slots))
    return people


def dressed(split: str, face: str, phrase: str, *attributes: str) -> GTPerson:
    """A person of ``split``: face ``face`` (a key of :func:`face_library`) wearing the
    attributes of that split named ``attributes``."""
    recipes = {r[0]: r for r in _recipes(split)}
    chosen = [recipes[a] for a in attributes]
    return GTPerson(phrase, face_library()[face], [(r[0], _attribute_image(r[2])) for r in chosen],
                    [r[1] for r in chosen])


SCENE_KINDS = ("correct", "correct", "swapped", "rotated", "moved", "missing", "crossing",
               "identity_swap")


def scenes(split: str, count: int, seed: int = 0, n_frames: int = 16,
           kinds: Sequence[str] = SCENE_KINDS) -> List[Scene]:
    """``count`` scenes of ``split`` (:data:`SPLITS`): kinds cycle through ``kinds``;
    people (2-4), garments, background, light, compression and layout drawn at random."""
    out = []
    spec = SPLITS[split]
    for i in range(count):
        rng = np.random.default_rng([seed, i, 27 if split == "heldout" else 16])
        kind = kinds[i % len(kinds)]
        n = int(rng.choice([2, 2, 3, 3, 4]))
        people = cast(split, rng, n)
        # every light with every kind, every background (strides coprime to the lengths)
        light = spec.lights[(i + seed) % len(spec.lights)]
        background = spec.backgrounds[(5 * i + seed) % len(spec.backgrounds)]
        W = {2: 512, 3: 576, 4: 640}[n]
        crf = int(rng.choice([18, 24, 28, 32]))
        common = dict(n_frames=n_frames, seed=int(rng.integers(1 << 30)), size=(W, 320),
                      crf=crf, background=background, light=light, split=split,
                      jitter=float(rng.uniform(1.5, 4.5)), drift=float(rng.uniform(0, 1.5)))
        wear = [[(b, k) for k in range(len(p.attributes))] for b, p in enumerate(people)]
        kw: dict = {}
        if kind == "swapped":
            wear = _pairwise(wear)
        elif kind == "rotated":
            wear = wear[1:] + wear[:1]
        elif kind in ("moved", "missing"):
            p = int(rng.integers(n))
            k = int(rng.integers(len(people[p].attributes)))
            slot = people[p].slot(k)
            grey = float(rng.uniform(0.25, 0.8))
            wear[p] = [("grey", grey, (p, k)) if it == (p, k) else it for it in wear[p]]
            if kind == "moved":
                q = (p + 1 + int(rng.integers(n - 1))) % n
                wear[q] = [it for it in wear[q] if people[it[0]].slot(it[1]) != slot]
                wear[q].append((p, k))
        elif kind == "crossing":
            kw["cross"] = (n_frames // 4, 3 * n_frames // 4)
        elif kind == "identity_swap":
            kw["face_swap"] = int(rng.integers(n_frames // 3, 2 * n_frames // 3 + 1))
        out.append(Scene(people, kind, wear, **kw, **common))
    return out


# -- a detector that knows the truth ------------------------------------------------------------

class TruthDetector:
    """A detector that returns the pasted face boxes with one-hot 'ArcFace' embeddings
    (identity ``k`` -> ``e_k``, a stranger -> a vector orthogonal to all): binding can be
    calibrated without running face models. Call :meth:`for_video` per video."""

    def __init__(self, n_people: int):
        self.n = n_people
        self.boxes: List[Dict[int, tuple]] = []
        self.calls = 0

    def embedding(self, who: int) -> np.ndarray:
        e = np.zeros(self.n + 1, np.float32)
        e[self.n if who < 0 else who] = 1.0
        return e

    def references(self):
        return [self.embedding(k) for k in range(self.n)]

    def for_video(self, video: GTVideo, frame_indices: Sequence[int]):
        self.boxes = [video.face_boxes[i] for i in frame_indices]
        self.calls = 0
        return self

    def __call__(self, rgb):
        from lumosx_core.evaluation import Face
        out = [Face(tuple(float(v) for v in box), self.embedding(who), 0.99)
               for who, box in sorted(self.boxes[self.calls].items())]
        self.calls += 1
        return out


def write_gt_case(root, folder: str, case_id: str, video: GTVideo, fmt: str = "mp4",
                  videos_dir=None) -> str:
    """The case in the authors' layout under ``root/folder`` and its video as
    ``videos_dir/<case id>.<fmt>`` (``mp4``: re-encoded losslessly-ish at crf 18)."""
    import eval_frames as ef
    people = [(p.phrase, p.face, list(p.attributes)) for p in video.people]
    path = ef.write_case(root, folder, case_id, f"ground truth: {video.kind}", people)
    if videos_dir is not None:
        os.makedirs(str(videos_dir), exist_ok=True)
        out = os.path.join(str(videos_dir), f"{case_id}.{fmt}")
        if fmt == "mp4":
            ef.write_mp4(out, video.frames)
        else:
            ef.write_frames_dir(os.path.join(str(videos_dir), case_id), video.frames)
    return path
