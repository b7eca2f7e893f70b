"""Binding references to the prompt: phrase masks plus a human-readable report.

Works on token ids only (the caller tokenizes with the text encoder's own tokenizer, and may
hand a ``decode`` of token ids back to text for the report's words), so it is independent of
ComfyUI.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence

import torch

from .phrases import find_occurrences, phrase_mask
from .references import RefImage


def shorten(text: str, limit: int = 80) -> str:
    """``text`` for a message: at most ``limit`` characters (a huge phrase stays readable)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


@dataclass
class PhraseMatch:
    """Where one reference's phrase occurs: ``starts`` of every occurrence, ``length`` tokens,
    and ``words``: the prompt's text at each occurrence (decoded from its tokens; empty when
    no decoder was given)."""

    phrase: str
    kind: str
    person: int
    starts: List[int]
    length: int
    words: List[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.starts)

    def label(self) -> str:
        if self.person >= 0:
            return f"person {self.person + 1} {self.kind}"
        return self.kind


@dataclass
class BindingReport:
    matches: List[PhraseMatch] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)

    def text(self) -> str:
        lines = []
        for m in self.matches:
            if m.found:
                words = m.words or [None] * len(m.starts)
                spans = ", ".join(f"{s}-{s + m.length - 1}" + (f' "{w}"' if w else "")
                                  for s, w in zip(m.starts, words))
                lines.append(f"{m.label()} '{shorten(m.phrase)}': tokens {spans}")
            else:
                lines.append(f"{m.label()} '{shorten(m.phrase)}': NOT FOUND in the prompt")
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [f"error: {e}" for e in self.errors]
        return "\n".join(lines) if lines else "no references"


def bind_phrases(refs: Sequence[RefImage], prompt_ids: Sequence[int],
                 phrases_ids: Sequence[Sequence[int]], context_len: int, valid: int,
                 strict: bool = False,
                 decode: Optional[Callable[[Sequence[int]], str]] = None):
    """Phrase masks of every reference (layout order) and the report.

    ``prompt_ids``: the prompt's token ids at their context positions; ``phrases_ids``: each
    phrase tokenized alone without its end token; ``valid``: number of real prompt tokens;
    ``decode``: token ids -> text, for the words the report shows beside the token numbers.
    Returns ``(masks bool [N_c, context_len], report)``. Missing phrases are warnings, or
    errors when ``strict``.
    """
    def words(ids) -> str:
        return " ".join(decode(list(ids)).split()) if decode is not None else ""

    report = BindingReport()
    rows = []
    for ref, ids in zip(refs, phrases_ids):
        ids = list(ids)
        starts = [s for s in find_occurrences(prompt_ids, ids, valid) if s + len(ids) <= context_len]
        m = PhraseMatch(ref.phrase, ref.kind, ref.person, starts, len(ids),
                        [words(prompt_ids[s:s + len(ids)]) for s in starts] if decode else [])
        report.matches.append(m)
        rows.append(phrase_mask(prompt_ids, ids, context_len, valid))
        if not ref.phrase.strip():
            msg = (f"{m.label()} has an empty phrase: give it the words that name it in the "
                   f"prompt")
        elif not m.found:
            msg = (f"{m.label()} phrase '{shorten(ref.phrase)}' does not occur in the prompt: the "
                   f"reference still conditions the video but gets no text bias, so binding is "
                   f"weaker. Write the phrase verbatim in the prompt.")
        else:
            continue
        (report.errors if strict else report.warnings).append(msg)

    masks = torch.stack(rows) if rows else torch.zeros(0, context_len, dtype=torch.bool)

    # words claimed by several people cancel out in the person templates
    people = sorted({r.person for r in refs if r.person >= 0})
    per_person = {p: torch.zeros(context_len, dtype=torch.bool) for p in people}
    for ref, row in zip(refs, rows):
        if ref.person >= 0:
            per_person[ref.person] |= row
    for i, a in enumerate(people):
        for b in people[i + 1:]:
            shared = (per_person[a] & per_person[b]).nonzero().flatten().tolist()
            if shared:
                said = f' ("{words([prompt_ids[t] for t in shared])}")' if decode else ""
                report.warnings.append(
                    f"person {a + 1} and person {b + 1} share prompt tokens {shared}{said}: shared "
                    f"words cancel out in the binding. Give each person distinct phrases "
                    f"(e.g. 'man on the left' / 'woman on the right').")
    return masks, report


def fit_masks(masks: torch.Tensor, length: int) -> torch.Tensor:
    """Masks ``[..., L]`` cut or padded (unmarked) to ``length`` text positions: the
    positive prompt's masks over another text's context (the negative pass)."""
    if masks.shape[-1] >= length:
        return masks[..., :length]
    return torch.nn.functional.pad(masks, (0, length - masks.shape[-1]), value=False)


def negative_masks(masks: torch.Tensor, length: int, from_positive: bool) -> torch.Tensor:
    """The negative pass's phrase masks ``[N_c, length]``: the positive prompt's
    (:func:`fit_masks`, what the released sampler does) or none."""
    if from_positive:
        return fit_masks(masks, length)
    return torch.zeros(masks.shape[0], length, dtype=torch.bool)
