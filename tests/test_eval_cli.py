"""``lumosx eval``: reference-case folders + generated videos -> JSON of all scores and an
HTML report with plots (worst cases first), over a small generated set (mp4, animated webp,
gif, a folder of frames), with real face models; the report is opened once in headless
Chromium. Also the video reading and case loading it relies on."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import eval_frames as ef
from face_fixtures import make_vectron_pack
from lumosx_core.cli import main
from lumosx_core.evaluation.cases import discover_cases, load_case
from lumosx_core.faces.detector import find_face_pack
from lumosx_core.evaluation.video import find_video, read_frames, sample_indices

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_CASES = os.path.join(os.path.dirname(ROOT), "shared", "testdata",
                            "lumosx_reference_cases")
LUMOSX = os.path.join(os.path.dirname(sys.executable), "lumosx")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


# ============================================================================ video reading

def test_sample_indices():
    assert sample_indices(81, 8) == [0, 11, 23, 34, 46, 57, 69, 80]
    assert sample_indices(5, 8) == [0, 1, 2, 3, 4] == sample_indices(5, 0)
    assert sample_indices(9, 1) == [4] and sample_indices(0, 4) == []
    assert sample_indices(10, 2) == [0, 9]


@pytest.fixture(scope="module")
def ramp():
    """Six frames whose brightness encodes the frame number (survives lossy codecs)."""
    base = torch.from_numpy(np.asarray(ef.background(), dtype=np.float32) / 255.0)[:64, :96]
    return torch.stack([torch.full_like(base, i / 5.0) * 0.8 + 0.1 for i in range(6)])


@pytest.mark.parametrize("kind", ["mp4", "webp", "gif", "folder"])
def test_read_frames_every_format(tmp_path, ramp, kind):
    path = str(tmp_path / ("v" if kind == "folder" else f"v.{kind}"))
    {"mp4": ef.write_mp4, "webp": ef.write_animated, "gif": ef.write_animated,
     "folder": ef.write_frames_dir}[kind](path, ramp)
    frames, idx, total = read_frames(path, 3)
    assert total == 6 and idx == [0, 2, 5]          # round(2.5) -> 2 (banker's rounding)
    assert frames.shape == (3, 64, 96, 3) and frames.dtype == torch.float32
    levels = [float(f.mean()) for f in frames]
    expect = [float(ramp[i].mean()) for i in idx]
    assert levels == pytest.approx(expect, abs=0.03)
    all_frames, all_idx, _ = read_frames(path, 0)
    assert all_idx == list(range(6)) and all_frames.shape[0] == 6


def test_find_video(tmp_path):
    (tmp_path / "a.gif").write_bytes(b"")
    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "b").mkdir()
    assert find_video(str(tmp_path), "a") == str(tmp_path / "a.mp4")      # mp4 before gif
    assert find_video(str(tmp_path), "b") == str(tmp_path / "b")
    assert find_video(str(tmp_path), "c") is None
    with pytest.raises(ValueError, match="unknown video format"):
        read_frames(str(tmp_path / "a.txt"))


# ============================================================================ cases

def test_discover_and_load_cases(tmp_path):
    face = torch.rand(40, 32, 3)
    ef.write_case(tmp_path / "set", "2", "c2", "a man in a red jacket",
                  [("man", face, [("red jacket", ef.garment_image(ef.RED))])])
    ef.write_case(tmp_path / "set", "10", "c10", "a man and a woman in blue jeans",
                  [("man", face, []), ("woman", face, [("blue jeans", torch.rand(8, 8, 3)),
                                                       ("a hat", torch.rand(8, 8, 3))])])
    ef.write_case(tmp_path / "set" / "nested", "x", "cx", "x", [("man", face, [])])
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "set" / "10" / "bg.png")
    os.makedirs(tmp_path / "set" / "2" / "background")
    Image.new("RGBA", (6, 6), (0, 0, 0, 0)).save(tmp_path / "set" / "2" / "background" /
                                                 "sunny garden.png")
    found = discover_cases(str(tmp_path / "set"))
    assert [os.path.relpath(f, tmp_path / "set") for f in found] == ["2", "10", "nested/x"]
    c = load_case(found[1])
    assert c.case_id == "c10" and c.caption == "a man and a woman in blue jeans"
    assert [p.face.phrase for p in c.references.people] == ["man", "woman"]
    assert [a.phrase for a in c.references.people[1].attributes] == ["a hat", "blue jeans"]
    c2 = load_case(found[0])
    assert c2.references.background.phrase == "sunny garden"
    assert torch.all(c2.references.background.image == 1)           # transparent -> white
    os.remove(tmp_path / "set" / "nested" / "x" / "subjects" / "1" / "face_man.png")
    with pytest.raises(ValueError, match="one face_<phrase> image"):
        load_case(found[2])


@pytest.mark.skipif(not os.path.isdir(SHARED_CASES), reason="reference cases not available")
def test_the_authors_cases_load():
    cases = {load_case(d).case_id: load_case(d) for d in discover_cases(SHARED_CASES)}
    assert set(cases) == {"video_person2_002_1", "video_person2_101_1", "video_person2_001",
                          "video_person2_180"}
    c = cases["video_person2_180"]
    assert [(p.face.phrase, [a.phrase for a in p.attributes]) for p in c.references.people] == [
        ("man", ["denim jacket", "white shirt"]), ("woman", ["light brown sweater"])]
    assert c.references.background.phrase == "cozy, warmly lit room"
    assert len(c.references.objects) == 2
    for case in cases.values():               # every phrase occurs in its caption
        for ref in case.references.ordered():
            assert ref.phrase in case.caption


# ============================================================================ the command

@pytest.fixture(scope="module")
def face_pack(tmp_path_factory):
    return make_vectron_pack(tmp_path_factory.mktemp("insightface_cli"))


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Four cases (man = the left man of insightface's t1.jpg in a red jacket, woman = the
    astronaut in a blue jacket) and their 'generated' videos: correct (mp4), attributes
    swapped (animated webp), her face missing in half the frames (a folder of frames), and
    one case without a video."""
    src = ef.Sources()
    root = tmp_path_factory.mktemp("eval_set")
    people = [("man", src.references["t1"], [("red jacket", ef.garment_image(ef.RED))]),
              ("woman", src.references["astronaut"],
               [("blue jacket", ef.garment_image(ef.BLUE, seed=1))])]
    caption = "A man in a red jacket talks to a woman in a blue jacket in a sunny room."
    for folder, cid in (("good", "gen_good"), ("swapped", "gen_swapped"),
                        ("partial", "gen_partial"), ("novideo", "gen_novideo")):
        ef.write_case(root / "cases", folder, cid, caption, people)
    videos = root / "videos"
    videos.mkdir()
    right = [("t1", 130, ef.RED), ("astronaut", 350, ef.BLUE)]
    wrong = [("t1", 130, ef.BLUE), ("astronaut", 350, ef.RED)]
    no_her = [("t1", 130, ef.RED), (None, 350, ef.BLUE)]
    ef.write_mp4(str(videos / "gen_good.mp4"), ef.video([right] * 6, src))
    ef.write_animated(str(videos / "gen_swapped.webp"), ef.video([wrong] * 4, src))
    ef.write_frames_dir(str(videos / "gen_partial"),
                        ef.video([right, no_her, right, no_her], src))
    return root


