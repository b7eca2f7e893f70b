"""Reference image preparation: letterbox on white at the video size, [-1, 1]."""
import torch

from lumosx_core import letterbox, prepare_reference


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
