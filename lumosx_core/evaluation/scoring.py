"""One video against its references: identity per person and attribute binding.

``evaluate_video(frames, references, detector, backend)`` runs, per sampled frame: face
detection + ArcFace embedding (``detector``), assignment of faces to the reference people
(:mod:`.identity`), the frame's light corrected from the people's faces (:mod:`.light`),
each found person's regions where attributes are worn (:mod:`.regions`, or user masks),
and for every person and every attribute: the similarity of the region's best cell to the
attribute, its presence against plain patches and how much better it matches with its hue
turned (:mod:`.appearance` backend). :mod:`.attribute_binding` places each attribute on the
people and gives each pair its verdict (:mod:`.verdicts`); :mod:`.identity` follows the
people by their clothes to find identity swaps.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from . import light as light_mod
from .appearance import (ColorTextureBackend, attribute_mask, background_histogram, border_mask,
                         describe_patches, dominant_colors, foreground_mask, hue_turned, look,
                         neutral_patches, region_cells, shrink, srgb_to_lab,
                         to_numpy_rgb)
from .attribute_binding import attribute_kind, binding_scores, region_of_kind
from ..faces.detector import Face
from .identity import (DEFAULT_LINK_DISTANCE, DEFAULT_MIN_SIMILARITY, FrameIdentity,
                       identify_frame, identity_scores)
from .regions import (BODY, DEFAULT_BODY_HEIGHT, DEFAULT_BODY_WIDTH, LEGS, TORSO,
                      bounding_box, person_regions, worn_boxes)
from .verdicts import thresholds_for

log = logging.getLogger("LumosX")

PIXELS_FOR_COLORS = 4000
#: background is also sampled beside each head, this far from its centre (face widths)
HEAD_SIDE = (1.0, 1.7)
#: hue turns (degrees) tried to tell a colour-shifted attribute
HUE_TURNS = (-35.0, -20.0, 20.0, 35.0)
#: flat patches of a person's own skin colour are this big (pixels)
SKIN_PATCH = 32
#: kinds of attribute seen through (the white inside a frame of glasses is the lens)
SEE_THROUGH = ("eyewear",)
#: a torso sharing more than this with another one is not clear (people following)
OVERLAP = 0.25
#: regions also scored with the background's colours cleared (big ones, where it leaks in)
CLEARED = (BODY, TORSO, LEGS)


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
    #: per sampled frame, the light correction (:class:`.light.FrameLight`)
    light: List[light_mod.FrameLight] = field(default_factory=list)
    #: what the frames showed before any threshold (not in the JSON)
    measurements: Optional["Measurements"] = None

    @property
    def matrix(self) -> np.ndarray:
        return np.array([[np.nan if v is None else v for v in row]
                         for row in self.binding["matrix"]], dtype=np.float64).reshape(
            len(self.people), len(self.attributes))

    def to_dict(self) -> dict:
        frames = []
        for k, fr in enumerate(self.frames):
            frames.append({
                "frame": fr.frame,
                "faces": [{"bbox": [round(float(v), 1) for v in f.bbox],
                           "score": round(float(f.score), 3)} for f in fr.faces],
                "assigned": {str(p): {"face": a.face, "similarity": round(a.similarity, 4)}
                             for p, a in sorted(fr.assigned.items())},
                "light": self.light[k].to_dict() if k < len(self.light) else None,
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


def reference_face(detector: Callable, image: torch.Tensor) -> Optional[Face]:
    """The largest embedded face of a face reference image (``None`` if none)."""
    faces = [f for f in detector(image) if f.embedding is not None]
    if not faces:
        return None
    return max(faces, key=lambda f: f.width * f.height)


def reference_skin(image: torch.Tensor, box=None) -> Optional[np.ndarray]:
    """The skin colour of a face reference image (:func:`.light.skin_color` of its face
    ``box``; without one, of the whole picture: the references are face crops)."""
    rgb = to_numpy_rgb(image)
    h, w = rgb.shape[:2]
    return light_mod.skin_color(rgb, box if box is not None else (0, 0, w, h))


def _frames_list(frames) -> List[torch.Tensor]:
    if torch.is_tensor(frames):
        if frames.ndim == 3:
            frames = frames.unsqueeze(0)
        if frames.ndim != 4:
            raise ValueError(f"frames: expected [F, H, W, C]; got {tuple(frames.shape)}")
        return [frames[i] for i in range(frames.shape[0])]
    return list(frames)


@dataclass
class _Attributes:
    """The attribute descriptors and what is known about them before any frame."""

    desc: np.ndarray            # [A, dim] (zeros where unknown)
    known: np.ndarray           # [A] bool
    turned: np.ndarray          # [turns, A, dim] hue-turned descriptors
    turn_sep: np.ndarray        # [turns, A] 1 - sim(a, turned a)
    regions: List[str]          # [A] region kind where each is worn
    luminance: np.ndarray       # [A] median luminance of the attribute's pixels
    fill: np.ndarray            # [A] share of the photo's foreground box it fills
    face_photos: List[Optional[np.ndarray]] = field(default_factory=list)  # [P] descriptors


#: the plain patches compared at every cell, after the neutral ones of the backend
FRAME_PLAINS = ("background", "the person's skin", "the person's face photo")
#: plain patches only used on someone else than the attribute's owner (a face photo may
#: show the owner wearing the attribute already)
NOT_FOR_OWNER = ("the person's face photo",)


@dataclass
class Measurements:
    """What the sampled frames showed, before any threshold (``T`` frames, ``P`` people,
    ``A`` attributes, ``B`` plain patches, ``R`` hue turns; NaN where not measured):

    * ``sims`` ``[T, P, A]``: similarity of person ``p``'s region (where ``a`` is worn) at
      its best cell for ``a``; ``cross`` ``[T, P, A, A]``: in that region, the best cell's
      similarity to every attribute ``b`` (its diagonal is ``sims``);
    * ``plain_sims`` ``[T, P, A, B]``: that cell's similarity to plain patch ``b``, and
      ``plain_attr`` the attribute's own similarity to it (``plain_names[b]``);
    * ``hue_sims`` ``[T, P, A, R]``: the best cell's similarity to ``a`` with its hue turned
      by :data:`HUE_TURNS`, ``hue_base`` ``[T, P, A]`` to ``a`` itself at that cell, and
      ``turn_sep`` ``[R, A]`` ``1 - sim(a, turned a)``;
    * ``skin_luminance`` / ``exposure`` / ``cast_rejected`` / ``cast_excess`` /
      ``skin_turn`` ``[T]``: the light (:mod:`.light`); ``attribute_luminance`` / ``attribute_fill`` ``[A]``: the median
      luminance of each attribute photo, and the share of its box its foreground fills;
    * ``attribute_similarity`` ``[A, A]``.

    :meth:`presence`, :meth:`hue_gain` and :meth:`dark` read them with thresholds
    (:class:`~.verdicts.Thresholds`), so verdicts can be re-derived without the frames."""

    sims: np.ndarray
    cross: np.ndarray
    plain_sims: np.ndarray
    plain_attr: np.ndarray
    plain_names: List[str]
    hue_sims: np.ndarray
    hue_base: np.ndarray
    turn_sep: np.ndarray
    skin_luminance: np.ndarray
    exposure: np.ndarray
    cast_rejected: np.ndarray
    cast_excess: np.ndarray
    skin_turn: np.ndarray
    attribute_luminance: np.ndarray
    attribute_fill: np.ndarray
    attribute_similarity: np.ndarray

    def presence(self, t, owners: Sequence[int]) -> tuple:
        """``(presence, low, high, name of the bounding plain patch)``, each ``[T, P, A]``:
        the smallest ``(sim(cell, a) - sim(cell, b)) / (1 - sim(a, b))`` over the plain
        patches ``a`` can be told apart from (``1 - sim(a, b) >= t.separation``; on the
        owner ``owners[a]`` not against :data:`NOT_FOR_OWNER`), and the smallest of the same
        minus / plus its noise, ``t.presence_noise / (1 - sim(a, b))`` (a similarity is only
        known to that: against a patch the attribute nearly is, presence is vague). A patch
        it cannot be told apart from makes ``low`` -inf: a white hoodie is never proven
        present against a white block."""
        sep = 1.0 - self.plain_attr
        with np.errstate(invalid="ignore", divide="ignore"):
            proj = (self.sims[..., None] - self.plain_sims) / sep
            noise = t.presence_noise / sep
        measured = np.isfinite(proj)
        skip = [b for b, n in enumerate(self.plain_names) if n in NOT_FOR_OWNER]
        for a, p in enumerate(owners):
            measured[:, p, a, skip] = False
        alike = measured & (sep < t.separation)          # cannot be told apart from it
        told = measured & ~alike
        has = told.any(-1)
        low = np.where(alike, -np.inf, proj - noise)
        high = np.where(alike, np.inf, proj + noise)

        def smallest(x, where):
            return np.where(has, np.min(np.where(where, x, np.inf), axis=-1), np.nan)
        j = np.argmin(np.where(told, proj, np.inf), axis=-1)
        names = np.asarray(self.plain_names, dtype=object)[j]
        return (smallest(proj, told), smallest(low, measured), smallest(high, measured),
                np.where(has, names, None))

    def hue_gain(self, t) -> np.ndarray:
        """``[T, P, A]``: how much closer the cell is to the attribute with its hue turned
        than to the attribute, along what tells the two apart (+1: the turned one, -1: the
        attribute); NaN for attributes a turn barely changes (greys, whites, blacks)."""
        ok = self.turn_sep >= 2 * t.separation                     # [R, A]
        with np.errstate(invalid="ignore", divide="ignore"):
            g = (self.hue_sims - self.hue_base[..., None]) / self.turn_sep.T[None, None]
        g = np.where(ok.T[None, None], g, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmax(g, axis=-1)

    def dark(self, t) -> np.ndarray:
        """``[T, A]``: too dark to see attribute ``a`` in frame ``t``: the faces are too dark
        to correct the light from (skin luminance below ``t.dark``), or the attribute would
        have been darker than ``t.visible`` before the exposure was corrected (a black
        jacket in a video at 12 % brightness is a few grey levels of compression noise)."""
        lum = np.asarray(self.skin_luminance, np.float64)
        frame = np.isfinite(lum) & (lum < t.dark)
        shown = self.attribute_luminance[None, :] / np.maximum(self.exposure[:, None], 1e-6)
        return frame[:, None] | (shown < t.visible)


def _describe_attributes(backend, images, kinds) -> _Attributes:
    clear = [k in SEE_THROUGH for k in kinds]
    desc = backend.describe_attributes(images, see_through=clear)
    dim = next((len(e) for e in desc if e is not None), 1)
    E = np.stack([e if e is not None else np.zeros(dim, np.float32) for e in desc]) \
        if desc else np.zeros((0, dim), np.float32)
    known = np.array([e is not None for e in desc], bool)
    small = [to_numpy_rgb(shrink(img)) for img in images]
    turned = []
    for deg in HUE_TURNS:                     # near-white stays near-white: the outline stays
        rot = backend.describe_attributes([torch.from_numpy(hue_turned(x, deg)) for x in small],
                                          see_through=clear)
        turned.append(np.stack([r if r is not None else np.zeros(dim, np.float32)
                                for r in rot]) if rot else np.zeros((0, dim), np.float32))
    T = np.stack(turned) if turned else np.zeros((0,) + E.shape, np.float32)
    sep = 1.0 - np.einsum("tad,ad->ta", T, E) if len(E) else np.zeros((len(HUE_TURNS), 0))
    masks = [attribute_mask(x, c) for x, c in zip(small, clear)]
    lum = np.array([light_mod.luminance(np.median(x[m], axis=0)) for x, m in zip(small, masks)])
    fill = np.array([m.sum() / max(_box_area(bounding_box(m)), 1) for m in masks])
    return _Attributes(E, known, T, sep, [region_of_kind(k) for k in kinds], lum, fill)


def evaluate_video(frames, references, detector: Callable[[torch.Tensor], List[Face]],
                   backend=None, masks: Optional[Sequence[Optional[Dict[int, np.ndarray]]]] = None,
                   frame_indices: Optional[Sequence[int]] = None,
                   settings: Optional[Settings] = None,
                   progress: Optional[Callable[[int, int], None]] = None,
                   check_interrupt: Optional[Callable[[], None]] = None,
                   reference_embeddings: Optional[Sequence[Optional[np.ndarray]]] = None,
                   reference_skins: Optional[Sequence[Optional[np.ndarray]]] = None
                   ) -> Evaluation:
    """Score ``frames`` (``[F, H, W, C]`` or a list of ``[H, W, C]``, already sampled) against
    ``references`` (a :class:`~lumosx_core.conditioning.references.ReferenceSet` or its people).

    ``masks[f]``: ``{person: [H, W] mask}`` for frame ``f`` (replaces the face-derived
    regions of those people). ``frame_indices``: the frames' numbers in the video (for the
    report). ``reference_embeddings`` / ``reference_skins``: precomputed face embeddings and
    skin colours (else the detector finds each person's face in their face image; skin
    colours given without it are read from the whole face image)."""
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
        ref_faces = [reference_face(detector, p.face.image) for p in people]
        reference_embeddings = [None if f is None else f.embedding for f in ref_faces]
        if reference_skins is None:
            reference_skins = [reference_skin(p.face.image, None if f is None else f.bbox)
                               for p, f in zip(people, ref_faces)]
    if reference_skins is None:
        reference_skins = [reference_skin(p.face.image) for p in people]
    skins = {i: s for i, s in enumerate(reference_skins) if s is not None}
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
    A = _describe_attributes(backend, [a.image for _, a in attrs], kinds)
    A.face_photos = [backend.describe_regions(p.face.image, [np.ones(
        tuple(p.face.image.shape[:2]), bool)])[0] for p in people]
    color_backend = ColorTextureBackend()
    attributes_info = [{"attribute": k, "person": i, "phrase": a.phrase, "kind": kinds[k],
                        "region": A.regions[k],
                        "colors": color_backend.attribute_colors(a.image)}
                       for k, (i, a) in enumerate(attrs)]
    needed = sorted(set(A.regions))
    t_hold = thresholds_for(getattr(backend, "name", ""))
    plain_desc = describe_patches(backend, neutral_patches())
    static_names = list(plain_desc)
    static = (np.stack([plain_desc[k] for k in static_names]) if plain_desc
              else np.zeros((0, A.desc.shape[1]), np.float32))

    # frames -------------------------------------------------------------------------------
    n_people, n_attr = len(people), len(attrs)
    shape = (n_frames, n_people, n_attr)
    plain_names = static_names + list(FRAME_PLAINS)
    meas = Measurements(
        np.full(shape, np.nan), np.full(shape + (n_attr,), np.nan),
        np.full(shape + (len(plain_names),), np.nan),
        np.full(shape + (len(plain_names),), np.nan), plain_names,
        np.full(shape + (len(HUE_TURNS),), np.nan), np.full(shape, np.nan), A.turn_sep,
        np.full(n_frames, np.nan), np.ones(n_frames), np.zeros(n_frames, bool),
        np.zeros(n_frames), np.zeros(n_frames),
        A.luminance, A.fill, A.desc @ A.desc.T if n_attr else np.zeros((0, 0)))
    identities: List[FrameIdentity] = []
    lights: List[light_mod.FrameLight] = []
    looks: List[List[Optional[np.ndarray]]] = []
    clear: List[List[bool]] = []
    regions_all = []
    body_pixels: Dict[int, List[np.ndarray]] = {p: [] for p in range(n_people)}
    n_faces = 0
    for t, frame in enumerate(frame_list):
        if check_interrupt is not None:
            check_interrupt()
        frame = frame.detach().float().cpu()
        rgb = to_numpy_rgb(frame)
        h, w = rgb.shape[:2]
        ident = identify_frame(frame_indices[t], detector(frame), reference_embeddings,
                               settings.min_face_similarity)
        identities.append(ident)
        n_faces += len(ident.faces)
        user = (masks[t] if masks is not None else None) or {}
        boxes = {p: a.bbox for p, a in ident.assigned.items() if p not in user}
        fl = light_mod.frame_light(rgb, {p: a.bbox for p, a in ident.assigned.items()}, skins)
        lights.append(fl)
        meas.skin_luminance[t] = np.nan if fl.skin_luminance is None else fl.skin_luminance
        meas.exposure[t] = light_mod.exposure(fl.gains)
        meas.cast_rejected[t] = fl.cast_rejected
        meas.cast_excess[t] = fl.cast_excess
        meas.skin_turn[t] = fl.skin_turn
        regions = person_regions(boxes, w, h, settings.body_width, settings.body_height, user)
        regions_all.append(regions)
        lit = light_mod.apply(rgb, fl.gains)
        torsos = [worn_boxes(f.bbox, w, h, settings.body_width,
                             settings.body_height)[TORSO] for f in ident.faces]
        looks.append([look(lit, _box_mask(b, w, h)) for b in torsos])
        clear.append([_clear(k, torsos) for k in range(len(torsos))])
        if n_attr and regions:
            _frame_scores(t, rgb, lit, ident, regions, fl, needed, backend, A, static, meas)
        for p, r in regions.items():
            m = r[BODY]
            if m.any():
                px = light_mod.apply(rgb[m], fl.for_person(p))
                step = max(1, len(px) // (PIXELS_FOR_COLORS // n_frames + 1))
                body_pixels[p].append(px[::step])
        if progress is not None:
            progress(t + 1, n_frames)

    phrases = [a.phrase for _, a in attrs]
    if n_faces == 0:
        unscored_reason = "no face detected in any sampled frame"
    else:
        unscored_reason = "person not found in any sampled frame (no face matched them)"
    binding = bind(meas, owners, kinds, phrases, t_hold, frame_indices, unscored_reason)
    binding["region_colors"] = [dominant_colors(np.concatenate(body_pixels[p]))
                                if body_pixels[p] else [] for p in range(n_people)]
    dark = meas.dark(t_hold)
    binding["too_dark_frames"] = [frame_indices[t] for t in range(n_frames) if dark[t].all()]
    identity = identity_scores(identities, n_people, settings.link_distance, looks, clear)
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
    if binding["too_dark_frames"]:
        notes.append(f"{len(binding['too_dark_frames'])} of {n_frames} sampled frames too "
                     f"dark to correct the light from the faces: not used for the attributes")
    for note in notes:
        log.warning("LumosX Evaluate: %s", note)
    return Evaluation(people_info, attributes_info, identities, regions_all, identity, binding,
                      getattr(backend, "name", type(backend).__name__), settings, notes,
                      status, lights, meas)


def bind(meas: Measurements, owners, kinds, phrases, thresholds, frame_numbers,
         unscored_reason: str = "person not found") -> dict:
    """The binding scores and verdicts (:func:`~.attribute_binding.binding_scores`) of
    ``meas`` under ``thresholds``, with the per-frame binding accuracy."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # all-NaN rows: person not found
        matrix = np.nanmean(meas.sims, axis=0) if len(owners) else \
            np.zeros((meas.sims.shape[1], 0))
    presence, low, high, names = meas.presence(thresholds, owners)
    dark = meas.dark(thresholds)
    common = dict(attribute_similarity=meas.attribute_similarity, thresholds=thresholds,
                  unscored_reason=unscored_reason, fill=meas.attribute_fill)
    n_frames = meas.sims.shape[0]
    plain = {}
    for q in range(meas.sims.shape[1]):
        for a in range(len(owners)):
            got = [n for n in names[:, q, a] if n is not None]
            if got:
                plain[(q, a)] = max(set(got), key=got.count)
    binding = binding_scores(matrix, owners, kinds, phrases, per_frame=meas.sims,
                             cross=meas.cross, presence=presence,
                             presence_bounds=(low, high), dark=dark,
                             hue=meas.hue_gain(thresholds),
                             cast_rejected=meas.cast_rejected, exposure=meas.exposure,
                             plain_names=plain,
                             frame_numbers=frame_numbers, **common)
    per_frame = []
    for t in range(n_frames):
        s = binding_scores(meas.sims[t], owners, kinds, phrases, per_frame=meas.sims[t:t + 1],
                           presence=presence[t:t + 1],
                           presence_bounds=(low[t:t + 1], high[t:t + 1]), dark=dark[t:t + 1],
                           frame_numbers=list(frame_numbers)[t:t + 1], **common)
        per_frame.append(s["accuracy"])
    binding["per_frame_accuracy"] = per_frame
    known = [x for x in per_frame if x is not None]
    binding["frame_accuracy_mean"] = float(np.mean(known)) if known else None
    return binding


