"""The evaluation's verdict thresholds: calibrated on one set of ground-truth videos, their
precision measured on a held-out set (issues 16, 22 and 27).

``tests/eval_groundtruth.py`` makes two disjoint splits of scenes (``SPLITS``): the
*calibration* one (the thresholds were chosen on it) and the *held-out* one (the claims are
measured on it) differ in people, garments, backgrounds and lighting. Every scene is scored
with the real face models of the test fixture; the verdicts are then re-derived from the
stored measurements (``scoring.bind``) under any thresholds, so the sensitivity of each
threshold costs no new scoring.

* :func:`test_heldout_precision` -- the fast version, run in CI: a small held-out set
  (:data:`FAST_SCENES` scenes of 12 frames, 6 sampled) must keep the precision docs/evaluation.md
  promises per verdict, identity swaps only where faces changed, every threshold within
  +/-10 % flipping few pairs, and docs/evaluation.md's threshold table equal to the code's.
* :func:`test_calibration` -- the full run, opt-in (``LUMOSX_CALIBRATE=1``, about 25 minutes
  on 2 CPU cores)::

      LUMOSX_CALIBRATE=1 python -m pytest tests/test_eval_calibration.py -s -k calibration

  prints, on the calibration split, the distributions each threshold separates; on the
  held-out split, the precision per verdict (docs/evaluation.md), the identity swaps and the
  +/-10 % sensitivity of every threshold; one JSON line per pair to
  ``$LUMOSX_CALIBRATE_OUT`` (default ``calib.jsonl`` in the test's tmp folder).
"""
import collections
import dataclasses
import json
import os
import re
import tempfile
import time

import numpy as np
import pytest

import eval_groundtruth as gt
from face_fixtures import make_vectron_pack

pytestmark = [pytest.mark.skipif(not os.path.isdir(gt.SHARED_CASES),
                                 reason="shared reference cases not available")]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DECIDED = ("correct", "wrong", "missing")
#: what docs/evaluation.md promises per verdict on held-out videos (precision)
PROMISED = {"correct": 0.98, "wrong": 0.98, "missing": 0.90}
#: a threshold moved by +/-10 % may flip at most this share of the pairs
MAX_FLIP_SHARE = 0.05
FAST_SCENES = 16
FULL_CALIBRATION, FULL_HELDOUT = 60, 96
#: the draws: the thresholds were set on the calibration one; the held-out draws were scored
#: only to measure (earlier held-out draws, seeds 0, 1, 3, 4 and 5, were looked at while
#: developing: the documented numbers come from draw 6, and CI's from draw 2, neither looked at)
SEEDS = {"calibration": 0, "heldout": 6, "fast": 2}
#: truths a decided verdict can be right for
RIGHT = {"correct": {"correct"}, "wrong": {"wrong"}, "missing": {"missing"}}


@dataclasses.dataclass
class Scored:
    """One scored scene: its truth, the measurements and what binding needs."""

    index: int
    scene: gt.Scene
    truth: dict
    measurements: object
    owners: list
    kinds: list
    phrases: list
    frames: list
    attributes_per_person: list
    identity_swaps: list              # frames of the identity swaps found
    detected: list                    # per person: the sampled frames their face was found


def score_scenes(split: str, count: int, seed: int = 0, n_frames: int = 16, sample: int = 8,
                 log=None) -> list:
    """Render and score ``count`` scenes of ``split`` (drawn with ``seed``) with the real
    face models."""
    from lumosx_core.evaluation import InsightFaceDetector, evaluate_video, load_face_analysis
    from lumosx_core.evaluation.video import sample_indices
    det = InsightFaceDetector(load_face_analysis(make_vectron_pack(tempfile.mkdtemp()), "CPU",
                                                 640), 640)
    out, t0 = [], time.time()
    for i, scene in enumerate(gt.scenes(split, count, seed, n_frames=n_frames)):
        video = gt.render(scene)
        idx = sample_indices(len(video.frames), sample)
        ev = evaluate_video(video.frames[idx], video.references(), det, frame_indices=idx)
        b = ev.binding
        out.append(Scored(i, scene, video.truth, ev.measurements, b["owners"], b["kinds"],
                          b["phrases"], idx, [len(p.attributes) for p in scene.people],
                          [s["frame"] for s in ev.identity["swaps"]],
                          [p["detected"] for p in ev.identity["people"]]))
        if log:
            log(f"{time.time() - t0:6.0f}s {split} #{i} {scene.kind} {scene.light} "
                f"{scene.background} {len(scene.people)} people: {b['verdicts']}")
    return out


