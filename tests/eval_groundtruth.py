"""Ground-truth videos for the evaluation (issue 16): videos whose right answer is known,
made from the LumosX authors' reference cases (``../shared/testdata/lumosx_reference_cases``:
real face crops, real attribute photos, a real room photo) and from photos that ship in
installed wheels (scikit-image's astronaut, insightface's t1.jpg, vectron's yaoming.jpg).

Each person is their face crop with their attribute images pasted below it, over a panning
background; every frame jitters each person (position, size, brightness) and the people
drift; the video can be round-tripped through H.264 (mp4, ``crf``). Kinds:

* ``correct``   -- every person wears their own attributes;
* ``swapped``   -- person 1 and 2 wear each other's attributes;
* ``missing``   -- one attribute of one person is replaced by a plain grey block;
* ``identity_swap`` -- the faces exchange places from frame ``swap_frame`` on;
* ``no_face``   -- the garments, but no faces;
* ``stranger``  -- one person's face is replaced by someone else's.

``GTVideo.truth`` says what an evaluation must find. Nothing is copied into the repository;
tests skip when the shared cases or the wheels' photos are absent.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_CASES = os.path.join(os.path.dirname(ROOT), "shared", "testdata",
                            "lumosx_reference_cases")
ROOM = os.path.join(SHARED_CASES, "subject_consistency_test_data", "2", "background",
                    "cozy, warmly lit room.png")
KINDS = ("correct", "swapped", "missing", "identity_swap", "no_face", "stranger")


@dataclass
class GTPerson:
    """A person of a ground-truth case: face crop ``[H, W, 3]`` float, its phrase, and
    attributes ``[(phrase, image [H, W, 3] float on white)]``."""

    phrase: str
    face: torch.Tensor
    attributes: List[Tuple[str, torch.Tensor]] = field(default_factory=list)


@dataclass
class GTVideo:
    kind: str
    frames: torch.Tensor                      # [F, H, W, 3] float in [0, 1]
    people: List[GTPerson]
    face_boxes: List[Dict[int, tuple]]        # per frame: shown identity -> pasted face box
    truth: dict
    seed: int

    def references(self):
        from lumosx_core.conditioning.references import ReferenceSet
        refs = ReferenceSet()
        for p in self.people:
            refs = refs.with_person(p.face, p.phrase, [(img, ph) for ph, img in p.attributes])
        return refs


# -- sources ----------------------------------------------------------------------------------

def load_rgb(path: str) -> torch.Tensor:
    with Image.open(path) as im:
        return torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0)


def shared_people(case: str) -> List[GTPerson]:
    """The people of a shared reference case (``subject_consistency_test_data/1``, ...)."""
    from lumosx_core.evaluation.cases import load_case
    c = load_case(os.path.join(SHARED_CASES, case))
    return [GTPerson(p.face.phrase, p.face.image, [(a.phrase, a.image) for a in p.attributes])
            for p in c.references.people]


def shared_faces() -> List[torch.Tensor]:
    """Every face crop of the shared cases (six real people)."""
    from lumosx_core.evaluation.cases import discover_cases, load_case
    return [p.face.image for d in discover_cases(SHARED_CASES)
            for p in load_case(d).references.people]


def shared_attributes() -> List[Tuple[str, torch.Tensor]]:
    """Every attribute photo of the shared cases (white / black / denim jacket, white shirt,
    light brown sweater)."""
    from lumosx_core.evaluation.cases import discover_cases, load_case
    return [(a.phrase, a.image) for d in discover_cases(SHARED_CASES)
            for p in load_case(d).references.people for a in p.attributes]


def stranger_face() -> torch.Tensor:
    """A face from insightface's t1.jpg (nobody of the shared cases)."""
    import eval_frames as ef
    from face_fixtures import insightface_image
    return ef.reference_face(insightface_image("t1.jpg"), ef.T1_FACES["centre"])


def background_picture(width: int, height: int) -> Image.Image:
    """The room photo of the shared cases, wide enough to pan over (else a drawn room)."""
    if os.path.isfile(ROOM):
        im = Image.open(ROOM).convert("RGB")
    else:                                                   # pragma: no cover
        import assets
        im = Image.fromarray(assets.scene(size=(96, 200)))
    scale = height / im.height
    return im.resize((max(int(im.width * scale), int(width * 1.4)), height), Image.BICUBIC)