def _box_area(box) -> int:
    return 0 if box is None else (box[2] - box[0]) * (box[3] - box[1])


def _box_mask(box, w: int, h: int) -> np.ndarray:
    x1, y1, x2, y2 = box
    m = np.zeros((h, w), bool)
    m[y1:y2, x1:x2] = True
    return m


def _clear(k: int, boxes) -> bool:
    """Whether torso box ``k`` is clear of the others (at most ``OVERLAP`` of it shared)."""
    x1, y1, x2, y2 = boxes[k]
    area = max((x2 - x1) * (y2 - y1), 1)
    for j, (a1, b1, a2, b2) in enumerate(boxes):
        if j != k and max(0, min(x2, a2) - max(x1, a1)) * max(0, min(y2, b2) - max(y1, b1)) \
                > OVERLAP * area:
            return False
    return True


def _frame_scores(t, rgb, lit, ident, regions, fl, needed, backend, A: _Attributes, static,
                  meas: Measurements):
    """Fill frame ``t`` of ``meas`` (``lit``: the frame under its light correction).

    The background is sampled at the frame's border and beside each head, outside every
    person (:func:`~.appearance.border_mask`). Each person's regions are light-corrected
    with that person's gains, optionally cleared of background colours
    (:func:`~.appearance.foreground_mask`; both the cleared and the whole region count) and
    cut into cells (:func:`~.appearance.region_cells`); an attribute is scored at the cell
    that resembles it most, and that cell is compared with every plain patch: the neutral
    ones, the background and the person's own skin in this frame."""
    h, w = rgb.shape[:2]
    taken = np.zeros((h, w), bool)
    for r in regions.values():
        for m in r.values():
            taken |= m
    faces = np.zeros((h, w), bool)
    for f in ident.faces:
        x1, y1, x2, y2 = (int(round(v)) for v in f.bbox)
        faces[max(0, y1):max(0, y2), max(0, x1):max(0, x2)] = True
    border = border_mask(h, w, taken | faces)
    for f in ident.faces:
        x1, y1, x2, y2 = f.bbox
        fw, cx = max(x2 - x1, 1.0), (x1 + x2) / 2.0
        ya, yb = max(0, int(y1)), min(h, int(np.ceil(y2)))
        for lo, hi in ((cx - HEAD_SIDE[1] * fw, cx - HEAD_SIDE[0] * fw),
                       (cx + HEAD_SIDE[0] * fw, cx + HEAD_SIDE[1] * fw)):
            xa, xb = max(0, int(lo)), min(w, int(np.ceil(hi)))
            if xb > xa and yb > ya:
                border[ya:yb, xa:xb] |= ~(taken | faces)[ya:yb, xa:xb]
    (bg,) = backend.describe_regions(torch.from_numpy(lit), [border])
    bg_hist = background_histogram(lit, border)
    for p, reg in regions.items():
        gains = fl.for_person(p)
        union = np.zeros((h, w), bool)
        for r in needed:
            union |= reg[r]
        box = bounding_box(union)
        if box is None:
            continue
        x1, y1, x2, y2 = box
        crop = light_mod.apply(rgb[y1:y2, x1:x2], gains)
        order, desc = [], []
        crop_t = torch.from_numpy(crop)
        cells_of = getattr(backend, "describe_cells", None)
        lab = srgb_to_lab(crop.astype(np.float64)) if cells_of is not None else None
        for r in needed:
            m = reg[r][y1:y2, x1:x2]
            if not m.any():
                continue
            variants = [m]
            if r in CLEARED:
                fg = foreground_mask(crop, m, bg_hist)
                if fg is not m:
                    variants.append(fg)
            for v in variants:
                if cells_of is not None:
                    _, ds = cells_of(crop, v, lab)
                else:
                    ds = backend.describe_regions(crop_t, region_cells(v))
                order += [r] * len(ds)
                desc += ds
        if not desc:
            continue
        # the frame's background and the person's own skin, flat, are plain patches too
        dim = static.shape[1]
        frame_plains = [bg if bg is not None else np.full(dim, np.nan, np.float32)]
        a = ident.assigned.get(p)
        skin = light_mod.skin_color(rgb, a.bbox) if a is not None else None
        sd = None
        if skin is not None:
            patch = np.broadcast_to(light_mod.apply(skin, gains), (SKIN_PATCH, SKIN_PATCH, 3))
            (sd,) = backend.describe_regions(torch.from_numpy(np.ascontiguousarray(patch)),
                                             [np.ones((SKIN_PATCH, SKIN_PATCH), bool)])
        frame_plains.append(sd if sd is not None else np.full(dim, np.nan, np.float32))
        fp = A.face_photos[p] if p < len(A.face_photos) else None
        frame_plains.append(fp if fp is not None else np.full(dim, np.nan, np.float32))
        PL = np.concatenate([static, np.stack(frame_plains)], 0)       # [B, dim]
        keep = [i for i, d in enumerate(desc) if d is not None]
        if not keep:
            continue
        D = np.stack([desc[i] for i in keep])                           # [C, dim]
        kinds_of = np.array([order[i] for i in keep])
        E = A.desc
        S = D @ E.T                                                     # [C, A]
        SP = D @ PL.T                                                   # [C, B]
        AP = E @ PL.T                                                   # [A, B]
        SR = np.einsum("cd,rad->rca", D, A.turned)                      # [R, C, A]
        for k in range(len(E)):
            if not A.known[k]:
                continue
            rows = np.nonzero(kinds_of == A.regions[k])[0]
            if not rows.size:
                continue
            c = rows[int(np.argmax(S[rows, k]))]
            meas.sims[t, p, k] = S[c, k]
            meas.cross[t, p, k] = S[rows].max(0)
            meas.plain_sims[t, p, k] = SP[c]
            meas.plain_attr[t, p, k] = AP[k]
            # the cell where the attribute, as photographed or hue-turned, fits best
            best = rows[int(np.argmax(np.maximum(S[rows, k], SR[:, rows, k].max(0))))]
            meas.hue_sims[t, p, k] = SR[:, best, k]
            meas.hue_base[t, p, k] = S[best, k]


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
        if e.get("verdict") == "wrong" and e.get("winner_person") is not None:
            verdict += (f": worn by person {e['winner_person'] + 1}"
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
