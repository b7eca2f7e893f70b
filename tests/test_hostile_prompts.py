"""Hostile prompt text in-process (issue #25): non-finite or absurd prompt weights with
``weight_syntax`` on, lone surrogates in any text input, phrases made of pieces the tokenizer
does not know. Each is refused naming the input, or reported "not found" -- never a NaN
embedding or a phrase bound to someone else's tokens."""
import pytest
import torch

from shared_inputs import bind as _bind
from shared_inputs import img

from lumosx_core.conditioning.tokens import tokenize_prompt, unknown_id
from lumosx_core.limits import MAX_TOKEN_WEIGHT


@pytest.fixture(scope="module")
def refs(N):
    return N["LumosXPerson"].execute(img(), "astronaut", attribute_1=img(),
                                     phrase_1="red jacket").result[0]


@pytest.mark.parametrize("weight", ["1e308", "-inf", "nan", "1e999", "-10.5"])
@pytest.mark.parametrize("where", ["prompt", "negative_prompt"])
def test_bad_prompt_weights_refused_naming_the_input(N, clip, vae, refs, weight, where):
    text = f"an astronaut in a (red jacket:{weight}) talks"
    kw = {where: text}
    with pytest.raises(ValueError) as err:
        _bind(N, clip, vae, refs, weight_syntax=True, **kw)
    msg = str(err.value)
    assert msg.startswith(f"{where}: a prompt weight of "), msg
    assert "weight_syntax off" in msg and f"{MAX_TOKEN_WEIGHT:g}" in msg
    if where == "prompt":   # without weight syntax it is plain text (the released reading)
        out = _bind(N, clip, vae, refs, **kw).result
        assert torch.isfinite(out[0][0][0]).all()


def test_nested_parentheses_multiply_past_the_limit(N, clip, vae, refs):
    deep = "(" * 25 + "red jacket" + ")" * 25                  # 1.1 ** 25 = 10.8
    with pytest.raises(ValueError, match=r"prompt: a prompt weight of 10\.83"):
        _bind(N, clip, vae, refs, prompt=f"an astronaut in a {deep} talks", weight_syntax=True)
    ok = _bind(N, clip, vae, refs, prompt="an astronaut in a ((red jacket:2):-2) talks",
               weight_syntax=True).result
    assert torch.isfinite(ok[0][0][0]).all()


@pytest.mark.parametrize("node,name", [("LumosXBind", "prompt"),
                                       ("LumosXBind", "negative_prompt"),
                                       ("LumosXPerson", "face_phrase"),
                                       ("LumosXPerson", "phrase_3"),
                                       ("LumosXReference", "phrase")])
@pytest.mark.parametrize("ch", ["\ud800", "\udfff", "\ud83d"])
def test_lone_surrogate_refused_naming_the_input(N, node, name, ch):
    msg = N[node].validate_inputs(**{name: "a man" + ch + " walks"})
    assert isinstance(msg, str), msg
    assert msg.startswith(f"{name}: character 6 is a lone surrogate (U+{ord(ch):04X})"), msg
    assert N[node].validate_inputs(**{name: "a man \U0001F600 walks"}) is True  # a whole pair


def test_unknown_pieces_bind_only_where_their_text_occurs(N, clip, vae):
    """Two emoji the tokenizer does not know share its unknown id: a phrase of the other
    one must not bind to them, the phrase of the one in the prompt must."""
    unk = unknown_id(clip)
    assert unk is not None
    prompt = "an astronaut \U0001F600 talks to a woman"
    assert unk in tokenize_prompt(clip, prompt).ids
    assert unk in tokenize_prompt(clip, "\U0001F47D").ids    # precondition: unknown too
    for phrase, found in (("\U0001F47D", False), ("\U0001F600", True),
                          ("astronaut \U0001F47D", False), ("astronaut \U0001F600", True)):
        refs = N["LumosXPerson"].execute(img(), phrase).result[0]
        out = _bind(N, clip, vae, refs, prompt=prompt).result
        mask = out[0][0][1]["model_conds"]["lumosx_masks"].cond[0][0]
        assert bool(mask.any()) is found, phrase
        assert ("does not occur in the prompt" in out[3]) is not found, (phrase, out[3])
