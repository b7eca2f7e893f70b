"""Pictures that ask for a lot (issue #28): picture files the pack reads itself are refused
from their header before one pixel is decoded; IMAGE / MASK tensors over the limit are reduced
strip by strip, so our processing never makes a full-size copy; the limit is named."""
import json
import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import bombs
import lumosx_core.image_limits as limits
from lumosx_core.image_limits import PictureTooLarge, fit_picture, open_picture, reduce_factor


# -- tensors: fit_picture -----------------------------------------------------------------------

def test_pictures_within_the_limit_are_used_as_they_are():
    img = torch.rand(480, 832, 3)
    assert fit_picture(img, "image") is img
    mask = torch.rand(4096, 4096)
    assert fit_picture(mask, "mask") is mask


@pytest.mark.parametrize("h,w,c", [(37, 53, 3), (64, 64, 4), (9, 200, 1), (31, 17, 0)])
def test_reduction_is_the_area_mean_strip_by_strip(h, w, c, monkeypatch, caplog):
    """Over the limit: the mean of each k x k block (edge blocks: of the pixels there), the
    same whether computed in one strip or many; IMAGE and MASK alike; the limit named."""
    g = torch.Generator().manual_seed(h * w)
    img = torch.rand((h, w, c) if c else (h, w), generator=g).to(torch.float16)
    limit = 100
    k = reduce_factor(h, w, limit)
    whole = img.float().unsqueeze(-1) if not c else img.float()
    expect = F.avg_pool2d(whole.permute(2, 0, 1).unsqueeze(0), k, stride=k, ceil_mode=True)
    expect = expect[0].permute(1, 2, 0)
    expect = expect[..., 0] if not c else expect
    with caplog.at_level(logging.WARNING, logger="LumosX"):
        one = fit_picture(img, "attribute 1", limit)
    monkeypatch.setattr(limits, "STRIP_BYTES", 1)          # one output row per strip
    many = fit_picture(img, "attribute 1", limit)
    assert one.shape == expect.shape and one.dtype == torch.float32
    assert one.shape[0] * one.shape[1] <= limit
    assert torch.allclose(one, expect, atol=1e-6) and torch.equal(one, many)
    assert f"attribute 1 is {w}x{h}" in caplog.text and "more than the limit of 0.0 Mpx" in \
        caplog.text and f"reduced {k}x" in caplog.text


