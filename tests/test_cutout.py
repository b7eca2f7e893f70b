"""LumosX Cut Out: the masked pixels on white, cropped tight -- the framing of the authors'
attribute and object references, measured here on the released ones and reproduced from
composited photos; every mask a ComfyUI user has (Load Image's painted mask, core mask nodes,
soft, in parts, batches); every bad input refused naming the input."""
import glob
import os

import numpy as np
import pytest
import torch
from PIL import Image

from face_fixtures import astronaut, insightface_image, vectron_image
from lumosx_core.photos import masks as M
from lumosx_core.photos.cutout import cut_out, cut_out_batch, stack

CASES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))), "shared", "testdata", "lumosx_reference_cases")


def released_cutouts():
    """The authors' attribute and object references (every picture on white that is not a
    face or a background), as uint8 ``[H, W, 3]`` by file name."""
    files = sorted(f for f in glob.glob(os.path.join(CASES, "**", "*.png"), recursive=True)
                   if os.sep + "objects" + os.sep in f
                   or (os.sep + "subjects" + os.sep in f
                       and not os.path.basename(f).startswith("face_")))
    if not files:
        pytest.skip("../shared/testdata/lumosx_reference_cases is not here")
    out = {}
    for f in files:
        with Image.open(f) as im:
            out[os.path.basename(f)] = np.asarray(im.convert("RGB"))
    return out


def non_white(arr: np.ndarray) -> np.ndarray:
    return (arr < 255).any(-1)


