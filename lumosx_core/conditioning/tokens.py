"""Prompt -> token ids -> phrase spans, with the text encoder's own tokenizer.

The tokenizer is duck-typed: anything with ``tokenize(text)`` returning ComfyUI's token dict
``{"umt5xxl": [[(id, weight, ...), ...], ...]}`` (a ComfyUI ``CLIP`` of type ``wan``) and,
optionally, ``tokenizer.clip_umt5xxl`` / ``tokenizer.umt5xxl`` carrying ``end_token`` and
``pad_token`` (defaults 1 and 0, umT5's). The phrases are tokenized the same way, so the
masks point at the very tokens the text encoder encodes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import torch

from ..limits import MAX_TOKEN_WEIGHT
from .binding import BindingReport, bind_phrases
from .phrases import strip_special
from .prompt import TEXT_LEN, clean_prompt, cut_tokens, cut_warning, released_text
from .references import RefImage

UMT5 = "umt5xxl"


def umt5_key(tokens: dict) -> str:
    """The umT5 entry of a token dict; an error naming the ``clip`` input otherwise."""
    if UMT5 in tokens:
        return UMT5
    raise ValueError(f"clip: expected the Wan umT5 text encoder, got a CLIP with "
                     f"tokenizers {sorted(tokens)}; load umt5_xxl with a CLIP loader of type 'wan'")


def _inner(tokenizer):
    outer = getattr(tokenizer, "tokenizer", None)
    return getattr(outer, f"clip_{UMT5}", None) or getattr(outer, UMT5, None)


def special_ids(tokenizer) -> Tuple[int, int]:
    """``(end, pad)`` token ids of the umT5 tokenizer inside ``tokenizer``."""
    inner = _inner(tokenizer)
    return getattr(inner, "end_token", 1), getattr(inner, "pad_token", 0)


def unknown_id(tokenizer) -> Optional[int]:
    """The id the tokenizer gives a piece it does not know (an emoji absent from umT5's
    vocabulary): the sentencepiece model's ``unk_id`` (ComfyUI's ``SPieceTokenizer``);
    ``None`` for a tokenizer that does not say."""
    sp = getattr(getattr(_inner(tokenizer), "tokenizer", None), "tokenizer", None)
    try:
        return int(sp.unk_id())
    except Exception:  # noqa: BLE001 - another kind of tokenizer
        return None


def weight_error(tokens: dict, name: str) -> None:
    """Refuse a prompt weight (ComfyUI's ``(word:w)`` syntax; each bare pair of parentheses
    multiplies by 1.1) that is not
    finite or is more than :data:`MAX_TOKEN_WEIGHT` in size: it would give NaN or a wrecked
    text embedding, i.e. a black or meaningless video, not an error."""
    for chunk in tokens.get(UMT5, ()):
        for item in chunk:
            w = item[1] if len(item) > 1 else 1.0
            try:
                w = float(w)
            except (TypeError, ValueError):
                continue
            if not math.isfinite(w) or abs(w) > MAX_TOKEN_WEIGHT:
                raise ValueError(
                    f"{name}: a prompt weight of {w!r} (the (word:weight) syntax; each bare pair "
                    f"of parentheses multiplies by 1.1) must be a finite number from -{MAX_TOKEN_WEIGHT:g} to "
                    f"{MAX_TOKEN_WEIGHT:g}: fix the weight, or switch weight_syntax off to read "
                    f"parentheses as plain text")


def _id(item) -> int:
    t = item[0]
    return int(t) if isinstance(t, int) or (torch.is_tensor(t) and t.numel() == 1) else -1


@dataclass(frozen=True)
class PromptTokens:
    """One text as the text encoder reads it: ``tokens`` (the tokenizer's dict, cut to
    :data:`TEXT_LEN` like the released encoder: hand it to the encoder), ``ids`` the token
    id at every context position (-1 for an item that is not an id, e.g. an embedding),
    ``valid`` real tokens before the end token and padding, ``dropped`` real tokens cut off,
    and the tokenizer's ``eos`` / ``pad`` ids."""

    tokens: dict
    ids: List[int]
    valid: int
    dropped: int
    eos: int
    pad: int
    text: str = ""      #: the released text (:func:`clean_prompt`) that was tokenized


def tokenize_prompt(tokenizer, text: str, weight_syntax: bool = False,
                    name: str = "prompt") -> PromptTokens:
    """Tokenize the released text of ``text`` (:func:`released_text`) and cut it to 512.
    ``name``: the input the text came from, for the error about a bad prompt weight."""
    tokens = tokenizer.tokenize(released_text(text, weight_syntax))
    chunks = tokens[umt5_key(tokens)]
    if weight_syntax:
        weight_error(tokens, name)
    eos, pad = special_ids(tokenizer)
    dropped = 0
    if len(chunks) == 1 and len(chunks[0]) > TEXT_LEN:
        cut = cut_tokens(chunks[0], (eos, 1.0), TEXT_LEN, is_end=lambda t: t[0] == eos)
        tokens, dropped = dict(tokens, **{UMT5: [cut.tokens]}), cut.dropped
    ids = [_id(item) for chunk in tokens[UMT5] for item in chunk]
    real = [i for i, t in enumerate(ids) if t not in (eos, pad)]
    return PromptTokens(tokens, ids, real[-1] + 1 if real else 0, dropped, eos, pad,
                        clean_prompt(text))