@pytest.fixture(scope="module")
def report(generated, face_pack):
    """The installed ``lumosx`` console script, run once over the generated set."""
    out = generated / "report"
    cmd = [LUMOSX if os.path.exists(LUMOSX) else sys.executable, "eval",
           str(generated / "cases"), "--videos", str(generated / "videos"), "--out", str(out),
           "--frames", "4", "--face-pack", face_pack, "--provider", "CPU"]
    if not os.path.exists(LUMOSX):
        cmd[1:1] = ["-m", "lumosx_core.cli"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=str(generated))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(out / "lumosx_eval.json", encoding="utf-8") as f:
        data = json.load(f)
    return {"data": data, "stdout": proc.stdout, "stderr": proc.stderr,
            "html": str(out / "lumosx_eval.html")}


def _case(data, cid):
    (c,) = [c for c in data["cases"] if c["case_id"] == cid]
    return c


def test_command_scores(report):
    data = report["data"]
    assert data["tool"] == "lumosx eval" and data["settings"]["frames"] == 4
    good, swapped, partial = (_case(data, c) for c in ("gen_good", "gen_swapped", "gen_partial"))
    novideo = _case(data, "gen_novideo")
    assert novideo["status"] == "missing video" and "gen_novideo" in novideo["error"]
    # correct video: binding 1, both people found in every sampled frame
    assert good["status"] == "ok" and good["video"].endswith("gen_good.mp4")
    assert good["frames_total"] == 6 and good["frame_indices"] == [0, 2, 3, 5]
    gb, gi = good["evaluation"]["binding"], good["evaluation"]["identity"]
    assert gb["accuracy"] == 1 and gb["swap_rate"] == 0 and gb["margin_min"] > 0.25
    assert [p["detection_rate"] for p in gi["people"]] == [1.0, 1.0]
    assert gi["people"][0]["similarity_mean"] > 0.45 and gi["people"][1]["similarity_mean"] > 0.6
    # swapped attributes: accuracy 0, reported as a swap
    sb = swapped["evaluation"]["binding"]
    assert sb["accuracy"] == 0 and sb["swap_rate"] == 1
    assert sb["swaps"][0]["phrases"] == ["red jacket", "blue jacket"]
    # her face missing in half the frames: her detection rate only
    pi = partial["evaluation"]["identity"]["people"]
    assert pi[0]["detection_rate"] == 1.0 and pi[1]["detection_rate"] == 0.5
    assert partial["evaluation"]["binding"]["accuracy"] == 1
    # summary: pooled over the three scored cases (2 pairs each)
    s = data["summary"]
    assert (s["cases"], s["scored"], s["missing_video"], s["errors"]) == (4, 3, 1, 0)
    assert s["binding_pairs"] == 6 and s["binding_accuracy"] == pytest.approx(4 / 6)
    assert s["binding_swap_rate"] == pytest.approx(2 / 6)
    assert s["detection_rate_mean"] == pytest.approx((1 + 1 + 1 + 1 + 1 + 0.5) / 6)
    assert s["identity_swaps"] == 0
    # worst first: the missing video, then the swapped case
    assert s["worst_first"][:2] == ["gen_novideo", "gen_swapped"]
    assert [c["case_id"] for c in data["cases"]] == s["worst_first"]
    # what the command printed, and its progress bar
    assert "3/4 cases scored (0 UNSCORED, 1 without video, 0 failed)" in report["stdout"]
    assert "binding accuracy 67% (6/6 pairs decided, 6/6 scored)" in report["stdout"]
    assert s["verdicts"] == {"correct": 4, "wrong": 2, "missing": 0, "undecided": 0,
                             "unscored": 0}
    assert "lumosx eval" in report["stderr"] and "12/12" in report["stderr"]


