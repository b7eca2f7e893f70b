"""The binding preview (Bind's ``preview`` output): every reference's letterboxed thumbnail
framed in its person's colour, labelled with its phrase and where it matched in the prompt."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..drawing import default_font, fit_text, person_color

MISSING_COLOR = "#d00000"

TILE_W = 192
LABEL_H = 40
BORDER = 5
PER_ROW = 4


def render_preview(refs, report, width: int, height: int) -> torch.Tensor:
    """``refs`` (layout order) and their :class:`BindingReport` matches -> IMAGE
    ``[1, H, W, 3]`` in [0, 1]; thumbnails have the video's aspect (``width x height``)."""
    font = default_font()
    tile_h = min(4 * TILE_W, max(8, round(TILE_W * height / width)))  # extreme aspect: capped
    n = max(1, len(refs))
    cols = min(PER_ROW, n)
    rows = (n + cols - 1) // cols
    cell_w, cell_h = TILE_W + 2 * BORDER, tile_h + 2 * BORDER + LABEL_H
    canvas = Image.new("RGB", (cols * cell_w, rows * cell_h), (24, 24, 24))
    draw = ImageDraw.Draw(canvas)
    if not refs:
        draw.text((8, 8), "no references", fill=(230, 230, 230), font=font)
    for i, (ref, match) in enumerate(zip(refs, report.matches)):
        x0, y0 = (i % cols) * cell_w, (i // cols) * cell_h
        color = person_color(ref.person)
        draw.rectangle([x0, y0, x0 + cell_w - 1, y0 + tile_h + 2 * BORDER - 1], fill=color)
        thumb = ref.letterboxed(TILE_W, tile_h)
        arr = (thumb.clamp(0, 1).numpy() * 255).round().astype(np.uint8)
        canvas.paste(Image.fromarray(arr), (x0 + BORDER, y0 + BORDER))
        ty = y0 + tile_h + 2 * BORDER + 2
        draw.text((x0 + 4, ty), fit_text(draw, f"{match.label()}: {ref.phrase}", font, cell_w - 8),
                  fill=(240, 240, 240), font=font)
        if match.found:
            where = "tokens " + ", ".join(f"{s}-{s + match.length - 1}" for s in match.starts)
            fill = (200, 230, 200)
        else:
            where, fill = "NOT FOUND in prompt", MISSING_COLOR
        draw.text((x0 + 4, ty + 16), fit_text(draw, where, font, cell_w - 8), fill=fill, font=font)
    out = torch.from_numpy(np.asarray(canvas).astype(np.float32) / 255.0)
    return out.unsqueeze(0)