def test_reduce_factor_is_the_smallest_that_fits():
    rng = np.random.default_rng(0)
    for _ in range(300):
        h, w = (int(v) for v in rng.integers(1, 100_000, 2))
        limit = int(rng.integers(1, 50_000_000))
        k = reduce_factor(h, w, limit)
        assert -(-h // k) * -(-w // k) <= limit
        assert k == 1 or -(-h // (k - 1)) * -(-w // (k - 1)) > limit
    assert reduce_factor(9000, 9000, limits.MAX_PICTURE_PIXELS) == 3
    assert reduce_factor(1, 100_000_000, limits.MAX_PICTURE_PIXELS) == 6


MEMORY_SCRIPT = textwrap.dedent("""
    import json, sys, torch
    from lumosx_core.image_limits import fit_picture
    from lumosx_core.image_prep import letterbox
    torch.set_num_threads(2)

    def hwm():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM"):
                return int(line.split()[1]) * 1024

    def rss():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) * 1024

    fit_picture(torch.rand(64, 64, 3), "warm-up", 100)          # kernels' one-time memory
    big = torch.zeros(int(sys.argv[1]), int(sys.argv[2]), 3)
    big[::7, ::5] = 0.5                                            # every page resident
    before = rss()
    open("/proc/self/clear_refs", "w").write("5")                  # peak := now
    small = fit_picture(big, "photo")
    fit = hwm() - before
    out = letterbox(small, 832, 480)
    print(json.dumps({"fit": fit, "with_letterbox": hwm() - before, "input": big.numel() * 4,
                      "reduced": small.numel() * 4, "shape": list(small.shape)}))
""")


def test_reducing_a_huge_tensor_claims_the_reduced_size_not_a_copy():
    """A 9000x9000 IMAGE (972 MB, what ComfyUI's LoadImage makes of a 65-byte PNG): reducing
    it claims about the reduced picture (108 MB; measured 111-146 MB with the allocator's
    slack), never a full-size copy; with the letterbox into the video after it, under 4x the
    reduced picture."""
    r = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, "9000", "9000"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["shape"] == [3000, 3000, 3]
    assert info["fit"] < 1.5 * info["reduced"] + 2 * limits.STRIP_BYTES, info
    assert info["with_letterbox"] < 4 * info["reduced"], info
    assert info["with_letterbox"] < 0.45 * info["input"], info


# -- files: checked from the header -----------------------------------------------------------

@pytest.fixture
def no_decoding(monkeypatch):
    """Pillow must never decode pixels: the header is all that may be read."""
    from PIL import ImageFile

    def boom(self, *a, **k):
        raise AssertionError("pixels decoded")
    monkeypatch.setattr(ImageFile.ImageFile, "load", boom)


@pytest.mark.parametrize("w,h", [(9000, 9000), (12000, 12000), (4097, 4096), (20000, 20000)])
def test_picture_files_refused_from_their_header(tmp_path, w, h, no_decoding):
    """The 65-byte PNG declaring 9000x9000, one declaring 12000x12000, one pixel row over the
    limit, and one over Pillow's own decompression-bomb limit (whose process-wide setting is
    left as it is): refused with the limit named, nothing decoded."""
    from PIL import Image
    path = tmp_path / "bomb.png"
    assert bombs.png(path, w, h, whole=False) == 65
    pillow_limit = Image.MAX_IMAGE_PIXELS
    with pytest.raises(PictureTooLarge) as e:
        open_picture(str(path))
    msg = str(e.value)
    assert str(path) in msg and "16.8 Mpx (16,777,216 pixels)" in msg, msg
    if w * h < 2 * pillow_limit:
        assert f"{w}x{h}" in msg, msg
    assert Image.MAX_IMAGE_PIXELS == pillow_limit


def test_picture_at_the_limit_opens(tmp_path):
    path = tmp_path / "edge.png"
    bombs.png(path, 4096, 4096, whole=False)
    with open_picture(str(path)) as im:
        assert im.size == (4096, 4096)


def test_eval_readers_refuse_before_decoding(tmp_path, no_decoding, monkeypatch):
    """Case pictures, animated pictures and frame folders: the header is checked first; the
    sampled frames together are held to the batch limit."""
    from lumosx_core.evaluation.cases import load_image
    from lumosx_core.evaluation.video import read_frames
    bomb = tmp_path / "bomb.png"
    bombs.png(bomb, 9000, 9000, whole=False)
    with pytest.raises(PictureTooLarge, match="9000x9000"):
        load_image(str(bomb))
    with pytest.raises(PictureTooLarge, match="9000x9000"):
        read_frames(str(bomb), 8)
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        bombs.png(frames / f"{i:03d}.png", 64, 48, whole=True)
    monkeypatch.setattr(limits, "MAX_BATCH_PIXELS", 2 * 64 * 48)
    with pytest.raises(PictureTooLarge, match="the sampled frames: 3 x 64x48 .* sample fewer"):
        read_frames(str(frames), 0)


def test_video_frame_size_checked_from_the_stream(tmp_path, monkeypatch):
    import eval_frames as ef
    from lumosx_core.evaluation.video import read_frames
    path = ef.write_mp4(str(tmp_path / "v.mp4"), torch.rand(3, 48, 64, 3))
    assert read_frames(path, 2)[0].shape == (2, 48, 64, 3)
    monkeypatch.setattr(limits, "MAX_PICTURE_PIXELS", 64 * 47)
    with pytest.raises(PictureTooLarge, match="v.mp4: a frame: 64x48"):
        read_frames(path, 2)


def test_lumosx_eval_on_a_huge_attribute_is_quick_and_small(tmp_path):
    """`lumosx eval` with a 420 KB 12000x12000 attribute (it used to peak at 7.25 GB and take
    211 s): that case fails at once naming the picture and the limit; the command's peak
    memory stays that of a normal run."""
    import eval_frames as ef
    from face_fixtures import make_vectron_pack
    case = ef.write_case(tmp_path / "cases", "c1", "c1", "a man in a red jacket",
                         [("man", torch.rand(40, 32, 3), [("red jacket", torch.rand(30, 30, 3))])])
    attr = os.path.join(case, "subjects", "1", "red jacket.png")
    bombs.png(attr, 12000, 12000, whole=True)
    ef.write_frames_dir(str(tmp_path / "videos" / "c1"), torch.rand(2, 48, 64, 3))
    pack = make_vectron_pack(tmp_path / "insightface")
    runner = textwrap.dedent("""
        import json, resource, subprocess, sys, time
        t = time.time()
        r = subprocess.run(sys.argv[1:], capture_output=True, text=True)
        print(json.dumps({"rc": r.returncode, "out": r.stdout, "err": r.stderr,
                          "seconds": time.time() - t,
                          "peak": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))
    """)
    cmd = [sys.executable, "-m", "lumosx_core.cli", "eval", str(tmp_path / "cases"), "--videos",
           str(tmp_path / "videos"), "--out", str(tmp_path / "out"), "--face-pack",
           str(pack), "--no-progress"]
    r = subprocess.run([sys.executable, "-c", runner, *cmd], capture_output=True, text=True,
                       timeout=600)
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["rc"] == 1, info
    data = json.loads((tmp_path / "out" / "lumosx_eval.json").read_text())
    err = data["cases"][0]["error"]
    assert "red jacket.png: 12000x12000 = 144.0 Mpx is more than the limit of 16.8 Mpx" in err
    assert info["seconds"] < 60 and info["peak"] < 1.5e9, info


# -- nodes: IMAGE / MASK tensors over the limit ------------------------------------------------

@pytest.fixture
def small_limit(monkeypatch):
    """A picture limit of 40x30 pixels, so tests can use small tensors."""
    monkeypatch.setattr(limits, "MAX_PICTURE_PIXELS", 40 * 30)
    return 40 * 30


def test_person_and_reference_keep_big_pictures_reduced(N, small_limit, caplog):
    face = torch.rand(1, 120, 90, 3)
    attr = torch.rand(1, 30, 40, 3)                     # at the limit: kept as it is
    with caplog.at_level(logging.WARNING, logger="LumosX"):
        refs = N["LumosXPerson"].execute(face, "man", None, attribute_1=attr,
                                         phrase_1="red jacket").result[0]
        refs = N["LumosXReference"].execute(torch.rand(1, 300, 200, 4), "garden", "background",
                                            refs).result[0]
    person = refs.people[0]
    assert tuple(person.face.image.shape) == (40, 30, 3)
    assert person.attributes[0].image is attr[0] or torch.equal(person.attributes[0].image,
                                                                attr[0])
    assert tuple(refs.background.image.shape) == (38, 25, 4)         # 8x: 950 pixels
    assert "face is 90x120" in caplog.text and "image is 200x300" in caplog.text


def test_face_encoder_reduces_big_photos_and_bounds_its_output(N, face_root, small_limit,
                                                              monkeypatch):
    from face_fixtures import VECTRON_PACK
    photo = torch.rand(1, 90, 120, 3)
    crops, infos = N["LumosXFaceEncoder"].execute(
        photo, VECTRON_PACK, size=64, det_size=160, provider="CPU").result
    assert crops.shape == (1, 64, 64, 3) and infos[0]["image_size"] == (40, 30)
    monkeypatch.setattr(limits, "MAX_BATCH_PIXELS", 2 * 64 * 64)
    with pytest.raises(PictureTooLarge, match=r"images: the face crops: 3 x 64x64 .* limit of "
                                              r"0.0 Mpx \(8,192 pixels"):
        N["LumosXFaceEncoder"].execute(torch.rand(3, 20, 20, 3), VECTRON_PACK, size=64,
                                       det_size=160, provider="CPU")


def test_evaluate_reduces_big_frames_and_masks(N, face_root, small_limit):
    from face_fixtures import VECTRON_PACK
    refs = N["LumosXPerson"].execute(torch.rand(1, 20, 20, 3), "man", None,
                                     attribute_1=torch.rand(1, 10, 10, 3),
                                     phrase_1="red jacket").result[0]
    frames = torch.rand(2, 120, 160, 3)
    masks = torch.ones(1, 120, 160)
    out = N["LumosXEvaluate"].execute(frames, refs, VECTRON_PACK, sample_frames=0,
                                      det_size=160, provider="CPU", masks=masks)
    overlay = out.result[3]
    assert overlay.shape[1:3] == (30, 40), overlay.shape
