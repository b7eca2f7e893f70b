"""The references of one generation: background, objects and people, each with its phrase.

Immutable values: ComfyUI caches node outputs, so adding a person returns a new set and never
changes the one an upstream node produced.

Sequence (layout) order: background, objects, then people in the order they were added; inside
a person the face first, then the attributes.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, List, Optional, Sequence, Tuple

import torch

from ..image_limits import fit_picture
from ..image_prep import Region, letterbox, region_of
from ..relational.layout import ConditionLayout
from ..relational.positions import check_rope_capacity

BACKGROUND = "background"
OBJECT = "object"
FACE = "face"
ATTRIBUTE = "attribute"


@dataclass(frozen=True, eq=False)
class RefImage:
    """One reference: ``image`` ``[H, W, C]`` float in [0, 1] (C = 1, 3 or 4), its ``phrase``
    (as it occurs in the prompt), and its ``kind``. ``person`` is the person's number for faces
    and attributes, ``-1`` otherwise. ``source``: the region of a photo ``image`` was
    resampled from (a Face Encoder crop), when known: the reference is resized from it."""

    image: torch.Tensor
    phrase: str
    kind: str
    person: int = -1
    source: Optional[Region] = None

    def letterboxed(self, width: int, height: int) -> torch.Tensor:
        """The reference as the model sees it, ``[height, width, 3]`` in [0, 1]: the released
        resize on white (:func:`~lumosx_core.image_prep.letterbox`) of the original pixels
        (``source``) when known, else of ``image``."""
        if self.source is not None:
            return self.source.letterbox(width, height)
        return letterbox(self.image, width, height)


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
        return replace(self, background=_ref(image, "image", phrase, BACKGROUND))

    def with_object(self, image: torch.Tensor, phrase: str) -> "ReferenceSet":
        return replace(self, objects=self.objects + (_ref(image, "image", phrase, OBJECT),))

    def with_person(self, face: torch.Tensor, face_phrase: str,
                    attributes: List[Tuple[torch.Tensor, str]] = (),
                    names: Sequence[str] = ()) -> "ReferenceSet":
        """Add a person: ``face`` and ``(image, phrase)`` attributes; ``names``: the inputs
        the attribute images came from, for messages (default ``attribute_1``, ...)."""
        n = len(self.people)
        names = list(names) + [f"attribute_{i + 1}" for i in range(len(names), len(attributes))]
        person = Person(
            _ref(face, "face", face_phrase, FACE, n),
            tuple(_ref(img, name, ph, ATTRIBUTE, n)
                  for (img, ph), name in zip(attributes, names)))
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


def chained(references) -> ReferenceSet:
    """The references a Person / Reference node adds to (``None``: none yet)."""
    if references is None:
        return ReferenceSet()
    if not isinstance(references, ReferenceSet):
        raise ValueError("references: expected the output of a LumosX Person or LumosX "
                         f"Reference node, got {type(references).__name__}")
    return references


def phrase_of(value, name: str) -> str:
    """The phrase of input ``name``, stripped; an empty one is an error naming it."""
    text = (value or "").strip()
    if not text:
        raise ValueError(f"{name} is empty: write the words that name this reference in the "
                         f"prompt (they must occur there verbatim)")
    return text


def given_attributes(values: dict, count: int) -> Tuple[List[tuple], List[str]]:
    """A Person's ``attribute_i`` / ``phrase_i`` inputs (i = 1..``count``) -> the
    ``(image, phrase)`` pairs of the attributes given, and their input names."""
    given = [i for i in range(1, count + 1) if values.get(f"attribute_{i}") is not None]
    pairs = [(values[f"attribute_{i}"], phrase_of(values.get(f"phrase_{i}"), f"phrase_{i}"))
             for i in given]
    return pairs, [f"attribute_{i}" for i in given]


def bind_references(references, grid: Tuple[int, int, int], r2pe: bool
                    ) -> Tuple[List[RefImage], ConditionLayout]:
    """Bind's references in order and their layout. Refuses anything but a
    :class:`ReferenceSet`, and references the relational RoPE (``r2pe``) cannot place beside
    a video of latent ``grid`` ``(frames, Hp, Wp)``, naming ``references``."""
    if not isinstance(references, ReferenceSet):
        raise ValueError("references: connect a LumosX Person or LumosX Reference node")
    refs, layout = references.ordered(), references.layout()
    if refs:
        try:
            check_rope_capacity(layout, *grid, r2pe)
        except ValueError as e:
            raise ValueError(f"references: {e}") from None
    return refs, layout


def encode_references(vae, refs: Sequence[RefImage], width: int, height: int,
                      progress: Optional[Callable[[int], None]] = None,
                      check_interrupt: Optional[Callable[[], None]] = None) -> torch.Tensor:
    """VAE-encode each reference, resized once as released (:meth:`RefImage.letterboxed`) at
    the video size, as a one-frame video: ``[1, 16, N_c, height/8, width/8]`` raw
    (un-normalised) latents. ``vae.encode`` takes ``[1, H, W, 3]`` pixels (ComfyUI's VAE);
    ``progress(1)`` after each reference, ``check_interrupt()`` before each."""
    latents = []
    for ref in refs:
        if check_interrupt is not None:
            check_interrupt()
        lat = vae.encode(ref.letterboxed(width, height).unsqueeze(0))
        if lat.ndim != 5 or lat.shape[2] != 1:
            raise ValueError(f"vae: expected the Wan 2.1 VAE (one latent frame per image), got "
                             f"latents of shape {tuple(lat.shape)}")
        latents.append(lat.float().cpu())
        if progress is not None:
            progress(1)
    return torch.cat(latents, dim=2)


def _ref(image: torch.Tensor, name: str, phrase: str, kind: str, person: int = -1) -> RefImage:
    """A :class:`RefImage` of one picture: ``[H, W, C]``, or a ComfyUI IMAGE batch
    ``[B, H, W, C]`` of exactly one, with the region it was resampled from when the IMAGE
    carries one. A batch of several (several photos, an animated GIF's frames) is refused
    naming the input: which picture was meant cannot be guessed. A picture over the size limit
    is kept reduced (:func:`~lumosx_core.image_limits.fit_picture`: a reference is letterboxed
    into the video frame, which is never larger)."""
    if not torch.is_tensor(image):
        raise ValueError(f"{name}: expected an image tensor, got {type(image).__name__}")
    source = None
    if image.ndim == 4:
        if image.shape[0] != 1:
            raise ValueError(
                f"{name}: a batch of {image.shape[0]} images (several photos, or the frames of "
                f"an animated picture) where one reference picture is expected; pick one "
                f"(e.g. ImageFromBatch) or give each its own node")
        source = region_of(image, 0)
        image = image[0]
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4) or min(image.shape[:2]) < 1:
        raise ValueError(f"{name}: expected an image [H, W, C] with 1, 3 or 4 channels, got "
                         f"shape {tuple(image.shape)}")
    return RefImage(fit_picture(image.detach(), name).cpu(), phrase, kind, person, source)
