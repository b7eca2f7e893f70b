"""In-process behaviour of the pack's nodes: people and references, Bind, Sampler."""
import logging
import os
import re

import pytest
import torch

import assets

from shared_inputs import H, PROMPT, W, img
from shared_inputs import bind as _bind
from shared_inputs import people as _refs


# -- people and references ------------------------------------------------------------------

def test_all_node_ids_and_names_are_prefixed(N):
    assert {"LumosXModelLoader", "LumosXApply", "LumosXPerson", "LumosXReference", "LumosXBind",
            "LumosXSampler"} <= set(N)
    for node_id, cls in N.items():
        s = cls.GET_SCHEMA()
        assert node_id.startswith("LumosX") and s.display_name.startswith("LumosX")


def test_people_accumulate_in_layout_order_and_inputs_stay_unchanged(N):
    refs = _refs(N)
    order = [(r.kind, r.phrase, r.person) for r in refs.ordered()]
    assert order == [("background", "sunny garden", -1), ("face", "astronaut", 0),
                     ("attribute", "red jacket", 0), ("face", "woman", 1),
                     ("attribute", "blue hat", 1)]
    assert refs.layout().non_person == 1 and refs.layout().groups == (2, 2)
    # chaining returned new sets: the upstream one still has one person
    first = N["LumosXPerson"].execute(img(), "astronaut").result[0]
    N["LumosXPerson"].execute(img(), "woman", first)
    assert len(first.people) == 1


def test_objects_follow_background_whatever_the_chain_order(N):
    ref = N["LumosXReference"]
    r = N["LumosXPerson"].execute(img(), "man").result[0]
    r = ref.execute(img(), "white lamp", "object", r).result[0]
    r = ref.execute(img(), "garden", "background", r).result[0]
    assert [x.kind for x in r.ordered()] == ["background", "object", "face"]


@pytest.mark.parametrize("call,match", [
    (lambda N: N["LumosXPerson"].execute(img(), "  "), "face_phrase"),
    (lambda N: N["LumosXPerson"].execute(img(), "man", attribute_2=img()), "phrase_2"),
    (lambda N: N["LumosXReference"].execute(img(), "", "object"), "phrase"),
    (lambda N: N["LumosXReference"].execute(
        img(), "b", "background",
        N["LumosXReference"].execute(img(), "a", "background").result[0]), "background"),
    (lambda N: N["LumosXPerson"].execute(img(), "man", "not refs"), "references"),
])
def test_reference_node_errors_name_the_input(N, call, match):
    with pytest.raises(ValueError, match=match):
        call(N)


#: IMAGE / MASK inputs that take a batch on purpose (each image is used, as the node's tooltip
#: and docs/nodes.md say); every other IMAGE / MASK input takes one picture.
BATCH_INPUTS = {("LumosXFaceEncoder", "images"): "one crop per photo",
                ("LumosXEvaluate", "frames"): "the video's frames",
                ("LumosXEvaluate", "masks"): "one mask per person, or per frame and person",
                ("LumosXCutOut", "image"): "one cut-out per photo",
                ("LumosXCutOut", "mask"): "one cut-out per mask",
                ("LumosXPeopleFromPhoto", "garments"): "one mask per garment"}
#: how to hand a batch to each single-picture input
SINGLE_INPUTS = {
    ("LumosXPerson", "face"): lambda N, two: N["LumosXPerson"].execute(two, "man"),
    ("LumosXReference", "image"): lambda N, two: N["LumosXReference"].execute(two, "lamp",
                                                                              "object"),
    **{("LumosXPerson", f"attribute_{i}"):
       (lambda i: lambda N, two: N["LumosXPerson"].execute(
           img(), "man", **{f"attribute_{i}": two, f"phrase_{i}": "red jacket"}))(i)
       for i in range(1, 7)},
}


