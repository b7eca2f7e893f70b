"""Hostile values in-process (issue #13): the one validation helper refuses non-finite,
out-of-range, wrongly typed and oversized values naming the input; raw API values are typed
before ComfyUI converts them; long phrases and prompts never stall Bind."""
import random
import time

import pytest
import torch

import assets

from lumosx_core.conditioning.phrases import find_occurrences, match_starts, phrase_mask
from lumosx_core.raw_values import RefusedText, RefusedValue


@pytest.fixture(scope="module")
def V(pack):
    from ComfyUI_LumosX.nodes import validation
    return validation


@pytest.fixture(scope="module")
def L():
    from lumosx_core import limits
    return limits


# -- the validation helper --------------------------------------------------------------------

@pytest.mark.parametrize("node,name,value,match", [
    ("LumosXBind", "ratio", float("nan"), "ratio = nan: must be a finite number"),
    ("LumosXBind", "ratio", float("inf"), "ratio = inf: must be a finite number"),
    ("LumosXSampler", "cfg", float("nan"), "cfg = nan"),
    ("LumosXSampler", "shift", float("-inf"), "shift = -inf"),
    ("LumosXSampler", "shift", 0.0, "shift = 0: must be at least 0.1"),
    ("LumosXSampler", "denoise", 0.0, "denoise = 0: must be at least 0.01"),
    ("LumosXSampler", "steps", 100000, "steps = 100000: must be at most 200"),
    ("LumosXBind", "width", 1000000, "width = 1000000: must be at most"),
    ("LumosXBind", "length", 100001, "length = 100001: must be at most 1025"),
    ("LumosXBind", "batch_size", 0, "batch_size = 0: must be at least 1"),
    ("LumosXBind", "r2pe", "false", "r2pe = 'false': expected true or false"),
    ("LumosXBind", "width", 64.5, "width = 64.5: expected a whole number"),
    ("LumosXBind", "width", True, "width = True: expected a whole number"),
    ("LumosXBind", "prompt", "x" * 70000, "prompt: 70000 characters is more than the limit"),
    ("LumosXFaceEncoder", "det_size", 161, "det_size = 161: must be a positive multiple of 32"),
    ("LumosXFaceEncoder", "margin", float("nan"), "margin = nan"),
    ("LumosXEvaluate", "body_width", 0.0, "body_width = 0: must be at least 0.5"),
    ("LumosXEvaluate", "min_face_similarity", float("nan"), "min_face_similarity = nan"),
    ("LumosXReference", "kind", "sky", "kind = 'sky' is not one of the choices"),
])
def test_validate_inputs_names_the_input(N, node, name, value, match):
    assert match in N[node].validate_inputs(**{name: value})


def test_bind_work_limit_names_the_limit(N, L):
    msg = N["LumosXBind"].validate_inputs(width=1920, height=1088, length=129)
    assert f"more than the limit of {L.MAX_VIDEO_TOKENS}" in msg and "1920x1088x129" in msg
    msg = N["LumosXBind"].validate_inputs(width=832, height=480, length=81, batch_size=16)
    assert "batch_size = 16" in msg and str(L.MAX_BATCH_TOKENS) in msg
    assert N["LumosXBind"].validate_inputs(width=832, height=480, length=81, batch_size=1)


def test_sampler_refuses_an_oversized_latent_from_any_node(N):
    latent = {"samples": torch.zeros(1, 16, 33, 136, 240)}       # 1920x1088x129
    with pytest.raises(ValueError, match="latent: a video latent .* more than the limit"):
        N["LumosXSampler"].execute(None, [], [], latent, 0, 2, 6.0, "euler", "simple", 8.0, 1.0)


def test_execute_rechecks_what_validation_checks(N, clip, vae):
    with pytest.raises(ValueError, match="ratio = nan"):
        N["LumosXBind"].execute(clip=clip, vae=vae, prompt="a man", negative_prompt="",
                                references=None, width=64, height=48, length=5, batch_size=1,
                                ratio=float("nan"), r2pe=True, self_mask=True, cross_mask=True,
                                mode="parity", uncond_bias="no bias", strict=False)
    with pytest.raises(ValueError, match="shift = 0"):
        N["LumosXSampler"].execute(None, [], [], {"samples": torch.zeros(1, 16, 2, 6, 8)}, 0, 2,
                                   6.0, "euler", "simple", 0.0, 1.0)


