"""Phrase-to-token masks: where a reference's phrase occurs in the prompt's token ids.

The phrase is tokenized alone (the way it tokenizes at the start of a string), its
end-of-sequence token dropped, and every position of the prompt where those ids occur as one
contiguous run is marked -- all occurrences. Padding positions are never marked.
"""
from __future__ import annotations

from typing import Iterable, List, Optional, Sequence

import torch


def strip_special(ids: Sequence[int], eos_id: Optional[int] = 1,
                  pad_id: Optional[int] = 0) -> List[int]:
    """Token ids of a phrase tokenized alone, cut at its first end-of-sequence token and with
    padding removed."""
    out = []
    for t in ids:
        t = int(t)
        if eos_id is not None and t == eos_id:
            break
        if pad_id is not None and t == pad_id:
            continue
        out.append(t)
    return out


def phrase_mask(prompt_ids: Sequence[int], phrase_ids: Sequence[int], length: int,
                valid: Optional[int] = None) -> torch.Tensor:
    """Bool mask ``[length]``: True on every token of every contiguous occurrence of
    ``phrase_ids`` inside ``prompt_ids[:valid]``.

    ``valid`` is the number of real (non-padding) prompt tokens; positions from there on are
    never marked. An empty phrase or one that does not occur gives an all-False mask.
    """
    prompt = [int(t) for t in prompt_ids]
    phrase = [int(t) for t in phrase_ids]
    n = len(prompt) if valid is None else min(int(valid), len(prompt))
    n = min(n, length)
    mask = torch.zeros(length, dtype=torch.bool)
    k = len(phrase)
    if k == 0 or k > n:
        return mask
    for s in range(0, n - k + 1):
        if prompt[s:s + k] == phrase:
            mask[s:s + k] = True
    return mask


def phrase_masks(prompt_ids: Sequence[int], phrases_ids: Iterable[Sequence[int]], length: int,
                 valid: Optional[int] = None) -> torch.Tensor:
    """Stack :func:`phrase_mask` for several phrases: bool ``[N, length]``."""
    rows = [phrase_mask(prompt_ids, p, length, valid) for p in phrases_ids]
    if not rows:
        return torch.zeros(0, length, dtype=torch.bool)
    return torch.stack(rows)


def find_occurrences(prompt_ids: Sequence[int], phrase_ids: Sequence[int],
                     valid: Optional[int] = None) -> List[int]:
    """Start positions of every contiguous occurrence (for reports)."""
    prompt = [int(t) for t in prompt_ids]
    if valid is not None:
        prompt = prompt[:valid]
    phrase = [int(t) for t in phrase_ids]
    k = len(phrase)
    if k == 0:
        return []
    return [s for s in range(0, len(prompt) - k + 1) if prompt[s:s + k] == phrase]