def verdicts(scored: list, thresholds) -> list:
    """One row per pair: the truth and the verdict under ``thresholds``."""
    from lumosx_core.evaluation.scoring import bind
    rows = []
    for s in scored:
        b = bind(s.measurements, s.owners, s.kinds, s.phrases, thresholds, s.frames)
        first = np.cumsum([0] + s.attributes_per_person)
        for e in b["pairs"]:
            k = e["attribute"] - first[e["person"]]
            rows.append({"scene": s.index, "kind": s.scene.kind, "light": s.scene.light,
                         "background": s.scene.background, "people": len(s.scene.people),
                         "person": e["person"], "phrase": e["phrase"],
                         "truth": s.truth["pairs"][(e["person"], k)],
                         "verdict": e["verdict"], "reason": e["reason"],
                         "presence": e["presence"], "margin": e["margin"]})
    return rows


def precision(rows: list) -> dict:
    """``{verdict: (right, given)}`` for the decided verdicts."""
    out = {}
    for v in DECIDED:
        given = [r for r in rows if r["verdict"] == v]
        out[v] = (sum(r["truth"] in RIGHT[v] for r in given), len(given))
    return out


def identity_errors(scored: list) -> list:
    """Scenes whose identity swaps were found where no face changed, or missed where one
    could be seen (the two people whose faces exchanged bodies were both found: a face never
    found in the video cannot be seen changing body)."""
    def seen(s):
        faces = s.scene.faces if s.scene.faces is not None else range(len(s.scene.people))
        return all(f is not None and f >= 0 and s.detected[f] for f in list(faces)[:2])
    return [(s.index, s.scene.kind, s.identity_swaps, s.truth["identity_swaps"])
            for s in scored if (s.identity_swaps and not s.truth["identity_swaps"])
            or (s.truth["identity_swaps"] and not s.identity_swaps and seen(s))]


#: thresholds whose +/-10 % sensitivity is measured (``z`` is a confidence factor)
SENSITIVE = ("margin", "presence_noise", "present", "absent", "absolute", "separation", "hue",
             "mixed_share", "dark", "visible", "thin")


def sensitivity(scored: list, thresholds) -> dict:
    """``{threshold: share of pairs whose verdict flips at x0.9 or x1.1}``."""
    base = [r["verdict"] for r in verdicts(scored, thresholds)]
    out = {}
    for name in SENSITIVE:
        flipped = set()
        for f in (0.9, 1.1):
            t = dataclasses.replace(thresholds, **{name: getattr(thresholds, name) * f})
            flipped |= {i for i, r in enumerate(verdicts(scored, t)) if r["verdict"] != base[i]}
        out[name] = len(flipped) / max(len(base), 1)
    return out


def table(rows: list) -> str:
    counts = collections.Counter((r["truth"], r["verdict"]) for r in rows)
    cols = ("correct", "wrong", "missing", "undecided", "unscored")
    lines = ["truth \\ verdict: " + " ".join(f"{c:>9}" for c in cols)]
    for t in sorted({r["truth"] for r in rows}):
        lines.append(f"{t:>16}: " + " ".join(f"{counts[(t, c)]:>9}" for c in cols))
    return "\n".join(lines)


def documented_thresholds() -> dict:
    """The threshold table of docs/evaluation.md: ``{name: value}``."""
    with open(os.path.join(ROOT, "docs", "evaluation.md"), encoding="utf-8") as f:
        text = f.read()
    section = text[text.index("## Thresholds and calibration"):]
    section = section[:section.index("\n## ", 5)]
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r"^\| `(\w+)` \| ([-+0-9.]+) \|", section, re.M)}


# ================================================================= the fast check (CI)

@pytest.fixture(scope="module")
def fast_heldout():
    return score_scenes("heldout", FAST_SCENES, seed=SEEDS["fast"], n_frames=12, sample=6)


def test_heldout_precision(fast_heldout):
    from lumosx_core.evaluation.verdicts import COLOR_THRESHOLDS
    rows = verdicts(fast_heldout, COLOR_THRESHOLDS)
    print(table(rows))
    prec = precision(rows)
    for v, (right, given) in prec.items():
        assert right >= PROMISED[v] * given, (v, prec, [r for r in rows if r["verdict"] == v
                                                        and r["truth"] not in RIGHT[v]])
    # the check is not vacuous: every decided verdict is given, most pairs are decided
    assert all(given for _, given in prec.values()), prec
    assert sum(given for _, given in prec.values()) >= 0.4 * len(rows)
    assert identity_errors(fast_heldout) == []
    assert any(s.truth["identity_swaps"] for s in fast_heldout)         # swaps were tested
    assert any(s.scene.kind == "crossing" for s in fast_heldout)        # so were crossings