def test_raw_prompt_values_are_typed_before_conversion(N, V):
    """What ``/prompt`` receives, before ComfyUI's ``bool()`` / ``int()`` conversions."""
    body = {"prompt": {
        "1": {"class_type": "LumosXBind", "inputs": {
            "r2pe": "false", "strict": True, "width": 64.0, "height": 47.5, "length": "5",
            "ratio": 0.5, "references": ["2", 0], "batch_size": {"__value__": False}}},
        "2": {"class_type": "KSampler", "inputs": {"steps": "20"}}}}
    out = V.check_raw_prompt(body, N)
    inp = out["prompt"]["1"]["inputs"]
    for name in ("r2pe", "height", "length", "batch_size"):
        assert isinstance(inp[name], RefusedValue), name
        with pytest.raises(ValueError, match=name):   # ComfyUI's conversion fails with it
            {"r2pe": bool, "height": int, "length": int, "batch_size": int}[name](inp[name])
    assert inp["strict"] is True and inp["width"] == 64.0 and inp["ratio"] == 0.5
    assert inp["references"] == ["2", 0]
    assert out["prompt"]["2"]["inputs"]["steps"] == "20"       # not ours: untouched
    import json
    json.dumps(out)                                           # the prompt stays JSON


def test_raw_null_and_non_text_values_are_refused_naming_the_input(N, V):
    """``null`` anywhere and a number for a text input: ComfyUI would make them ``False`` /
    ``"None"`` / ``"12345"`` (or not check a combo at all); validate_inputs refuses them."""
    body = {"prompt": {"1": {"class_type": "LumosXBind", "inputs": {
        "prompt": 12345, "negative_prompt": None, "mode": None, "r2pe": None, "prompt_x": 1}}}}
    inp = V.check_raw_prompt(body, N)["prompt"]["1"]["inputs"]
    for name in ("prompt", "negative_prompt", "mode"):
        assert isinstance(inp[name], RefusedText) and inp[name]  # still a truthy string
        assert str(inp[name]) is inp[name]                          # survives ComfyUI's str()
        msg = N["LumosXBind"].validate_inputs(**{name: inp[name]})
        assert isinstance(msg, str) and msg.startswith(name + " = "), (name, msg)
    with pytest.raises(ValueError, match="r2pe = null"):
        bool(inp["r2pe"])
    assert inp["prompt_x"] == 1                               # not an input: untouched


# -- linear phrase matching ---------------------------------------------------------------------

def _brute(text, pat):
    k = len(pat)
    return [s for s in range(len(text) - k + 1) if k and text[s:s + k] == pat]


def test_the_prompt_handler_never_breaks_prompt_for_other_graphs(N, V, caplog):
    """The ``on_prompt`` handler refuses wrongly typed values; if the check itself fails, the
    body goes on unchanged (other packs' graphs still run) and the failure is logged."""
    from lumosx_core.raw_values import safe_prompt_handler
    handler = safe_prompt_handler(lambda body: V.check_raw_prompt(body, N))
    assert handler._lumosx
    body = {"prompt": {"1": {"class_type": "LumosXBind", "inputs": {"r2pe": "false"}}}}
    assert isinstance(handler(body)["prompt"]["1"]["inputs"]["r2pe"], RefusedValue)
    odd = {"prompt": {"1": {"class_type": ["LumosXBind"], "inputs": {"r2pe": "false"}}}}
    assert handler(odd)["prompt"]["1"]["inputs"]["r2pe"] == "false"   # not ours: untouched

    def broken(body):
        raise RuntimeError("bug")
    body = {"prompt": {"1": {"class_type": "KSampler", "inputs": {}}}}
    assert safe_prompt_handler(broken)(body) is body
    assert "raw input check failed" in caplog.text


def test_match_starts_equals_brute_force():
    rng = random.Random(0)
    for _ in range(300):
        text = [rng.randint(0, 3) for _ in range(rng.randint(0, 40))]
        pat = [rng.randint(0, 3) for _ in range(rng.randint(0, 5))]
        assert match_starts(text, pat) == _brute(text, pat), (text, pat)
        m = phrase_mask(text, pat, 48)
        want = torch.zeros(48, dtype=torch.bool)
        for s in _brute(text[:48], pat):
            want[s:s + len(pat)] = True
        assert torch.equal(m, want)


def test_matching_long_repetitive_prompts_is_fast():
    prompt, phrase = [7] * 20000, [7] * 4000      # worst case for the naive scan
    t0 = time.perf_counter()
    starts = find_occurrences(prompt, phrase)
    mask = phrase_mask(prompt, phrase, 20000)
    assert time.perf_counter() - t0 < 2.0
    assert len(starts) == 16001 and bool(mask.all())


def test_fit_text_is_bounded():
    from PIL import Image, ImageDraw, ImageFont
    from lumosx_core.drawing import fit_text
    draw = ImageDraw.Draw(Image.new("RGB", (10, 10)))
    font = ImageFont.load_default()
    t0 = time.perf_counter()
    out = fit_text(draw, "long phrase " * 20000, font, 190)
    assert time.perf_counter() - t0 < 1.0
    assert out.endswith("...") and draw.textlength(out, font=font) <= 190
    assert fit_text(draw, "short", font, 190) == "short"


# -- Bind with huge phrases and prompts ---------------------------------------------------------