# -- drawing ----------------------------------------------------------------------------------

def _u8(t) -> np.ndarray:
    a = t.numpy() if torch.is_tensor(t) else np.asarray(t)
    return (np.clip(a[..., :3], 0, 1) * 255).round().astype(np.uint8)


def _oval(w: int, h: int) -> Image.Image:
    m = Image.new("L", (w, h), 0)
    ImageDraw.Draw(m).ellipse([w * 0.06, h * 0.02, w * 0.94, h * 0.98], fill=255)
    return m.filter(ImageFilter.GaussianBlur(max(1.0, w * 0.03)))


def _attribute_layer(img: torch.Tensor, width: int, max_height: int):
    from lumosx_core.evaluation.appearance import attribute_mask
    alpha = Image.fromarray(attribute_mask(img).astype(np.uint8) * 255)
    pic = Image.fromarray(_u8(img))
    h = min(max_height, int(round(width * pic.height / pic.width)))
    w = int(round(h * pic.width / pic.height)) if h == max_height else width
    return pic.resize((w, h), Image.BICUBIC), alpha.resize((w, h), Image.BILINEAR)


def _paste_person(frame: Image.Image, face, garments, cx: float, top: float, side: float,
                  grey_block: Optional[Tuple[int, float]] = None):
    """Garments (``[image]``; the first is the outer one, full width; a second one is shown
    between its fronts) under the face at centre ``cx``; returns the pasted face box."""
    g_top = top + side * 1.22
    g_w = int(side * 2.4)
    for k, img in enumerate(garments):
        width = g_w if k == 0 else int(side * 0.8)
        pic, alpha = _attribute_layer(img, width, int(side * 3.0 if k == 0 else side * 2.0))
        if grey_block is not None and grey_block[0] == k:       # the attribute's place, grey
            level = int(round(255 * grey_block[1]))
            pic = Image.new("RGB", pic.size, (level, level, level))
            alpha = Image.new("L", pic.size, 255)
        y = int(g_top + (0 if k == 0 else side * 0.25))
        frame.paste(pic, (int(cx - pic.width / 2), y), alpha)
    box = None
    if face is not None:
        fimg = Image.fromarray(_u8(face))
        fh = int(round(side * fimg.height / fimg.width))
        patch = fimg.resize((int(side), fh), Image.BICUBIC)
        x0, y0 = int(cx - side / 2), int(top + side * 1.25 - fh)
        frame.paste(patch, (x0, y0), _oval(int(side), fh))
        box = (x0, y0, x0 + int(side), y0 + fh)
    return box