def to_t(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(arr.astype(np.float32) / 255.0)


# ---------------------------------------------------------------------- the released framing

def test_released_cutouts_are_tight_on_pure_white():
    """What Cut Out reproduces, measured on every released attribute/object reference: the
    box of the non-white pixels is the whole image (margin 0 on all four sides), the rest is
    pure white (255, 255, 255, no off-white background), and the edges are hard (no pixel
    within 5 levels of white: segmentation cut-outs) or, for the two product shots, blended
    towards white (a few hundred near-white pixels along the outline at most)."""
    refs = released_cutouts()
    assert len(refs) >= 5
    soft = []
    for name, arr in refs.items():
        fg = non_white(arr)
        h, w = fg.shape
        ys, xs = np.nonzero(fg)
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (0, 0, w, h), name
        white = ~fg
        assert 0.2 < white.mean() < 0.6, name          # a real cut-out: background left
        assert (arr[white] == 255).all(), name
        near = ((arr >= 250).all(-1) & fg).sum()
        assert near <= 0.005 * fg.size, name
        if near:
            soft.append(name)
    # hard-edged segmentation cut-outs and antialiased product shots both occur
    assert 0 < len(soft) < len(refs)


# ---------------------------------------------------------------------- recovering them

def busy_photos():
    return {"t1": insightface_image("t1.jpg"), "players": vectron_image("players.jpg"),
            "astronaut": astronaut()}


def composite(photo: torch.Tensor, cut: np.ndarray, mask: np.ndarray, x: int, y: int):
    """``cut`` pasted where ``mask`` is set at ``(x, y)`` on ``photo``; the full-size mask."""
    out = photo.clone()
    h, w = mask.shape
    m = torch.from_numpy(mask.astype(np.float32))
    region = out[y:y + h, x:x + w]
    out[y:y + h, x:x + w] = region * (1 - m[..., None]) + to_t(cut) * m[..., None]
    full = torch.zeros(photo.shape[:2])
    full[y:y + h, x:x + w] = m
    return out, full


@pytest.mark.parametrize("photo_name", ["t1", "players", "astronaut"])
def test_cut_out_recovers_the_released_cutouts_from_busy_photos(photo_name):
    """Each released cut-out pasted on a busy real photo at a random place, its mask given to
    Cut Out: the same box (exact) and the same pixels (mean error 0 <= 1/255) at scale 1."""
    photo = busy_photos()[photo_name]
    rng = np.random.default_rng(sum(map(ord, photo_name)))
    for name, ref in released_cutouts().items():
        h, w = ref.shape[:2]
        if h > photo.shape[0] or w > photo.shape[1]:
            continue
        x = int(rng.integers(0, photo.shape[1] - w + 1))
        y = int(rng.integers(0, photo.shape[0] - h + 1))
        pasted, mask = composite(photo, ref, non_white(ref), x, y)
        (c,) = cut_out_batch(pasted.unsqueeze(0), mask.unsqueeze(0))
        assert c.box == (x, y, x + w, y + h), name
        assert c.image.shape == (h, w, 3)
        err = (c.image - to_t(ref)).abs().mean().item()
        assert err <= 1 / 255, (name, err)
        assert err == 0.0, (name, err)   # a hard mask copies the pixels exactly


@pytest.mark.parametrize("scale", [0.55, 1.6])
def test_cut_out_recovers_rescaled_cutouts(scale):
    """The same at other scales: the cut-out resized (PIL bicubic on white), its mask the
    resized picture's non-white pixels -> box exact, pixels exact; a mask resized on its own
    (nearest) -> box within 2 px, pixels within resampling error."""
    photo = vectron_image("players.jpg")
    rng = np.random.default_rng(int(scale * 100))
    for name, ref in released_cutouts().items():
        im = Image.fromarray(ref)
        w, h = max(1, round(im.width * scale)), max(1, round(im.height * scale))
        if h > photo.shape[0] or w > photo.shape[1]:
            continue
        small = np.asarray(im.resize((w, h), Image.BICUBIC))
        x = int(rng.integers(0, photo.shape[1] - w + 1))
        y = int(rng.integers(0, photo.shape[0] - h + 1))
        pasted, mask = composite(photo, small, non_white(small), x, y)
        (c,) = cut_out_batch(pasted, mask)
        assert c.box == (x, y, x + w, y + h), name
        assert torch.equal(c.image, to_t(small)), name
        m = Image.fromarray((non_white(ref) * 255).astype(np.uint8)).resize((w, h), Image.NEAREST)
        pasted, mask = composite(photo, small, np.asarray(m) > 127, x, y)
        (c,) = cut_out_batch(pasted, mask)
        assert max(abs(a - b) for a, b in zip(c.box, (x, y, x + w, y + h))) <= 2, name
        out = torch.ones(h, w, 3)
        x1, y1, x2, y2 = c.box
        out[y1 - y:y2 - y, x1 - x:x2 - x] = c.image
        assert (out - to_t(small)).abs().mean().item() <= 4 / 255, name


# ---------------------------------------------------------------------- masks of every kind

def test_soft_mask_blends_over_white_and_sub_level_values_are_white():
    img = torch.zeros(1, 6, 8, 3)
    img[..., 0] = 0.2
    mask = torch.zeros(1, 6, 8)
    mask[0, 2:4, 3:6] = 1.0
    mask[0, 1, 3] = 0.5
    mask[0, 5, 0] = 0.4 / 255          # cannot change an 8-bit pixel: not kept, not in the box
    (c,) = cut_out_batch(img, mask)
    assert c.box == (3, 1, 6, 4)
    assert torch.allclose(c.image[0, 0], torch.tensor([0.6, 0.5, 0.5]))   # 0.5 over white
    assert torch.equal(c.image[1:, :], img[0, 2:4, 3:6])                    # hard: copied
    assert torch.equal(c.image[0, 1:], torch.ones(2, 3))                    # outside: white
    assert torch.equal(c.mask, mask[0, 1:4, 3:6])


def test_parts_all_or_largest():
    img = torch.rand(1, 40, 60, 3)
    mask = torch.zeros(1, 40, 60)
    mask[0, 5:30, 5:25] = 1        # big
    mask[0, 30:35, 45:50] = 1      # small, disconnected
    mask[0, 30, 25] = 1            # touches the big one at a corner: part of it (8-connected)
    (every,) = cut_out_batch(img, mask)
    assert every.box == (5, 5, 50, 35)
    (big,) = cut_out_batch(img, mask, largest=True)
    assert big.box == (5, 5, 26, 31)
    assert torch.all(big.image[-1, :-1] == 1) and torch.equal(big.image[-1, -1], img[0, 30, 25])


def test_batches_pair_up_and_stack_centred():
    imgs = torch.rand(2, 20, 30, 3)
    one = torch.zeros(1, 20, 30)
    one[0, 2:6, 3:13] = 1
    a, b = cut_out_batch(imgs, one)                               # one mask for every picture
    assert a.box == b.box and torch.equal(b.image, imgs[1, 2:6, 3:13])
    several = torch.zeros(3, 20, 30)
    several[0, 0:4, 0:4] = 1
    several[1, 10:20, 10:30] = 1
    several[2, 5, 5] = 1
    cuts = cut_out_batch(imgs[:1], several)                        # one photo, three masks
    assert [c.box for c in cuts] == [(0, 0, 4, 4), (10, 10, 30, 20), (5, 5, 6, 6)]
    images, masks = stack(cuts)
    assert images.shape == (3, 10, 20, 3) and masks.shape == (3, 10, 20)
    assert torch.equal(images[1], cuts[1].image)                    # the largest: as it is
    assert torch.equal(images[0, 3:7, 8:12], cuts[0].image)        # the others centred
    assert torch.all(images[0, :3] == 1) and masks[0].sum() == 16
    pairs = cut_out_batch(imgs, several[:2])                        # one mask per picture
    assert torch.equal(pairs[1].image, imgs[1, 10:20, 10:30])


@pytest.mark.parametrize("image,mask,match", [
    (torch.rand(1, 20, 30, 3), torch.ones(1, 30, 20), r"mask is 20x30 but image is 30x20"),
    (torch.rand(1, 886, 1280, 3), torch.zeros(1, 64, 64),
     r"mask is 64x64 but image is 1280x886.*Load Image.*MaskEditor"),
    (torch.rand(1, 20, 30, 3), torch.zeros(1, 20, 30), r"^mask is empty"),
    (torch.rand(1, 20, 30, 3), torch.cat([torch.ones(1, 20, 30), torch.zeros(1, 20, 30)]),
     r"^mask \(item 2 of 2\) is empty"),
    (torch.rand(2, 20, 30, 3), torch.ones(3, 20, 30), r"image is a batch of 2.*mask a batch of 3"),
    (torch.rand(1, 20, 30, 3), torch.full((1, 20, 30), float("nan")), r"^mask: .*NaN"),
    (torch.rand(1, 20, 30, 3), torch.ones(2, 3, 20, 30), r"^mask: expected a MASK"),
    (torch.rand(1, 20, 30, 3), "mask", r"^mask: expected a MASK"),
    (torch.rand(20, 30, 7), torch.ones(1, 20, 30), r"^image: expected an IMAGE"),
    (torch.full((1, 20, 30, 3), float("inf")), torch.ones(1, 20, 30), r"^image: .*infinite"),
])
def test_bad_inputs_are_errors_naming_the_input(image, mask, match):
    with pytest.raises(ValueError, match=match):
        cut_out_batch(image, mask)


def test_mask_shapes_and_values_accepted():
    img = torch.rand(20, 30, 3)
    m = torch.zeros(20, 30)
    m[4:9, 2:7] = 3.0                                    # above 1: clipped to 1
    for mask in (m, m[None], m[None, None]):
        (c,) = cut_out_batch(img, mask)
        assert c.box == (2, 4, 7, 9) and torch.equal(c.image, img[4:9, 2:7])
    assert M.as_masks(m - 5).max() == 0                  # below 0: clipped to 0
    rgba = torch.cat([img, torch.zeros(20, 30, 1)], -1)  # transparent picture: white
    assert torch.all(cut_out(M.as_images(rgba)[0], M.as_masks(m)[0]).image == 1)


# ---------------------------------------------------------------------- the node, in ComfyUI

@pytest.fixture
def input_dir(tmp_path, pack):
    import folder_paths
    before = folder_paths.get_input_directory()
    folder_paths.set_input_directory(str(tmp_path))
    yield tmp_path
    folder_paths.set_input_directory(before)


def load_image(name):
    import nodes as comfy_nodes
    return comfy_nodes.LoadImage().load_image(name)


def test_the_mask_editors_painted_area_is_what_cut_out_keeps(N, input_dir):
    """ComfyUI's convention, on this host's own Load Image: the mask editor saves the painted
    pixels transparent; Load Image's MASK is 1 - alpha, so 1 on the painted area, and Cut Out
    keeps exactly the painted pixels (colours as shot), cropped to them."""
    import standin
    photo = Image.fromarray((insightface_image("t1.jpg").numpy() * 255).round().astype(np.uint8))
    painted = np.zeros((photo.height, photo.width), dtype=bool)
    painted[500:620, 300:460] = True
    painted[540:560, 200:300] = True
    standin.painted(photo, painted).save(input_dir / "painted.png")
    image, mask = load_image("painted.png")
    assert mask.shape == (1, photo.height, photo.width)
    assert torch.equal(mask[0] > 0.5, torch.from_numpy(painted))
    out, out_mask = N["LumosXCutOut"].execute(image, mask).result
    assert out.shape == (1, 120, 260, 3)
    expect = torch.from_numpy(np.asarray(photo)[500:620, 200:460].astype(np.float32) / 255)
    keep = torch.from_numpy(painted[500:620, 200:460])
    assert torch.allclose(out[0][keep], expect[keep], atol=1 / 255)
    assert torch.all(out[0][~keep] == 1) and torch.equal(out_mask[0] > 0.5, keep)
    # a picture without a painted mask: Load Image's 64x64 zeros -> a clear error
    photo.save(input_dir / "plain.png")
    image, mask = load_image("plain.png")
    with pytest.raises(ValueError, match="mask is 64x64 but image is 1280x886.*MaskEditor"):
        N["LumosXCutOut"].execute(image, mask)


def test_core_mask_nodes_feed_cut_out(N):
    """Masks from core nodes: ImageToMask of a drawn picture (hard), FeatherMask (soft edges
    blend over white), SolidMask (everything: the whole picture)."""
    from comfy_extras import nodes_mask
    call = lambda node, *a: getattr(node(), node.FUNCTION)(*a)  # noqa: E731
    img = insightface_image("t1.jpg")[None, :200, :300]
    drawn = torch.zeros(1, 200, 300, 3)
    drawn[0, 50:150, 100:200, 0] = 1
    (mask,) = call(nodes_mask.ImageToMask, drawn, "red")
    out = N["LumosXCutOut"].execute(img, mask).result[0]
    assert torch.equal(out[0], img[0, 50:150, 100:200])
    (soft,) = call(nodes_mask.FeatherMask, mask, 10, 10, 10, 10)
    out = N["LumosXCutOut"].execute(img, soft).result[0]
    assert out.shape == (1, 100, 100, 3)
    assert torch.allclose(out[0, 50, 0], img[0, 100, 100] * soft[0, 100, 100]
                          + (1 - soft[0, 100, 100]))
    assert torch.equal(out[0, 50, 50], img[0, 100, 150])
    (solid,) = call(nodes_mask.SolidMask, 1.0, 300, 200)
    assert torch.equal(N["LumosXCutOut"].execute(img, solid).result[0], img)


def test_node_schema_tooltips_and_prompt_check(N):
    for node_id in ("LumosXCutOut", "LumosXPeopleFromPhoto", "LumosXPickPerson"):
        schema = N[node_id].GET_SCHEMA()
        assert all(i.tooltip for i in schema.inputs), node_id
        assert all(o.tooltip for o in schema.outputs), node_id
    cut = N["LumosXCutOut"]
    assert cut.RETURN_TYPES == ["IMAGE", "MASK"]
    assert [i.id for i in cut.GET_SCHEMA().inputs] == ["image", "mask", "parts"]
    assert "not one of the choices" in cut.validate_inputs(parts="biggest")
    with pytest.raises(ValueError, match="parts"):
        cut.execute(torch.rand(1, 4, 4, 3), torch.ones(1, 4, 4), parts="biggest")
