"""Binding: does each attribute land on the right person?

Input: the person x attribute similarity matrix ``S[p, a]`` (the region of person ``p``
against attribute image ``a``; NaN for people not found), who owns each attribute, and each
attribute's kind.

For each person ``p`` found and each of their own attributes ``a``, the *competitors* are the
attributes of the other people of the same kind (kinds group phrases: "white jacket", "denim
jacket" and "light brown sweater" are all upper-body clothes; see :func:`attribute_kind`).
When nobody else has that kind, every attribute of the other people competes. A pair with no
competitor at all (one person, or nobody else has attributes) is *uncontested* and not scored.

* correct: ``S[p, a] > max S[p, competitors]`` -- p's own attribute is the most similar;
* margin: ``S[p, a] - max S[p, competitors]`` (> 0 when correct);
* swap: a wrong pair whose winner belongs to person ``q`` while in ``q``'s region an
  attribute of ``p`` beats ``q``'s own of that kind -- the two people exchanged it;
* binding accuracy = correct / scored pairs; swap rate = swapped / scored pairs.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Optional, Sequence

import numpy as np

from .regions import BODY, HEAD

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
#: where each kind is looked for on the person
KIND_REGION = {"headwear": HEAD, "eyewear": HEAD, "hair": HEAD}
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


def binding_scores(sim, owners: Sequence[int], kinds: Sequence[str],
                   phrases: Optional[Sequence[str]] = None, per_frame=None, plain=None,
                   plain_excluded=None, thresholds=None,
                   unscored_reason: str = "person not found") -> dict:
    """Scores from ``sim`` ``[people, attributes]`` (the mean over frames; rows of people
    not found are NaN), ``owners[a]`` (the person of attribute ``a``) and ``kinds[a]``.
    Optional per-frame data for the verdicts (:mod:`.verdicts`): ``per_frame``
    ``[frames, people, attributes]`` similarities, ``plain`` (same shape) the best
    similarity of that region to a plain patch unlike the attribute, ``plain_excluded`` to
    a plain patch the attribute itself resembles (NaN: none). Without ``plain`` the presence
    test is skipped. Returns a
    JSON-able dict (see the module docs)."""
    from .verdicts import (CORRECT, MISSING, UNDECIDED, UNSCORED, WRONG, COLOR_THRESHOLDS,
                           pair_verdict, presence_state)
    S = np.asarray(sim, dtype=np.float64)
    n_people, n_attr = S.shape
    F = np.asarray(per_frame, dtype=np.float64) if per_frame is not None else S[None]
    P = np.asarray(plain, dtype=np.float64) if plain is not None else None
    t = thresholds or COLOR_THRESHOLDS
    if P is None:                                     # no presence data: not tested
        t = dataclasses.replace(t, absolute=-np.inf)
    X = (np.asarray(plain_excluded, dtype=np.float64) if plain_excluded is not None
         else np.full_like(F, np.nan))
    owners = [int(o) for o in owners]
    phrases = list(phrases) if phrases is not None else [f"attribute {a + 1}"
                                                         for a in range(n_attr)]
    if len(owners) != n_attr or len(kinds) != n_attr:
        raise ValueError("owners and kinds need one entry per attribute column")
    found = [bool(np.isfinite(S[p]).any()) for p in range(n_people)]

    def competitors(p: int, a: int):
        same = [b for b in range(n_attr) if owners[b] != p and kinds[b] == kinds[a]]
        if same:
            return same, "same kind"
        other = [b for b in range(n_attr) if owners[b] != p]
        return other, "any kind"

    def state_of(p: int, b: int) -> str:
        if P is None:
            return "present"
        return presence_state(F[:, p, b], P[:, p, b], X[:, p, b], t)[0]

    pairs = []
    for a in range(n_attr):
        p = owners[a]
        comp, scope = competitors(p, a)
        entry = {"person": p, "attribute": a, "phrase": phrases[a], "kind": kinds[a],
                 "scope": scope, "similarity": None, "best_other": None, "winner": None,
                 "winner_person": None, "margin": None, "correct": None, "swap": False,
                 "status": "scored", "verdict": None, "reason": None}
        best = None
        if comp and found[p]:
            best = max(comp, key=lambda b: (S[p, b] if np.isfinite(S[p, b]) else -np.inf))
            if not np.isfinite(S[p, best]):
                best = None
        if not found[p] or not np.isfinite(S[p, a]):
            entry["status"] = "person not found"
        elif best is None:
            entry["status"] = "uncontested"
        own_f = F[:, p, a]
        # without plain-patch data every attribute counts as present (presence 1)
        plain_f = P[:, p, a] if P is not None else own_f - 1.0
        v = pair_verdict(own_f, F[:, p, best] if best is not None else None, plain_f,
                         X[:, p, a], state_of(p, best) if best is not None else None,
                         t, bool(found[p] and np.isfinite(S[p, a])), unscored_reason)
        if P is None and v.get("presence_state") == "present":
            v["reason"] = v["reason"].split("present (")[0] + "presence not tested"
            v["presence"] = None
            if best is None and v["verdict"] == CORRECT:       # nothing was tested at all
                v.update(verdict=UNDECIDED, reason="uncontested (no competing attribute) "
                                                   "and presence not tested")
        v.pop("presence_state", None)
        entry.update(v)
        if best is not None and np.isfinite(S[p, a]):
            own, other = float(S[p, a]), float(S[p, best])
            entry.update(similarity=own, best_other=other, margin=own - other)
            entry["winner"] = a if own > other else best
            entry["winner_person"] = p if own > other else owners[best]
        elif np.isfinite(S[p, a]):
            entry.update(similarity=float(S[p, a]))
        if entry["verdict"] in (CORRECT, WRONG, MISSING):
            entry["correct"] = entry["verdict"] == CORRECT
        pairs.append(entry)

    # swaps: p's attribute is wrong, won by q's, and q's region is won by one of p's
    by_pair = {(e["person"], e["attribute"]): e for e in pairs}
    swaps = []
    seen = set()
    for e in pairs:
        if e["verdict"] != WRONG:
            continue
        p, q, a = e["person"], e["winner_person"], e["attribute"]
        for b in range(n_attr):
            f = by_pair.get((q, b))
            if (owners[b] == q and f is not None and f["verdict"] == WRONG
                    and f["winner_person"] == p
                    and (kinds[b] == kinds[a] or e["scope"] == "any kind"
                         or f["scope"] == "any kind")):
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
    margins = [e["margin"] for e in scored if e["margin"] is not None]
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
        "margin_mean": float(np.mean(margins)) if margins else None,
        "margin_min": float(np.min(margins)) if margins else None,
        "swaps": swaps,
        "thresholds": t.as_dict(),
    }
