"""Identity: which detected face is which reference person, frame by frame, and how well
each person's face keeps their identity.

Per frame, the detected faces are assigned to the reference people by maximum total ArcFace
similarity (Hungarian, :func:`assignment.assign`); a face is only given to a person when
their cosine similarity reaches ``min_similarity`` (else it is a stranger, and the person
counts as not detected in that frame).

Identity swaps: faces of consecutive sampled frames are linked by position (Hungarian on
centre distance in face sizes, at most ``link_distance`` apart); a linked face whose person
changes between the two frames is an identity swap (the face at that place became someone
else). People crossing each other faster than the frame sampling looks the same: sample
more frames (``--frames``) when people move a lot.
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

    def box_of(self, person: int):
        a = self.assigned.get(person)
        return None if a is None else a.bbox


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


def link_faces(prev: Sequence[Face], cur: Sequence[Face],
               link_distance: float = DEFAULT_LINK_DISTANCE) -> List[tuple]:
    """Pairs ``(i, j)`` linking face ``i`` of the previous frame to face ``j`` of the
    current one: the Hungarian assignment of smallest total centre distance, measured in
    units of the pair's mean face size, keeping pairs at most ``link_distance`` apart."""
    if not prev or not cur:
        return []
    d = np.zeros((len(prev), len(cur)))
    for i, a in enumerate(prev):
        for j, b in enumerate(cur):
            size = max((a.width + a.height + b.width + b.height) / 4.0, 1e-6)
            d[i, j] = math.dist(a.center, b.center) / size
    # assign maximises: use closeness (link_distance - d), pairs beyond it forbidden
    return assign(link_distance - d, 0.0)


def identity_scores(frames: Sequence[FrameIdentity], n_people: int,
                    link_distance: float = DEFAULT_LINK_DISTANCE) -> dict:
    """Per-person similarity (mean / max / min over the frames where the person was
    found), detection rate, per-frame similarities, and the identity swaps."""
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
        })
    swaps = []
    for t in range(1, n):
        a, b = frames[t - 1], frames[t]
        person_of_a = {x.face: x.person for x in a.assigned.values()}
        person_of_b = {x.face: x.person for x in b.assigned.values()}
        changes = []
        for i, j in link_faces(a.faces, b.faces, link_distance):
            pa, pb = person_of_a.get(i), person_of_b.get(j)
            if pa is not None and pb is not None and pa != pb:
                changes.append({"from": pa, "to": pb,
                                "bbox": [round(float(v), 1) for v in b.faces[j].bbox]})
        if changes:
            involved = sorted({c["from"] for c in changes} | {c["to"] for c in changes})
            for p in involved:
                people[p]["swaps"] += 1
            swaps.append({"sample": t, "frame": b.frame, "previous_frame": a.frame,
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
    }
