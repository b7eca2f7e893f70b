"""One video against its references: identity per person and attribute binding.

``evaluate_video(frames, references, detector, backend)`` runs, per sampled frame: face
detection + ArcFace embedding (``detector``), assignment of faces to the reference people
(:mod:`.identity`), each found person's regions (:mod:`.regions`, or user masks), region vs.
attribute similarities (:mod:`.appearance` backend). The person x attribute matrix is the mean
over the frames where the person was found; :mod:`.attribute_binding` scores it, with a
verdict per pair (:mod:`.verdicts`).
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from .appearance import (ColorTextureBackend, border_mask, describe_patches, dominant_colors,
                         foreground_mask, neutral_patches, region_cells, to_numpy_rgb)
from .attribute_binding import attribute_kind, binding_scores, region_of_kind
from ..faces.detector import Face
from .identity import (DEFAULT_LINK_DISTANCE, DEFAULT_MIN_SIMILARITY, FrameIdentity,
                       identify_frame, identity_scores)
from .regions import BODY, DEFAULT_BODY_HEIGHT, DEFAULT_BODY_WIDTH, bounding_box, person_regions
from .verdicts import thresholds_for

log = logging.getLogger("LumosX")

PIXELS_FOR_COLORS = 4000
#: background is also sampled beside each head, this far from its centre (face widths)
HEAD_SIDE = (1.0, 1.7)
#: clothes worn from the neck down are looked for in the cells of the upper part of the
#: body region (their centre in its top ``UPPER_SHARE``): what lies far below the chin (a
#: blanket, the floor) cannot pass for them
UPPER_KINDS = ("upper body", "full body", "neckwear")
UPPER_SHARE = 0.6


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
    #: "scored", "partial" (someone not found: their pairs unscored) or "unscored" (no
    #: faces, or nobody found: nothing could be scored)
    status: str = "scored"

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
            "status": self.status,
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

    # plain patches (greys, skin); the background is added per frame ---------------------
    t_hold = thresholds_for(getattr(backend, "name", ""))
    plain_desc = describe_patches(backend, neutral_patches())
    plain_names = list(plain_desc) + ["background"]
    n_attr = len(attrs)
    static_plain = (np.stack([plain_desc[k] for k in plain_desc]) if plain_desc
                    else np.zeros((0, 1), np.float32))
    for k, (info, e) in enumerate(zip(attributes_info, attr_desc)):
        if e is None or not len(static_plain):
            info["plain_similarity"], info["plain_patch"] = None, None
            continue
        sp = static_plain @ e
        info["plain_similarity"] = round(float(sp.max()), 4)
        info["plain_patch"] = plain_names[int(sp.argmax())]

    # frames -------------------------------------------------------------------------------
    n_people = len(people)
    sims = np.full((n_frames, n_people, n_attr), np.nan)
    plain = np.full((n_frames, n_people, n_attr), np.nan)
    plain_excl = np.full((n_frames, n_people, n_attr), np.nan)
    plain_which: Dict[tuple, List[str]] = {}
    excl_which: Dict[tuple, List[str]] = {}
    identities: List[FrameIdentity] = []
    regions_all = []
    body_pixels: Dict[int, List[np.ndarray]] = {p: [] for p in range(n_people)}
    n_faces = 0
    for t, frame in enumerate(frame_list):
        if check_interrupt is not None:
            check_interrupt()
        frame = frame.detach().float().cpu()
        h, w = frame.shape[:2]
        ident = identify_frame(frame_indices[t], detector(frame), reference_embeddings,
                               settings.min_face_similarity)
        identities.append(ident)
        n_faces += len(ident.faces)
        user = (masks[t] if masks is not None else None) or {}
        boxes = {p: a.bbox for p, a in ident.assigned.items() if p not in user}
        regions = person_regions(boxes, w, h, settings.body_width, settings.body_height, user)
        regions_all.append(regions)
        if n_attr and regions:
            _frame_similarities(t, frame, ident, regions, needed_regions, backend, attr_desc,
                                kinds, static_plain, plain_names, t_hold, sims, plain,
                                plain_excl, plain_which, excl_which)
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
    if n_faces == 0:
        unscored_reason = "no face detected in any sampled frame"
    else:
        unscored_reason = "person not found in any sampled frame (no face matched them)"
    binding = binding_scores(matrix, owners, kinds, phrases, per_frame=sims, plain=plain,
                             plain_excluded=plain_excl, thresholds=t_hold,
                             unscored_reason=unscored_reason)
    for e in binding["pairs"]:
        for key, src in (("plain_patch", plain_which), ("plain_like_attribute", excl_which)):
            names = src.get((e["person"], e["attribute"]))
            e[key] = max(set(names), key=names.count) if names else None
    per_frame = []
    for t in range(n_frames):
        s = binding_scores(sims[t], owners, kinds, phrases, per_frame=sims[t:t + 1],
                           plain=plain[t:t + 1], plain_excluded=plain_excl[t:t + 1],
                           thresholds=t_hold, unscored_reason=unscored_reason)
        per_frame.append(s["accuracy"])
    binding["per_frame_accuracy"] = per_frame
    known = [x for x in per_frame if x is not None]
    binding["frame_accuracy_mean"] = float(np.mean(known)) if known else None
    binding["region_colors"] = [dominant_colors(np.concatenate(body_pixels[p]))
                                if body_pixels[p] else [] for p in range(n_people)]
    identity = identity_scores(identities, n_people, settings.link_distance)
    for info, ident in zip(people_info, identity["people"]):
        ident["phrase"] = info["phrase"]
    unscored = [i for i, p in enumerate(identity["people"]) if p["detected"] == 0]
    status = "scored"
    if n_faces == 0:
        status = "unscored"
        notes.append("no face detected in any sampled frame: nothing can be scored")
    elif len(unscored) == n_people:
        status = "unscored"
        notes.append("none of the people was found (faces detected are strangers)")
    elif unscored:
        status = "partial"
        notes.append("not found in any sampled frame: " + ", ".join(
            f"person {i + 1} ('{people_info[i]['phrase']}')" for i in unscored)
            + "; their pairs are unscored")
    for note in notes:
        log.warning("LumosX Evaluate: %s", note)
    return Evaluation(people_info, attributes_info, identities, regions_all, identity, binding,
                      getattr(backend, "name", type(backend).__name__), settings, notes,
                      status)


def _frame_similarities(t, frame, ident, regions, needed_regions, backend, attr_desc, kinds,
                        static_plain, plain_names, t_hold, sims, plain, plain_excl,
                        plain_which, excl_which):
    """Fill frame ``t`` of ``sims`` / ``plain`` / ``plain_excl`` ``[frames, people, attrs]``.

    Each person's region loses its background pixels (colours of the frame border outside
    every person, :func:`~.appearance.foreground_mask`) and is cut into cells
    (:func:`~.appearance.region_cells`); an attribute's similarity is that of its best
    cell, and the plain-patch similarity is measured at that same cell: ``plain`` over the
    plain patches (greys, skin, this frame's background) the attribute does not itself
    resemble, ``plain_excl`` over those it does (similarity >= ``plain_attribute``)."""
    h, w = frame.shape[:2]
    rgb = to_numpy_rgb(frame)
    faces = np.zeros((h, w), dtype=bool)
    for f in ident.faces:
        x1, y1, x2, y2 = (int(round(v)) for v in f.bbox)
        faces[max(0, y1):max(0, y2), max(0, x1):max(0, x2)] = True
    # the frame border counts whole (but faces): a garment reaching the border is a small
    # share of it, and foreground_mask only drops colours far more common there
    border = border_mask(h, w, faces)
    taken = faces.copy()
    for reg in regions.values():
        for m in reg.values():
            taken |= m
    for f in ident.faces:
        x1, y1, x2, y2 = (int(round(v)) for v in f.bbox)
        taken[max(0, y1):max(0, y2), max(0, x1):max(0, x2)] = True
    # ... and beside each head (the wall behind a person), outside every region and face
    for f in ident.faces:
        x1, y1, x2, y2 = f.bbox
        fw, cx = max(x2 - x1, 1.0), (x1 + x2) / 2.0
        ya, yb = max(0, int(y1)), min(h, int(np.ceil(y2)))
        for lo, hi in ((cx - HEAD_SIDE[1] * fw, cx - HEAD_SIDE[0] * fw),
                       (cx + HEAD_SIDE[0] * fw, cx + HEAD_SIDE[1] * fw)):
            xa, xb = max(0, int(lo)), min(w, int(np.ceil(hi)))
            if xb > xa and yb > ya:
                border[ya:yb, xa:xb] |= ~taken[ya:yb, xa:xb]
    order, cells, upper = [], [], []
    for p in sorted(regions):
        for r in needed_regions:
            box = bounding_box(regions[p][r])
            for c in region_cells(foreground_mask(rgb, regions[p][r], border)):
                order.append((p, r))
                cells.append(c)
                ys = np.nonzero(c.any(axis=1))[0]
                centre = (ys[0] + ys[-1] + 1) / 2.0 if ys.size else 0.0
                upper.append(box is None or
                             centre <= box[1] + UPPER_SHARE * (box[3] - box[1]))
    desc = backend.describe_regions(frame, cells + [border])
    bg = desc[-1]
    # each cell's plain twin: a flat patch of the cell's median colour (all twins are
    # described in one call, as tiles of a mosaic)
    tile = 32
    mosaic = np.ones((tile, tile * max(1, len(cells)), 3), np.float32)
    tiles = []
    for i, c in enumerate(cells):
        mosaic[:, i * tile:(i + 1) * tile] = np.median(rgb[c], axis=0) if c.any() else 1.0
        m = np.zeros(mosaic.shape[:2], bool)
        m[:, i * tile:(i + 1) * tile] = True
        tiles.append(m)
    twins = backend.describe_regions(torch.from_numpy(mosaic), tiles) if cells else []
    base = static_plain if bg is None else np.concatenate([static_plain, bg[None]], 0)
    names = plain_names if bg is not None else plain_names[:-1]
    n_attr = len(attr_desc)
    E = np.stack([e if e is not None else np.zeros_like(base[0]) for e in attr_desc])
    known = np.array([e is not None for e in attr_desc])
    like = (E @ base.T) >= t_hold.plain_attribute                     # [A, B]
    groups: Dict[tuple, List[tuple]] = {}
    for key, d, tw, up in zip(order, desc[:-1], twins, upper):
        if d is not None:
            groups.setdefault(key, []).append((d, tw, up))
    for (p, r), items in groups.items():
        D = np.stack([d for d, _, _ in items])                        # [C, dim]
        up = np.array([u for _, _, u in items])
        S = D @ E.T                                                   # [C, A]
        Pl = D @ base.T                                               # [C, B]
        for a in range(n_attr):
            if not known[a] or region_of_kind(kinds[a]) != r:
                continue
            score = S[:, a] if kinds[a] not in UPPER_KINDS or not up.any() else \
                np.where(up, S[:, a], -np.inf)
            c = int(np.argmax(score))
            sims[t, p, a] = float(S[c, a])
            cand, cand_like, cand_names = list(Pl[c]), list(like[a]), list(names)
            tw = items[c][1]
            if tw is not None:
                cand.append(float(D[c] @ tw))
                cand_like.append(bool(E[a] @ tw >= t_hold.plain_attribute))
                cand_names.append("flat colour of the region")
            cand, cand_like = np.asarray(cand), np.asarray(cand_like, bool)
            free, excl = np.where(~cand_like)[0], np.where(cand_like)[0]
            if free.size:
                b = free[int(np.argmax(cand[free]))]
                plain[t, p, a] = float(cand[b])
                plain_which.setdefault((p, a), []).append(cand_names[b])
            if excl.size:
                b = excl[int(np.argmax(cand[excl]))]
                plain_excl[t, p, a] = float(cand[b])
                excl_which.setdefault((p, a), []).append(cand_names[b])


def _fmt(v, pct=False) -> str:
    if v is None:
        return "n/a"
    return f"{100 * v:.0f}%" if pct else f"{v:.3f}"


def summary_text(ev) -> str:
    """A short human-readable report of an :class:`Evaluation` (or its dict)."""
    d = ev.to_dict() if isinstance(ev, Evaluation) else ev
    ident, bind = d["identity"], d["binding"]
    status = d.get("status", "scored")
    lines = [f"LumosX evaluation ({len(d['frames'])} frames, appearance: {d['backend']})"]
    if status == "unscored":
        lines.append("UNSCORED: " + "; ".join(d.get("warnings", [])) +
                     " -- no pair is scored, nothing here is a pass")
    elif status == "partial":
        lines.append("PARTLY UNSCORED: some people were not found; their pairs are unscored")
    lines.append("Identity (ArcFace cosine, mean / max over frames where found):")
    for p in ident["people"]:
        lines.append(f"  person {p['person'] + 1} '{p['phrase']}': similarity "
                     f"{_fmt(p['similarity_mean'])} / {_fmt(p['similarity_max'])}, detected "
                     f"{p['detected']}/{p['frames']} ({_fmt(p['detection_rate'], True)}), "
                     f"swaps {p['swaps']}")
    lines.append(f"  identity swaps between frames: {ident['n_swaps']} (identity swap rate "
                 f"{_fmt(ident.get('swap_rate'), True)} of the people found)")
    for s in ident["swaps"]:
        pairs = ", ".join(f"{c['from'] + 1}->{c['to'] + 1}" for c in s["changes"])
        lines.append(f"    frame {s['previous_frame']} -> {s['frame']}: {pairs}")
    v = bind.get("verdicts") or {}
    lines.append(f"Binding: accuracy {_fmt(bind['accuracy'], True)} "
                 f"({bind.get('decided', 0)}/{bind['total_pairs']} pairs decided, "
                 f"{bind['scored']}/{bind['total_pairs']} pairs scored), swap rate "
                 f"{_fmt(bind['swap_rate'], True)}, margin mean {_fmt(bind['margin_mean'])} "
                 f"min {_fmt(bind['margin_min'])}")
    lines.append("  verdicts: " + ", ".join(f"{v.get(k, 0)} {k}" for k in
                                            ("correct", "wrong", "missing", "undecided",
                                             "unscored")))
    for e in bind["pairs"]:
        who = f"person {e['person'] + 1} '{e['phrase']}' ({e['kind']})"
        verdict = (e.get("verdict") or "unscored").upper()
        if e.get("verdict") == "wrong" and e.get("winner") is not None:
            verdict += (f": '{bind['phrases'][e['winner']]}' of person "
                        f"{e['winner_person'] + 1} is more similar"
                        + (" (swap)" if e["swap"] else ""))
        nums = ""
        if e.get("margin") is not None:
            nums = (f"own {_fmt(e['similarity'])} vs best other {_fmt(e['best_other'])}, "
                    f"margin {e['margin']:+.3f}, ")
        lines.append(f"  {who}: {nums}{verdict} -- {e.get('reason') or ''}")
    for s in bind["swaps"]:
        a, b = s["people"]
        lines.append(f"  swap: person {a + 1} and person {b + 1} exchanged "
                     f"'{s['phrases'][0]}' / '{s['phrases'][1]}'")
    for w in d.get("warnings", []):
        lines.append(f"warning: {w}")
    return "\n".join(lines)
