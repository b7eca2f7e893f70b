"""Condition layout: which reference images a generation carries and where their tokens sit.

A LumosX sequence is the video latent followed, on the time axis, by one latent frame per
reference image, in this order: the non-person images (background first, then objects), then
the person groups in order, each group's face first and that person's attributes after it.

After patchify every frame holds ``P = Hp * Wp`` tokens, so the token sequence is::

    [ video: T*P | non-person 0: P | ... | group 0: k_0*P | group 1: k_1*P | ... ]

Blocks are told apart by *kind* (video, non-person image, person group), never by their size.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Tuple

VIDEO = "video"
NON_PERSON = "non_person"
PERSON = "person"


@dataclass(frozen=True)
class Block:
    """One attention block of the sequence.

    ``kind``: ``"video"``, ``"non_person"`` or ``"person"``.
    ``index``: position among blocks of its kind (non-person image number, or group number).
    ``frames``: latent frames it holds (T for video, 1 for a non-person image, k_g for a group).
    ``start`` / ``stop``: token range ``[start, stop)`` inside one sample's sequence.
    """

    kind: str
    index: int
    frames: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class ConditionLayout:
    """Counts of the reference images of one generation.

    ``non_person``: number of background/object images (they come first).
    ``groups``: images per person, in person order; each group is a face plus its attributes,
    so every entry is at least 1.

    ``ConditionLayout(non_person=1, groups=[3, 2])`` is one background, a person with a face and
    two attributes, and a person with a face and one attribute: 6 condition frames.
    Instances are immutable and compare by value (ComfyUI batches cond and uncond only when
    their constant data compare equal).
    """

    non_person: int = 0
    groups: Tuple[int, ...] = field(default_factory=tuple)

    def __init__(self, non_person: int = 0, groups=()):
        groups = tuple(int(g) for g in groups)
        if int(non_person) != non_person or non_person < 0:
            raise ValueError(f"non_person must be a non-negative integer, got {non_person!r}")
        for i, g in enumerate(groups):
            if g < 1:
                raise ValueError(
                    f"person group {i} has {g} images; every person needs at least a face image")
        object.__setattr__(self, "non_person", int(non_person))
        object.__setattr__(self, "groups", groups)

    # -- counts -------------------------------------------------------------------------
    @property
    def num_people(self) -> int:
        return len(self.groups)

    @property
    def num_images(self) -> int:
        """N_c: the number of condition latent frames."""
        return self.non_person + sum(self.groups)

    # -- token ranges -------------------------------------------------------------------
    def blocks(self, frames: int, tokens_per_frame: int) -> List[Block]:
        """All blocks of one sample's sequence, video first.

        ``frames``: T, the video's latent frames; ``tokens_per_frame``: P = Hp * Wp.
        """
        if frames < 1:
            raise ValueError(f"the video needs at least one latent frame, got {frames}")
        P = tokens_per_frame
        out = [Block(VIDEO, 0, frames, 0, frames * P)]
        pos = frames * P
        for j in range(self.non_person):
            out.append(Block(NON_PERSON, j, 1, pos, pos + P))
            pos += P
        for g, k in enumerate(self.groups):
            out.append(Block(PERSON, g, k, pos, pos + k * P))
            pos += k * P
        return out

    def condition_blocks(self, frames: int, tokens_per_frame: int) -> List[Block]:
        return self.blocks(frames, tokens_per_frame)[1:]

    def image_token_ranges(self, frames: int, tokens_per_frame: int) -> List[Tuple[int, int]]:
        """Token range of every condition image (length N_c)."""
        start = frames * tokens_per_frame
        return [(start + i * tokens_per_frame, start + (i + 1) * tokens_per_frame)
                for i in range(self.num_images)]

    def sequence_length(self, frames: int, tokens_per_frame: int) -> int:
        return (frames + self.num_images) * tokens_per_frame

    def to_dict(self) -> dict:
        return {"non_person": self.non_person, "groups": list(self.groups)}

    @classmethod
    def from_dict(cls, d: dict) -> "ConditionLayout":
        return cls(non_person=d.get("non_person", 0), groups=d.get("groups", ()))
