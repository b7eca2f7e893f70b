r"""The released prompt clean-up and 512-token cut.

The authors' text encoder (``HuggingfaceTokenizer(clean="whitespace")`` in
``LumosX/source/models/text_encoder/wanx.py``) cleans every text before tokenizing it --
prompt, negative prompt and each phrase alike: ``ftfy.fix_text`` with its defaults (mojibake,
curly quotes, fullwidth characters, ligatures, terminal escapes, control characters, NFC),
HTML entities unescaped twice, ends stripped, then every run of Unicode whitespace (the
``regex`` module's ``\s``: the White_Space property, which -- unlike Python's ``re`` --
leaves the separators U+001C-U+001F alone) collapsed to one space, ends stripped. It then
tokenizes with truncation to 512 tokens: the first 511 tokens and the end-of-sequence token.
Parentheses and backslashes are plain text there (no weight syntax).
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Sequence

#: text length of the released model (umT5 tokens, end-of-sequence included)
TEXT_LEN = 512
#: the released sampler's negative prompt (Wan 2.1's standard one)
RELEASED_NEGATIVE = ("色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，"
                     "最差质量，低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，"
                     "画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，"
                     "杂乱的背景，三条腿，背景人很多，倒着走")

#: Runs of Unicode White_Space characters (what ``\s`` matches in the ``regex`` module the
#: released code uses; Python's ``re`` would also take U+001C-U+001F).
_WS = re.compile("[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")


def _ftfy():
    try:
        import ftfy
    except ImportError:
        raise RuntimeError(
            "prompt: the released text clean-up needs the ftfy package, which is missing "
            "from this Python: pip install -r requirements.txt (in ComfyUI's Python)") from None
    return ftfy


def clean_prompt(text: str) -> str:
    """The released clean-up of one text: ``ftfy.fix_text``, HTML unescape (twice), strip,
    whitespace runs -> one space, strip."""
    text = _ftfy().fix_text(str(text))
    text = html.unescape(html.unescape(text)).strip()
    return _WS.sub(" ", text).strip()


def escape_weight_syntax(text: str) -> str:
    r"""``text`` for ComfyUI's tokenizer with its ``(word:1.2)`` weight syntax switched off:
    every parenthesis escaped, nothing else touched. ComfyUI turns ``\(`` / ``\)`` back into
    a parenthesis and leaves every other backslash as it is, so the tokens are those of
    ``text`` itself (also for a backslash before a parenthesis: ``\\(`` -> ``\(``)."""
    return text.replace("(", "\\(").replace(")", "\\)")


def released_text(text: str, weight_syntax: bool = False) -> str:
    """The text the released encoder reads: :func:`clean_prompt`, with ComfyUI's weight
    syntax escaped unless ``weight_syntax``, so ``(word:1.2)`` stays plain text as in the
    released code."""
    text = clean_prompt(text)
    if weight_syntax:
        return text
    return escape_weight_syntax(text)


@dataclass(frozen=True)
class Cut:
    """A token list cut to the text length: ``tokens`` kept, ``dropped`` real tokens lost."""

    tokens: list
    dropped: int


def cut_tokens(tokens: Sequence, end, length: int = TEXT_LEN, is_end=None) -> Cut:
    """Cut a tokenized text (items of any kind, e.g. ``(id, weight)``; the end-of-sequence
    item last, maybe followed by padding) to ``length`` items the way the released
    tokenizer truncates: the first ``length - 1`` tokens, then ``end``. Shorter lists come
    back unchanged. ``is_end(item)`` tells the end-of-sequence item (default ``item == end``).
    """
    tokens = list(tokens)
    if len(tokens) <= length:
        return Cut(tokens, 0)
    is_end = is_end or (lambda t: t == end)
    real = len(tokens)
    for i, t in enumerate(tokens):
        if is_end(t):
            real = i
            break
    if real <= length - 1:  # only padding beyond the length
        return Cut(tokens[:length], 0)
    return Cut(tokens[:length - 1] + [end], real - (length - 1))


def cut_warning(dropped: int, length: int = TEXT_LEN) -> str:
    return (f"the prompt is {length - 1 + dropped} tokens long; the released model reads "
            f"{length} (end of text included), so its last {dropped} tokens were cut as the "
            f"released code does. Shorten it, or move the important words forward")