#: single-picture inputs whose one-picture run needs a face detector (``test_people.py``)
SINGLE_NEEDS_DETECTOR = {
    ("LumosXPeopleFromPhoto", "image"): lambda N, two: N["LumosXPeopleFromPhoto"].execute(
        two, "no-such-pack"),
}


def test_every_image_input_uses_its_whole_batch_or_refuses_one(N):
    """A batch of several pictures (several photos, an animated GIF's frames) into an input
    that takes one is an error naming the input, never a silent first picture."""
    picture_inputs = {(node_id, i.id) for node_id, cls in N.items()
                      for i in cls.GET_SCHEMA().inputs if i.io_type in ("IMAGE", "MASK")}
    assert picture_inputs == set(BATCH_INPUTS) | set(SINGLE_INPUTS) | set(SINGLE_NEEDS_DETECTOR)
    two = torch.cat([img(), img((30, 30, 200), seed=1)])
    for (node_id, name), call in {**SINGLE_INPUTS, **SINGLE_NEEDS_DETECTOR}.items():
        with pytest.raises(ValueError, match=rf"^{name}: a batch of 2 images"):
            call(N, two)
    for (node_id, name), call in SINGLE_INPUTS.items():
        call(N, two[1:])                                   # a batch of one is one picture


# -- Bind -----------------------------------------------------------------------------------

