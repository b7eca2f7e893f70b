"""Identity: which detected face is which reference person, frame by frame, and how well
each person's face keeps their identity.

Per frame, the detected faces are assigned to the reference people by maximum total ArcFace
similarity (Hungarian, :func:`assignment.assign`); a face is only given to a person when
their cosine similarity reaches ``min_similarity`` (else it is a stranger, and the person
counts as not detected in that frame).

Identity swaps: identity follows faces, and a person is followed by their body. An identity
swap is a body whose face changes person. Each person's body is seen as the colours of the
torso under their face (light-corrected, :func:`~.appearance.look`), and remembered from the
last frame where that torso was clear of everybody else's (people walking past each other
hide one another). When, between two such frames, person ``p``'s face comes to sit on a body
that looks like ``q``'s and ``q``'s face on one that looks like ``p``'s (each more alike by
at least ``SWAP_MARGIN``), the faces exchanged bodies: a swap; so is ``p``'s face on ``q``'s
body while ``q`` is not found, and a face first seen on the body ``q`` was remembered with
while ``q``'s face sits on a body unlike it (``p`` was not found before: in the dark, or
turned away). People who walk past each other keep their clothes, so they keep their
identity wherever they go. When two people's bodies look alike (or no appearance is given),
position decides instead: two faces that exchanged places between consecutive frames (each
linked by position to where the other was: Hungarian on centre distance in face sizes, at
most ``link_distance`` apart).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from .assignment import assign
from ..faces.detector import Face

DEFAULT_MIN_SIMILARITY = 0.2
DEFAULT_LINK_DISTANCE = 1.0
#: a body must look this much more like the other person's than like its own (similarity)
SWAP_MARGIN = 0.15
#: two bodies at most this similar tell people apart (else position decides)
DISTINCT = 0.85


@dataclass
class Assigned:
    """Person ``person`` is face ``face`` of the frame, with cosine ``similarity``."""

    person: int
    face: int
    bbox: tuple
    similarity: float


@dataclass
class FrameIdentity:
    """One sampled frame: its index in the video, the detected faces, the
    ``[people, faces]`` similarity matrix and the assignment (person -> Assigned)."""

    frame: int
    faces: List[Face]
    similarity: np.ndarray
    assigned: Dict[int, Assigned] = field(default_factory=dict)


def similarity_matrix(ref_embeddings: Sequence[Optional[np.ndarray]],
                      faces: Sequence[Face]) -> np.ndarray:
    """Cosine similarities ``[people, faces]`` (NaN where an embedding is missing)."""
    sim = np.full((len(ref_embeddings), len(faces)), np.nan)
    for j, f in enumerate(faces):
        if f.embedding is None:
            continue
        e = np.asarray(f.embedding, dtype=np.float64)
        e = e / max(np.linalg.norm(e), 1e-12)
        for i, r in enumerate(ref_embeddings):
            if r is None:
                continue
            r = np.asarray(r, dtype=np.float64)
            sim[i, j] = float(e @ (r / max(np.linalg.norm(r), 1e-12)))
    return sim


def identify_frame(frame: int, faces: Sequence[Face],
                   ref_embeddings: Sequence[Optional[np.ndarray]],
                   min_similarity: float = DEFAULT_MIN_SIMILARITY) -> FrameIdentity:
    faces = list(faces)
    sim = similarity_matrix(ref_embeddings, faces)
    out = FrameIdentity(frame, faces, sim)
    for p, f in assign(sim, min_similarity):
        out.assigned[p] = Assigned(p, f, tuple(float(v) for v in faces[f].bbox),
                                   float(sim[p, f]))
    return out


def _distances(prev: Sequence[Face], cur: Sequence[Face]) -> np.ndarray:
    """Centre distances ``[prev, cur]`` in units of the pair's mean face size."""
    d = np.zeros((len(prev), len(cur)))
    for i, a in enumerate(prev):
        for j, b in enumerate(cur):
            size = max((a.width + a.height + b.width + b.height) / 4.0, 1e-6)
            d[i, j] = math.dist(a.center, b.center) / size
    return d


def link_faces(prev: Sequence[Face], cur: Sequence[Face],
               link_distance: float = DEFAULT_LINK_DISTANCE) -> List[tuple]:
    """Pairs ``(i, j)`` linking face ``i`` of the previous frame to face ``j`` of the
    current one: the Hungarian assignment of smallest total centre distance, measured in
    units of the pair's mean face size, keeping pairs at most ``link_distance`` apart."""
    if not prev or not cur:
        return []
    # assign maximises: use closeness (link_distance - d), pairs beyond it forbidden
    return assign(link_distance - _distances(prev, cur), 0.0)


