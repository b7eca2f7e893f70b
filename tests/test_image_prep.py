"""Image preparation: the one colour conversion (grey, alpha on white), the letterbox on white
at the video size, [-1, 1]."""
import numpy as np
import pytest
import torch

from lumosx_core import letterbox, prepare_reference
from lumosx_core.image_prep import to_rgb


def test_tall_image_letterboxed_on_white():
    img = torch.zeros(100, 50, 3)                      # black, portrait
    out = letterbox(img, width=80, height=40)
    assert out.shape == (40, 80, 3)
    # scale min(80/50, 40/100)=0.4 -> 20x40, offset x=30
    assert torch.all(out[:, :30] == 1) and torch.all(out[:, 50:] == 1)
    assert torch.all(out[:, 31:49] < 0.05)


def test_range_and_alpha_composited_on_white():
    rgba = torch.zeros(16, 16, 4)
    rgba[..., 3] = 0.0                                 # fully transparent -> white
    out = prepare_reference(rgba, 16, 16)
    assert out.shape == (16, 16, 3) and torch.allclose(out, torch.ones_like(out))
    grey = torch.full((8, 8, 1), 0.5)
    out = prepare_reference(grey, 8, 8)
    assert torch.allclose(out, torch.zeros_like(out), atol=1e-6)
    assert out.min() >= -1 and out.max() <= 1


def test_to_rgb_grey_alpha_and_uint8():
    g = torch.Generator().manual_seed(0)
    grey = torch.rand(4, 5, 1, generator=g)
    assert torch.equal(to_rgb(grey), grey.expand(4, 5, 3))
    ga = torch.rand(4, 5, 2, generator=g)
    want = ga[..., :1] * ga[..., 1:] + (1 - ga[..., 1:])          # grey over white
    assert torch.allclose(to_rgb(ga), want.expand(4, 5, 3), atol=1e-6)
    rgba = torch.rand(4, 5, 4, generator=g)
    want = rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])
    assert torch.allclose(to_rgb(rgba), want, atol=1e-6)
    # face detection and crops see the photo as shot: alpha dropped, grey + alpha -> grey
    assert torch.equal(to_rgb(rgba, drop_alpha=True), rgba[..., :3])
    assert torch.equal(to_rgb(ga, drop_alpha=True), ga[..., :1].expand(4, 5, 3))
    # an explicit alpha wins over the channel; values are clamped to [0, 1]
    assert torch.equal(to_rgb(rgba, alpha=torch.ones(4, 5)), rgba[..., :3])
    assert torch.equal(to_rgb(torch.full((2, 2, 3), 1.5)), torch.ones(2, 2, 3))
    u8 = np.array([[[0, 51, 255, 0]]], dtype=np.uint8)                  # transparent -> white
    assert torch.equal(to_rgb(u8), torch.ones(1, 1, 3))
    assert torch.allclose(to_rgb(u8[..., :3]), torch.tensor([[[0.0, 0.2, 1.0]]]))
    with pytest.raises(ValueError, match="channels"):
        to_rgb(torch.zeros(2, 2, 5))
    with pytest.raises(ValueError, match="one image"):
        to_rgb(torch.zeros(1, 2, 2, 3))
