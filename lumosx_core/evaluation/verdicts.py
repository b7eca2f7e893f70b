"""A verdict per (person, attribute) pair: correct, wrong, missing, undecided or unscored,
each with its reason.

Inputs, per sampled frame where the person was found (arrays ``[frames]``, NaN elsewhere):

* ``own``: similarity of the person's region to the attribute;
* ``other``: the best similarity to a competing attribute (another person's, of the same
  kind -- see :mod:`.binding`), and which one;
* ``plain``: the best similarity of the region to a *plain* patch: uniform greys from black
  to white, skin tones, and the frame's own background (its border outside every person).

Rules, in this order (``T`` = :class:`Thresholds`):

1. **unscored** -- the person was not found in any sampled frame (no faces, or only
   strangers): nothing is claimed. Reported, never counted as a pass.
2. **wrong** -- the margin ``own - other`` (mean over frames) is below ``-noise`` and the
   winning attribute is *present* (rule 3 holds for it): another person's attribute is on
   this person.
3. **missing** -- the attribute is not present: its presence ``own - plain`` (mean) is below
   ``T.presence``, or ``own`` is below ``T.absolute``. A grey block, bare background or skin
   where the attribute should be looks more like a plain patch than like the attribute, so
   it is never correct. When the attribute itself is plain (its own similarity to a plain
   patch reaches ``T.plain_attribute``), presence cannot be told from a plain patch: the
   pair is at best undecided.
4. **undecided** -- ``|margin| <= noise`` (``noise = max(T.margin, T.z * sd / sqrt(n))``, the
   calibrated margin noise or the spread of the per-frame margins, whichever is larger), or
   presence within ``T.presence_band`` above ``T.presence`` (not clearly present), or an
   uncontested pair (no competitor) whose presence cannot be tested.
5. **correct** -- otherwise (the margin is above the noise and the attribute is present).

The thresholds were calibrated on ground-truth videos (``tests/eval_groundtruth.py``; see
docs/evaluation.md): correct / swapped / missing videos of the authors' reference people
and attributes, 16 frames, jitter, drift, background panning, H.264 at several qualities.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np

CORRECT, WRONG, MISSING, UNDECIDED, UNSCORED = ("correct", "wrong", "missing", "undecided",
                                                "unscored")
VERDICTS = (CORRECT, WRONG, MISSING, UNDECIDED, UNSCORED)


@dataclass(frozen=True)
class Thresholds:
    """Calibrated per appearance backend (see the module docs and docs/evaluation.md)."""

    margin: float            # margin noise: |own - other| up to this is undecided
    z: float                 # per-frame spread: noise >= z * sd / sqrt(frames)
    presence: float          # own - plain below this: missing
    presence_band: float     # presence in [presence, presence + band): undecided
    absolute: float          # own similarity below this: missing
    plain_attribute: float   # an attribute this similar to a plain patch is untestable

    def as_dict(self) -> dict:
        return asdict(self)


#: colour/texture descriptor (weight-free); calibrated, see docs/evaluation.md
COLOR_THRESHOLDS = Thresholds(margin=0.04, z=2.0, presence=0.0, presence_band=0.03,
                              absolute=0.45, plain_attribute=0.92)
#: CLIP-vision embeddings: not calibrated on real weights here (none ship offline); a
#: conservative margin, presence against plain patches as for the colour descriptor
CLIP_THRESHOLDS = Thresholds(margin=0.03, z=2.0, presence=0.0, presence_band=0.05,
                             absolute=0.0, plain_attribute=0.97)


def thresholds_for(backend_name: str) -> Thresholds:
    return COLOR_THRESHOLDS if backend_name == "color" else CLIP_THRESHOLDS


def _mean(x) -> Optional[float]:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else None


def _sd(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(x.std(ddof=1)) if x.size > 1 else 0.0


def presence_state(own, plain, plain_like, t: Thresholds) -> tuple:
    """``("present" | "absent" | "uncertain" | "untestable", reason)`` from per-frame arrays:
    ``own`` (region vs. attribute), ``plain`` (region vs. the best plain patch the attribute
    does not resemble) and ``plain_like`` (vs. the best plain patch it does resemble; NaN
    when none)."""
    own_m, pres_m = _mean(own), _mean(np.asarray(own, np.float64) - np.asarray(plain, np.float64))
    like_m = _mean(plain_like)
    if own_m is None or pres_m is None:
        return "untestable", "no region"
    if own_m < t.absolute:
        return "absent", (f"similarity to the attribute {own_m:.3f} < {t.absolute:.2f}: "
                          f"the attribute is not in the person's region")
    if pres_m < t.presence:
        return "absent", (f"the region looks more like a plain patch than like the attribute "
                          f"(presence {pres_m:+.3f} < {t.presence:+.2f})")
    if like_m is not None and like_m >= own_m - t.presence_band:
        return "untestable", (f"the attribute itself looks like a plain patch, and the region "
                              f"matches that patch as well ({like_m:.3f} vs. {own_m:.3f}): a "
                              f"plain block cannot be told from it")
    if pres_m < t.presence + t.presence_band:
        return "uncertain", (f"presence {pres_m:+.3f} within {t.presence_band:.2f} of the "
                             f"threshold {t.presence:+.2f}")
    return "present", f"present (presence {pres_m:+.3f})"


def pair_verdict(own: Sequence[float], other: Optional[Sequence[float]],
                 plain: Sequence[float], plain_like: Sequence[float],
                 winner_present: Optional[str], t: Thresholds, found: bool,
                 unscored_reason: str = "person not found") -> dict:
    """Verdict of one pair from its per-frame arrays (see the module docs). ``other`` is
    ``None`` for an uncontested pair; ``winner_present`` is the presence state of the best
    competing attribute in this person's region."""
    if not found:
        return {"verdict": UNSCORED, "reason": unscored_reason}
    state, why = presence_state(own, plain, plain_like, t)
    pres_m = _mean(np.asarray(own, np.float64) - np.asarray(plain, np.float64))
    out = {"presence": pres_m, "presence_state": state}
    if other is None:
        if state == "present":
            return {**out, "verdict": CORRECT, "reason": f"uncontested; {why}"}
        if state == "absent":
            return {**out, "verdict": MISSING, "reason": why}
        return {**out, "verdict": UNDECIDED, "reason": f"uncontested and {why}"}
    margins = np.asarray(own, np.float64) - np.asarray(other, np.float64)
    n = int(np.isfinite(margins).sum())
    m = _mean(margins)
    noise = max(t.margin, t.z * _sd(margins) / math.sqrt(max(n, 1)))
    out.update(noise=noise)
    if m is None:
        return {**out, "verdict": UNSCORED, "reason": "no region in any frame"}
    if m < -noise and winner_present in ("present", "untestable"):
        return {**out, "verdict": WRONG,
                "reason": f"another attribute is more similar by {-m:.3f} (> noise "
                          f"{noise:.3f}) and is {winner_present} in the region"}
    if state == "absent":
        return {**out, "verdict": MISSING, "reason": why}
    if abs(m) <= noise:
        return {**out, "verdict": UNDECIDED,
                "reason": f"margin {m:+.3f} within the noise threshold +/-{noise:.3f}"}
    if m < -noise:
        return {**out, "verdict": UNDECIDED,
                "reason": f"another attribute is more similar by {-m:.3f} but is not clearly "
                          f"present ({winner_present})"}
    if state != "present":
        return {**out, "verdict": UNDECIDED, "reason": f"margin {m:+.3f} but {why}"}
    return {**out, "verdict": CORRECT,
            "reason": f"margin {m:+.3f} > noise {noise:.3f}; {why}"}
