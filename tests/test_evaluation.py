"""Evaluation (issue 6): identity per person and attribute binding.

Pure metric code with hand-made inputs and a scripted detector, then the real detector path
(insightface with the small vectron ONNX models) on real-looking frames: real face photos
from installed wheels pasted over differently coloured garments. Then the ComfyUI node
in-process (colour backend, a stub and a tiny real CLIP-vision model) and in a real server.
"""
import importlib
import itertools
import json
import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import eval_frames as ef
from face_fixtures import VECTRON_PACK, make_vectron_pack
from lumosx_core.evaluation import (ColorTextureBackend, EmbeddingBackend, Face,
                                    InsightFaceDetector, assign, attribute_kind,
                                    binding_scores, body_box, evaluate_video, identify_frame,
                                    identity_scores, load_face_analysis, person_regions,
                                    summary_text)
from lumosx_core.evaluation import assignment as assignment_mod
from lumosx_core.evaluation.appearance import (attribute_mask, dominant_colors, srgb_to_lab)
from lumosx_core.evaluation.regions import BODY, HEAD, head_box
from lumosx_core.conditioning.references import ReferenceSet

SHARED_CASES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..",
                            "shared", "testdata", "lumosx_reference_cases")


# ============================================================================ assignment

def _brute_force(sim, thr):
    """Best total excess similarity over every partial matching."""
    r, c = sim.shape
    best = 0.0
    for k in range(min(r, c) + 1):
        for rows in itertools.combinations(range(r), k):
            for cols in itertools.permutations(range(c), k):
                if all(sim[i, j] >= thr for i, j in zip(rows, cols)):
                    best = max(best, sum(sim[i, j] - thr for i, j in zip(rows, cols)))
    return best


def test_assign_picks_max_total_not_greedy():
    sim = np.array([[0.9, 0.8],
                    [0.85, 0.1]])
    # greedy would take (0, 0) = 0.9 and then (1, 1) = 0.1; the optimum is 0.8 + 0.85
    assert assign(sim) == [(0, 1), (1, 0)]
    assert assign(sim, 0.5) == [(0, 1), (1, 0)]
    assert assign(np.array([[0.1, 0.15]]), 0.2) == []                 # nobody reaches it
    assert assign(np.zeros((0, 3))) == [] and assign(np.zeros((2, 0))) == []
    # NaN (no embedding) is never chosen
    assert assign(np.array([[np.nan, 0.5], [0.6, np.nan]])) == [(0, 1), (1, 0)]


@settings(max_examples=60, deadline=None)
@given(r=st.integers(1, 4), c=st.integers(1, 5), thr=st.sampled_from([-1.0, 0.0, 0.3]),
       seed=st.integers(0, 10_000))
def test_assign_is_optimal_with_scipy_and_with_the_exact_fallback(r, c, thr, seed):
    sim = np.random.default_rng(seed).uniform(-0.5, 1.0, size=(r, c))
    best = _brute_force(sim, thr)
    for pairs in (assign(sim, thr), assignment_mod._assign_exact(assignment_mod._weights(sim, thr))):
        assert len({p for p, _ in pairs}) == len(pairs) == len({f for _, f in pairs})
        assert all(sim[p, f] >= thr for p, f in pairs)
        assert assignment_mod.total(sim, pairs, thr) == pytest.approx(best, abs=1e-9)


def test_assign_without_scipy_uses_the_exact_fallback(monkeypatch):
    import builtins
    real = builtins.__import__

    def no_scipy(name, *a, **k):
        if name.startswith("scipy"):
            raise ImportError("no scipy here")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_scipy)
    assert assign(np.array([[0.9, 0.8], [0.85, 0.1]])) == [(0, 1), (1, 0)]


# ============================================================================ identity

E = np.eye(4, dtype=np.float32)          # four orthogonal "identities"


def face(x, ident, y=50, size=60, noise=0.0):
    emb = E[ident] + noise * np.ones(4, np.float32)
    return Face((x, y, x + size, y + size), emb / np.linalg.norm(emb), 0.9)


def test_identity_assignment_and_swap_across_frames():
    refs = [E[0], E[1]]
    frames = [identify_frame(0, [face(20, 0), face(200, 1)], refs),
              identify_frame(10, [face(22, 0), face(203, 1)], refs),        # small motion
              identify_frame(20, [face(21, 1), face(201, 0)], refs)]        # exchanged
    assert frames[0].assigned[0].face == 0 and frames[0].assigned[1].face == 1
    assert frames[2].assigned[0].face == 1 and frames[2].assigned[1].face == 0
    scores = identity_scores(frames, 2)
    assert scores["n_swaps"] == 1
    (swap,) = scores["swaps"]
    assert swap["frame"] == 20 and swap["previous_frame"] == 10 and swap["people"] == [0, 1]
    assert {(c["from"], c["to"]) for c in swap["changes"]} == {(0, 1), (1, 0)}
    assert [p["swaps"] for p in scores["people"]] == [1, 1]
    assert [p["detection_rate"] for p in scores["people"]] == [1.0, 1.0]
    assert scores["people"][0]["similarity_mean"] == pytest.approx(1.0)