def test_html_report(report, tmp_path):
    with open(report["html"], encoding="utf-8") as f:
        page = f.read()
    assert page.startswith("<!DOCTYPE html>") and "src=\"http" not in page   # self-contained
    assert page.count("data:image/png;base64,") >= 5      # 2 summary plots + 3 matrices
    assert '<td class="num" id="binding-accuracy">67%</td>' in page
    # worst cases first, in the page too
    order = [page.index(f'id="case-{c}"') for c in report["data"]["summary"]["worst_first"]]
    assert order == sorted(order)
    swapped = page[page.index('id="case-gen_swapped"'):page.index('id="case-gen_partial"')]
    assert "swap: person 1 and person 2 exchanged" in swapped
    assert "wrong: worn by person 2 (swap)" in swapped
    partial = page[page.index('id="case-gen_partial"'):]
    assert "50% (2/4)" in partial
    # annotated frames: the first of each case, and its worst one (her face missing)
    assert page.count("data:image/jpeg;base64,") == 4
    assert "frame 1: binding 100%, 1/2 people found" in partial
    # opened once in headless Chromium: every plot decodes, a screenshot is taken
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("no Chromium at /usr/bin/chromium")
    shot = tmp_path / "report.png"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1200, "height": 900})
            tab.goto("file://" + report["html"])
            images = tab.evaluate("Array.from(document.images).map(i => "
                                  "[i.complete, i.naturalWidth, i.naturalHeight])")
            assert len(images) >= 5 and all(c and w > 100 and h > 50 for c, w, h in images)
            assert tab.inner_text("#binding-accuracy") == "67%"
            assert tab.title() == "LumosX evaluation"
            tab.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    with Image.open(shot) as im:
        assert im.size[0] == 1200 and im.size[1] > 1500
        arr = np.asarray(im.convert("RGB"))
    assert arr.std() > 20                                    # not a blank page


