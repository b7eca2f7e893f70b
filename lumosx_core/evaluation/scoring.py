"""One video against its references: identity per person and attribute binding.

``evaluate_video(frames, references, detector, backend)`` runs, per sampled frame: face
detection + ArcFace embedding (``detector``), assignment of faces to the reference people
(:mod:`.identity`), each found person's regions (:mod:`.regions`, or user masks), region vs.
attribute similarities (:mod:`.appearance` backend). The person x attribute matrix is the mean
over the frames where the person was found; :mod:`.binding` scores it.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from .appearance import ColorTextureBackend, dominant_colors, to_numpy_rgb
from .attribute_binding import attribute_kind, binding_scores, region_of_kind
from ..faces.detector import Face
from .identity import (DEFAULT_LINK_DISTANCE, DEFAULT_MIN_SIMILARITY, FrameIdentity,
                       identify_frame, identity_scores)
from .regions import BODY, DEFAULT_BODY_HEIGHT, DEFAULT_BODY_WIDTH, person_regions

log = logging.getLogger("LumosX")

PIXELS_FOR_COLORS = 4000


@dataclass
class Settings:
    min_face_similarity: float = DEFAULT_MIN_SIMILARITY
    body_width: float = DEFAULT_BODY_WIDTH
    body_height: float = DEFAULT_BODY_HEIGHT
    link_distance: float = DEFAULT_LINK_DISTANCE

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Evaluation:
    """Everything one evaluation found; :meth:`to_dict` is the JSON form."""

    people: List[dict]
    attributes: List[dict]
    frames: List[FrameIdentity]
    regions: List[Dict[int, Dict[str, np.ndarray]]]
    identity: dict
    binding: dict
    backend: str
    settings: Settings
    warnings: List[str] = field(default_factory=list)

    @property
    def matrix(self) -> np.ndarray:
        return np.array([[np.nan if v is None else v for v in row]
                         for row in self.binding["matrix"]], dtype=np.float64).reshape(
            len(self.people), len(self.attributes))

    def to_dict(self) -> dict:
        frames = []
        for fr in self.frames:
            frames.append({
                "frame": fr.frame,
                "faces": [{"bbox": [round(float(v), 1) for v in f.bbox],
                           "score": round(float(f.score), 3)} for f in fr.faces],
                "assigned": {str(p): {"face": a.face, "similarity": round(a.similarity, 4)}
                             for p, a in sorted(fr.assigned.items())},
            })
        return {
            "backend": self.backend,
            "settings": self.settings.as_dict(),
            "people": self.people,
            "attributes": self.attributes,
            "identity": self.identity,
            "binding": self.binding,
            "frames": frames,
            "warnings": list(self.warnings),
        }


def _people_of(references):
    people = getattr(references, "people", references)
    if not people:
        raise ValueError("references: no people to evaluate (add LumosX Person nodes)")
    return list(people)


def reference_embedding(detector: Callable, image: torch.Tensor) -> Optional[np.ndarray]:
    """ArcFace embedding of the largest face in a face reference image (``None`` if none)."""
    faces = [f for f in detector(image) if f.embedding is not None]
    if not faces:
        return None
    return max(faces, key=lambda f: f.width * f.height).embedding


def _frames_list(frames) -> List[torch.Tensor]:
    if torch.is_tensor(frames):
        if frames.ndim == 3:
            frames = frames.unsqueeze(0)
        if frames.ndim != 4:
            raise ValueError(f"frames: expected [F, H, W, C]; got {tuple(frames.shape)}")
        return [frames[i] for i in range(frames.shape[0])]
    return list(frames)


def evaluate_video(frames, references, detector: Callable[[torch.Tensor], List[Face]],
                   backend=None, masks: Optional[Sequence[Optional[Dict[int, np.ndarray]]]] = None,
                   frame_indices: Optional[Sequence[int]] = None,
                   settings: Optional[Settings] = None,
                   progress: Optional[Callable[[int, int], None]] = None,
                   check_interrupt: Optional[Callable[[], None]] = None,
                   reference_embeddings: Optional[Sequence[Optional[np.ndarray]]] = None
                   ) -> Evaluation:
    """Score ``frames`` (``[F, H, W, C]`` or a list of ``[H, W, C]``, already sampled) against
    ``references`` (a :class:`~lumosx_core.conditioning.references.ReferenceSet` or its people).

    ``masks[f]``: ``{person: [H, W] mask}`` for frame ``f`` (replaces the face-derived
    regions of those people). ``frame_indices``: the frames' numbers in the video (for the
    report). ``reference_embeddings``: precomputed face embeddings (else the detector embeds
    each person's face image)."""
    settings = settings or Settings()
    backend = backend or ColorTextureBackend()
    people = _people_of(references)
    frame_list = _frames_list(frames)
    n_frames = len(frame_list)
    if n_frames == 0:
        raise ValueError("frames: no frames to evaluate")
    frame_indices = list(frame_indices) if frame_indices is not None else list(range(n_frames))
    notes: List[str] = []

    # references ---------------------------------------------------------------------------
    if reference_embeddings is None:
        reference_embeddings = [reference_embedding(detector, p.face.image) for p in people]
    people_info = []
    for i, (p, emb) in enumerate(zip(people, reference_embeddings)):
        if emb is None:
            notes.append(f"person {i + 1} ('{p.face.phrase}'): no face found in the face "
                         f"reference; their identity cannot be scored")
        people_info.append({"person": i, "phrase": p.face.phrase,
                            "attributes": [a.phrase for a in p.attributes]})
    attrs = [(i, a) for i, p in enumerate(people) for a in p.attributes]
    owners = [i for i, _ in attrs]
    kinds = [attribute_kind(a.phrase) for _, a in attrs]
    attr_desc = backend.describe_attributes([a.image for _, a in attrs]) if attrs else []
    color_backend = ColorTextureBackend()
    attributes_info = [{"attribute": k, "person": i, "phrase": a.phrase, "kind": kinds[k],
                        "region": region_of_kind(kinds[k]),
                        "colors": color_backend.attribute_colors(a.image)}
                       for k, (i, a) in enumerate(attrs)]
    needed_regions = sorted({region_of_kind(k) for k in kinds}) or [BODY]

    # frames -------------------------------------------------------------------------------
    n_people, n_attr = len(people), len(attrs)
    sims = np.full((n_frames, n_people, n_attr), np.nan)
    identities: List[FrameIdentity] = []
    regions_all = []
    body_pixels: Dict[int, List[np.ndarray]] = {p: [] for p in range(n_people)}
    for t, frame in enumerate(frame_list):
        if check_interrupt is not None:
            check_interrupt()
        frame = frame.detach().float().cpu()
        h, w = frame.shape[:2]
        ident = identify_frame(frame_indices[t], detector(frame), reference_embeddings,
                               settings.min_face_similarity)
        identities.append(ident)
        user = (masks[t] if masks is not None else None) or {}
        boxes = {p: a.bbox for p, a in ident.assigned.items() if p not in user}
        regions = person_regions(boxes, w, h, settings.body_width, settings.body_height, user)
        regions_all.append(regions)
        if n_attr and regions:
            order = [(p, r) for p in sorted(regions) for r in needed_regions]
            desc = backend.describe_regions(frame, [regions[p][r] for p, r in order])
            by = dict(zip(order, desc))
            for a in range(n_attr):
                for p in regions:
                    d, e = by[(p, region_of_kind(kinds[a]))], attr_desc[a]
                    if d is not None and e is not None:
                        sims[t, p, a] = float(np.dot(d, e))
        rgb = None
        for p, r in regions.items():
            m = r[BODY]
            if m.any():
                rgb = to_numpy_rgb(frame) if rgb is None else rgb
                px = rgb[m]
                step = max(1, len(px) // (PIXELS_FOR_COLORS // n_frames + 1))
                body_pixels[p].append(px[::step])
        if progress is not None:
            progress(t + 1, n_frames)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # all-NaN rows: person not found
        matrix = np.nanmean(sims, axis=0) if n_attr else np.zeros((n_people, 0))
    phrases = [a.phrase for _, a in attrs]
    binding = binding_scores(matrix, owners, kinds, phrases)
    per_frame = []
    for t in range(n_frames):
        s = binding_scores(sims[t], owners, kinds, phrases)
        per_frame.append(s["accuracy"])
    binding["per_frame_accuracy"] = per_frame
    known = [x for x in per_frame if x is not None]
    binding["frame_accuracy_mean"] = float(np.mean(known)) if known else None
    binding["region_colors"] = [dominant_colors(np.concatenate(body_pixels[p]))
                                if body_pixels[p] else [] for p in range(n_people)]
    identity = identity_scores(identities, n_people, settings.link_distance)
    for info, ident in zip(people_info, identity["people"]):
        ident["phrase"] = info["phrase"]
    for note in notes:
        log.warning("LumosX Evaluate: %s", note)
    return Evaluation(people_info, attributes_info, identities, regions_all, identity, binding,
                      getattr(backend, "name", type(backend).__name__), settings, notes)


def _fmt(v, pct=False) -> str:
    if v is None:
        return "n/a"
    return f"{100 * v:.0f}%" if pct else f"{v:.3f}"


def summary_text(ev) -> str:
    """A short human-readable report of an :class:`Evaluation` (or its dict)."""
    d = ev.to_dict() if isinstance(ev, Evaluation) else ev
    ident, bind = d["identity"], d["binding"]
    lines = [f"LumosX evaluation ({len(d['frames'])} frames, appearance: {d['backend']})",
             "Identity (ArcFace cosine, mean / max over frames where found):"]
    for p in ident["people"]:
        lines.append(f"  person {p['person'] + 1} '{p['phrase']}': similarity "
                     f"{_fmt(p['similarity_mean'])} / {_fmt(p['similarity_max'])}, detected "
                     f"{p['detected']}/{p['frames']} ({_fmt(p['detection_rate'], True)}), "
                     f"swaps {p['swaps']}")
    lines.append(f"  identity swaps between frames: {ident['n_swaps']}")
    for s in ident["swaps"]:
        pairs = ", ".join(f"{c['from'] + 1}->{c['to'] + 1}" for c in s["changes"])
        lines.append(f"    frame {s['previous_frame']} -> {s['frame']}: {pairs}")
    lines.append(f"Binding: accuracy {_fmt(bind['accuracy'], True)} "
                 f"({bind['scored']} of {bind['total_pairs']} pairs scored), swap rate "
                 f"{_fmt(bind['swap_rate'], True)}, margin mean {_fmt(bind['margin_mean'])} "
                 f"min {_fmt(bind['margin_min'])}")
    for e in bind["pairs"]:
        who = f"person {e['person'] + 1} '{e['phrase']}' ({e['kind']})"
        if e["status"] != "scored":
            lines.append(f"  {who}: {e['status']}")
            continue
        verdict = "ok" if e["correct"] else (
            f"WRONG: '{bind['phrases'][e['winner']]}' of person {e['winner_person'] + 1} "
            f"is more similar" + (" (swap)" if e["swap"] else ""))
        lines.append(f"  {who}: own {_fmt(e['similarity'])} vs best other "
                     f"{_fmt(e['best_other'])}, margin {e['margin']:+.3f} -- {verdict}")
    for s in bind["swaps"]:
        a, b = s["people"]
        lines.append(f"  swap: person {a + 1} and person {b + 1} exchanged "
                     f"'{s['phrases'][0]}' / '{s['phrases'][1]}'")
    for w in d.get("warnings", []):
        lines.append(f"warning: {w}")
    return "\n".join(lines)
