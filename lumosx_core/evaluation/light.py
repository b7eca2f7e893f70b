"""Exposure and white balance, per frame, relative to the people's own faces.

The one thing whose colour is known both in the references and in a generated frame is each
person's face: the reference face photo and the face the detector finds in the frame. Their
skin (the inner part of the face box: cheeks and nose, away from hair, eyes and background)
gives per-channel gains ``reference / frame``; the frame's are their median over the people.
A frame made darker (brightness x 0.12) or tinted (per-channel gains) is brought back to the
references' light before its regions are compared with the attribute photos, so the colours
of a dark or tinted video mean what they mean in a well-lit one. Each person's regions get
the frame's colour cast (a cast is the scene's light, while one face's colour also depends on
the photo it was taken from) at that person's own exposure (light from one side lights people
differently), kept within :data:`PERSON_SPREAD` of the frame's; the background gets the
frame's gains.

A colour change of the faces is a white-balance cast only if correcting it makes the
frame's most neutral pixels (its least colourful tenth) more neutral, not less: a tint is a
cast (the greys were tinted too), a hue-shifted video is not (its greys stayed grey while the
skin turned). When the correction would colour the neutral pixels by more than
:data:`CAST_TOLERANCE` (CIELAB a*b*), only the exposure is corrected and the frame is marked
``cast_rejected`` (its colours differ from the references' in a way no light explains); so
is it when the faces' skin hue turned :data:`SKIN_TURN` degrees or more from the references'
and the correction would colour the neutral pixels at all (a tint that turns skin this far,
a green one, makes the greys more neutral when corrected). A dark frame (light raised
:data:`DARK_VIDEO` times or more) is not tested: its colours are compression noise raised as
much.

The gains are bounded (:data:`MIN_GAIN` to :data:`MAX_GAIN`, casts to :data:`MAX_CAST`); the
faces' median skin luminance is kept, so the verdicts can leave out frames too dark to
correct (:class:`~.verdicts.Thresholds` ``dark``: "undecided: too dark").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import numpy as np

#: the face's skin: this part of the face box (x1, y1, x2, y2 as fractions)
SKIN_BOX = (0.3, 0.45, 0.7, 0.8)
#: largest overall gain (brightening); beyond it the frame is too dark
MAX_GAIN = 12.0
#: smallest overall gain (darkening an over-exposed frame)
MIN_GAIN = 0.5
#: largest ratio between two channels' gains (a stronger cast is not corrected further)
MAX_CAST = 2.0
#: a person's gains stay within this factor of the frame's median gains
PERSON_SPREAD = 1.6
#: light raised this much makes a dark frame (its cast is not tested; reasons say "dark")
DARK_VIDEO = 2.5
#: a cast smaller than this (largest / smallest channel gain) is corrected without a test
MIN_CAST = 1.08
#: faces whose skin hue turned this far (degrees) from the references' ...
SKIN_TURN = 15.0
#: ... are not a light cast when correcting them colours the neutral pixels at all (a*b*)
TURN_EXCESS = 1.0
#: a cast correction may colour the neutral pixels by at most this much (CIELAB a*b*)
CAST_TOLERANCE = 4.0
#: the least colourful share of the frame's pixels taken as its neutral pixels
NEUTRAL_SHARE = 0.1
LUMA = np.array([0.2126, 0.7152, 0.0722])


def skin_color(rgb: np.ndarray, box: Sequence[float]) -> Optional[np.ndarray]:
    """Median RGB ``[3]`` of the skin part (:data:`SKIN_BOX`) of face ``box`` in ``rgb``
    ``[H, W, 3]`` (0-1); ``None`` when that part is empty."""
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    fw, fh = x2 - x1, y2 - y1
    xa, ya = int(round(x1 + SKIN_BOX[0] * fw)), int(round(y1 + SKIN_BOX[1] * fh))
    xb, yb = int(round(x1 + SKIN_BOX[2] * fw)), int(round(y1 + SKIN_BOX[3] * fh))
    xa, xb = max(0, xa), min(w, max(xb, xa + 1))
    ya, yb = max(0, ya), min(h, max(yb, ya + 1))
    patch = rgb[ya:yb, xa:xb].reshape(-1, 3)
    if len(patch) == 0:
        return None
    return np.median(patch, axis=0)


def luminance(rgb) -> float:
    return float(np.asarray(rgb, np.float64) @ LUMA)


@dataclass
class FrameLight:
    """The light correction of one frame: ``gains`` ``[3]`` for the frame (the median over
    its people), ``person_gains`` per person, the faces' median skin luminance before
    correction, and whether a colour cast was measured but rejected (see the module docs)."""

    gains: np.ndarray
    person_gains: Dict[int, np.ndarray]
    skin_luminance: Optional[float]
    cast_rejected: bool = False
    #: how much more coloured the cast correction makes the neutral pixels (CIELAB a*b*)
    cast_excess: float = 0.0
    #: how far the faces' skin hue turned from the references' (degrees, median)
    skin_turn: float = 0.0

    def for_person(self, p: int) -> np.ndarray:
        return self.person_gains.get(p, self.gains)

    def to_dict(self) -> dict:
        return {"gains": [round(float(g), 3) for g in self.gains],
                "skin_luminance": None if self.skin_luminance is None
                else round(self.skin_luminance, 4),
                "cast_rejected": self.cast_rejected,
                "cast_excess": round(float(self.cast_excess), 2),
                "skin_turn": round(float(self.skin_turn), 1)}


def _bounded(g: np.ndarray) -> np.ndarray:
    g = np.asarray(g, np.float64)
    mean = exposure(g)
    cast = np.clip(g / mean, 1.0 / np.sqrt(MAX_CAST), np.sqrt(MAX_CAST))
    return cast * float(np.clip(mean, MIN_GAIN, MAX_GAIN))


def frame_light(rgb: np.ndarray, faces: Dict[int, Sequence[float]],
                references: Dict[int, np.ndarray]) -> FrameLight:
    """Gains of frame ``rgb`` from the skin of each person's face box ``faces[p]`` against
    their reference skin colour ``references[p]`` (see the module docs). Without any
    measurable face the gains are 1 (nothing to compare)."""
    person, lums, turns = {}, [], []
    for p, box in faces.items():
        ref = references.get(p)
        skin = skin_color(rgb, box)
        if ref is None or skin is None:
            continue
        lums.append(luminance(skin))
        person[p] = np.asarray(ref, np.float64) / np.maximum(skin, 1.0 / 255.0)
        turns.append(hue_turn(skin, ref))
    if not person:
        return FrameLight(np.ones(3), {}, None)
    lum = float(np.median(lums))
    turn = float(np.median(turns))
    raw = _bounded(np.median(np.stack(list(person.values())), axis=0))
    grey = np.full(3, exposure(raw))
    sample = rgb[::4, ::4].reshape(-1, 3)
    # a dark frame's colours are noise raised many times: its cast is not tested
    excess = (neutral_offset(apply(sample, raw)) - neutral_offset(apply(sample, grey))
              if float(raw.max() / raw.min()) > MIN_CAST and exposure(raw) < DARK_VIDEO
              else 0.0)
    rejected = excess > CAST_TOLERANCE or (abs(turn) >= SKIN_TURN and excess > TURN_EXCESS)
    frame = grey if rejected else raw
    # each person's own exposure, the frame's cast: a cast is the scene's light, while one
    # face's colour also differs with the photo it was taken from
    base = exposure(frame)
    own = {p: frame / base * float(np.clip(exposure(_bounded(g)), base / PERSON_SPREAD,
                                           base * PERSON_SPREAD))
           for p, g in person.items()}
    return FrameLight(frame, own, lum, rejected, excess, turn)


def hue_turn(rgb, ref) -> float:
    """Degrees from the CIELAB hue angle of colour ``ref`` to that of ``rgb`` (``[3]`` each,
    0-1), in (-180, 180]; 0 when either is grey."""
    from .appearance import srgb_to_lab
    a = srgb_to_lab(np.asarray([rgb, ref], np.float64))
    if min(np.hypot(a[0, 1], a[0, 2]), np.hypot(a[1, 1], a[1, 2])) < 3.0:
        return 0.0
    d = np.degrees(np.arctan2(a[0, 2], a[0, 1]) - np.arctan2(a[1, 2], a[1, 1]))
    return float((d + 180.0) % 360.0 - 180.0)


def exposure(g) -> float:
    """The overall gain of per-channel ``g`` (their geometric mean)."""
    return float(np.exp(np.mean(np.log(np.maximum(np.asarray(g, np.float64), 1e-6)))))


def neutral_offset(pixels: np.ndarray) -> float:
    """How coloured the most neutral pixels of ``pixels`` ``[N, 3]`` are: the length of the
    mean CIELAB (a*, b*) of the least colourful :data:`NEUTRAL_SHARE` of them (lightness
    between 15 and 95; 0 when too few)."""
    from .appearance import srgb_to_lab
    lab = srgb_to_lab(np.asarray(pixels, np.float64).reshape(-1, 3))
    lab = lab[(lab[:, 0] > 15) & (lab[:, 0] < 95)]
    if len(lab) < 50:
        return 0.0
    c = np.hypot(lab[:, 1], lab[:, 2])
    k = c <= np.quantile(c, NEUTRAL_SHARE)
    return float(np.hypot(*lab[k, 1:].mean(0)))


def apply(rgb: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """``rgb`` ``[..., 3]`` times ``gains``, clipped to [0, 1] (float32)."""
    return np.clip(rgb * np.asarray(gains, np.float32), 0.0, 1.0).astype(np.float32)