def test_thresholds_are_stable_and_documented(fast_heldout):
    from lumosx_core.evaluation.verdicts import COLOR_THRESHOLDS
    flips = sensitivity(fast_heldout, COLOR_THRESHOLDS)
    print({k: round(v, 3) for k, v in flips.items()})
    assert max(flips.values()) <= MAX_FLIP_SHARE, flips
    documented = documented_thresholds()
    assert documented == {k: v for k, v in COLOR_THRESHOLDS.as_dict().items()}, documented


# ================================================================= the full run (opt-in)

def _distributions(scored: list, thresholds) -> None:
    """Per region and truth, the presence and margin of each attribute on each person
    (what ``present``, ``present_other``, ``absent`` and ``margin`` separate)."""
    from lumosx_core.evaluation.attribute_binding import region_of_kind
    from lumosx_core.evaluation.scoring import bind
    data = collections.defaultdict(list)
    for s in scored:
        if s.scene.face_swap is not None or s.scene.light[0] == "hue":
            continue
        b = bind(s.measurements, s.owners, s.kinds, s.phrases, thresholds, s.frames)
        first = np.cumsum([0] + s.attributes_per_person)
        wear = s.scene.worn_by()
        for e in b["pairs"]:
            k = e["attribute"] - first[e["person"]]
            for q, w in e["where"].items():
                on = (e["person"], k) in wear[int(q)]
                key = (region_of_kind(e["kind"]), "worn" if on else "not worn",
                       "owner" if int(q) == e["person"] else "other")
                data[key].append((w["presence"], w["margin"]))

    def q(x):
        x = [v for v in x if v is not None]
        return "n/a" if not x else (f"n={len(x)} min {min(x):+.2f} p5 {np.percentile(x, 5):+.2f}"
                                    f" median {np.median(x):+.2f} p95 "
                                    f"{np.percentile(x, 95):+.2f} max {max(x):+.2f}")
    for key in sorted(data):
        print(f"{key}: presence {q(p for p, _ in data[key])}")
        print(f"{' ' * len(str(key))}  margin {q(m for _, m in data[key])}")
    # what light.CAST_TOLERANCE and SKIN_TURN separate: the cast correction colouring the
    # neutral pixels, the faces' skin hue turning
    for name, hue in (("hue-shifted", True), ("other", False)):
        sel = [s.measurements for s in scored if (s.scene.light[0] == "hue") == hue]
        print(f"{name} videos: cast excess (median per video) "
              f"{q(float(np.median(m.cast_excess)) for m in sel)}; |skin turn| "
              f"{q(float(np.median(np.abs(m.skin_turn))) for m in sel)}")


@pytest.mark.skipif(os.environ.get("LUMOSX_CALIBRATE") != "1",
                    reason="full calibration run: set LUMOSX_CALIBRATE=1")
def test_calibration(tmp_path):
    from lumosx_core.evaluation.verdicts import COLOR_THRESHOLDS
    t = COLOR_THRESHOLDS
    calibration = score_scenes("calibration", FULL_CALIBRATION, SEEDS["calibration"],
                               log=print)
    print("== calibration split: what each threshold separates")
    _distributions(calibration, t)
    cal_rows = verdicts(calibration, t)
    print(table(cal_rows))
    print("precision on the calibration split:", precision(cal_rows))
    heldout = score_scenes("heldout", FULL_HELDOUT, SEEDS["heldout"], log=print)
    rows = verdicts(heldout, t)
    out = os.environ.get("LUMOSX_CALIBRATE_OUT", str(tmp_path / "calib.jsonl"))
    with open(out, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, default=str) + "\n")
    print("== held-out split")
    print(table(rows))
    prec = precision(rows)
    for v, (right, given) in prec.items():
        print(f"{v}: {right}/{given} = {right / max(given, 1):.3f}")
    print("identity: scenes with a face change", sum(bool(s.truth["identity_swaps"])
                                                    for s in heldout),
          "errors", identity_errors(heldout))
    flips = sensitivity(heldout, t)
    print("+/-10 % sensitivity (share of held-out pairs flipped):",
          {k: round(v, 3) for k, v in flips.items()})
    for v, (right, given) in prec.items():
        assert right >= PROMISED[v] * given, (v, prec)
    assert identity_errors(heldout) == []
    assert max(flips.values()) <= MAX_FLIP_SHARE, flips