def phrase_ids(tokenizer, phrase: str, prompt: PromptTokens,
               weight_syntax: bool = False) -> List[int]:
    """Token ids of ``phrase`` tokenized alone, as it would occur inside ``prompt``; none
    (so the phrase is not found) when some of its pieces are unknown to the tokenizer (an
    emoji missing from the vocabulary) and its text does not occur in the prompt's: unknown
    pieces all share one id, so the ids alone would match any other unknown piece."""
    tokens = tokenizer.tokenize(released_text(phrase, weight_syntax))
    if UMT5 not in tokens:
        raise ValueError("clip: phrase tokenization gave no umT5 tokens")
    ids = strip_special([t[0] for t in tokens[UMT5][0]], eos_id=prompt.eos, pad_id=prompt.pad)
    unk = unknown_id(tokenizer)
    if unk is not None and unk in ids and clean_prompt(phrase) not in prompt.text:
        return []
    return ids


def token_decoder(tokenizer) -> Optional[Callable[[Sequence[int]], str]]:
    """Token ids -> text with the umT5 tokenizer inside ``tokenizer`` (its vocabulary's
    pieces, sentencepiece's word-start mark as a space), or None when it has no vocabulary to
    read (the report then shows token numbers only)."""
    outer = getattr(tokenizer, "tokenizer", None)
    inner = getattr(outer, f"clip_{UMT5}", None) or getattr(outer, UMT5, None)
    vocab = getattr(inner, "inv_vocab", None)
    if not isinstance(vocab, dict):
        return None
    return lambda ids: "".join(str(vocab.get(int(i), "?")) for i in ids).replace("\u2581", " ")


def bind_prompt(tokenizer, refs: Sequence[RefImage], prompt: PromptTokens,
                negative: Optional[PromptTokens], context_len: int, strict: bool = False,
                weight_syntax: bool = False,
                check_interrupt: Optional[Callable[[], None]] = None
                ) -> Tuple[torch.Tensor, BindingReport]:
    """Phrase masks bool ``[N_c, context_len]`` of every reference (layout order) over the
    prompt's context positions, and the report (missing phrases, shared words, tokens cut
    from the prompt or the ``negative``). With ``strict`` a missing phrase is an error naming
    the ``prompt`` input."""
    phrases = []
    for ref in refs:
        if check_interrupt is not None:
            check_interrupt()
        phrases.append(phrase_ids(tokenizer, ref.phrase, prompt, weight_syntax))
    masks, report = bind_phrases(refs, prompt.ids, phrases, context_len, prompt.valid,
                                 strict=strict, decode=token_decoder(tokenizer))
    if prompt.dropped:
        report.warnings.append(cut_warning(prompt.dropped))
    if negative is not None and negative.dropped:
        report.warnings.append("negative " + cut_warning(negative.dropped))
    if report.errors:
        raise ValueError("prompt: binding failed (strict is on):\n" + "\n".join(report.errors))
    return masks, report


def encode_and_bind(clip, refs: Sequence[RefImage], prompt: str, negative_prompt: str,
                    strict: bool = False, weight_syntax: bool = False,
                    check_interrupt: Optional[Callable[[], None]] = None):
    """Bind's text half: both prompts tokenized (:func:`tokenize_prompt`) and encoded by
    ``clip`` (ComfyUI's CLIP: ``tokenize``, ``encode_from_tokens_scheduled``), every
    reference's phrase bound (:func:`bind_prompt`). Returns ``(positive, negative, masks
    [N_c, L_positive], report)``; ``positive`` / ``negative`` are ComfyUI CONDITIONING."""
    if clip is None:
        raise ValueError("clip: no text encoder connected (load umt5_xxl with a CLIP loader of "
                         "type 'wan')")
    pos_tokens = tokenize_prompt(clip, prompt, weight_syntax)
    neg_tokens = tokenize_prompt(clip, negative_prompt or "", weight_syntax, "negative_prompt")
    positive = clip.encode_from_tokens_scheduled(pos_tokens.tokens)
    negative = clip.encode_from_tokens_scheduled(neg_tokens.tokens)
    masks, report = bind_prompt(clip, refs, pos_tokens, neg_tokens, positive[0][0].shape[1],
                                strict, weight_syntax, check_interrupt)
    return positive, negative, masks, report