def test_report_without_matplotlib(report, monkeypatch):
    """Without matplotlib the binding matrices are drawn with Pillow, the bars left out."""
    from lumosx_core.evaluation import report as report_mod
    monkeypatch.setattr(report_mod, "_figure", lambda w, h: None)
    page = report_mod.render_html(report["data"])
    assert page.count("data:image/png;base64,") == 3          # the three matrices only
    assert 'id="binding-accuracy">67%' in page


def test_command_exit_codes(generated, face_pack, tmp_path, capsys):
    cases = str(generated / "cases")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["eval", cases, "--videos", str(empty), "--out", str(tmp_path / "o"),
                 "--face-pack", face_pack]) == 2
    assert "no case has a generated video" in capsys.readouterr().err
    assert main(["eval", cases, "--videos", str(generated / "videos"), "--out",
                 str(tmp_path / "o"), "--face-pack", str(tmp_path / "nope")]) == 2
    assert "holds no .onnx files" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "missing"), "--videos", str(empty)]) == 2
    assert "missing: no such folder" in capsys.readouterr().err
    # a broken video fails its case only: exit 1, the others are still scored
    shutil.copytree(generated / "cases" / "good", tmp_path / "cases" / "good")
    shutil.copytree(generated / "cases" / "swapped", tmp_path / "cases" / "swapped")
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(generated / "videos" / "gen_swapped.webp", videos)
    (videos / "gen_good.mp4").write_bytes(b"not a video")
    out = tmp_path / "o2"
    assert main(["eval", str(tmp_path / "cases"), "--videos", str(videos), "--out", str(out),
                 "--frames", "2", "--face-pack", face_pack, "--no-progress"]) == 1
    printed = capsys.readouterr()
    assert "gen_good: error" in printed.out and printed.err == ""
    data = json.loads((out / "lumosx_eval.json").read_text())
    assert _case(data, "gen_good")["status"] == "error"
    assert _case(data, "gen_swapped")["evaluation"]["binding"]["accuracy"] == 0
    assert data["summary"]["worst_first"] == ["gen_good", "gen_swapped"]


def test_face_pack_lookup(tmp_path, face_pack, monkeypatch):
    assert find_face_pack(face_pack) == face_pack
    root = os.path.dirname(os.path.dirname(face_pack))
    assert find_face_pack("vectron_sc", [root]) == face_pack
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="antelopev2"):
        find_face_pack(None, [str(tmp_path)])


@pytest.mark.skipif(not os.path.isdir(SHARED_CASES), reason="reference cases not available")
def test_command_on_the_authors_cases(face_pack, tmp_path):
    """The authors' four cases; a 'generated' video exists for the two-jackets case only
    (their own face crops over their own jackets): one case scored, three without video."""
    case = load_case(os.path.join(SHARED_CASES, "subject_consistency_test_data", "1"))
    p1, p2 = case.references.people
    frame = ef.compose([(p1.face.image, 130, p1.attributes[0].image),
                        (p2.face.image, 350, p2.attributes[0].image)])
    videos = tmp_path / "videos"
    ef.write_frames_dir(str(videos / case.case_id), torch.stack([frame, frame]))
    out = tmp_path / "out"
    assert main(["eval", SHARED_CASES, "--videos", str(videos), "--out", str(out),
                 "--face-pack", face_pack, "--no-progress"]) == 0
    data = json.loads((out / "lumosx_eval.json").read_text())
    assert data["summary"]["scored"] == 1 and data["summary"]["missing_video"] == 3
    ev = _case(data, "video_person2_001")["evaluation"]
    assert ev["binding"]["accuracy"] == 1
    assert [a["phrase"] for a in ev["attributes"]] == ["white jacket", "black jacket"]
    assert all(p["detection_rate"] == 1 for p in ev["identity"]["people"])
