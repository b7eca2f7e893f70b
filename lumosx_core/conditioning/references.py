"""The references of one generation: background, objects and people, each with its phrase.

Immutable values: ComfyUI caches node outputs, so adding a person returns a new set and never
changes the one an upstream node produced.

Sequence (layout) order: background, objects, then people in the order they were added; inside
a person the face first, then the attributes.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import List, Optional, Tuple

import torch

from ..image_limits import fit_picture
from ..relational.layout import ConditionLayout

BACKGROUND = "background"
OBJECT = "object"
FACE = "face"
ATTRIBUTE = "attribute"


@dataclass(frozen=True, eq=False)
class RefImage:
    """One reference: ``image`` ``[H, W, C]`` float in [0, 1] (C = 1, 3 or 4), its ``phrase``
    (as it occurs in the prompt), and its ``kind``. ``person`` is the person's number for faces
    and attributes, ``-1`` otherwise."""

    image: torch.Tensor
    phrase: str
    kind: str
    person: int = -1


@dataclass(frozen=True, eq=False)
class Person:
    face: RefImage
    attributes: Tuple[RefImage, ...] = ()

    @property
    def images(self) -> Tuple[RefImage, ...]:
        return (self.face,) + tuple(self.attributes)


@dataclass(frozen=True, eq=False)
class ReferenceSet:
    background: Optional[RefImage] = None
    objects: Tuple[RefImage, ...] = ()
    people: Tuple[Person, ...] = field(default_factory=tuple)

    # -- building (each returns a new set) ----------------------------------------------------
    def with_background(self, image: torch.Tensor, phrase: str) -> "ReferenceSet":
        if self.background is not None:
            raise ValueError(
                f"a background is already set ('{self.background.phrase}'); LumosX takes one "
                f"background image -- add further scene images as objects")
        return replace(self, background=RefImage(_one_image(image, "image"), phrase, BACKGROUND))

    def with_object(self, image: torch.Tensor, phrase: str) -> "ReferenceSet":
        obj = RefImage(_one_image(image, "image"), phrase, OBJECT)
        return replace(self, objects=self.objects + (obj,))

    def with_person(self, face: torch.Tensor, face_phrase: str,
                    attributes: List[Tuple[torch.Tensor, str]] = ()) -> "ReferenceSet":
        n = len(self.people)
        person = Person(
            RefImage(_one_image(face, "face"), face_phrase, FACE, n),
            tuple(RefImage(_one_image(img, f"attribute {i + 1}"), ph, ATTRIBUTE, n)
                  for i, (img, ph) in enumerate(attributes)))
        return replace(self, people=self.people + (person,))

    # -- reading ------------------------------------------------------------------------------
    def non_person(self) -> List[RefImage]:
        return ([self.background] if self.background is not None else []) + list(self.objects)

    def ordered(self) -> List[RefImage]:
        """Every reference in sequence (layout) order."""
        out = self.non_person()
        for p in self.people:
            out.extend(p.images)
        return out

    def layout(self) -> ConditionLayout:
        return ConditionLayout(len(self.non_person()), [len(p.images) for p in self.people])

    def __len__(self) -> int:
        return len(self.ordered())


def _one_image(image: torch.Tensor, name: str) -> torch.Tensor:
    """Accept ``[H, W, C]`` or a ComfyUI IMAGE batch ``[B, H, W, C]`` (first image used); a
    picture over the size limit is kept reduced (:func:`~lumosx_core.image_limits.fit_picture`:
    a reference is letterboxed into the video frame, which is never larger)."""
    if not torch.is_tensor(image):
        raise ValueError(f"{name}: expected an image tensor, got {type(image).__name__}")
    if image.ndim == 4:
        image = image[0]
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4) or min(image.shape[:2]) < 1:
        raise ValueError(f"{name}: expected an image [H, W, C] with 1, 3 or 4 channels, got "
                         f"shape {tuple(image.shape)}")
    return fit_picture(image.detach(), name).cpu()
