"""The released prompt text: clean-up (whitespace, HTML entities, ftfy when installed),
parentheses as plain text unless ComfyUI weight syntax is asked for, the 512-token cut, and
phrase masks that still point at the tokens actually encoded."""
import sys
import types

import pytest
import torch

from lumosx_core.conditioning.prompt import TEXT_LEN, clean_prompt, cut_tokens
from shared_inputs import bind as _bind
from shared_inputs import img


def test_clean_prompt_like_the_released_encoder(monkeypatch):
    monkeypatch.setitem(sys.modules, "ftfy", None)           # not installed: skipped
    assert clean_prompt("  a  man\n\twalks &amp;amp; talks&nbsp;now ") == \
        "a man walks & talks now"
    assert clean_prompt("(white jacket:1.2)") == "(white jacket:1.2)"
    fake = types.ModuleType("ftfy")
    fake.fix_text = lambda t: t.replace("Ã©", "é")
    monkeypatch.setitem(sys.modules, "ftfy", fake)           # installed: used first
    assert clean_prompt("cafÃ©  &lt;b&gt;") == "café <b>"


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