def _look_swaps(frames: Sequence[FrameIdentity], looks, clear, link_distance: float):
    """``[(sample t, previous frame, [(from person, to person, face index)])]``: the bodies
    whose face changed person (see the module docs)."""
    last: Dict[int, tuple] = {}                # person -> (frame number, look), clear torso
    out = []
    for t in range(len(frames)):
        fr = frames[t]
        now = {p: a.face for p, a in fr.assigned.items()}
        changes, prev_frame = [], None
        people = sorted(now)
        for x, p in enumerate(people):
            for q in people[x + 1:]:
                lp, lq = looks[t][now[p]], looks[t][now[q]]
                seen = p in last and q in last and lp is not None and lq is not None \
                    and clear[t][now[p]] and clear[t][now[q]]
                if not seen or 1.0 - float(last[p][1] @ last[q][1]) < 1.0 - DISTINCT:
                    continue
                gain_p = float(lp @ last[q][1] - lp @ last[p][1])
                gain_q = float(lq @ last[p][1] - lq @ last[q][1])
                if gain_p >= SWAP_MARGIN and gain_q >= SWAP_MARGIN:
                    changes += [(p, q, now[q]), (q, p, now[p])]
                    prev_frame = max(last[p][0], last[q][0])
        # a face on the body of someone not seen now (their face gone or unrecognised)
        for p in people:
            lp = looks[t][now[p]]
            if p not in last or lp is not None and not clear[t][now[p]] or lp is None \
                    or any(c[0] == p or c[1] == p for c in changes):
                continue
            for q in last:
                if q in now or q == p or \
                        1.0 - float(last[p][1] @ last[q][1]) < 1.0 - DISTINCT:
                    continue
                if float(lp @ last[q][1] - lp @ last[p][1]) >= SWAP_MARGIN:
                    changes.append((q, p, now[p]))
                    prev_frame = max(last[p][0], last[q][0])
                    break
        # a face first seen now, on the body someone else was remembered with, while that
        # person's face sits on a body unlike it (their face moved)
        for p in people:
            lp = looks[t][now[p]]
            if p in last or lp is None or not clear[t][now[p]] \
                    or any(c[0] == p or c[1] == p for c in changes):
                continue
            for q in people:
                lq = looks[t][now[q]]
                if q == p or q not in last or lq is None or not clear[t][now[q]] \
                        or any(c[0] == q or c[1] == q for c in changes):
                    continue
                if float(lp @ last[q][1] - lq @ last[q][1]) >= SWAP_MARGIN:
                    changes.append((q, p, now[p]))
                    prev_frame = last[q][0]
                    break
        # people dressed alike (or not seen clearly): by position, as frames go -- two faces
        # that exchanged places (each where the other was), not people who walked on
        if t > 0:
            a, b = frames[t - 1], fr
            person_of_a = {x.face: x.person for x in a.assigned.values()}
            person_of_b = {x.face: x.person for x in b.assigned.values()}
            links = link_faces(a.faces, b.faces, link_distance)
            linked = {(person_of_a.get(i), person_of_b.get(j)) for i, j in links}
            for i, j in links:
                pa, pb = person_of_a.get(i), person_of_b.get(j)
                if pa is None or pb is None or pa == pb or any(c[0] == pa for c in changes):
                    continue
                told = pa in last and pb in last and \
                    1.0 - float(last[pa][1] @ last[pb][1]) >= 1.0 - DISTINCT
                if not told and (pb, pa) in linked:
                    changes.append((pa, pb, j))
                    prev_frame = a.frame
        if changes:
            out.append((t, prev_frame, changes))
        for p, j in now.items():
            if looks[t][j] is not None and clear[t][j]:
                last[p] = (fr.frame, looks[t][j])
    return out


def identity_scores(frames: Sequence[FrameIdentity], n_people: int,
                    link_distance: float = DEFAULT_LINK_DISTANCE,
                    looks: Optional[Sequence[Sequence]] = None,
                    clear: Optional[Sequence[Sequence[bool]]] = None) -> dict:
    """Per-person similarity (mean / max / min over the frames where the person was
    found), detection rate, per-frame similarities, and the identity swaps. ``looks[t][j]``:
    the appearance (unit vector, or ``None``) of the body under face ``j`` of frame ``t``;
    ``clear[t][j]``: whether that body is clear of the others (default: all)."""
    n = len(frames)
    people = []
    for p in range(n_people):
        sims = [fr.assigned[p].similarity if p in fr.assigned else None for fr in frames]
        found = [s for s in sims if s is not None]
        people.append({
            "person": p,
            "frames": n,
            "detected": len(found),
            "detection_rate": (len(found) / n) if n else 0.0,
            "similarity_mean": float(np.mean(found)) if found else None,
            "similarity_max": float(np.max(found)) if found else None,
            "similarity_min": float(np.min(found)) if found else None,
            "per_frame": [None if s is None else round(float(s), 4) for s in sims],
            "swaps": 0,
            "swap_frames": [],
        })
    if looks is None:
        looks = [[None] * len(fr.faces) for fr in frames]
    if clear is None:
        clear = [[True] * len(fr.faces) for fr in frames]
    swaps = []
    for t, prev_frame, found_changes in _look_swaps(frames, looks, clear, link_distance):
        b = frames[t]
        changes = [{"from": p, "to": q, "bbox": [round(float(v), 1) for v in b.faces[j].bbox]}
                   for p, q, j in found_changes]
        involved = sorted({c["from"] for c in changes} | {c["to"] for c in changes})
        for p in involved:
            people[p]["swaps"] += 1
            people[p]["swap_frames"].append(b.frame)
        swaps.append({"sample": t, "frame": b.frame, "previous_frame": prev_frame,
                      "people": involved, "changes": changes})
    means = [x["similarity_mean"] for x in people if x["similarity_mean"] is not None]
    return {
        "people": people,
        "similarity_mean": float(np.mean(means)) if means else None,
        "similarity_min_person": float(np.min(means)) if means else None,
        "detection_rate": float(np.mean([x["detection_rate"] for x in people]))
        if people else None,
        "swaps": swaps,
        "n_swaps": len(swaps),
        # share of the people found whose face changed person at least once
        "swap_rate": (sum(1 for x in people if x["swaps"]) /
                      sum(1 for x in people if x["detected"]))
        if any(x["detected"] for x in people) else None,
    }
