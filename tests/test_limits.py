"""The core's size arithmetic and its one input checker, without a host: VideoSize (pixels ->
latents -> tokens), value specs, work limits and the declarative rules the nodes list."""
import copy
import pickle

import pytest

from lumosx_core.limits import (MAX_BATCH_TOKENS, MAX_VIDEO_TOKENS, LatentWork, Listed,
                                MissingFile, MultipleOf, NotBlank, Spec, VideoWork, check,
                                value_error, work_error)
from lumosx_core.video_size import VideoSize, latent_frames


def test_video_size_arithmetic():
    s = VideoSize(832, 480, 81)                       # the released size
    assert latent_frames(81) == 21 and latent_frames(1) == 1 and latent_frames(4) == 1
    assert s.latent_shape == (1, 16, 21, 60, 104)
    assert s.grid == (21, 30, 52) and s.tokens == 32760
    assert VideoSize.of_latent(VideoSize(64, 48, 5, 3).latent_shape) == VideoSize(64, 48, 5, 3)
    assert VideoSize(1280, 720, 81).tokens == 75600


def test_work_limits_name_the_inputs():
    assert work_error(VideoSize(1280, 720, 81)) is None
    msg = work_error(VideoSize(1920, 1088, 129))
    assert msg.startswith("width x height x length = 1920x1088x129 is ")
    assert str(MAX_VIDEO_TOKENS) in msg
    msg = work_error(VideoSize(832, 480, 81, 16))
    assert msg.startswith("batch_size = 16:") and str(MAX_BATCH_TOKENS) in msg
    msg = work_error(VideoSize.of_latent((1, 16, 33, 136, 240)), "latent")
    assert msg.startswith("latent: a video latent of 33x136x240 is ")


@pytest.mark.parametrize("spec,value,want", [
    (Spec("cfg", "FLOAT", 0.0, 100.0), float("nan"), "cfg = nan: must be a finite number"),
    (Spec("shift", "FLOAT", 0.1), 0.0, "shift = 0: must be at least 0.1"),
    (Spec("steps", "INT", 1, 200), 201, "steps = 201: must be at most 200"),
    (Spec("width", "INT"), 64.5, "width = 64.5: expected a whole number"),
    (Spec("width", "INT"), True, "width = True: expected a whole number"),
    (Spec("r2pe", "BOOLEAN"), "false", "r2pe = 'false': expected true or false"),
    (Spec("prompt", "STRING"), "x" * 70000, "prompt: 70000 characters is more than"),
    (Spec("kind", "COMBO", options=("object", "background")), "sky",
     "kind = 'sky' is not one of the choices: 'object', 'background'"),
])
def test_value_errors_name_the_input(spec, value, want):
    assert value_error(spec, value).startswith(want)


def test_a_node_table_is_read_by_the_one_checker():
    specs = {"width": Spec("width", "INT", 16, 4096), "height": Spec("height", "INT", 16, 4096),
             "length": Spec("length", "INT", 1, 1025), "prompt": Spec("prompt", "STRING"),
             "model_name": Spec("model_name", "COMBO", options=("a.safetensors",))}
    files = {"b.safetensors"}
    rules = (MultipleOf("width", 16, "why"), NotBlank("prompt", "prompt is empty"),
             VideoWork(), Listed("model_name",
                                 lambda v: None if v in files else MissingFile(f"{v}: missing")))
    ok = dict(width=64, height=48, length=5, prompt="a man", model_name="b.safetensors")
    assert check(specs, rules, ok) is None                      # listed at run time, not schema
    assert check(specs, rules, dict(ok, width=70)) == \
        "width = 70: must be a positive multiple of 16 (why); try 64"
    assert check(specs, rules, dict(ok, width=8)) == "width = 8: must be at least 16"
    assert check(specs, rules, dict(ok, prompt="  ")) == "prompt is empty"
    assert "1920x1088x129" in check(specs, rules, dict(ok, width=1920, height=1088, length=129))
    assert isinstance(check(specs, rules, dict(ok, model_name="c")), MissingFile)
    assert check(specs, rules, {}) is None                      # nothing known yet (links)
    latent = {"samples": type("T", (), {"shape": (1, 16, 33, 136, 240)})()}
    assert "latent: a video latent" in LatentWork("latent")({"latent": latent})


def test_refused_values_copy_and_pickle_as_plain_values():
    """ComfyUI deep-copies a queued prompt (a graph whose other outputs are valid still runs):
    a refused value in it must copy and pickle, keeping its class and message, and every
    error the checks raise is a plain exception holding a string."""
    from lumosx_core import raw_values as V
    for cls in (V.RefusedValue, V.RefusedText):
        v = cls("nan", "cfg = nan: must be a finite number")
        for twin in (copy.deepcopy(v), pickle.loads(pickle.dumps(v)),
                     copy.deepcopy({"inputs": {"cfg": v}})["inputs"]["cfg"]):
            assert type(twin) is cls and twin.message == v.message and str.__str__(twin) == "nan"
    with pytest.raises(ValueError) as err:
        float(V.RefusedValue("nan", "cfg = nan: must be a finite number"))
    assert type(err.value) is ValueError
    assert err.value.args == ("cfg = nan: must be a finite number",)
    copy.deepcopy(err.value)
    pickle.loads(pickle.dumps(err.value))


def test_refuse_raw_values_types_only_our_nodes_inputs():
    """lumosx_core.raw_values without a host: wrongly typed raw values of the nodes
    ``specs_for`` knows become refused values carrying the checker's message; the rest of
    the body is untouched."""
    from lumosx_core.raw_values import RefusedText, RefusedValue, refuse_raw_values
    specs = {"steps": Spec("steps", "INT", 1, 200), "mode": Spec("mode", "COMBO", None, None,
                                                                 ("a", "b")),
             "ok": Spec("ok", "BOOLEAN")}
    body = {"prompt": {"1": {"class_type": "Ours", "inputs": {
        "steps": 5.5, "mode": None, "ok": "false", "link": ["2", 0], "extra": 1}},
        "2": {"class_type": "Other", "inputs": {"steps": 5.5}}, "3": "junk"}}
    out = refuse_raw_values(body, lambda t: specs if t == "Ours" else None)
    inp = out["prompt"]["1"]["inputs"]
    assert type(inp["steps"]) is RefusedValue and "steps" in inp["steps"].message
    assert type(inp["mode"]) is RefusedText and inp["mode"]            # a true string
    assert type(inp["ok"]) is RefusedValue
    with pytest.raises(ValueError, match="ok"):
        bool(inp["ok"])
    assert inp["link"] == ["2", 0] and inp["extra"] == 1
    assert out["prompt"]["2"]["inputs"]["steps"] == 5.5
    assert refuse_raw_values(None, lambda t: specs) is None
