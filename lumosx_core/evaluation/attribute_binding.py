"""Binding: does each attribute land on the right person?

Input: per sampled frame, the similarity ``S[t, q, a]`` of person ``q``'s region (where
attribute ``a`` is worn) to ``a``, and optionally ``a``'s presence there (:mod:`.verdicts`),
who owns each attribute, each attribute's kind, and how alike the attributes are.

Each attribute is looked for on every person found (:func:`.verdicts.place`); its verdict
says where it is: on its owner (correct), on someone else (wrong), on nobody (missing), or
it cannot be told (undecided, with the reason). Competitors of ``a`` are the attributes of
the same kind (else worn in the same region) of the people other than ``a``'s owner: "white
jacket", "denim jacket" and "light brown sweater" are all upper-body clothes (kinds from the
phrase, :func:`attribute_kind`); a cap competes with the other people's caps and hats.

* swap: ``p``'s attribute is on ``q`` while one of ``q``'s is on ``p`` -- they exchanged;
* binding accuracy = correct / decided pairs (correct + wrong + missing); swap rate =
  swapped / decided pairs.
"""
from __future__ import annotations

import re
import warnings
from typing import Dict, Optional, Sequence

import numpy as np

from .light import DARK_VIDEO
from .regions import BODY, EYES, HEAD, LEGS, NECK, TORSO

#: kind -> words that name it (the last matching word of a phrase decides).
KIND_WORDS = {
    "upper body": ("jacket", "coat", "shirt", "t-shirt", "tshirt", "tee", "top", "sweater",
                   "hoodie", "blouse", "vest", "cardigan", "blazer", "suit", "jersey",
                   "pullover", "sweatshirt", "tank", "polo", "parka", "uniform", "tuxedo",
                   "apron", "robe", "windbreaker", "overcoat", "raincoat", "tunic", "kimono"),
    "full body": ("dress", "gown", "jumpsuit", "overalls", "costume", "outfit", "clothes",
                  "clothing"),
    "lower body": ("pants", "trousers", "jeans", "shorts", "skirt", "leggings", "trouser"),
    "footwear": ("shoes", "shoe", "boots", "boot", "sneakers", "sneaker", "sandals", "heels"),
    "headwear": ("hat", "cap", "beanie", "helmet", "hood", "headband", "turban", "crown",
                 "beret", "bandana"),
    "eyewear": ("glasses", "sunglasses", "goggles", "spectacles", "eyeglasses"),
    "hair": ("hair", "hairstyle", "ponytail", "braid", "braids", "bun", "beard", "mustache"),
    "neckwear": ("scarf", "tie", "necklace", "bowtie", "collar", "choker"),
    "handheld": ("bag", "handbag", "backpack", "umbrella", "phone", "cup", "book", "guitar",
                 "purse", "briefcase"),
    "wrist": ("watch", "bracelet", "gloves", "glove", "ring"),
}
_WORD_KIND = {w: k for k, words in KIND_WORDS.items() for w in words}
#: where each kind is worn on the person (anything else: the whole body)
KIND_REGION = {"upper body": TORSO, "lower body": LEGS, "footwear": LEGS, "headwear": HEAD,
               "hair": HEAD, "eyewear": EYES, "neckwear": NECK}
_SPLIT_WORDS = {"with", "of", "and", "over", "under", "on", "in", "plus"}


def attribute_kind(phrase: str) -> str:
    """The kind of an attribute from its phrase: the head noun is looked for before any
    "with / of / and / over ..." ("denim jacket with a white collar" -> upper body, "white
    jacket" -> upper body, "red baseball cap" -> headwear); the last known word decides,
    then any known word of the whole phrase; else the phrase's last word."""
    words = re.findall(r"[a-z]+(?:-[a-z]+)?", (phrase or "").lower())
    head = []
    for w in words:
        if w in _SPLIT_WORDS and head:
            break
        head.append(w)
    for part in (head, words):
        for w in reversed(part):
            for cand in (w, w[:-1] if w.endswith("s") else w):
                if cand in _WORD_KIND:
                    return _WORD_KIND[cand]
    return head[-1] if head else "attribute"