def test_bind_outputs(N, clip, vae, pack):
    patch = pack.nodes.patch
    out = _bind(N, clip, vae, _refs(N))
    positive, negative, latent, report, preview, negative_no_refs = out.result
    assert latent["samples"].shape == (1, 16, 2, H // 8, W // 8)
    mc = positive[0][1]["model_conds"]
    lat = mc[patch.LATENTS].cond
    assert lat.shape == (1, 16, 5, H // 8, W // 8)
    cfg = mc[patch.CONFIG].cond
    assert cfg.layout == pack.lumosx_core.ConditionLayout(1, [2, 2]) and cfg.parity
    masks = mc[patch.MASKS].cond
    assert masks.dtype == torch.bool and masks.shape == (1, 5, positive[0][0].shape[1])
    assert masks[0].any(dim=-1).all()                 # every phrase found
    # the masks mark exactly the phrase's own tokens
    from lumosx_core.conditioning.tokens import phrase_ids, tokenize_prompt
    toks = tokenize_prompt(clip, PROMPT)
    for row, phrase in zip(masks[0], ["sunny garden", "astronaut", "red jacket", "woman", "blue hat"]):
        ids = phrase_ids(clip, phrase, toks)
        pos = row.nonzero().flatten().tolist()
        assert [toks.ids[p] for p in pos] == ids
    # negative: same references, the positive masks (released behaviour)
    nmc = negative[0][1]["model_conds"]
    assert torch.equal(nmc[patch.LATENTS].cond, lat)
    assert torch.equal(nmc[patch.MASKS].cond[..., :masks.shape[-1]], masks)
    assert nmc[patch.CONFIG].cond == cfg             # cond and uncond can batch together
    # the last output (added at the end: workflows link outputs by index): the negative text
    # alone, no LumosX data (dual CFG's third conditioning)
    assert [o.display_name for o in N["LumosXBind"].GET_SCHEMA().outputs] == [
        "positive", "negative", "latent", "report", "preview", "negative_no_refs"]
    assert not any(k in negative_no_refs[0][1].get("model_conds", {}) for k in patch.KEYS)
    assert torch.equal(negative_no_refs[0][0], negative[0][0])
    # the token numbers and, beside them, the prompt's words there (decoded from the tokens)
    assert re.search(r"person 1 attribute 'red jacket': tokens \d+-\d+ \"red jacket\"$",
                     report, re.M), report
    assert preview.ndim == 4 and preview.shape[0] == 1 and preview.shape[-1] == 3
    assert out.ui["text"] == [report]


def test_bind_uncond_without_bias_and_switches(N, clip, vae, pack):
    patch = pack.nodes.patch
    out = _bind(N, clip, vae, _refs(N), uncond_bias="no bias", mode="fixed", r2pe=False,
                ratio=0.25)
    negative = out.result[1]
    assert not negative[0][1]["model_conds"][patch.MASKS].cond.any()
    cfg = negative[0][1]["model_conds"][patch.CONFIG].cond
    assert (cfg.parity, cfg.r2pe, cfg.ratio) == (False, False, 0.25)


def test_bind_references_are_letterboxed_on_white(N, clip, vae, monkeypatch, pack):
    seen = []

    class SpyVAE:
        def encode(self, pixels):
            seen.append(pixels.clone())
            return vae.encode(pixels)

    tall = assets.to_image_tensor(assets.garment((200, 30, 30), size=(128, 64)))
    refs = N["LumosXPerson"].execute(img(), "astronaut", attribute_1=tall,
                                     phrase_1="red jacket").result[0]
    _bind(N, clip, SpyVAE(), refs)
    assert len(seen) == 2 and all(p.shape == (1, H, W, 3) for p in seen)
    garment_px = seen[1][0]            # 64x128 garment -> 24x48, centred at x = 20..43
    assert torch.all(garment_px[:, :20] == 1.0) and torch.all(garment_px[:, 44:] == 1.0)
    assert (garment_px[:, 20:44] < 0.9).any()


def test_missing_phrase_warns_or_fails_when_strict(N, clip, vae, caplog):
    refs = N["LumosXPerson"].execute(img(), "astronaut", attribute_1=img(),
                                     phrase_1="green scarf").result[0]
    with caplog.at_level(logging.WARNING, logger="LumosX"):
        report = _bind(N, clip, vae, refs).result[3]
    assert "'green scarf': NOT FOUND" in report
    assert any("green scarf" in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError, match="green scarf"):
        _bind(N, clip, vae, refs, strict=True)


def test_shared_phrase_between_people_is_reported(N, clip, vae):
    p = N["LumosXPerson"]
    refs = p.execute(img(), "astronaut", attribute_1=img(), phrase_1="red jacket").result[0]
    refs = p.execute(img(), "woman", refs, attribute_1=img(), phrase_1="red jacket").result[0]
    report = _bind(N, clip, vae, refs).result[3]
    assert re.search(r'person 1 and person 2 share prompt tokens \[[\d, ]+\] \("red jacket"\)',
                     report), report


@pytest.mark.parametrize("kw,match", [
    (dict(width=60), "width = 60"), (dict(height=50), "height = 50"),
    (dict(prompt="   "), "prompt is empty")])
def test_bind_validation(N, clip, vae, kw, match):
    assert match in N["LumosXBind"].validate_inputs(**{k: v for k, v in kw.items()})
    with pytest.raises(ValueError, match=match):
        _bind(N, clip, vae, _refs(N), **kw)


def test_too_many_references_for_rope(N, clip, vae):
    attrs = {}
    for i in range(1, 7):
        attrs[f"attribute_{i}"] = img()
        attrs[f"phrase_{i}"] = "red jacket"
    refs = N["LumosXPerson"].execute(img(), "astronaut", **attrs).result[0]
    # 7 images in one group at 2560 px wide: w positions reach 7 * 160 > 1024
    with pytest.raises(ValueError, match="too many references for RoPE"):
        _bind(N, clip, vae, refs, width=2560, height=128)


# -- Sampler --------------------------------------------------------------------------------

def test_sampler_node_patches_and_samples(N, clip, vae, pack):
    import comfy.patcher_extension as pe
    import comfy.sd
    from standin import tiny_dit_state_dict
    model = comfy.sd.load_diffusion_model_state_dict(tiny_dit_state_dict())
    positive, negative, latent = _bind(N, clip, vae, _refs(N)).result[:3]
    out = N["LumosXSampler"].execute(model, positive, negative, latent, 0, 2, 6.0, "dpmpp_2m",
                                     "simple", 8.0, 1.0).result[0]
    assert out["samples"].shape == latent["samples"].shape
    assert torch.isfinite(out["samples"]).all()
    assert not model.get_wrappers(pe.WrappersMP.DIFFUSION_MODEL, pack.nodes.patch.WRAPPER_KEY)
    schema = N["LumosXSampler"].GET_SCHEMA()
    defaults = {i.id: i.default for i in schema.inputs if hasattr(i, "default")}
    assert (defaults["steps"], defaults["cfg"], defaults["shift"]) == (50, 6.0, 8.0)
    assert defaults["sampler_name"] == defaults["scheduler"] == "lumosx_released"


# -- the authors' reference cases -----------------------------------------------------------

CASES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                     "shared", "testdata", "lumosx_reference_cases")


def _load_case(path):
    from PIL import Image
    import numpy as np

    def load(p):
        return torch.from_numpy(np.asarray(Image.open(p).convert("RGB")).astype("float32") / 255)[None]

    with open(os.path.join(path, "caption.txt"), encoding="utf-8") as f:
        caption = f.read().strip().split(";", 1)[1].strip()
    items = {"background": [], "objects": [], "people": []}
    for kind in ("background", "objects"):
        d = os.path.join(path, kind)
        if os.path.isdir(d):
            for name in sorted(os.listdir(d)):
                items[kind].append((load(os.path.join(d, name)), os.path.splitext(name)[0]))
    subj = os.path.join(path, "subjects")
    for n in sorted(os.listdir(subj), key=int):
        files = sorted(os.listdir(os.path.join(subj, n)))
        face = [f for f in files if f.startswith("face_")][0]
        attrs = [f for f in files if not f.startswith("face_")]
        items["people"].append((
            (load(os.path.join(subj, n, face)), os.path.splitext(face)[0][len("face_"):]),
            [(load(os.path.join(subj, n, a)), os.path.splitext(a)[0]) for a in attrs]))
    return caption, items


def _cases():
    if not os.path.isdir(CASES):
        return []
    out = []
    for group in sorted(os.listdir(CASES)):
        gdir = os.path.join(CASES, group)
        if os.path.isdir(gdir):
            out += [os.path.join(gdir, c) for c in sorted(os.listdir(gdir))]
    return out


@pytest.mark.skipif(not os.path.isdir(CASES), reason="../shared reference cases not present")
def test_reference_cases_bind_every_phrase(N, vae):
    from lumosx_test_pack import build_tiny_clip
    cases = [_load_case(c) for c in _cases()]
    assert cases
    clip = build_tiny_clip(assets.spiece_model([c for c, _ in cases]))
    for caption, items in cases:
        refs = None
        for image, phrase in items["background"]:
            refs = N["LumosXReference"].execute(image, phrase, "background", refs).result[0]
        for image, phrase in items["objects"]:
            refs = N["LumosXReference"].execute(image, phrase, "object", refs).result[0]
        for (face, fphrase), attrs in items["people"]:
            kw = {}
            for i, (a, ph) in enumerate(attrs, 1):
                kw[f"attribute_{i}"], kw[f"phrase_{i}"] = a, ph
            refs = N["LumosXPerson"].execute(face, fphrase, refs, **kw).result[0]
        out = _bind(N, clip, vae, refs, prompt=caption, strict=True, width=64, height=32)
        report = out.result[3]
        assert "NOT FOUND" not in report, (caption, report)
        assert len(refs) == out.result[0][0][1]["model_conds"]["lumosx_masks"].cond.shape[1]


def test_bind_refuses_a_non_umt5_text_encoder(N, vae):
    class SDClip:  # what a Stable Diffusion CLIP tokenizes into
        def tokenize(self, text):
            return {"l": [[(49406, 1.0), (320, 1.0), (49407, 1.0)]]}

    with pytest.raises(ValueError, match="clip: expected the Wan umT5"):
        _bind(N, SDClip(), vae, _refs(N))
