"""The released prompt text: the clean-up (ftfy, HTML entities twice, Unicode whitespace)
compared on hostile strings with the released clean-up written out in ``released_recipe.py``;
parentheses and backslashes as plain text unless ComfyUI weight syntax is asked for; Bind's
token ids and phrase masks against sentencepiece and the released phrase matching rebuilt
there; the 512-token cut, and phrase masks that still point at the tokens actually
encoded."""
import sys

import pytest
import torch

from lumosx_core.conditioning.prompt import (TEXT_LEN, clean_prompt, cut_tokens,
                                              escape_weight_syntax)
from released_recipe import RELEASED_NEGATIVE as WAN_NEGATIVE
from released_recipe import prompt_ids, released_clean, released_mask
from shared_inputs import bind as _bind
from shared_inputs import img

#: Prompts that the clean-up changes (each names the red jacket and the astronaut somehow).
HOSTILE = {
    "mojibake": "an astronautâ€™s red jacket, cafÃ© au lait",
    "curly quotes": "the \u201castronaut\u201d in a \u2018red jacket\u2019",
    "fullwidth": "ａｓｔｒｏｎａｕｔ，ｒｅｄ　ｊａｃｋｅｔ！ " + WAN_NEGATIVE[:20],
    "ligatures": "an astronaut in a red jacket on a \ufb01ne \ufb02oor",
    "ansi escape": "an astronaut in a \x1b[31mred jacket\x1b[0m talks",
    "separators": "an astronaut\x1cin a red\x1cjacket\x1d\x1e\x1f talks",
    "backslashes": "an astronaut \\ in a red jacket\\ \\(talks\\) C:\\path\\",
    "entities twice": "an astronaut &amp;amp; a red&amp;nbsp;jacket &amp;lt;b&amp;gt; &amp;#39;hi&amp;#39;",
    "controls": "an\x00 astronaut\x07 in a red\x7f jacket\u200b\ufeff talks",
    "whitespace": "  an\u3000astronaut\u2028in a\xa0red\tjacket\r\n\x85talks\u2009 ",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_clean_prompt_is_the_released_clean_up(name):
    text = HOSTILE[name]
    assert clean_prompt(text) == released_clean(text)
    if name != "backslashes":                                   # not vacuous: it did something
        assert clean_prompt(text) != " ".join(text.split())


def test_clean_prompt_details():
    assert clean_prompt("  a  man\n\twalks &amp;amp; talks&nbsp;now ") == "a man walks & talks now"
    assert clean_prompt("(white jacket:1.2)") == "(white jacket:1.2)"
    assert clean_prompt("red\x1cjacket") == "redjacket"            # not "red jacket"
    assert clean_prompt("\x1b[1;31mred jacket\x1b[0m") == "red jacket"
    assert clean_prompt(WAN_NEGATIVE).count(",") == WAN_NEGATIVE.count("，")
    assert clean_prompt("a\\b") == "a\\b"                          # one backslash stays one


def test_missing_ftfy_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ftfy", None)
    with pytest.raises(RuntimeError, match=r"ftfy.*requirements\.txt"):
        clean_prompt("a man")


@pytest.fixture(scope="module")
def hostile_clip():
    """The tiny umT5 whose sentencepiece model knows the hostile prompts' characters, and that
    model's own processor (the reference tokenizer)."""
    import sentencepiece
    import assets
    from lumosx_test_pack import build_tiny_clip
    lines = list(HOSTILE.values()) + [released_clean(t) for t in HOSTILE.values()]
    model = assets.spiece_model(extra_lines=lines)
    return build_tiny_clip(model), sentencepiece.SentencePieceProcessor(model_proto=model)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_bind_reads_the_released_ids_and_masks(N, vae, hostile_clip, name):
    """Bind's text embedding is the text encoder's on exactly the released token ids
    (sentencepiece on the released clean-up, end token, padding to 512), and its phrase masks
    are the released matching on those ids."""
    clip, sp = hostile_clip
    prompt = HOSTILE[name]
    refs = N["LumosXPerson"].execute(img(), "astronaut", attribute_1=img(),
                                     phrase_1="red jacket").result[0]
    positive = _bind(N, clip, vae, refs, prompt=prompt).result[0]
    ids = prompt_ids(sp, prompt)
    want = clip.encode_from_tokens_scheduled({"umt5xxl": [[(t, 1.0) for t in ids]]})
    assert torch.equal(positive[0][0], want[0][0])
    masks = positive[0][1]["model_conds"]["lumosx_masks"].cond[0]
    for row, phrase in zip(masks, ("astronaut", "red jacket")):
        assert torch.equal(row, released_mask(ids, sp.encode(released_clean(phrase))))


def test_hostile_prompts_change_what_the_model_reads(hostile_clip):
    """Not vacuous: without the clean-up the same prompts give other token ids, and other
    phrase masks (the jacket lost behind an escape sequence, or found across a separator)."""
    _, sp = hostile_clip
    changed = [n for n, t in HOSTILE.items()
               if sp.encode(released_clean(t)) != sp.encode(" ".join(t.split()))]
    assert len(changed) >= 6, changed
    jacket = sp.encode("red jacket")
    escaped = HOSTILE["ansi escape"]
    assert released_mask(sp.encode(released_clean(escaped)), jacket).any()
    assert not released_mask(sp.encode(" ".join(escaped.split())), jacket).any()
    assert not released_mask(sp.encode(released_clean("a red\x1cjacket")), jacket).any()
    assert released_mask(sp.encode(" ".join("a red\x1cjacket".split())), jacket).any()


@pytest.mark.parametrize("text", ["a\\b", "a \\(b\\) c", "end\\", "\\\\(x)", "(y:1.5)\\"])
def test_backslashes_and_parentheses_are_plain_text(hostile_clip, text):
    """Escaped for ComfyUI's weight parser, the text gives the tokens of the text itself: a
    backslash stays one character (never doubled), parentheses are tokens."""
    clip, sp = hostile_clip
    toks = clip.tokenize(escape_weight_syntax(text))["umt5xxl"][0]
    ids = [int(t[0]) for t in toks]
    want = sp.encode(text) + [1]
    assert ids[:len(want)] == want and all(t[1] == 1.0 for t in toks)
    assert all(i == 0 for i in ids[len(want):])


def test_cut_tokens_keeps_511_and_the_end():
    toks = list(range(2, 700)) + [1]                          # 698 tokens + end
    cut = cut_tokens(toks, 1, 512)
    assert cut.tokens == list(range(2, 513)) + [1] and cut.dropped == 698 - 511
    assert cut_tokens([5, 6, 1, 0, 0], 1, 512).tokens == [5, 6, 1, 0, 0]
    assert cut_tokens([5] * 511 + [1] + [0] * 10, 1, 512).dropped == 0


def test_parentheses_are_text_unless_weight_syntax(N, clip, vae):
    refs = N["LumosXPerson"].execute(img(), "astronaut", attribute_1=img(),
                                     phrase_1="red jacket").result[0]
    prompt = "an astronaut in a (red jacket:1.4) talks"
    released = _bind(N, clip, vae, refs, prompt=prompt).result
    weighted = _bind(N, clip, vae, refs, prompt=prompt, weight_syntax=True).result
    plain = _bind(N, clip, vae, refs, prompt="an astronaut in a red jacket talks",
                  weight_syntax=True).result
    bare = clip.tokenize("an astronaut in a (red jacket:1.4) talks".replace("(", "\\(")
                         .replace(")", "\\)"))["umt5xxl"][0]
    assert all(w == 1.0 for _, w in bare)
    # released: the parentheses and ":1.4" are tokens of the text, the context differs from
    # both the weighted one and the one without them
    assert not torch.allclose(released[0][0][0], weighted[0][0][0])
    assert not torch.allclose(released[0][0][0], plain[0][0][0])
    # released: "(red" is one word, so the phrase tokenized alone does not match there (as
    # in the released code: reported); with weight syntax the parentheses are gone
    assert "'red jacket' does not occur" in released[3]
    assert "does not occur" not in weighted[3]
    # parentheses elsewhere: the phrase is found in both, at the tokens actually encoded
    prompt = "an astronaut (very brave) in a red jacket talks"
    r2 = _bind(N, clip, vae, refs, prompt=prompt).result
    w2 = _bind(N, clip, vae, refs, prompt=prompt, weight_syntax=True).result
    m_r = r2[0][0][1]["model_conds"]["lumosx_masks"].cond[0]
    m_w = w2[0][0][1]["model_conds"]["lumosx_masks"].cond[0]
    assert m_r[1].any() and m_w[1].any()
    assert m_r[1].nonzero().min() > m_w[1].nonzero().min()      # "(", ")" are tokens
    ids = pack_ids(clip, prompt)
    start = int(m_r[1].nonzero().min())
    assert ids[start:start + 2] == pack_ids(clip, "red jacket")[:2]


def pack_ids(clip, text):
    from lumosx_core.conditioning.tokens import tokenize_prompt
    return tokenize_prompt(clip, text).ids


def test_whitespace_and_entities_give_the_same_conditioning(N, clip, vae):
    refs = N["LumosXPerson"].execute(img(), "astronaut").result[0]
    a = _bind(N, clip, vae, refs, prompt="an astronaut talks to a woman").result
    b = _bind(N, clip, vae, refs, prompt="  an   astronaut\n talks&nbsp;to a woman ").result
    assert torch.equal(a[0][0][0], b[0][0][0])
    assert torch.equal(a[0][0][1]["model_conds"]["lumosx_masks"].cond,
                       b[0][0][1]["model_conds"]["lumosx_masks"].cond)


def test_long_prompt_is_cut_to_512_with_a_warning(N, clip, vae):
    refs = N["LumosXPerson"].execute(img(), "astronaut", attribute_1=img(),
                                     phrase_1="blue hat").result[0]
    filler = " ".join(["a woman talks in a sunny garden"] * 120)
    prompt = "an astronaut " + filler + " in a blue hat"
    n_tokens = len(clip.tokenize(prompt)["umt5xxl"][0])
    assert n_tokens > 600
    out = _bind(N, clip, vae, refs, prompt=prompt).result
    positive, report = out[0], out[3]
    assert positive[0][0].shape[1] == TEXT_LEN
    assert "cut" in report and str(n_tokens - TEXT_LEN) in report
    masks = positive[0][1]["model_conds"]["lumosx_masks"].cond[0]
    assert masks.shape[-1] == TEXT_LEN
    assert masks[0].any() and masks[0].nonzero().max() < TEXT_LEN - 1     # "astronaut" kept
    assert not masks[1].any() and "blue hat" in report                      # cut off: reported


# -- the core's token work, with a stand-in tokenizer (no host) --------------------------------

class WordTokenizer:
    """ComfyUI's token dict from a word-level vocabulary: ``{"umt5xxl": [[(id, 1.0), ...]]}``
    with the end token (1) and padding (0) to 8 tokens at least, like the umT5 tokenizer."""

    def __init__(self):
        self.vocab = {}

    def tokenize(self, text):
        ids = [self.vocab.setdefault(w, len(self.vocab) + 2) for w in text.split()]
        ids += [1] + [0] * max(0, 7 - len(ids))
        return {"umt5xxl": [[(i, 1.0) for i in ids]]}


def test_core_tokens_cut_and_spans_without_a_host():
    from lumosx_core.conditioning.references import RefImage
    from lumosx_core.conditioning.tokens import bind_prompt, phrase_ids, tokenize_prompt
    tok = WordTokenizer()
    p = tokenize_prompt(tok, "a  man in a red jacket &amp; a woman")
    assert p.valid == 9 and p.dropped == 0 and (p.eos, p.pad) == (1, 0)
    assert p.ids == [tok.vocab[w] for w in "a man in a red jacket & a woman".split()] + [1]
    assert phrase_ids(tok, "red jacket", p) == [tok.vocab["red"], tok.vocab["jacket"]]
    refs = [RefImage(torch.ones(2, 2, 3), "man", "face", 0),
            RefImage(torch.ones(2, 2, 3), "red jacket", "attribute", 0),
            RefImage(torch.ones(2, 2, 3), "green scarf", "attribute", 0)]
    masks, report = bind_prompt(tok, refs, p, None, len(p.ids))
    assert masks[0].nonzero().flatten().tolist() == [1]
    assert masks[1].nonzero().flatten().tolist() == [4, 5]
    assert not masks[2].any() and "green scarf" in report.warnings[0]
    with pytest.raises(ValueError, match="^prompt: binding failed"):
        bind_prompt(tok, refs, p, None, len(p.ids), strict=True)
    long = tokenize_prompt(tok, " ".join(["man"] * 600))
    assert len(long.tokens["umt5xxl"][0]) == TEXT_LEN and long.dropped == 600 - 511
    assert long.tokens["umt5xxl"][0][-1] == (1, 1.0) and long.valid == 511
    _, report = bind_prompt(tok, refs[:1], long, long, TEXT_LEN)
    assert any("89 tokens were cut" in w for w in report.warnings)
    assert any(w.startswith("negative ") for w in report.warnings)
    assert tokenize_prompt(tok, "(red jacket:1.2)").ids[0] == tok.vocab["\\(red"]
    assert tokenize_prompt(tok, "(red jacket:1.2)", weight_syntax=True).ids[0] == \
        tok.vocab["(red"]

    class SDClip:
        def tokenize(self, text):
            return {"l": [[(49406, 1.0)]]}
    with pytest.raises(ValueError, match="^clip: expected the Wan umT5"):
        tokenize_prompt(SDClip(), "a man")


def test_encode_and_bind_is_the_text_half_of_bind_without_a_host():
    """lumosx_core.conditioning.tokens.encode_and_bind: both prompts encoded by the text
    encoder, the masks as long as the positive's context, the negative's cut reported."""
    from lumosx_core.conditioning.references import RefImage
    from lumosx_core.conditioning.tokens import encode_and_bind

    class Clip(WordTokenizer):
        def encode_from_tokens_scheduled(self, tokens):
            return [[torch.zeros(1, len(tokens["umt5xxl"][0]) + 3, 4), {}]]

    refs = [RefImage(torch.ones(2, 2, 3), "red jacket", "attribute", 0)]
    pos, neg, masks, report = encode_and_bind(Clip(), refs, "a man in a red jacket",
                                              " ".join(["man"] * 600), weight_syntax=True)
    assert masks.shape == (1, pos[0][0].shape[1]) and masks[0].nonzero().flatten().tolist() \
        == [4, 5]
    assert neg[0][0].shape[1] == TEXT_LEN + 3
    assert any(w.startswith("negative ") for w in report.warnings)
    with pytest.raises(ValueError, match="^prompt: binding failed"):
        encode_and_bind(Clip(), refs, "a man", "", strict=True)


def test_reference_chain_checks_without_a_host():
    """lumosx_core.conditioning.references: what the Person / Reference / Bind nodes refuse,
    naming the input, and the VAE encoding of the references (one latent frame each)."""
    from lumosx_core.conditioning.binding import negative_masks
    from lumosx_core.conditioning.references import (ReferenceSet, bind_references, chained,
                                                      encode_references, given_attributes,
                                                      phrase_of)
    assert len(chained(None)) == 0
    with pytest.raises(ValueError, match="references: expected the output of a LumosX "
                                         "Person or LumosX Reference node, got int"):
        chained(3)
    assert phrase_of("  red hat ", "phrase_2") == "red hat"
    with pytest.raises(ValueError, match="phrase_2 is empty"):
        phrase_of(" ", "phrase_2")
    img = torch.rand(8, 8, 3)
    pairs, names = given_attributes({"attribute_2": img, "phrase_2": "hat", "phrase_1": "x",
                                     "attribute_3": None}, 6)
    assert names == ["attribute_2"] and pairs[0][1] == "hat" and pairs[0][0] is img
    with pytest.raises(ValueError, match="phrase_1 is empty"):
        given_attributes({"attribute_1": img}, 6)
    with pytest.raises(ValueError, match="references: connect a LumosX Person"):
        bind_references(None, (1, 4, 4), True)
    refs = ReferenceSet().with_person(img, "man", [(img, "hat")], ["attribute_1"])
    ordered, layout = bind_references(refs, (1, 4, 4), True)
    assert len(ordered) == 2 and layout.num_images == 2

    class VAE:
        def encode(self, pixels):
            assert pixels.shape == (1, 16, 24, 3)
            return torch.ones(1, 16, 1, 2, 3) * pixels.mean()

    ticks, checks = [], []
    lat = encode_references(VAE(), ordered, 24, 16, ticks.append, lambda: checks.append(1))
    assert lat.shape == (1, 16, 2, 2, 3) and ticks == [1, 1] and len(checks) == 2

    class Image2:
        def encode(self, pixels):
            return torch.ones(1, 16, 2, 2, 3)

    with pytest.raises(ValueError, match="vae: expected the Wan 2.1 VAE"):
        encode_references(Image2(), ordered, 24, 16)
    masks = torch.tensor([[True, False, True], [False, True, False]])
    assert torch.equal(negative_masks(masks, 2, True), masks[:, :2])
    assert negative_masks(masks, 5, False).shape == (2, 5) and not negative_masks(masks, 5,
                                                                                  False).any()


def test_encode_and_bind_without_a_text_encoder_names_the_input():
    """Bind with nothing connected to ``clip`` (an API prompt can send that): an error naming
    the input and what to load, before any text work."""
    from lumosx_core.conditioning.tokens import encode_and_bind
    with pytest.raises(ValueError, match="^clip: no text encoder connected .*type 'wan'"):
        encode_and_bind(None, [], "a man", "")


def test_bind_defaults_to_the_released_negative_prompt(N):
    """Bind's negative prompt is, by default, the released sampler's (the authors' text,
    rebuilt independently in released_recipe)."""
    inputs = {i.id: i for i in N["LumosXBind"].GET_SCHEMA().inputs}
    assert inputs["negative_prompt"].default == WAN_NEGATIVE
