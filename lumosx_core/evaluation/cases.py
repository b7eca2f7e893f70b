"""Reference cases in the LumosX authors' layout (``LumosX/test_data/``)::

    caption.txt                    "<case id>;<caption>"
    background/<phrase>.png        optional, one image
    objects/<phrase>.png           optional, any number
    subjects/<n>/face_<phrase>.png one face per person
    subjects/<n>/<phrase>.png      that person's attributes

A reference's phrase is its file name without extension (and without ``face_``). People are
numbered by their folder (``subjects/1``, ``subjects/2``, ... in numeric order); a person's
attributes are in file-name order.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import List

import numpy as np
import torch

from ..conditioning.references import ReferenceSet
from ..image_limits import open_picture
from ..image_prep import pil_rgb

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


@dataclass
class Case:
    case_id: str
    caption: str
    path: str
    references: ReferenceSet


def load_image(path: str) -> torch.Tensor:
    """Image file -> ``[H, W, 3]`` float in [0, 1]; transparency composited on white. A file
    that declares more pixels than the limit is refused before it is decoded."""
    with open_picture(path) as im:
        arr = pil_rgb(im).astype(np.float32) / 255.0
    return torch.from_numpy(arr.copy())


def _images(folder: str) -> List[str]:
    if not os.path.isdir(folder):
        return []
    return sorted(n for n in os.listdir(folder)
                  if n.lower().endswith(IMAGE_EXTS) and not n.startswith("."))


def _phrase(name: str) -> str:
    return os.path.splitext(name)[0]


def _num_key(name: str):
    return (0, int(name)) if name.isdigit() else (1, name)


def read_caption(path: str):
    with open(os.path.join(path, "caption.txt"), encoding="utf-8") as f:
        text = f.read().strip()
    case_id, sep, caption = text.partition(";")
    if not sep or not case_id.strip():
        raise ValueError(f"{path}/caption.txt: expected '<case id>;<caption>'")
    return case_id.strip(), caption.strip()


def load_case(path: str) -> Case:
    """One case folder -> :class:`Case` (its references as a ``ReferenceSet``)."""
    case_id, caption = read_caption(path)
    refs = ReferenceSet()
    bgs = _images(os.path.join(path, "background"))
    if len(bgs) > 1:
        raise ValueError(f"{path}/background: one image expected, found {len(bgs)}")
    for name in bgs:
        refs = refs.with_background(load_image(os.path.join(path, "background", name)),
                                    _phrase(name))
    for name in _images(os.path.join(path, "objects")):
        refs = refs.with_object(load_image(os.path.join(path, "objects", name)), _phrase(name))
    subjects = os.path.join(path, "subjects")
    people = sorted((d for d in os.listdir(subjects) if os.path.isdir(os.path.join(subjects, d))),
                    key=_num_key) if os.path.isdir(subjects) else []
    for d in people:
        folder = os.path.join(subjects, d)
        names = _images(folder)
        faces = [n for n in names if n.lower().startswith("face_")]
        if len(faces) != 1:
            raise ValueError(f"{folder}: expected one face_<phrase> image, found {len(faces)}")
        attrs = [(load_image(os.path.join(folder, n)), _phrase(n)) for n in names
                 if n not in faces]
        refs = refs.with_person(load_image(os.path.join(folder, faces[0])),
                                _phrase(faces[0])[len("face_"):], attrs)
    if not refs.people:
        raise ValueError(f"{path}: no subjects/<n>/face_<phrase> image: nothing to evaluate")
    return Case(case_id, caption, os.path.abspath(path), refs)


def discover_cases(root: str) -> List[str]:
    """Case folders (holding ``caption.txt``) at or under ``root``, in natural path order."""
    root = os.path.abspath(root)
    if os.path.isfile(os.path.join(root, "caption.txt")):
        return [root]
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        if "caption.txt" in filenames:
            found.append(dirpath)
            dirnames[:] = []
    key = lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p)]  # noqa: E731
    return sorted(found, key=key)
