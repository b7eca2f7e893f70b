"""Maximum-similarity assignment of rows (reference people) to columns (detected faces).

``assign`` maximises the total *excess* similarity ``sum(sim - min_similarity)`` over the
chosen pairs, where only pairs with ``sim >= min_similarity`` may be chosen and each row and
each column is used at most once. With SciPy it is the Hungarian algorithm
(``scipy.optimize.linear_sum_assignment``, imported lazily); without SciPy an exact dynamic
programme over subsets of the smaller side runs (fine for the few people of a LumosX video).
"""
from __future__ import annotations

import logging
import math
from typing import List, Tuple

import numpy as np

log = logging.getLogger("LumosX")

#: Largest smaller side the exact fallback solves (2**n states); beyond it: greedy.
EXACT_LIMIT = 14


def _weights(sim, min_similarity: float) -> np.ndarray:
    w = np.asarray(sim, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"expected a 2-d similarity matrix; got shape {w.shape}")
    w = w - float(min_similarity)
    w[~np.isfinite(w)] = -1.0          # NaN / -inf: never chosen
    return np.where(w >= 0.0, w, -1.0)


def assign(sim, min_similarity: float = -math.inf) -> List[Tuple[int, int]]:
    """Pairs ``(row, column)`` sorted by row. ``sim`` ``[R, C]`` (rows: people, columns:
    faces); a pair needs ``sim >= min_similarity`` (default: any finite value)."""
    if not math.isfinite(min_similarity):
        min_similarity = -1e9
    w = _weights(sim, min_similarity)
    if w.size == 0:
        return []
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError:
        pairs = _assign_exact(w) if min(w.shape) <= EXACT_LIMIT else _assign_greedy(w)
    else:
        # forbidden pairs weigh 0 like "unassigned": an optimum of the full assignment
        # restricted to its allowed pairs is an optimum of the partial matching
        rows, cols = linear_sum_assignment(np.maximum(w, 0.0), maximize=True)
        pairs = list(zip(rows.tolist(), cols.tolist()))
    return sorted((int(r), int(c)) for r, c in pairs if w[r, c] >= 0.0)


def total(sim, pairs, min_similarity: float = 0.0) -> float:
    """Objective of ``pairs``: ``sum(sim[r, c] - min_similarity)``."""
    s = np.asarray(sim, dtype=np.float64)
    return float(sum(s[r, c] - min_similarity for r, c in pairs))


def _assign_exact(w: np.ndarray) -> List[Tuple[int, int]]:
    """Exact maximum-weight matching (non-negative weights, ``-1`` forbidden) by dynamic
    programming over subsets of the smaller side."""
    transposed = w.shape[1] > w.shape[0]
    m = w.T if transposed else w          # rows >= cols; subsets of columns
    n_rows, n_cols = m.shape
    best = {0: (0.0, ())}                 # used-column mask -> (value, pairs)
    for r in range(n_rows):
        nxt = dict(best)                  # row r left unmatched
        for mask, (val, pairs) in best.items():
            for c in range(n_cols):
                if mask >> c & 1 or m[r, c] < 0.0:
                    continue
                key, cand = mask | (1 << c), val + m[r, c]
                if key not in nxt or cand > nxt[key][0] + 1e-12:
                    nxt[key] = (cand, pairs + ((r, c),))
        best = nxt
    _, pairs = max(best.values(), key=lambda vp: (vp[0], -len(vp[1])))
    return [(c, r) for r, c in pairs] if transposed else list(pairs)


def _assign_greedy(w: np.ndarray) -> List[Tuple[int, int]]:
    log.warning("LumosX: SciPy is missing and %dx%d faces are too many for the exact "
                "assignment; using a greedy one", *w.shape)
    order = np.dstack(np.unravel_index(np.argsort(-w, axis=None), w.shape))[0]
    used_r, used_c, pairs = set(), set(), []
    for r, c in order:
        if w[r, c] < 0.0 or r in used_r or c in used_c:
            continue
        used_r.add(r), used_c.add(c)
        pairs.append((int(r), int(c)))
    return pairs
