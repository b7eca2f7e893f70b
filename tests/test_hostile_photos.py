"""The photo nodes under hostile pictures and masks (issue #25): a picture over the size limit
(``lumosx_core.image_limits``) is used reduced, the mask with it, without a full-size float
copy; sizes are compared as given, so the error names the sizes the user sent; NaN and empty
masks are errors naming the input."""
import pytest
import torch

from lumosx_core.image_limits import MAX_PICTURE_PIXELS
from lumosx_core.photos.cutout import cut_out_batch

#: 4200 x 4100 = 17.2 Mpx, just over the limit: reduced 2x
H, W = 4200, 4100


def _big_image():
    """A grey picture over the limit that costs no memory (a broadcast view)."""
    return torch.full((1, 1, 1, 3), 0.5).expand(1, H, W, 3)


def test_huge_picture_is_cut_reduced(N, caplog):
    assert H * W > MAX_PICTURE_PIXELS
    mask = torch.zeros(1, H, W)
    mask[0, 1000:2000, 500:1500] = 1.0
    cut, cut_mask = N["LumosXCutOut"].execute(_big_image(), mask).result
    assert tuple(cut.shape) == (1, 500, 500, 3)           # the 1000x1000 box, reduced 2x
    assert torch.allclose(cut, torch.full_like(cut, 0.5))
    assert bool((cut_mask == 1).all())
    assert "more than the limit of 16.8 Mpx per picture; using it reduced 2x" in caplog.text


@pytest.mark.parametrize("mask,match", [
    (torch.zeros(1, H, W + 1), rf"^mask is {W + 1}x{H} but image is {W}x{H}"),
    (torch.zeros(1, H, W), r"^mask is empty"),
    (torch.full((1, H, W), float("nan")), r"^mask: the mask holds NaN"),
])
def test_huge_picture_bad_masks_named(N, mask, match):
    with pytest.raises(ValueError, match=match):
        N["LumosXCutOut"].execute(_big_image(), mask)


def test_mismatched_batches_named():
    with pytest.raises(ValueError, match="image is a batch of 2 pictures but mask a batch of 3"):
        cut_out_batch(torch.rand(2, 20, 30, 3), torch.ones(3, 20, 30))