def test_missing_face_lowers_only_that_persons_detection_rate():
    refs = [E[0], E[1]]
    frames = [identify_frame(i, fs, refs) for i, fs in enumerate([
        [face(20, 0, noise=0.3), face(200, 1)],
        [face(20, 0, noise=0.1)],                        # person 2 not in the frame
        [face(20, 0), face(200, 2)],                     # a stranger instead of person 2
        [face(20, 0), face(200, 1, noise=0.5)]])]
    s = identity_scores(frames, 2)
    p1, p2 = s["people"]
    assert p1["detection_rate"] == 1.0 and p1["detected"] == 4
    assert p2["detection_rate"] == 0.5 and p2["per_frame"][1] is None and p2["per_frame"][2] is None
    assert 2 not in frames[2].assigned.values() and 1 not in frames[2].assigned   # stranger
    assert p2["similarity_max"] == pytest.approx(1.0)
    assert p2["similarity_min"] == pytest.approx(float(face(0, 1, noise=0.5).embedding @ E[1]))
    assert s["n_swaps"] == 0                              # a vanished face is no swap
    assert s["detection_rate"] == pytest.approx(0.75)


def test_far_jump_is_not_linked_as_a_swap():
    refs = [E[0], E[1]]
    frames = [identify_frame(0, [face(20, 0)], refs), identify_frame(1, [face(400, 1)], refs)]
    assert identity_scores(frames, 2)["n_swaps"] == 0


# ============================================================================ regions

def test_body_box_geometry_and_clipping():
    # face 40 x 50 at (100, 20): body 2.8 * 40 = 112 wide centred on x = 120, from the chin
    # + 0.15 * 50 down 3.5 * 50 = 175
    assert body_box((100, 20, 140, 70), 640, 480) == (64, 77, 176, 253)
    assert body_box((100, 20, 140, 70), 150, 200) == (64, 77, 150, 200)        # clipped
    x1, y1, x2, y2 = body_box((0, 430, 40, 480), 640, 480)                      # off-frame
    assert y1 == y2 == 480
    hx1, hy1, hx2, hy2 = head_box((100, 20, 140, 70), 640, 480)
    assert hy1 == 0 and hy2 == 75 and hx1 == 84 and hx2 == 156


def test_regions_split_overlaps_and_respect_faces_and_masks():
    boxes = {0: (100, 20, 160, 80), 1: (190, 20, 250, 80)}      # close: body boxes overlap
    regs = person_regions(boxes, 400, 300)
    a, b = regs[0][BODY], regs[1][BODY]
    assert not (a & b).any()                                      # each pixel has one owner
    assert a[:, :175].any() and not a[:, 176:].any()              # split at the midpoint x=175
    assert b[:, 176:].any() and not b[:, :175].any()
    assert not regs[0][HEAD][20:80, 190:250].any()                # never another's face
    user = np.zeros((300, 400), np.float32)
    user[200:, :50] = 1
    regs = person_regions({0: boxes[0]}, 400, 300, user_masks={1: user})
    assert regs[1][BODY].sum() == 100 * 50 and regs[1][HEAD] is regs[1][BODY]
    with pytest.raises(ValueError, match="mask of person 2"):
        person_regions({}, 400, 300, user_masks={1: np.ones((10, 10))})


# ============================================================================ appearance

