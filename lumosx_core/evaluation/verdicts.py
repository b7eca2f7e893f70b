"""Where is each attribute? A verdict per (person, attribute) pair -- correct, wrong, missing,
undecided or unscored -- with its reason.

An attribute ``a`` of person ``p`` is looked for on *every* person found, ``q``, in the
region where it is worn (:mod:`.regions`), per sampled frame:

* **presence** of ``a`` on ``q``: how much more the region's best cell for ``a`` looks like
  ``a`` than like a *plain* patch ``b`` (greys from black to white, skin tones, the person's
  own skin in this frame, the frame's background), measured along the line from ``b`` to
  ``a``: ``(sim(cell, a) - sim(cell, b)) / (1 - sim(a, b))`` -- +1 where the cell is ``a``,
  -1 where it is ``b``, whatever the two have in common (a denim jacket in front of a blue
  night sky is compared with the sky along what tells them apart). The smallest value over
  the plain patches counts. A plain patch ``a`` itself resembles (``1 - sim(a, b)`` below
  ``T.separation``: a grey sweater and a grey patch) cannot tell: the attribute can then be
  neither present nor absent against it.
* **margin** of ``a`` on ``q``: ``sim(region, a) - sim(region, b)`` for the closest of the
  *competitors* ``b``, the attributes of the same kind (else worn in the same region) that
  do not belong to ``a``'s owner -- on ``q = p`` the other people's, on another person ``q``
  their own and everyone else's. When a competitor cannot be told apart from ``a``
  (``1 - sim(a, b)`` below ``T.separation``), there is no margin: where one could be, so
  could the other.

Over the frames where ``q`` was found (and that are not too dark), with the standard error
of the per-frame values (``noise = max(T.margin, T.z * sd / sqrt(n))``; a similarity is only
known to ``T.presence_noise``, so presence against a plain patch ``a`` nearly is, is vague by
``T.presence_noise / (1 - sim(a, b))``):

* ``a`` is **on** ``q`` when presence >= ``T.present`` and the margin is above the noise
  (on someone else than its owner, everything ``q`` wears competes too, and ``q``'s own
  face photo counts as a plain patch: a red background in it is no red cap);
* ``a`` is **off** ``q`` when presence <= ``T.absent`` (the region looks like a plain patch),
  or the similarity is below ``T.absolute`` -- neither for a *thin* attribute, one filling
  less than ``T.thin`` of its photo's box (the frames of glasses: any cell is mostly what is
  around them) -- or, when it looks more like a plain patch than like itself (presence
  below 0), a competitor that is present beats it by more than the noise (something else
  is worn there);
* else it is *unsure*.

Verdicts, in this order:

1. **unscored** -- ``p`` was not found in any sampled frame: nothing is claimed.
2. **undecided** -- too dark (see :mod:`.light`), or the video's colours are shifted (the
   faces changed colour in a way no white balance explains in at least half the frames, or
   several coloured attributes match better with their hue turned than as photographed):
   a hue-shifted video is neither proof nor disproof. An attribute on nobody that matches
   better hue-turned (a recoloured garment) is undecided, not missing.
3. **correct** -- ``a`` is on ``p`` (and was not on someone else for a stretch of frames).
4. **wrong** -- ``a`` is on another person ``q`` (clearly, in all but ``T.mixed_share`` of
   the frames where ``q`` was found) and not on ``p``; two people wrong with each other's
   attributes are a swap.
5. **missing** -- ``a`` is off ``p`` and off everyone else (all of them found): absent from
   the whole video, not merely from its owner.
6. **undecided** -- anything else, with the reason (unsure where it is; on its owner in some
   frames and on someone else in others, e.g. faces exchanged mid-video).

The thresholds were calibrated on ground-truth videos (``tests/eval_groundtruth.py``,
calibration split) and their precision is measured on a held-out split (docs/evaluation.md).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

CORRECT, WRONG, MISSING, UNDECIDED, UNSCORED = ("correct", "wrong", "missing", "undecided",
                                                "unscored")
VERDICTS = (CORRECT, WRONG, MISSING, UNDECIDED, UNSCORED)
ON, OFF, UNSURE = "on", "off", "unsure"


@dataclass(frozen=True)
class Thresholds:
    """Calibrated per appearance backend (see the module docs and docs/evaluation.md)."""

    margin: float            # margin noise floor: on needs a margin above it
    presence_noise: float    # how well a similarity is known, for presence
    z: float                 # per-frame spread: noise >= z * sd / sqrt(frames)
    present: float           # presence at least this: present
    absent: float            # presence at most this: absent
    absolute: float          # similarity below this: absent
    separation: float        # 1 - sim(a, b) below this: a and b cannot be told apart
    hue: float               # normalised gain of a hue-turned attribute: colours shifted
    mixed_share: float       # share of frames on someone else that makes a pair mixed
    dark: float              # faces' skin luminance (0-1) below this: frame too dark
    visible: float           # an attribute shown darker than this (0-1) is not seen
    thin: float              # an attribute filling less of its box than this is thin

    def as_dict(self) -> dict:
        return asdict(self)


#: colour/texture descriptor (weight-free); calibrated, see docs/evaluation.md
COLOR_THRESHOLDS = Thresholds(margin=0.04, presence_noise=0.01, z=2.0, present=0.2,
                              absent=-0.3, absolute=0.3, separation=0.06, hue=0.2,
                              mixed_share=0.25, dark=0.035, visible=0.03, thin=0.4)
#: CLIP-vision embeddings: not calibrated on real weights here (none ship offline); the
#: same rules with a wider margin and no absolute floor
CLIP_THRESHOLDS = Thresholds(margin=0.03, presence_noise=0.02, z=2.0, present=0.3,
                             absent=-0.3, absolute=-1.0,
                             separation=0.03, hue=0.3, mixed_share=0.25, dark=0.035,
                             visible=0.03, thin=0.4)


def thresholds_for(backend_name: str) -> Thresholds:
    return COLOR_THRESHOLDS if backend_name == "color" else CLIP_THRESHOLDS


def mean_se(x):
    """``(mean, standard error)`` of the values of ``x`` that are not NaN (``(None, 0)``
    when none); an infinite value makes the mean infinite (an unbounded end)."""
    x = np.asarray(x, dtype=np.float64)
    x = x[~np.isnan(x)]
    if not x.size:
        return None, 0.0
    if not np.isfinite(x).all():
        return float(x.mean()), 0.0
    sd = float(x.std(ddof=1)) if x.size > 1 else 0.0
    return float(x.mean()), sd / math.sqrt(x.size)


@dataclass
class Placement:
    """Where one attribute stands on one person (means over frames; see the module docs)."""

    state: str                      # ON, OFF or UNSURE
    presence: Optional[float]
    margin: Optional[float]         # margin against the closest competitor
    similarity: Optional[float]
    winner: Optional[int]           # the competitor that beats it most (or comes closest)
    reason: str
    frames_on: int = 0              # frames where it is clearly on, frame by frame


def place(sim, presence, margin, winner_present: Optional[bool], t: Thresholds,
          plain: Optional[str] = None, has_competitors: bool = True,
          winner: Optional[int] = None, thin: bool = False, bounds=None) -> Placement:
    """The :class:`Placement` of an attribute on a person from per-frame arrays ``sim``,
    ``presence`` and ``margin`` (NaN where not measured; ``margin`` all NaN when it has no
    competitor, or none it can be told apart from). ``winner_present``: whether the
    competitor closest to it is itself present there. ``plain``: the plain patch that
    bounds the presence (for the reason). ``thin``: the attribute is thin (the frames of
    glasses): a cell is mostly what lies around it, so looking plain does not make it
    absent. ``bounds``: per-frame ``(low, high)`` ends of the presence, its noise included
    (default: the presence itself)."""
    present = t.present
    low, high = bounds if bounds is not None else (presence, presence)
    lo_m, lo_se = mean_se(low)
    hi_m, hi_se = mean_se(high)
    s_m, _ = mean_se(sim)
    p_m, _ = mean_se(presence)
    m_m, m_se = mean_se(margin)
    noise_m = max(t.margin, t.z * m_se)
    # clearly on, frame by frame
    pres, marg = np.asarray(low, np.float64), np.asarray(margin, np.float64)
    clear = (pres >= present) & (np.isnan(marg) if not has_competitors else marg > t.margin)
    on_frames = int(np.sum(clear & np.isfinite(pres)))
    base = dict(presence=p_m, margin=m_m, similarity=s_m, winner=winner, frames_on=on_frames)
    if s_m is None or p_m is None:
        return Placement(UNSURE, reason="not measured", **base)
    vs = f" (vs. {plain})" if plain else ""
    span = f"presence {p_m:+.2f} ({lo_m - t.z * lo_se:+.2f} to {hi_m + t.z * hi_se:+.2f})"
    if hi_m + t.z * hi_se <= t.absent and not thin:
        return Placement(OFF, reason=f"not there: looks like a plain patch{vs}, {span} <= "
                                     f"{t.absent:+.2f}", **base)
    if s_m < t.absolute and not thin:
        return Placement(OFF, reason=f"not there: similarity {s_m:.2f} < {t.absolute:.2f}",
                         **base)
    if has_competitors and m_m is not None and m_m < -noise_m and winner_present \
            and lo_m - t.z * lo_se < present and p_m < 0:
        return Placement(OFF, reason=f"another attribute is worn there (margin {m_m:+.2f})",
                         **base)
    if lo_m - t.z * lo_se >= present:
        if not has_competitors:
            return Placement(ON, reason=f"present, presence {p_m:+.2f}, no competitor", **base)
        if m_m is None:
            return Placement(UNSURE, reason=f"present (presence {p_m:+.2f}), but it cannot be "
                                            f"told apart from another attribute", **base)
        if m_m > noise_m:
            return Placement(ON, reason=f"present (presence {p_m:+.2f}), margin {m_m:+.2f} > "
                                        f"noise {noise_m:.2f}", **base)
        return Placement(UNSURE, reason=f"present (presence {p_m:+.2f}), but margin "
                                        f"{m_m:+.2f} within noise {noise_m:.2f}", **base)
    return Placement(UNSURE, reason=f"not clearly there or absent: {span}, between "
                                    f"{t.absent:+.2f} and {present:+.2f}{vs}", **base)