def _img():
    return assets.to_image_tensor(assets.garment((200, 30, 30)))


def _timed_bind(N, clip, vae, refs, prompt, monkeypatch):
    """Seconds Bind itself takes: the stock text encoding and the reference VAE encoding are
    stubbed (their cost does not depend on how Bind matches phrases; the stock encoding of an
    8k-token prompt alone takes minutes on a CI CPU)."""
    from ComfyUI_LumosX.nodes import bind
    monkeypatch.setattr(bind.refs_core, "encode_references", lambda vae, refs, w, h, *callbacks:
                        torch.zeros(1, 16, len(refs), h // 8, w // 8))

    def encode(tokens):
        n = sum(len(chunk) for chunk in tokens["umt5xxl"])
        return [[torch.zeros(1, n, 8), {}]]
    monkeypatch.setattr(clip, "encode_from_tokens_scheduled", encode)
    t0 = time.perf_counter()
    out = N["LumosXBind"].execute(
        clip=clip, vae=vae, prompt=prompt, negative_prompt="blurry", references=refs,
        width=64, height=48, length=5, batch_size=1, ratio=0.5, r2pe=True, self_mask=True,
        cross_mask=True, mode="parity", uncond_bias="no bias", strict=False)
    return time.perf_counter() - t0, out


def test_bind_with_a_15000_character_phrase_is_quick(N, clip, vae, monkeypatch):
    phrase = ("red jacket " * 1400)[:15000]
    refs = N["LumosXPerson"].execute(_img(), "astronaut", attribute_1=_img(),
                                     phrase_1=phrase).result[0]
    extra, out = _timed_bind(N, clip, vae, refs, "an astronaut in a red jacket", monkeypatch)
    assert extra < 5.0, extra
    report = out.result[3]
    assert "NOT FOUND" in report and len(report) < 1000      # the phrase is shortened


def test_bind_with_4k_token_phrase_and_8k_token_prompt_is_quick(N, clip, vae, monkeypatch):
    words = "astronaut red jacket woman blue hat sunny garden talks".split()
    rng = random.Random(1)
    body = " ".join(rng.choice(words) for _ in range(2350))   # the test tokenizer: ~3.5/word
    phrase = " ".join(body.split()[600:1770])
    n_prompt = len(clip.tokenize(body)["umt5xxl"][0])
    n_phrase = len(clip.tokenize(phrase)["umt5xxl"][0])
    assert n_prompt >= 8000 and n_phrase >= 4000, (n_prompt, n_phrase)
    refs = N["LumosXPerson"].execute(_img(), "astronaut", attribute_1=_img(),
                                     phrase_1=phrase).result[0]
    extra, out = _timed_bind(N, clip, vae, refs, body, monkeypatch)
    assert extra < 5.0, extra
    # the released encoder reads 512 tokens: the 4k-token phrase cannot fit, and says so
    assert "NOT FOUND" in out.result[3] and "tokens were cut" in out.result[3]


# -- every error is an ordinary exception ComfyUI can copy ----------------------------------------

def _error_classes():
    """Every exception class the core defines (the nodes raise these or built-in ones)."""
    import importlib
    import pkgutil

    import lumosx_core
    found = set()
    for mod in pkgutil.walk_packages(lumosx_core.__path__, "lumosx_core."):
        if ".cli" in mod.name:
            continue        # the command line never runs inside ComfyUI's executor
        m = importlib.import_module(mod.name)
        for obj in vars(m).values():
            if isinstance(obj, type) and issubclass(obj, BaseException) \
                    and obj.__module__.startswith("lumosx_core"):
                found.add(obj)
    return sorted(found, key=lambda c: c.__qualname__)


def test_every_error_copies_and_pickles_as_itself(V, L):
    """ComfyUI's executor copies what a job holds and reports what it raises: every error
    class of the core, the refused-value stand-ins and the missing-file message survive
    ``copy.deepcopy`` and ``pickle`` with their type and text."""
    import copy
    import pickle
    classes = _error_classes()
    assert {c.__name__ for c in classes} >= {"CheckpointError", "UnsafeCheckpointError",
                                            "PictureTooLarge"}, classes
    items = [c("model_name 'x.safetensors': tensor w holds NaN; replace the file")
             for c in classes]
    items += [RefusedValue("nan", "cfg = nan: must be a finite number"),
              RefusedText("5", "prompt = 5: expected text"),
              L.MissingFile("model_name 'x': not found in models/diffusion_models")]
    for item in items:
        for twin in (copy.deepcopy(item), pickle.loads(pickle.dumps(item))):
            assert type(twin) is type(item) and str(twin) == str(item), item
            assert getattr(twin, "message", None) == getattr(item, "message", None)
    with pytest.raises(ValueError, match="cfg = nan"):
        float(copy.deepcopy(items[-3]))
