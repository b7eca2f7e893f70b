"""Image preparation: the one colour conversion (grey, alpha on white), THE resize (the released
references' fit on white, compared bit for bit with the authors' recipe written out here), boxes
of a photo resized without cutting them out first, and regions carried along an IMAGE.
(The authors' recipe: ``released_recipe.released_reference``.)"""
import numpy as np
import pytest
import torch

from lumosx_core import letterbox
from lumosx_core.image_prep import Region, attach_regions, region_of, to_rgb
from released_recipe import released_reference


def photo_u8(h, w, seed=0):
    """A smooth picture with sharp edges and noise, uint8 [h, w, 3]."""
    g = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([np.sin(9 * xx) * 0.4 + 0.5, yy, (xx + yy) / 2], -1)
    img[h // 3: h // 2, w // 4: w // 2] = [0.9, 0.1, 0.2]
    img += g.normal(0, 0.05, img.shape)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def prepare_reference(image, width, height, alpha=None, box=None):
    """What the Wan VAE encodes of a reference: the letterbox in [-1, 1] (ComfyUI's Wan VAE
    does ``x * 2 - 1``; the released code ``(x - 0.5) / 0.5``, bit for bit the same)."""
    return letterbox(image, width, height, alpha, box) * 2 - 1


# (source size) -> (video size): faces and objects enlarged (most released references at
# 832x480), backgrounds and clothes shrunk, odd and extreme shapes
SIZES = [((150, 102), (480, 832)), ((134, 102), (480, 832)), ((74, 79), (480, 832)),
         ((720, 1280), (480, 832)), ((422, 591), (480, 832)), ((380, 159), (832, 480)),
         ((150, 102), (48, 64)), ((720, 1280), (48, 64)), ((7, 3), (16, 32)),
         ((1, 1), (16, 16)), ((1000, 20), (64, 64)), ((10, 600), (48, 64))]


@pytest.mark.parametrize("src,dst", SIZES)
def test_reference_is_the_released_resize_bit_for_bit(src, dst):
    u8 = photo_u8(*src, seed=src[0] * 7 + src[1])
    image = torch.from_numpy(u8.astype(np.float32) / 255.0)        # as LoadImage gives it
    ours = prepare_reference(image, dst[1], dst[0])
    theirs = released_reference(u8, dst[1], dst[0])
    assert ours.shape == theirs.shape == (dst[0], dst[1], 3)
    assert torch.equal(ours, theirs)


def test_the_released_resize_is_not_torch_bicubic():
    """Not vacuous: torch's bicubic (a = -0.75, no antialiasing when enlarging) on floats --
    what the pack did before -- is visibly another picture."""
    u8 = photo_u8(150, 102)
    image = torch.from_numpy(u8.astype(np.float32) / 255.0)
    nh, nw = 480, 326
    torch_px = torch.nn.functional.interpolate(image.permute(2, 0, 1)[None], size=(nh, nw),
                                               mode="bicubic", align_corners=False)
    ours = letterbox(image, 832, 480)[:, (832 - nw) // 2:(832 - nw) // 2 + nw]
    assert (ours - torch_px[0].permute(1, 2, 0).clamp(0, 1)).abs().max() > 0.02


def test_a_sliver_keeps_one_pixel():
    """Where the released fit truncates a side to 0 pixels (Pillow then refuses to resize),
    the reference keeps 1 pixel instead of failing."""
    out = letterbox(torch.zeros(1000, 3, 3), 64, 64)
    assert out.shape == (64, 64, 3) and int((out < 0.5).all(-1).sum()) == 64


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
    grey = torch.full((8, 8, 1), 0.5)                  # 8-bit 128 -> 128/255 * 2 - 1
    out = prepare_reference(grey, 8, 8)
    assert torch.allclose(out, torch.full_like(out, 128 / 255 * 2 - 1), atol=1e-6)
    assert out.min() >= -1 and out.max() <= 1


def test_box_inside_the_photo_is_the_released_resize_of_the_crop():
    u8 = photo_u8(90, 120, seed=3)
    image = torch.from_numpy(u8.astype(np.float32) / 255.0)
    box = (17, 9, 61, 75)                                            # 44 x 66
    crop = u8[9:75, 17:61]
    assert torch.equal(prepare_reference(image, 832, 480, box=box),
                       released_reference(np.ascontiguousarray(crop), 832, 480))


def test_box_past_the_photo_is_white_there():
    u8 = photo_u8(60, 80, seed=4)
    image = torch.from_numpy(u8.astype(np.float32) / 255.0)
    box = (50, -10, 90, 30)                                          # 40x40: out right and top
    out = letterbox(image, 100, 100, box=box)
    assert out.shape == (100, 100, 3)
    assert torch.all(out[:, 75:] == 1) and torch.all(out[:25] == 1)  # white outside the photo
    inside = torch.from_numpy(u8[:30, 50:80].astype(np.float32) / 255.0)
    part = letterbox(inside, 75, 75)                                 # the inside, resized alone
    assert torch.equal(out[25:, :75], part)
    assert torch.all(letterbox(image, 64, 64, box=(200, 200, 240, 240)) == 1)
    with pytest.raises(ValueError, match="empty box"):
        letterbox(image, 8, 8, box=(5, 5, 5, 9))


def test_regions_ride_on_the_image_they_were_attached_to():
    photo = torch.rand(40, 30, 3)
    regions = [Region(photo, (2, 3, 12, 23)), None]
    batch = attach_regions(torch.rand(2, 16, 16, 3), regions)
    assert region_of(batch, 0) is regions[0] and region_of(batch, 1) is None
    assert region_of(batch, 2) is None and region_of(batch[:1], 0) is None   # a new tensor
    assert region_of(torch.rand(1, 4, 4, 3), 0) is None
    assert regions[0].size == (10, 20)
    assert torch.equal(regions[0].letterbox(50, 50), letterbox(photo, 50, 50, box=(2, 3, 12, 23)))
    batch.mul_(0.5)                                        # changed in place: no longer its crop
    assert region_of(batch, 0) is None
    with torch.inference_mode():                           # how ComfyUI runs nodes
        batch = attach_regions(torch.rand(2, 16, 16, 3), regions)
        assert region_of(batch, 0) is regions[0]
        batch[0, 3, 4, 1] += 0.25
        assert region_of(batch, 0) is None
    with pytest.raises(ValueError, match="regions"):
        attach_regions(torch.rand(1, 4, 4, 3), regions)


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


def test_from_uint8_inverts_to_uint8():
    from lumosx_core.image_prep import from_uint8, to_uint8
    u8 = photo_u8(5, 7)
    back = from_uint8(u8)
    assert back.dtype == torch.float32 and back.shape == (5, 7, 3)
    assert np.array_equal(to_uint8(back), u8)