def _mp4_roundtrip(frames: List[np.ndarray], crf: int) -> List[np.ndarray]:
    import av
    buf = io.BytesIO()
    h, w = frames[0].shape[:2]
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=8)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"crf": str(int(crf)), "preset": "ultrafast"}
        for a in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    buf.seek(0)
    with av.open(buf) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def make_video(people: Sequence[GTPerson], kind: str = "correct", n_frames: int = 16,
               seed: int = 0, size: Tuple[int, int] = (512, 320), jitter: float = 3.0,
               drift: float = 1.0, pan: float = 4.0, brightness: float = 0.04,
               crf: Optional[int] = 26, grey: float = 0.5, missing: Tuple[int, int] = (0, 0),
               swap_frame: int = 8, stranger: Optional[torch.Tensor] = None,
               stranger_person: int = 1, face_side: Optional[float] = None) -> GTVideo:
    """A ground-truth video of ``people`` (2 or more) of ``kind`` (see the module docs).
    ``jitter`` pixels of random position noise per frame, ``drift`` pixels per frame of
    steady motion, ``pan`` pixels per frame of background motion, ``brightness`` relative
    noise, ``crf`` the H.264 quality (``None``: no compression), ``grey`` the level of the
    block of a ``missing`` video (person ``missing[0]``, attribute ``missing[1]``)."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}; expected one of {KINDS}")
    if kind == "stranger" and stranger is None:
        raise ValueError("a stranger video needs the stranger's face")
    rng = np.random.default_rng(seed)
    W, H = size
    n = len(people)
    side = face_side or min(W / (2.6 * n), H / 4.2)
    bg = background_picture(W, H)
    xs = [W * (k + 0.5) / n for k in range(n)]
    top = H * 0.06
    frames, boxes = [], []
    for t in range(n_frames):
        x0 = int(min(bg.width - W, pan * t + rng.uniform(0, 2)))
        frame = bg.crop((x0, 0, x0 + W, H))
        shown: Dict[int, tuple] = {}
        for k, p in enumerate(people):
            # who stands here, what they wear, which face is shown
            garments = [img for _, img in p.attributes]
            face, who = p.face, k
            if kind == "swapped" and k < 2:
                garments = [img for _, img in people[1 - k].attributes]
            if kind == "identity_swap" and t >= swap_frame and k < 2:
                face, who = people[1 - k].face, 1 - k
            if kind == "no_face":
                face, who = None, None
            if kind == "stranger" and k == stranger_person:
                face, who = stranger, -1
            block = (missing[1], grey) if kind == "missing" and k == missing[0] else None
            s = side * (1 + rng.uniform(-0.03, 0.03))
            cx = xs[k] + drift * t * (1 if k % 2 == 0 else -1) + rng.normal(0, jitter)
            ty = top + rng.normal(0, jitter)
            box = _paste_person(frame, face, garments, cx, ty, s, block)
            if box is not None and who is not None:
                shown[who] = box
        arr = np.asarray(frame, dtype=np.float32) * (1 + rng.uniform(-brightness, brightness))
        frames.append(np.clip(arr, 0, 255).round().astype(np.uint8))
        boxes.append(shown)
    if crf is not None:
        frames = _mp4_roundtrip(frames, crf)
    video = torch.from_numpy(np.stack(frames).astype(np.float32) / 255.0)
    truth = {"kind": kind}
    if kind == "missing":
        truth["missing"] = list(missing)
    if kind == "identity_swap":
        truth["swap_frame"] = swap_frame
    if kind == "stranger":
        truth["stranger_person"] = stranger_person
    return GTVideo(kind, video, list(people), boxes, truth, seed)


class TruthDetector:
    """A detector that returns the pasted face boxes with one-hot 'ArcFace' embeddings
    (identity ``k`` -> ``e_k``, a stranger -> a vector orthogonal to all): binding can be
    calibrated without running face models. Call :meth:`for_video` per video."""

    def __init__(self, n_people: int):
        self.n = n_people
        self.boxes: List[Dict[int, tuple]] = []
        self.calls = 0

    def embedding(self, who: int) -> np.ndarray:
        e = np.zeros(self.n + 1, np.float32)
        e[self.n if who < 0 else who] = 1.0
        return e

    def references(self):
        return [self.embedding(k) for k in range(self.n)]

    def for_video(self, video: GTVideo, frame_indices: Sequence[int]):
        self.boxes = [video.face_boxes[i] for i in frame_indices]
        self.calls = 0
        return self

    def __call__(self, rgb):
        from lumosx_core.evaluation import Face
        out = [Face(tuple(float(v) for v in box), self.embedding(who), 0.99)
               for who, box in sorted(self.boxes[self.calls].items())]
        self.calls += 1
        return out


def write_gt_case(root, folder: str, case_id: str, video: GTVideo, fmt: str = "mp4",
                  videos_dir=None) -> str:
    """The case in the authors' layout under ``root/folder`` and its video as
    ``videos_dir/<case id>.<fmt>`` (``mp4``: re-encoded losslessly-ish at crf 18)."""
    import eval_frames as ef
    people = [(p.phrase, p.face, list(p.attributes)) for p in video.people]
    path = ef.write_case(root, folder, case_id, f"ground truth: {video.kind}", people)
    if videos_dir is not None:
        os.makedirs(str(videos_dir), exist_ok=True)
        out = os.path.join(str(videos_dir), f"{case_id}.{fmt}")
        if fmt == "mp4":
            ef.write_mp4(out, video.frames)
        else:
            ef.write_frames_dir(os.path.join(str(videos_dir), case_id), video.frames)
    return path