def region_of_kind(kind: str) -> str:
    return KIND_REGION.get(kind, BODY)


def competitors(a: int, owners: Sequence[int], kinds: Sequence[str]) -> tuple:
    """``(attributes, scope)``: the attributes that compete with ``a`` -- those of the same
    kind (scope "same kind"), else worn in the same region ("same region"), whose owner is
    not ``a``'s owner."""
    others = [b for b in range(len(owners)) if owners[b] != owners[a]]
    same = [b for b in others if kinds[b] == kinds[a]]
    if same:
        return same, "same kind"
    region = region_of_kind(kinds[a])
    same = [b for b in others if region_of_kind(kinds[b]) == region]
    return same, "same region" if same else "none"


def _round(v, digits: int = 3):
    return None if v is None else round(float(v), digits)


def _frames_text(frames: Sequence[int]) -> str:
    frames = list(frames)
    if len(frames) > 6:
        return f"{frames[0]}-{frames[-1]} ({len(frames)} frames)"
    return ", ".join(str(f) for f in frames)


def binding_scores(sim, owners: Sequence[int], kinds: Sequence[str],
                   phrases: Optional[Sequence[str]] = None, per_frame=None, cross=None,
                   presence=None, presence_bounds=None,
                   attribute_similarity=None, plain_names: Optional[Dict[tuple, str]] = None,
                   dark=None, hue=None, cast_rejected=None, exposure=None, fill=None,
                   frame_numbers: Optional[Sequence[int]] = None,
                   thresholds=None, unscored_reason: str = "person not found") -> dict:
    """Scores from ``sim`` ``[people, attributes]`` (the mean over frames; rows of people
    not found are NaN), ``owners[a]`` (the person of attribute ``a``) and ``kinds[a]``.

    Optional per-frame data (``[frames, people, attributes]``, NaN where not measured):
    ``per_frame`` similarities (``cross`` ``[frames, people, attributes, attributes]``: in
    the region where ``a`` is worn, the similarity to every attribute ``b``), ``presence``
    (:mod:`.verdicts`; without it presence is not tested and every attribute counts as
    present; ``presence_bounds``: its low and high ends, noise included), ``hue`` (how
    much better the attribute matches with its hue turned: colour shift).
    ``attribute_similarity`` ``[A, A]``: how alike the attributes are (two that cannot be
    told apart cannot be placed); ``plain_names[(q, a)]``: the plain patch bounding the
    presence; ``dark`` ``[frames]`` or ``[frames, attributes]``: too dark to use (for that
    attribute); ``cast_rejected[t]``: frames whose faces changed colour in a way no white
    balance explains (:mod:`.light`); ``exposure[t]``: how much the light of each frame was
    raised; ``fill[a]``: the share of its photo's box attribute ``a`` fills;
    ``frame_numbers``: the frames' numbers in the video (for the reasons).
    Returns a JSON-able dict (see the module docs)."""
    from .verdicts import (COLOR_THRESHOLDS, CORRECT, MISSING, OFF, ON, UNDECIDED, UNSCORED,
                           WRONG, mean_se, place)
    t = thresholds or COLOR_THRESHOLDS
    S = np.asarray(sim, dtype=np.float64)
    n_people, n_attr = S.shape
    F = np.asarray(per_frame, dtype=np.float64) if per_frame is not None else S[None]
    n_frames = F.shape[0]
    C = (np.asarray(cross, dtype=np.float64) if cross is not None
         else np.broadcast_to(F[:, :, None, :], F.shape + (n_attr,)))
    tested = presence is not None
    P = (np.asarray(presence, dtype=np.float64) if tested
         else np.where(np.isfinite(F), 1.0, np.nan))
    lo, hi = ((np.asarray(b, dtype=np.float64) for b in presence_bounds)
              if presence_bounds is not None else (P, P))
    AA = (np.asarray(attribute_similarity, dtype=np.float64)
          if attribute_similarity is not None else np.zeros((n_attr, n_attr)))
    H = np.asarray(hue, dtype=np.float64) if hue is not None else None
    dark = np.zeros(n_frames, bool) if dark is None else np.asarray(dark, bool)
    use = np.broadcast_to((~dark).reshape(n_frames, -1), (n_frames, n_attr))  # [T, A]
    lit = use.any(axis=1) if n_attr else ~dark.reshape(n_frames, -1).any(1)   # [T]
    numbers = list(frame_numbers) if frame_numbers is not None else list(range(n_frames))
    owners = [int(o) for o in owners]
    phrases = list(phrases) if phrases is not None else [f"attribute {a + 1}"
                                                         for a in range(n_attr)]
    plain_names = plain_names or {}
    if len(owners) != n_attr or len(kinds) != n_attr:
        raise ValueError("owners and kinds need one entry per attribute column")
    found = [bool(np.isfinite(F[:, p]).any()) for p in range(n_people)]

    comp = [competitors(a, owners, kinds) for a in range(n_attr)]
    # thin attributes (and glasses, worn small on the face) are never proven absent
    thin = [(fill is not None and fill[a] < t.thin) or region_of_kind(kinds[a]) == EYES
            for a in range(n_attr)]

    def margins(q: int, a: int):
        """Per-frame margins of ``a`` on ``q`` against its competitors (the smallest; all NaN
        when one cannot be told apart from ``a``), the closest competitor, whether any
        competitor exists. On someone else than its owner, everything ``q`` wears competes
        too, measured where ``a`` would be worn."""
        cands, _ = comp[a]
        if q != owners[a]:
            cands = sorted(set(cands) | {b for b in range(n_attr) if owners[b] == q})
        alike = [b for b in cands if 1.0 - AA[a, b] < t.separation]
        if alike:                         # where one could be, so could the other: unsure
            return np.full(n_frames, np.nan), alike[0], True
        if not cands:
            return np.full(n_frames, np.nan), None, False
        M = np.stack([C[:, q, a, a] - C[:, q, a, b] for b in cands])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)         # all-NaN frames
            means = [np.nanmean(np.where(use[:, a], m, np.nan)) for m in M]
            per_frame = np.nanmin(M, axis=0)
        k = int(np.argmin([m if np.isfinite(m) else np.inf for m in means]))
        return per_frame, cands[k], True

    def present(q: int, b: int) -> bool:
        m, se = mean_se(np.where(use[:, b], lo[:, q, b], np.nan))
        return m is not None and m - t.z * se >= t.present

    places = {}
    frame_on = {}
    for a in range(n_attr):
        for q in range(n_people):
            if not found[q]:
                continue
            marg, winner, has = margins(q, a)
            marg = np.where(np.isfinite(F[:, q, a]), marg, np.nan)
            sel = use[:, a] & np.isfinite(F[:, q, a])
            w_present = present(q, winner) if winner is not None else None
            pl = place(np.where(sel, F[:, q, a], np.nan), np.where(sel, P[:, q, a], np.nan),
                       np.where(sel, marg, np.nan), w_present, t,
                       plain_names.get((q, a)), has, winner,
                       thin[a],
                       (np.where(sel, lo[:, q, a], np.nan), np.where(sel, hi[:, q, a], np.nan)))
            places[(q, a)] = pl
            with np.errstate(invalid="ignore"):
                clear = sel & (lo[:, q, a] >= t.present) & (
                    (marg > t.margin) if has else np.ones(n_frames, bool))
            frame_on[(q, a)] = [i for i in range(n_frames) if clear[i]]

    # colour shift: the attribute matches better with its hue turned where it stands best
    shifted, hue_of = {}, {}
    if H is not None:
        for a in range(n_attr):
            where = [q for q in range(n_people) if (q, a) in places]
            if not where:
                continue
            best = max(where, key=lambda q: places[(q, a)].presence
                       if places[(q, a)].presence is not None else -np.inf)
            m, _ = mean_se(np.where(use[:, a], H[:, best, a], np.nan))
            hue_of[a] = m
            if m is not None and m >= t.hue:
                shifted[a] = (best, m)
    cast = np.zeros(n_frames, bool) if cast_rejected is None else np.asarray(cast_rejected, bool)
    # the faces' colours changed in a way no white balance explains, or several coloured
    # garments match better with their hue turned (the median of them: one can be recoloured)
    gains = [m for m in hue_of.values() if m is not None]
    odd_colours = int(np.sum(cast & lit)) * 2 >= max(int(np.sum(lit)), 1) and cast.any()
    video_shift = odd_colours or (len(gains) >= 2 and float(np.median(gains)) >= t.hue)

    raised = float(np.median(exposure)) if exposure is not None and len(exposure) else 1.0
    pairs = []
    for a in range(n_attr):
        p = owners[a]
        cands, scope = comp[a]
        entry = {"person": p, "attribute": a, "phrase": phrases[a], "kind": kinds[a],
                 "scope": scope, "similarity": None, "best_other": None, "winner": None,
                 "winner_person": None, "margin": None, "presence": None, "correct": None,
                 "swap": False, "status": "scored", "verdict": None, "reason": None,
                 "found_on": [], "where": {}, "plain_patch": plain_names.get((p, a))}
        if np.isfinite(S[p, a]):
            entry["similarity"] = float(S[p, a])
            others = [b for b in cands if np.isfinite(S[p, b])]
            if others:
                b = max(others, key=lambda b: S[p, b])
                entry.update(best_other=float(S[p, b]), margin=float(S[p, a] - S[p, b]),
                             winner=b)
        if not found[p]:
            entry.update(status="person not found", verdict=UNSCORED, reason=unscored_reason)
            pairs.append(entry)
            continue
        if not cands:
            entry["status"] = "uncontested"
        own = places[(p, a)]
        entry["presence"] = own.presence if tested else None
        entry["normalised_margin"] = own.margin
        entry["hue_shift"] = hue_of.get(a)
        entry["where"] = {str(q): {"state": places[(q, a)].state,
                                   "presence": _round(places[(q, a)].presence),
                                   "margin": _round(places[(q, a)].margin)}
                          for q in range(n_people) if (q, a) in places}
        on_others = [q for q in range(n_people) if q != p and (q, a) in places
                     and places[(q, a)].state == ON]
        entry["found_on"] = ([p] if own.state == ON else []) + on_others
        usable = int(np.sum(use[:, a] & np.isfinite(F[:, p, a])))
        n_found = int(np.sum(np.isfinite(F[:, p, a])))
        other_frames = sorted({i for q in range(n_people) if q != p and (q, a) in frame_on
                               for i in frame_on[(q, a)]})
        own_frames = frame_on[(p, a)]
        need = max(2, int(np.ceil(t.mixed_share * max(usable, 1))))
        verdict, reason = UNDECIDED, own.reason
        if usable == 0:
            reason = (f"too dark: in all {n_found} frames where the person was found, the "
                      f"faces are too dark to correct the light from or the attribute is too "
                      f"dark to be seen")
        elif video_shift:
            reason = ("colours shifted: " + (
                f"the faces' colours differ from the references' in a way no white balance "
                f"explains (in {int(np.sum(cast & lit))} of {int(np.sum(lit))} frames)"
                if odd_colours else "the coloured garments match better with their hue "
                                    "turned") + ": a hue-shifted video is neither proof nor "
                      "disproof")
        elif a in shifted and own.state != ON and not on_others:
            q, m = shifted[a]
            reason = (f"colours shifted: on person {q + 1} the attribute matches better with "
                      f"its hue turned (hue shift {m:+.2f} >= {t.hue:+.2f}); a hue-shifted "
                      f"video or a recoloured garment is neither proof nor disproof")
        elif own.state == ON and len(other_frames) >= need:
            reason = (f"on the person in frames {_frames_text(numbers[i] for i in own_frames)}"
                      f" but on someone else in frames "
                      f"{_frames_text(numbers[i] for i in other_frames)}")
        elif own.state == ON:
            verdict, reason = CORRECT, f"on the person: {own.reason}"
        elif on_others and len(own_frames) >= need:
            reason = (f"on person {on_others[0] + 1} in frames "
                      f"{_frames_text(numbers[i] for i in other_frames)} but on the person "
                      f"in frames {_frames_text(numbers[i] for i in own_frames)}")
        elif on_others:
            q = max(on_others, key=lambda q: places[(q, a)].presence)
            seen = int(np.sum(use[:, a] & np.isfinite(F[:, q, a])))
            if len(frame_on[(q, a)]) < (1.0 - t.mixed_share) * seen:
                reason = (f"on person {q + 1} in frames "
                          f"{_frames_text(numbers[i] for i in frame_on[(q, a)])} only, of "
                          f"{seen}; not clearly on the person ({own.reason})")
            else:
                entry["winner_person"] = q
                verdict = WRONG
                reason = (f"on person {q + 1} ({places[(q, a)].reason}), not on the person "
                          f"({own.reason})")
        elif own.state == OFF:
            unsure = [q for q in range(n_people) if q != p and (q, a) in places
                      and places[(q, a)].state != OFF]
            unseen = [q for q in range(n_people) if q != p and not found[q]]
            if unsure:
                reason = (f"not on the person ({own.reason}); on person {unsure[0] + 1}: "
                          f"{places[(unsure[0], a)].reason}")
            elif unseen:
                reason = (f"not on the person ({own.reason}), but person {unseen[0] + 1} was "
                          f"not found: it may be on them")
            else:
                verdict = MISSING
                reason = (f"on nobody: not on the person ({own.reason})"
                          + (", nor on anyone else" if n_people > 1 else ""))
        if verdict == UNDECIDED and not reason.startswith(("too dark", "colours", "on ")):
            reason = f"unsure where it is: {reason}"
        if verdict == UNDECIDED and raised >= DARK_VIDEO and not reason.startswith("too dark"):
            reason = f"dark video (light raised x{raised:.1f}), {reason}"
        if not tested and verdict in (CORRECT, WRONG):
            reason += "; presence not tested"
        entry.update(verdict=verdict, reason=reason)
        if verdict in (CORRECT, WRONG, MISSING):
            entry["correct"] = verdict == CORRECT
        pairs.append(entry)

    # swaps: p's attribute is on q while one of q's is on p
    swaps, seen = [], set()
    by_attr = {e["attribute"]: e for e in pairs}
    for e in pairs:
        if e["verdict"] != WRONG:
            continue
        p, q, a = e["person"], e["winner_person"], e["attribute"]
        for b in range(n_attr):
            f = by_attr[b]
            if (owners[b] == q and f["verdict"] == WRONG and f["winner_person"] == p
                    and region_of_kind(kinds[b]) == region_of_kind(kinds[a])):
                e["swap"] = f["swap"] = True
                key = tuple(sorted([(p, a), (q, b)]))
                if key not in seen:
                    seen.add(key)
                    swaps.append({"people": [p, q], "attributes": [a, b],
                                  "phrases": [phrases[a], phrases[b]], "kind": kinds[a]})
    counts = {k: sum(e["verdict"] == k for e in pairs)
              for k in (CORRECT, WRONG, MISSING, UNDECIDED, UNSCORED)}
    decided = [e for e in pairs if e["verdict"] in (CORRECT, WRONG, MISSING)]
    scored = [e for e in pairs if e["verdict"] != UNSCORED]
    margins_raw = [e["margin"] for e in scored if e["margin"] is not None]
    return {
        "matrix": [[None if not np.isfinite(v) else round(float(v), 4) for v in row]
                   for row in S],
        "owners": owners,
        "kinds": list(kinds),
        "phrases": phrases,
        "pairs": pairs,
        "verdicts": counts,
        "scored": len(scored),
        "decided": len(decided),
        "total_pairs": len(pairs),
        "accuracy": (counts[CORRECT] / len(decided)) if decided else None,
        "swap_rate": (sum(e["swap"] for e in decided) / len(decided)) if decided else None,
        "margin_mean": float(np.mean(margins_raw)) if margins_raw else None,
        "margin_min": float(np.min(margins_raw)) if margins_raw else None,
        "swaps": swaps,
        "thresholds": t.as_dict(),
    }
