"""Drawing helpers shared by the Bind node's binding preview and the evaluation's pictures and
report: one colour per person (the frontend extension ``web/lumosx.js`` uses the same list),
text fitted to a width, the font. Pillow only."""
from __future__ import annotations

from typing import Tuple

from PIL import ImageFont

#: One colour per person, in person order (cycled past the eighth).
PERSON_COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4",
                 "#f032e6", "#9a6324"]
#: Backgrounds and objects (references that belong to no person).
NON_PERSON_COLOR = "#808080"


def person_color(person: int) -> str:
    """Hex colour of person ``person`` (0-based); :data:`NON_PERSON_COLOR` when negative."""
    return NON_PERSON_COLOR if person < 0 else PERSON_COLORS[person % len(PERSON_COLORS)]


def hex_rgb(hex_color: str) -> Tuple[int, int, int]:
    """``"#rrggbb"`` -> ``(r, g, b)``."""
    h = hex_color.lstrip("#")
    return tuple(int(h[i:i + 2], 16) for i in (0, 2, 4))


def default_font():
    """The font of every picture: Pillow's built-in default (no font files needed)."""
    return ImageFont.load_default()


#: Characters of a label ever measured: no label of a few hundred pixels needs more.
FIT_TEXT_MAX_CHARS = 512


def fit_text(draw, text: str, font, width: int) -> str:
    """``text`` cut with an ellipsis to fit ``width`` pixels. A binary search over the cut
    (``O(log n)`` measurements of at most :data:`FIT_TEXT_MAX_CHARS` characters), so a huge
    phrase costs no more than a short one."""
    text = text.replace("\n", " ")
    if len(text) <= FIT_TEXT_MAX_CHARS and draw.textlength(text, font=font) <= width:
        return text
    text = text[:FIT_TEXT_MAX_CHARS]
    lo, hi = 0, len(text)                 # the longest cut that fits lies in [lo, hi]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if draw.textlength(text[:mid] + "...", font=font) <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo] + "..."
