"""The authors' inference recipe for the DiT's inputs, rebuilt for parity tests WITHOUT the
pack's own image or text helpers (``LumosX/scripts/WanX2.1/lumosx_inference_t2v_*.py`` and
the text encoder they load, read for the facts):

* every reference (face, attribute, object, background): Pillow opens the file, the picture
  is fitted inside the video size (scale ``min(W/w, H/h)``, sizes truncated), resized with
  ``Image.BICUBIC``, pasted at the floored centre offset on a white RGB canvas, then
  ``ToTensor`` (``uint8 / 255``) and ``Normalize(0.5, 0.5)``;
* every text (prompt, negative prompt, each phrase): ``ftfy.fix_text``, HTML unescape twice,
  strip, the ``regex`` module's ``\\s+`` -> one space, strip; then sentencepiece ids, the end
  token, cut to 512 (511 + end) and padded with 0 to 512;
* each reference's phrase mask: every position of every window of the prompt's 512 ids that
  equals the phrase's ids (up to its first end token);
* the order: background, objects, then each person (face first, then their attributes).
"""
from __future__ import annotations

import glob
import html
import os
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np
import torch
from PIL import Image

TEXT_LEN = 512
EOS, PAD = 1, 0

#: The released sampler's negative prompt (``sample_neg_prompt`` of the authors' config).
RELEASED_NEGATIVE = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，"
    "低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，"
    "毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走")


# -- pictures --------------------------------------------------------------------------------

def released_reference(picture, width: int, height: int) -> torch.Tensor:
    """A Pillow image (or uint8 ``[h, w, 3]``) as the released code hands it to the VAE:
    ``[height, width, 3]`` float32 in [-1, 1]."""
    pil = picture if isinstance(picture, Image.Image) else Image.fromarray(picture)
    w, h = pil.size
    r = min(width / w, height / h)
    nw, nh = int(w * r), int(h * r)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    canvas.paste(pil.resize((nw, nh), Image.BICUBIC), ((width - nw) // 2, (height - nh) // 2))
    t = torch.from_numpy(np.array(canvas)).permute(2, 0, 1).contiguous().float().div(255)
    half = torch.tensor([0.5, 0.5, 0.5]).view(3, 1, 1)
    return t.sub_(half).div_(half).permute(1, 2, 0)


# -- text ------------------------------------------------------------------------------------

def released_clean(text: str) -> str:
    """The authors' text clean-up (their text encoder's ``basic_clean`` + ``whitespace_clean``)."""
    import ftfy
    import regex
    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return regex.sub(r"\s+", " ", text).strip()


def prompt_ids(sp, text: str) -> List[int]:
    """The 512 ids the released text encoder reads for ``text`` (sentencepiece processor
    ``sp``): cleaned, tokenized, end token, cut to 511 + end, padded with 0."""
    ids = sp.encode(released_clean(text))
    ids = ids[:TEXT_LEN - 1] + [EOS]
    return ids + [PAD] * (TEXT_LEN - len(ids))


def phrase_ids(sp, phrase: str) -> List[int]:
    """A phrase's ids, up to its end token."""
    return sp.encode(released_clean(phrase))


def released_mask(ids: List[int], phrase: List[int]) -> torch.Tensor:
    """The released phrase matching (``strict_sequence_mask``): True at every position of
    every window of ``ids`` equal to ``phrase``."""
    k = len(phrase)
    mask = [False] * len(ids)
    for s in range(len(ids) - k + 1):
        if ids[s:s + k] == phrase:
            for j in range(s, s + k):
                mask[j] = True
    return torch.tensor(mask)


# -- a case in the authors' layout -----------------------------------------------------------

@dataclass
class Case:
    """A reference case: the caption and ``(file, phrase)`` pairs in sequence order."""

    name: str
    caption: str
    background: Optional[Tuple[str, str]] = None
    objects: List[Tuple[str, str]] = field(default_factory=list)
    people: List[List[Tuple[str, str]]] = field(default_factory=list)   # face first

    def ordered(self) -> List[Tuple[str, str]]:
        out = ([self.background] if self.background else []) + list(self.objects)
        for person in self.people:
            out += person
        return out

    def groups(self) -> Tuple[int, List[int]]:
        """``(non_person, [images per person])``."""
        return len(self.ordered()) - sum(len(p) for p in self.people), [len(p) for p in self.people]


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def read_case(folder: str) -> Case:
    """A case folder of the authors' layout (``caption.txt`` = ``<id>;<caption>``,
    ``background/<phrase>.png``, ``objects/<phrase>.png``, ``subjects/<n>/face_<phrase>.png``
    and ``subjects/<n>/<phrase>.png``)."""
    with open(os.path.join(folder, "caption.txt"), encoding="utf-8") as f:
        caption = f.read().split(";", 1)[1]
    bg = sorted(glob.glob(os.path.join(folder, "background", "*.png")))
    objects = sorted(glob.glob(os.path.join(folder, "objects", "*.png")))
    case = Case(os.path.relpath(folder, os.path.dirname(os.path.dirname(folder))), caption,
                (bg[0], _stem(bg[0])) if bg else None, [(p, _stem(p)) for p in objects])
    subjects = glob.glob(os.path.join(folder, "subjects", "*"))
    for sub in sorted(subjects, key=lambda p: int(os.path.basename(p))):
        files = sorted(glob.glob(os.path.join(sub, "*.png")))
        faces = [p for p in files if os.path.basename(p).startswith("face_")]
        attrs = [p for p in files if p not in faces]
        case.people.append([(faces[0], _stem(faces[0])[len("face_"):])]
                           + [(p, _stem(p)) for p in attrs])
    return case


def prepare(case: Case, sp, clip, vae, width: int, height: int,
            negative: str = RELEASED_NEGATIVE) -> dict:
    """The DiT's inputs for ``case`` by the released recipe: ``context`` / ``context_null``
    ``[1, 512, 4096]`` (the text encoder ``clip`` -- ComfyUI's CLIP object -- run on the
    released ids), ``latents`` ``[1, 16, N, height/8, width/8]`` raw VAE latents of the
    released pixels (``vae.first_stage_model``), ``masks`` bool ``[1, N, 512]``."""
    def embed(ids):
        return clip.encode_from_tokens_scheduled({"umt5xxl": [[(t, 1.0) for t in ids]]})[0][0]

    ids = prompt_ids(sp, case.caption)
    pixels, masks = [], []
    for path, phrase in case.ordered():
        with Image.open(path) as im:
            pixels.append(released_reference(im.convert("RGB"), width, height))
        masks.append(released_mask(ids, phrase_ids(sp, phrase)))
    x = torch.stack(pixels).permute(3, 0, 1, 2).unsqueeze(0)          # [1, 3, N, H, W]
    with torch.no_grad():
        latents = torch.cat([vae.first_stage_model.encode(x[:, :, i:i + 1]).float()
                             for i in range(x.shape[2])], dim=2)
    return {"context": embed(ids), "context_null": embed(prompt_ids(sp, negative)),
            "latents": latents, "masks": torch.stack(masks).unsqueeze(0)}
