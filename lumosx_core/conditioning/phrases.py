"""Phrase-to-token masks: where a reference's phrase occurs in the prompt's token ids.

The phrase is tokenized alone (the way it tokenizes at the start of a string), its
end-of-sequence token dropped, and every position of the prompt where those ids occur as one
contiguous run is marked -- all occurrences. Padding positions are never marked.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

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
    n = len(prompt) if valid is None else min(int(valid), len(prompt))
    n = min(n, length)
    starts = match_starts(prompt[:n], [int(t) for t in phrase_ids])
    return _cover(starts, len(phrase_ids), length)


def match_starts(text: Sequence[int], pattern: Sequence[int]) -> List[int]:
    """Start of every (possibly overlapping) occurrence of ``pattern`` in ``text``, in
    ``O(len(text) + len(pattern))`` (Knuth-Morris-Pratt): long prompts and phrases never
    stall."""
    k = len(pattern)
    if k == 0 or k > len(text):
        return []
    fail = [0] * k                       # longest proper prefix that is also a suffix
    j = 0
    for i in range(1, k):
        while j and pattern[i] != pattern[j]:
            j = fail[j - 1]
        if pattern[i] == pattern[j]:
            j += 1
        fail[i] = j
    out, j = [], 0
    for i, t in enumerate(text):
        while j and t != pattern[j]:
            j = fail[j - 1]
        if t == pattern[j]:
            j += 1
            if j == k:
                out.append(i - k + 1)
                j = fail[j - 1]
    return out


def _cover(starts: Sequence[int], k: int, length: int) -> torch.Tensor:
    """Bool ``[length]``: True on ``[s, s + k)`` for every start (linear: a difference array,
    so overlapping occurrences cost nothing extra)."""
    diff = torch.zeros(length + 1, dtype=torch.int32)
    if starts and k:
        idx = torch.tensor(starts, dtype=torch.long)
        diff.index_add_(0, idx, torch.ones(len(starts), dtype=torch.int32))
        diff.index_add_(0, (idx + k).clamp(max=length), -torch.ones(len(starts),
                                                                     dtype=torch.int32))
    return diff.cumsum(0)[:length] > 0


def find_occurrences(prompt_ids: Sequence[int], phrase_ids: Sequence[int],
                     valid: Optional[int] = None) -> List[int]:
    """Start positions of every contiguous occurrence (for reports)."""
    prompt = [int(t) for t in prompt_ids]
    if valid is not None:
        prompt = prompt[:valid]
    return match_starts(prompt, [int(t) for t in phrase_ids])