def test_lab_reference_values():
    lab = srgb_to_lab(np.array([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    assert lab[0] == pytest.approx([100.0, 0.0, 0.0], abs=0.05)
    assert lab[1] == pytest.approx([53.24, 80.09, 67.20], abs=0.05)
    assert lab[2] == pytest.approx([0.0, 0.0, 0.0], abs=0.05)


def test_attribute_mask_keeps_an_off_white_garment_inside_its_outline():
    img = np.full((60, 50, 3), 255, np.uint8)
    img[10:50, 10:40] = (60, 60, 60)                 # outline
    img[12:48, 12:38] = (252, 251, 250)              # off-white body, nearly white
    mask = attribute_mask(torch.from_numpy(img.astype(np.float32) / 255))
    assert mask[10:50, 10:40].all() and not mask[:10].any() and not mask[:, :10].any()
    rgba = np.zeros((20, 20, 4), np.float32)
    rgba[5:15, 5:15] = (0.1, 0.8, 0.1, 1.0)
    assert attribute_mask(torch.from_numpy(rgba)).sum() == 100        # alpha = background


def test_color_descriptor_tells_garments_apart():
    be = ColorTextureBackend()
    red, red2, blue = (ef.garment_image(c, seed=s) for c, s in
                       ((ef.RED, 0), ((185, 40, 35), 3), (ef.BLUE, 1)))
    d_red, d_red2, d_blue = be.describe_attributes([red, red2, blue])
    assert abs(float(np.linalg.norm(d_red)) - 1) < 1e-5
    assert float(d_red @ d_red2) > 0.7 > 0.3 > float(d_red @ d_blue)
    # a frame region: the red garment over a background still matches red best
    frame = ef.compose([(None, 120, ef.RED), (None, 360, ef.BLUE)])
    w = frame.shape[1]
    left = np.zeros(frame.shape[:2], bool)
    left[130:, :w // 2] = True
    (d_left,) = be.describe_regions(frame, [left])
    assert float(d_left @ d_red) > float(d_left @ d_blue) + 0.4
    colors = be.attribute_colors(red)
    assert colors[0]["share"] > 0.5
    r, g, b = (int(colors[0]["hex"][i:i + 2], 16) for i in (1, 3, 5))
    assert r > 150 and g < 80 and b < 80
    assert dominant_colors(np.zeros((0, 3))) == []


# ============================================================================ binding

def test_evaluate_inputs_masks_frames_and_people():
    """lumosx_core.evaluation.inputs: the Evaluate node's inputs checked and prepared."""
    from lumosx_core.evaluation.inputs import check_people, sampled_frames, split_masks
    frames = torch.rand(9, 6, 8, 1)                              # grey frames
    chosen, idx, total = sampled_frames(frames, 3)
    assert idx == [0, 4, 8] and total == 9 and chosen.shape == (3, 6, 8, 3)
    assert torch.equal(chosen[1, ..., 2], frames[4, ..., 0])
    assert sampled_frames(torch.rand(6, 8, 3), 0)[1:] == ([0], 1)
    with pytest.raises(ValueError, match="frames: expected an IMAGE batch"):
        sampled_frames(torch.rand(0, 6, 8, 3), 2)
    per_person = torch.zeros(2, 3, 4)
    per_person[1] = 1
    out = split_masks(per_person, 2, 9, idx, 6, 8)               # resized to the frames
    assert len(out) == 3 and out[0][0].shape == (6, 8) and out[2][1].min() == 1
    per_frame = torch.arange(18.0)[:, None, None].expand(18, 6, 8)
    out = split_masks(per_frame, 2, 9, idx, 6, 8)
    assert [(o[0][0, 0], o[1][0, 0]) for o in out] == [(0, 1), (8, 9), (16, 17)]
    assert split_masks(None, 2, 9, idx, 6, 8) is None
    with pytest.raises(ValueError, match="masks: 3 masks for 2 people and 9 frames"):
        split_masks(torch.zeros(3, 6, 8), 2, 9, idx, 6, 8)
    with pytest.raises(ValueError, match="references: no people to evaluate"):
        check_people(ReferenceSet())
    with pytest.raises(ValueError, match="expected the output of LumosX Person nodes, got int"):
        check_people(1)


def test_report_css_badges_come_from_the_verdict_colours():
    from lumosx_core.evaluation.report import CSS, VERDICT_COLORS
    from lumosx_core.evaluation.verdicts import VERDICTS
    assert set(VERDICT_COLORS) == set(VERDICTS)
    for verdict, color in VERDICT_COLORS.items():
        assert f".v-{verdict}{{background:{color}}}" in CSS


def test_attribute_kinds():
    assert attribute_kind("white jacket") == "upper body"
    assert attribute_kind("light brown sweater") == "upper body"
    assert attribute_kind("denim jacket with a white fur-lined collar") == "upper body"
    assert attribute_kind("red baseball cap") == "headwear"
    assert attribute_kind("Sunglasses") == "eyewear"
    assert attribute_kind("blue jeans") == "lower body"
    assert attribute_kind("golden thing") == "thing"


def test_binding_correct_swapped_and_leak():
    owners, kinds, phrases = [0, 1], ["upper body"] * 2, ["red jacket", "blue jacket"]
    ok = binding_scores([[0.9, 0.2], [0.1, 0.8]], owners, kinds, phrases)
    assert ok["accuracy"] == 1 and ok["swap_rate"] == 0 and ok["swaps"] == []
    assert ok["margin_mean"] == pytest.approx((0.7 + 0.7) / 2)
    sw = binding_scores([[0.2, 0.9], [0.8, 0.1]], owners, kinds, phrases)
    assert sw["accuracy"] == 0 and sw["swap_rate"] == 1
    assert sw["swaps"] == [{"people": [0, 1], "attributes": [0, 1],
                            "phrases": ["red jacket", "blue jacket"], "kind": "upper body"}]
    assert sw["margin_min"] == pytest.approx(-0.7)
    assert [p["winner_person"] for p in sw["pairs"]] == [1, 0]
    # both wear blue: person 1 is wrong, but nothing was exchanged
    leak = binding_scores([[0.2, 0.9], [0.1, 0.8]], owners, kinds, phrases)
    assert leak["accuracy"] == 0.5 and leak["swap_rate"] == 0 and leak["swaps"] == []


def test_binding_kinds_fallback_uncontested_and_missing_person():
    # person 1: jacket + hat, person 2: jacket, person 3 (not found): scarf
    S = np.array([[0.9, 0.7, 0.3, 0.2],
                  [0.2, 0.6, 0.8, 0.3],
                  [np.nan] * 4])
    owners = [0, 0, 1, 2]
    phrases = ["red jacket", "green hat", "blue jacket", "yellow scarf"]
    kinds = [attribute_kind(p) for p in phrases]
    r = binding_scores(S, owners, kinds, phrases)
    jacket, hat, blue, scarf = r["pairs"]
    assert jacket["scope"] == "same kind" and jacket["best_other"] == pytest.approx(0.3)
    # nobody else wears anything on the head: the hat is uncontested, judged by presence
    # alone (not tested here), and not on person 2, whose jacket explains their region better
    assert hat["scope"] == "none" and hat["status"] == "uncontested" and hat["margin"] is None
    assert hat["verdict"] == "correct" and "presence not tested" in hat["reason"]
    assert hat["where"]["1"]["state"] != "on" and hat["where"]["1"]["margin"] < 0
    assert blue["correct"] and blue["best_other"] == pytest.approx(0.2)
    assert scarf["status"] == "person not found" and scarf["correct"] is None
    assert r["scored"] == 3 and r["total_pairs"] == 4 and r["accuracy"] == 1
    assert r["matrix"][2] == [None] * 4
    # a kind nobody else has competes with what others wear in the same region
    r = binding_scores([[0.9, 0.2], [0.3, 0.8]], [0, 1], ["thing", "full body"],
                       ["golden thing", "blue dress"])
    assert [e["scope"] for e in r["pairs"]] == ["same region", "same region"]
    assert r["accuracy"] == 1
    alone = binding_scores([[0.5]], [0], ["upper body"], ["jacket"])
    assert alone["pairs"][0]["status"] == "uncontested" and alone["accuracy"] == 1


# ============================================================================ pipeline, scripted

class ScriptedDetector:
    """Returns the given faces for each successive frame (the injectable detector)."""

    def __init__(self, per_frame):
        self.per_frame = list(per_frame)
        self.calls = 0

    def __call__(self, rgb):
        out = self.per_frame[self.calls]
        self.calls += 1
        return out


def two_people_refs(a_color=ef.RED, b_color=ef.BLUE):
    face = torch.full((32, 32, 3), 0.5)
    return (ReferenceSet()
            .with_person(face, "man", [(ef.garment_image(a_color), "red jacket")])
            .with_person(face, "woman", [(ef.garment_image(b_color, seed=1), "blue jacket")]))


def faces_at(*xs_idents):
    # the face of compose() at centre x: roughly (cx - 30, 50) .. (cx + 30, 130)
    return [Face((cx - 30, 50, cx + 30, 130), E[i], 0.9) for cx, i in xs_idents]


def test_pipeline_with_scripted_detector():
    refs = two_people_refs()
    frames = torch.stack([ef.compose([(None, 130, ef.RED), (None, 350, ef.BLUE)], seed=s)
                          for s in range(3)])
    det = ScriptedDetector([faces_at((130, 0), (350, 1)), faces_at((130, 0)),
                            faces_at((350, 1), (130, 0))])
    progress = []
    # the scripted face boxes show garment and background, not skin: no light correction
    ev = evaluate_video(frames, refs, det, frame_indices=[0, 40, 80],
                        reference_embeddings=[E[0], E[1]], reference_skins=[None, None],
                        progress=lambda d, n: progress.append((d, n)))
    assert progress == [(1, 3), (2, 3), (3, 3)] and det.calls == 3
    b = ev.binding
    assert b["accuracy"] == 1 and b["swap_rate"] == 0 and b["margin_min"] > 0.4
    assert b["per_frame_accuracy"] == [1.0, 1.0, 1.0]
    idn = ev.identity["people"]
    assert idn[0]["detection_rate"] == 1 and idn[1]["detection_rate"] == pytest.approx(2 / 3)
    m = ev.matrix
    assert m[0, 0] > m[0, 1] + 0.4 and m[1, 1] > m[1, 0] + 0.4
    d = json.loads(json.dumps(ev.to_dict()))
    assert [f["frame"] for f in d["frames"]] == [0, 40, 80]
    assert d["attributes"][0]["kind"] == "upper body"
    assert "accuracy 100%" in summary_text(ev)
    # the same frames read with swapped people masks: the garments are on the wrong people
    h, w = frames.shape[1:3]
    left, right = np.zeros((h, w), np.float32), np.zeros((h, w), np.float32)
    left[130:, :240], right[130:, 240:] = 1, 1
    det = ScriptedDetector([faces_at((130, 0), (350, 1))] * 3)
    ev = evaluate_video(frames, refs, det, masks=[{0: right, 1: left}] * 3,
                        reference_embeddings=[E[0], E[1]], reference_skins=[None, None])
    assert ev.binding["accuracy"] == 0 and ev.binding["swap_rate"] == 1


def test_reference_without_face_is_a_warning_not_a_crash():
    refs = two_people_refs()
    frame = ef.compose([(None, 130, ef.RED), (None, 350, ef.BLUE)])[None]
    # reference faces: person 1's shows no face, person 2's is E[0]; then the frame
    det = ScriptedDetector([[], [Face((4, 4, 28, 28), E[0])], faces_at((130, 0))])
    ev = evaluate_video(frame, refs, det)
    assert "person 1 ('man'): no face found" in ev.warnings[0]
    assert ev.identity["people"][0]["detected"] == 0
    assert ev.identity["people"][1]["detected"] == 1


def test_people_without_attributes_score_identity_only():
    face = torch.full((32, 32, 3), 0.5)
    refs = ReferenceSet().with_person(face, "man").with_person(face, "woman")
    frame = ef.compose([(None, 130, ef.RED)])[None]
    ev = evaluate_video(frame, refs, ScriptedDetector([faces_at((130, 1))]),
                        reference_embeddings=[E[0], E[1]])
    assert ev.binding["accuracy"] is None and ev.binding["total_pairs"] == 0
    assert [p["detected"] for p in ev.identity["people"]] == [0, 1]
    from lumosx_core.evaluation.render import render_matrix
    img = render_matrix(ev.matrix, ["man", "woman"], [], [], "no attributes")
    assert img.dtype == np.uint8 and img.shape[2] == 3
    text = summary_text(ev)
    assert "Binding: accuracy n/a (0/0 pairs decided, 0/0 pairs scored)" in text
    assert ev.status == "partial" and "PARTLY UNSCORED" in text       # the man is not found


# ============================================================================ real detector

@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    pack = make_vectron_pack(tmp_path_factory.mktemp("insightface"))
    return InsightFaceDetector(load_face_analysis(pack, "CPU", 640), 640)


@pytest.fixture(scope="module")
def sources():
    return ef.Sources()


@pytest.fixture(scope="module")
def real_refs(sources, detector):
    """Yao Ming (reference: yaoming.jpg; frames: his face among the players) in red, the
    astronaut (frames: mirrored) in blue; face embeddings computed once."""
    refs = (ReferenceSet()
            .with_person(sources.references["yao"], "man",
                         [(ef.garment_image(ef.RED), "red jacket")])
            .with_person(sources.references["astronaut"], "woman",
                         [(ef.garment_image(ef.BLUE, seed=1), "blue jacket")]))
    from lumosx_core.evaluation.scoring import reference_face
    faces = [reference_face(detector, p.face.image) for p in refs.people]
    assert all(f is not None for f in faces)
    return refs, [f.embedding for f in faces]


def test_real_correct_and_swapped_composites(detector, sources, real_refs):
    refs, embs = real_refs
    good = ef.compose([("yao", 130, ef.RED), ("astronaut", 350, ef.BLUE)], sources)
    swapped = ef.compose([("yao", 130, ef.BLUE), ("astronaut", 350, ef.RED)], sources)
    ev = evaluate_video(good[None], refs, detector, reference_embeddings=embs)
    assert ev.binding["accuracy"] == 1 and ev.binding["swap_rate"] == 0
    assert ev.binding["margin_min"] > 0.25
    ident = ev.identity["people"]
    assert ident[0]["similarity_mean"] > 0.45 and ident[1]["similarity_mean"] > 0.6
    assert [p["detection_rate"] for p in ident] == [1.0, 1.0]
    ev = evaluate_video(swapped[None], refs, detector, reference_embeddings=embs)
    b = ev.binding
    assert b["accuracy"] == 0 and b["swap_rate"] == 1 and b["margin_mean"] < -0.3
    assert b["swaps"] and b["swaps"][0]["people"] == [0, 1]
    assert b["swaps"][0]["phrases"] == ["red jacket", "blue jacket"]
    assert "exchanged 'red jacket' / 'blue jacket'" in summary_text(ev)
    # the colours explain it: the red jacket's colour is found on person 2
    red_hex = ev.attributes[0]["colors"][0]["hex"]
    on_p2 = [c["hex"] for c in b["region_colors"][1]]
    assert int(red_hex[1:3], 16) > 150 and any(int(h[1:3], 16) > 150 and int(h[5:7], 16) < 90
                                               for h in on_p2)


def test_real_missing_face_lowers_only_that_persons_rate(detector, sources, real_refs):
    refs, embs = real_refs
    frames = ef.video([[("yao", 130, ef.RED), ("astronaut", 350, ef.BLUE)],
                       [("yao", 130, ef.RED), (None, 350, ef.BLUE)],        # her face gone
                       [("yao", 134, ef.RED), ("astronaut", 346, ef.BLUE)],
                       [("yao", 126, ef.RED), ("t1", 350, ef.BLUE)]],       # a stranger
                      sources)
    ev = evaluate_video(frames, refs, detector, reference_embeddings=embs)
    man, woman = ev.identity["people"]
    assert man["detection_rate"] == 1.0
    assert woman["detection_rate"] == 0.5
    assert woman["per_frame"][1] is None and woman["per_frame"][3] is None
    assert len(ev.frames[3].faces) == 2 and list(ev.frames[3].assigned) == [0]
    assert ev.identity["n_swaps"] == 0
    assert ev.binding["accuracy"] == 1             # scored on the frames where she is found


def test_real_identity_assignment_and_swap(detector, sources, real_refs):
    refs, embs = real_refs
    frames = ef.video([[("yao", 130, ef.RED), ("astronaut", 350, ef.BLUE)],
                       [("astronaut", 130, ef.RED), ("yao", 350, ef.BLUE)]], sources)
    ev = evaluate_video(frames, refs, detector, reference_embeddings=embs)
    f0, f1 = ev.frames
    assert len(f0.faces) == 2
    # the right person in a two-face frame: Yao on the left, the astronaut on the right
    assert f0.assigned[0].bbox[2] < 240 < f0.assigned[1].bbox[0]
    assert f1.assigned[1].bbox[2] < 240 < f1.assigned[0].bbox[0]
    sim = f0.similarity                              # [people, faces]
    for p, a in f0.assigned.items():
        assert sim[p, a.face] > 0.4 and sim[1 - p, a.face] < 0.2
    assert ev.identity["n_swaps"] == 1
    (swap,) = ev.identity["swaps"]
    assert swap["people"] == [0, 1] and swap["frame"] == 1
    assert [p["swaps"] for p in ev.identity["people"]] == [1, 1]


@pytest.mark.skipif(not os.path.isdir(SHARED_CASES), reason="reference cases not available")
def test_authors_reference_case_composite(detector):
    """The authors' case (two men, white jacket / black jacket): their real face crops over
    their real attribute images score 1; exchanged jackets score 0 and a swap."""
    from lumosx_core.evaluation.cases import load_case
    case = load_case(os.path.join(SHARED_CASES, "subject_consistency_test_data", "1"))
    p1, p2 = case.references.people
    assert [a.phrase for a in p1.attributes] == ["white jacket"]
    good = ef.compose([(p1.face.image, 130, p1.attributes[0].image),
                       (p2.face.image, 350, p2.attributes[0].image)])
    bad = ef.compose([(p1.face.image, 130, p2.attributes[0].image),
                      (p2.face.image, 350, p1.attributes[0].image)])
    ev = evaluate_video(torch.stack([good, bad]), case.references, detector)
    assert [p["detection_rate"] for p in ev.identity["people"]] == [1.0, 1.0]
    assert all(p["similarity_min"] > 0.6 for p in ev.identity["people"])
    assert ev.binding["per_frame_accuracy"] == [1.0, 0.0]
    ev = evaluate_video(bad[None], case.references, detector)
    assert ev.binding["accuracy"] == 0 and len(ev.binding["swaps"]) == 1


def test_core_imports_no_comfy_and_no_optional_library():
    import subprocess
    import sys
    code = ("import sys, lumosx_core.evaluation, lumosx_core.evaluation.report, "
            "lumosx_core.evaluation.render, lumosx_core.evaluation.video, "
            "lumosx_core.evaluation.cases, lumosx_core.cli.eval_cmd; print(sorted({m.split('.')[0] "
            "for m in sys.modules} & {'comfy', 'folder_paths', 'comfy_api', 'insightface', "
            "'onnxruntime', 'matplotlib', 'scipy', 'av'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ============================================================================ node

@pytest.fixture(scope="module")
def nodes_eval(pack):
    return importlib.import_module("ComfyUI_LumosX.nodes.evaluate")


def run_node(mod, frames, refs, **kw):
    args = dict(pack=VECTRON_PACK, sample_frames=8, min_face_similarity=0.2, body_width=2.8,
                body_height=3.5, det_size=640, provider="CPU")
    args.update(kw)
    return mod.LumosXEvaluate.execute(frames, refs, **args)


def test_node_schema(nodes_eval, face_root):
    cls = nodes_eval.LumosXEvaluate
    schema = cls.GET_SCHEMA()
    assert schema.node_id == "LumosXEvaluate" and schema.display_name == "LumosX Evaluate"
    assert schema.category == "LumosX" and schema.is_output_node
    types = cls.INPUT_TYPES()
    assert list(types["required"]) == ["frames", "references", "pack", "sample_frames",
                                       "min_face_similarity", "body_width", "body_height",
                                       "det_size", "provider"]
    assert list(types["optional"]) == ["clip_vision", "masks"]
    assert types["optional"]["clip_vision"][0] == "CLIP_VISION"
    assert types["required"]["references"][0] == "LUMOSX_REFS"
    assert types["required"]["pack"][1]["options"] == [VECTRON_PACK]
    assert cls.RETURN_TYPES == ["STRING", "STRING", "IMAGE", "IMAGE"]
    assert cls.RETURN_NAMES == ["scores", "json", "heatmap", "overlay"]
    import ComfyUI_LumosX.nodes as pkg
    assert cls in pkg.NODE_LIST


def _video_and_refs(sources, real_refs, n=10, swapped_from=None):
    refs, _ = real_refs
    people = []
    for i in range(n):
        if swapped_from is not None and i >= swapped_from:
            people.append([("yao", 130, ef.BLUE), ("astronaut", 350, ef.RED)])
        else:
            people.append([("yao", 130, ef.RED), ("astronaut", 350, ef.BLUE)])
    return ef.video(people, sources), refs


def test_node_scores_heatmap_and_overlay(nodes_eval, face_root, sources, real_refs):
    frames, refs = _video_and_refs(sources, real_refs, n=10)
    out = run_node(nodes_eval, frames, refs, sample_frames=3)
    text, js, heatmap, overlay = out.result
    data = json.loads(js)
    assert data["frames_total"] == 10 and [f["frame"] for f in data["frames"]] == [0, 4, 9]
    assert data["binding"]["accuracy"] == 1 and data["backend"] == "color"
    assert [p["detection_rate"] for p in data["identity"]["people"]] == [1.0, 1.0]
    assert "Binding: accuracy 100%" in text and "person 1 'man'" in text
    assert out.ui.as_dict() == {"text": (text,)}
    assert heatmap.ndim == 4 and heatmap.shape[0] == 1 and heatmap.shape[-1] == 3
    assert heatmap.shape[1] >= 150 and heatmap.shape[2] >= 250
    assert 0 <= float(heatmap.min()) and float(heatmap.max()) <= 1
    assert overlay.shape == (3, 360, 480, 3)
    # the person colours are drawn on the overlay: red-ish box edge at the first face
    f0 = data["frames"][0]["faces"][data["frames"][0]["assigned"]["0"]["face"]]["bbox"]
    x1, y1 = int(f0[0]), int(f0[1])
    px = (overlay[0, y1 + 1, x1 + 10] * 255).round()
    assert px[0] > 180 and px[1] < 80                             # '#e6194b'


def test_node_masks_and_errors(nodes_eval, face_root, sources, real_refs):
    frames, refs = _video_and_refs(sources, real_refs, n=2)
    h, w = frames.shape[1:3]
    left, right = torch.zeros(h, w), torch.zeros(h, w)
    left[130:, :240], right[130:, 240:] = 1, 1
    # masks per person, deliberately exchanged: each person gets the other one's jacket
    out = run_node(nodes_eval, frames, refs, masks=torch.stack([right, left]))
    assert json.loads(out.result[1])["binding"]["accuracy"] == 0
    # frame-major masks for every input frame, half the size (resized to the frames)
    small = torch.stack([left, right] * 2)[:, ::2, ::2]
    out = run_node(nodes_eval, frames, refs, masks=small)
    assert json.loads(out.result[1])["binding"]["accuracy"] == 1
    with pytest.raises(ValueError, match="3 masks for 2 people"):
        run_node(nodes_eval, frames, refs, masks=torch.stack([left, right, left]))
    with pytest.raises(ValueError, match="no people"):
        run_node(nodes_eval, frames, ReferenceSet())
    with pytest.raises(ValueError, match="references"):
        run_node(nodes_eval, frames, "not refs")
    with pytest.raises(ValueError, match="provider = 'GPU'"):
        run_node(nodes_eval, frames, refs, provider="GPU")
    assert nodes_eval.LumosXEvaluate.validate_inputs(pack="../x").startswith("pack = '../x'")
    assert nodes_eval.LumosXEvaluate.validate_inputs(pack=VECTRON_PACK, provider="CPU") is True


class MeanColourClipVision:
    """Stand-in CLIP_VISION: the 'embedding' of a crop is its mean non-white colour."""

    image_size = 48

    def __init__(self):
        self.batches = []

    def encode_image(self, image, crop=True):
        self.batches.append(tuple(image.shape))
        fg = (image.min(dim=-1).values < 0.94).float().unsqueeze(-1)
        mean = (image * fg).sum(dim=(1, 2)) / fg.sum(dim=(1, 2)).clamp_min(1)
        from comfy.clip_vision import Output
        out = Output()
        sd = ((image - mean[:, None, None]) ** 2 * fg).sum(dim=(1, 2)).div(
            fg.sum(dim=(1, 2)).clamp_min(1)).sqrt()
        out["image_embeds"] = torch.cat([mean - 0.5, 4 * sd], -1)   # colour and texture
        return out


def test_node_clip_vision_backend_plumbing(nodes_eval, face_root, sources, real_refs):
    frames, refs = _video_and_refs(sources, real_refs, n=4, swapped_from=2)
    stub = MeanColourClipVision()
    out = run_node(nodes_eval, frames, refs, clip_vision=stub)
    data = json.loads(out.result[1])
    assert data["backend"] == "clip_vision"
    assert stub.batches[0] == (2, 48, 48, 3)                     # the two attributes
    assert all(b[1:] == (48, 48, 3) for b in stub.batches)
    # frames 0-1 correct, 2-3 swapped: the regions went to the right people
    assert data["binding"]["per_frame_accuracy"] == [1.0, 1.0, 0.0, 0.0]


def tiny_clip_vision(tmp_path):
    """A real ComfyUI ClipVisionModel, tiny and randomly initialised."""
    import comfy.clip_vision
    cfg = {"attention_dropout": 0.0, "dropout": 0.0, "hidden_act": "quick_gelu",
           "hidden_size": 32, "image_size": 32, "initializer_factor": 1.0,
           "initializer_range": 0.02, "intermediate_size": 64, "layer_norm_eps": 1e-5,
           "model_type": "clip_vision_model", "num_attention_heads": 2, "num_channels": 3,
           "num_hidden_layers": 2, "patch_size": 8, "projection_dim": 16}
    path = tmp_path / "tiny_clip_vision.json"
    path.write_text(json.dumps(cfg))
    cv = comfy.clip_vision.ClipVisionModel(str(path))
    g = torch.Generator().manual_seed(0)
    sd = {k: (torch.ones_like(v) if k.endswith("norm1.weight") or k.endswith("norm2.weight")
              or "layernorm.weight" in k or "layrnorm.weight" in k
              else torch.randn(v.shape, generator=g) * 0.05)
          for k, v in cv.get_sd().items()}
    missing, unexpected = cv.load_sd(sd)
    assert not missing and not unexpected
    return cv


def test_node_with_a_tiny_real_clip_vision_model(nodes_eval, face_root, sources, real_refs,
                                                 tmp_path):
    cv = tiny_clip_vision(tmp_path)
    frames, refs = _video_and_refs(sources, real_refs, n=2)
    out = run_node(nodes_eval, frames, refs, clip_vision=cv)
    data = json.loads(out.result[1])
    assert data["backend"] == "clip_vision"
    m = np.array(data["binding"]["matrix"], dtype=float)
    assert m.shape == (2, 2) and np.isfinite(m).all() and (np.abs(m) <= 1 + 1e-5).all()
    assert data["binding"]["scored"] == 2


def test_embedding_backend_batches_and_whitens_outside_the_region():
    seen = []

    def embed(batch):
        seen.append(batch.clone())
        return batch.reshape(batch.shape[0], -1)[:, :7]

    be = EmbeddingBackend(embed, size=16, batch_size=2)
    frame = torch.zeros(40, 40, 3)
    m = np.zeros((40, 40), bool)
    m[10:20, 10:30] = True
    m[10, 10] = False
    out = be.describe_regions(frame, [m, np.zeros((40, 40), bool), m, m])
    assert out[1] is None and all(o is not None for o in (out[0], out[2], out[3]))
    assert [b.shape[0] for b in seen] == [2, 1]
    crop = seen[0][0]                           # 20 x 10 box -> 16 x 8, letterboxed on white
    assert torch.all(crop[:4] == 1) and torch.all(crop[12:] == 1)
    assert float(crop[6, 8].max()) == 0.0
    assert crop[4, 0].min() > 0.0               # the whitened pixel at the box corner


# ============================================================================ real server

def test_evaluate_node_in_a_real_comfyui_server(server, sources):
    """The node runs in a real headless ComfyUI through the HTTP API (images loaded with
    the stock LoadImage, people with LumosX Person)."""
    from PIL import Image
    inp = os.path.join(server.base, "input")

    def save(name, arr):
        a = arr.numpy() if torch.is_tensor(arr) else arr
        Image.fromarray((np.clip(a, 0, 1) * 255).round().astype(np.uint8)).save(
            os.path.join(inp, name))
        return name

    save("eval_frame.png", ef.compose([("yao", 130, ef.RED), ("astronaut", 350, ef.BLUE)],
                                      sources))
    save("eval_face_a.png", sources.references["yao"])
    save("eval_face_b.png", sources.references["astronaut"])
    save("eval_red.png", ef.garment_image(ef.RED))
    save("eval_blue.png", ef.garment_image(ef.BLUE, seed=1))

    def load(name):
        return {"class_type": "LoadImage", "inputs": {"image": name}}

    graph = {
        "1": load("eval_frame.png"), "2": load("eval_face_a.png"), "3": load("eval_face_b.png"),
        "4": load("eval_red.png"), "5": load("eval_blue.png"),
        "6": {"class_type": "LumosXPerson",
              "inputs": {"face": ["2", 0], "face_phrase": "man", "attribute_1": ["4", 0],
                         "phrase_1": "red jacket"}},
        "7": {"class_type": "LumosXPerson",
              "inputs": {"face": ["3", 0], "face_phrase": "woman", "references": ["6", 0],
                         "attribute_1": ["5", 0], "phrase_1": "blue jacket"}},
        "8": {"class_type": "LumosXEvaluate",
              "inputs": {"frames": ["1", 0], "references": ["7", 0], "pack": VECTRON_PACK,
                         "sample_frames": 8, "min_face_similarity": 0.2, "body_width": 2.8,
                         "body_height": 3.5, "det_size": 640, "provider": "CPU"}},
        "9": {"class_type": "SaveImage",
              "inputs": {"images": ["8", 2], "filename_prefix": "lumosx_eval_heatmap"}},
    }
    hist = server.run(graph, timeout=300)
    assert hist["status"]["status_str"] == "success", (hist["status"], server.log()[-3000:])
    (text,) = hist["outputs"]["8"]["text"]
    assert "Binding: accuracy 100%" in text and "detected 1/1" in text
    (img,) = hist["outputs"]["9"]["images"]
    with Image.open(os.path.join(server.base, "output", img.get("subfolder", ""),
                                 img["filename"])) as im:
        assert im.size[0] >= 250 and im.size[1] >= 150
