"""Relational RoPE position ids against hand-written tables."""
import pytest
import torch

from lumosx_core import ConditionLayout, check_rope_capacity, position_ids
from oracle import dense_position_ids


def _frame(t, h0, w0, Hp=2, Wp=3):
    return [(t, h0 + i, w0 + j) for i in range(Hp) for j in range(Wp)]


def test_r2pe_table_hand_written():
    # T=2 video frames, 1 background, person A: face + 2 attributes, person B: face only
    lay = ConditionLayout(non_person=1, groups=[3, 1])
    Hp, Wp = 2, 3
    table = (
        _frame(0, 0, 0) + _frame(1, 0, 0)          # video
        + _frame(2, 0, 0)                          # background: t = T + 0
        + _frame(3, 0, 0)                          # A face: t = T + m' + 0, shift 0
        + _frame(3, 2, 3)                          # A attribute 1: shift (Hp, Wp)
        + _frame(3, 4, 6)                          # A attribute 2: shift 2*(Hp, Wp)
        + _frame(4, 0, 0)                          # B face: t = T + m' + 1
    )
    ids = position_ids(lay, frames=2, Hp=Hp, Wp=Wp, r2pe=True)
    assert ids.dtype == torch.float32
    assert ids.tolist() == [list(map(float, r)) for r in table]


def test_sequential_ablation_table_hand_written():
    lay = ConditionLayout(non_person=1, groups=[3, 1])
    table = _frame(0, 0, 0) + _frame(1, 0, 0) + sum((_frame(2 + c, 0, 0) for c in range(5)), [])
    ids = position_ids(lay, frames=2, Hp=2, Wp=3, r2pe=False)
    assert ids.tolist() == [list(map(float, r)) for r in table]


def test_faces_only_r2pe_has_no_spatial_shift():
    lay = ConditionLayout(non_person=0, groups=[1, 1, 1])
    ids = position_ids(lay, frames=3, Hp=4, Wp=5)
    cond = ids[3 * 20:].view(3, 20, 3)
    assert torch.equal(cond[:, :, 1:], ids[:20, 1:].expand(3, 20, 2))
    assert cond[:, 0, 0].tolist() == [3.0, 4.0, 5.0]


@pytest.mark.parametrize("r2pe", [True, False])
@pytest.mark.parametrize("layout", [ConditionLayout(), ConditionLayout(2, [1]),
                                    ConditionLayout(0, [4, 2, 1]), ConditionLayout(3, [2, 3])])
def test_vectorised_equals_per_token_loops(layout, r2pe):
    assert torch.equal(position_ids(layout, 3, 5, 7, r2pe), dense_position_ids(layout, 3, 5, 7, r2pe))


def test_rope_capacity_error_names_the_problem():
    # 480x832: Hp=30, Wp=52 -> a group of 20 images needs w up to 20*52-1 >= 1024
    lay = ConditionLayout(non_person=0, groups=[20])
    with pytest.raises(ValueError, match="too many references for RoPE"):
        check_rope_capacity(lay, 21, 30, 52)
    check_rope_capacity(ConditionLayout(1, [3, 3, 3]), 21, 30, 52)  # released setting fits
