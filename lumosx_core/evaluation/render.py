"""Pictures of an evaluation with Pillow only (no plotting library): the person x attribute
similarity heatmap and frames annotated with each person's face box and regions."""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..drawing import default_font, fit_text, hex_rgb, person_color
from ..image_prep import from_uint8
from .regions import BODY, HEAD, bounding_box

# viridis anchors (matplotlib's), interpolated linearly
_VIRIDIS = np.array([[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142],
                     [38, 130, 142], [31, 158, 137], [53, 183, 121], [109, 205, 89],
                     [180, 222, 44], [253, 231, 37]], dtype=np.float64)


def colormap(t: float):
    """viridis at ``t`` in [0, 1] -> (r, g, b)."""
    t = float(np.clip(t, 0.0, 1.0)) * (len(_VIRIDIS) - 1)
    i = min(int(t), len(_VIRIDIS) - 2)
    c = _VIRIDIS[i] + (t - i) * (_VIRIDIS[i + 1] - _VIRIDIS[i])
    return tuple(int(round(v)) for v in c)


def render_matrix(matrix, row_labels: Sequence[str], col_labels: Sequence[str],
                  col_owners: Sequence[int], title: str = "", cell: int = 64,
                  value_range=None) -> np.ndarray:
    """Heatmap of ``matrix`` ``[rows, cols]`` (NaN = grey "n/a") as uint8 ``[H, W, 3]``.
    Rows are people (labels in their colour), columns attributes (labels in their owner's
    colour); each row's own attributes are framed in white. Colours span ``value_range``
    (default: the finite values' min..max)."""
    m = np.asarray(matrix, dtype=np.float64).reshape(len(row_labels), len(col_labels))
    font = default_font()
    finite = m[np.isfinite(m)]
    lo, hi = value_range if value_range is not None else (
        (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0))
    if hi - lo < 1e-6:
        lo, hi = lo - 0.5, hi + 0.5
    left, top, rows, cols = 150, 30 + (18 if title else 0), max(1, m.shape[0]), max(1, m.shape[1])
    label_h = 34
    width = left + cols * cell + 12
    height = top + label_h + rows * cell + 34
    img = Image.new("RGB", (width, height), (250, 250, 250))
    d = ImageDraw.Draw(img)
    if title:
        d.text((8, 6), fit_text(d, title, font, width - 16), fill=(20, 20, 20), font=font)
    d.text((8, top + 4), "person \\ attribute", fill=(90, 90, 90), font=font)
    gy = top + label_h
    for j, lab in enumerate(col_labels):
        x = left + j * cell
        color = hex_rgb(person_color(col_owners[j]))
        d.rectangle([x + 2, top + 2, x + cell - 3, top + 6], fill=color)
        d.text((x + 3, top + 10), fit_text(d, lab, font, cell - 6), fill=color, font=font)
        d.text((x + 3, top + 22), f"(p{col_owners[j] + 1})", fill=(90, 90, 90), font=font)
    for i, lab in enumerate(row_labels):
        y = gy + i * cell
        color = hex_rgb(person_color(i))
        d.rectangle([4, y + 4, 12, y + cell - 5], fill=color)
        d.text((18, y + cell // 2 - 6), fit_text(d, f"{i + 1}: {lab}", font, left - 22),
               fill=color, font=font)
        for j in range(m.shape[1]):
            x = left + j * cell
            v = m[i, j]
            if np.isfinite(v):
                c = colormap((v - lo) / (hi - lo))
                text = f"{v:.2f}"
            else:
                c, text = (200, 200, 200), "n/a"
            d.rectangle([x, y, x + cell - 1, y + cell - 1], fill=c)
            lum = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
            tc = (0, 0, 0) if lum > 140 else (255, 255, 255)
            tw = d.textlength(text, font=font)
            d.text((x + (cell - tw) / 2, y + cell / 2 - 6), text, fill=tc, font=font)
            if col_owners[j] == i:
                d.rectangle([x + 2, y + 2, x + cell - 3, y + cell - 3], outline=(255, 255, 255),
                            width=3)
                d.rectangle([x, y, x + cell - 1, y + cell - 1], outline=(0, 0, 0), width=1)
    # colour bar
    by = gy + rows * cell + 10
    bw = max(cols * cell, 120)
    for k in range(bw):
        d.line([(left + k, by), (left + k, by + 8)], fill=colormap(k / max(bw - 1, 1)))
    d.text((left, by + 10), f"{lo:.2f}", fill=(60, 60, 60), font=font)
    hl = f"{hi:.2f}"
    d.text((left + bw - d.textlength(hl, font=font), by + 10), hl, fill=(60, 60, 60), font=font)
    d.text((8, by), "white frame:", fill=(90, 90, 90), font=font)
    d.text((8, by + 12), "own attribute", fill=(90, 90, 90), font=font)
    return np.asarray(img)


def render_overlay(frame_rgb: np.ndarray, frame_identity, regions: dict,
                   labels: Sequence[str], note: Optional[str] = None) -> np.ndarray:
    """``frame_rgb`` ``[H, W, 3]`` float in [0, 1] with every detected face boxed (grey when
    unassigned, else the person's colour with their number and similarity) and each found
    person's body/head region outlined. Returns uint8 ``[H, W, 3]``."""
    base = Image.fromarray((np.clip(frame_rgb, 0, 1) * 255).round().astype(np.uint8))
    tint = Image.new("RGBA", base.size, (0, 0, 0, 0))
    td = ImageDraw.Draw(tint)
    font = default_font()
    for p, reg in regions.items():
        col = hex_rgb(person_color(p))
        body = reg.get(BODY)
        if body is not None and body.any():
            alpha = Image.fromarray((body * 60).astype(np.uint8))
            layer = Image.new("RGBA", base.size, col + (0,))
            layer.putalpha(alpha)
            tint = Image.alpha_composite(tint, layer)
            td = ImageDraw.Draw(tint)
        for kind, width in ((BODY, 2), (HEAD, 1)):
            box = bounding_box(reg[kind]) if reg.get(kind) is not None else None
            if box is not None:
                td.rectangle([box[0], box[1], box[2] - 1, box[3] - 1], outline=col + (255,),
                             width=width)
    img = Image.alpha_composite(base.convert("RGBA"), tint)
    d = ImageDraw.Draw(img)
    assigned_faces = {a.face: a for a in frame_identity.assigned.values()}
    for j, f in enumerate(frame_identity.faces):
        x1, y1, x2, y2 = f.bbox
        a = assigned_faces.get(j)
        if a is None:
            d.rectangle([x1, y1, x2, y2], outline=(160, 160, 160, 255), width=2)
            continue
        col = hex_rgb(person_color(a.person))
        d.rectangle([x1, y1, x2, y2], outline=col + (255,), width=3)
        text = f"{a.person + 1} {labels[a.person] if a.person < len(labels) else ''} " \
               f"{a.similarity:.2f}"
        tw = d.textlength(text, font=font)
        ty = max(0, y1 - 13)
        d.rectangle([x1, ty, x1 + tw + 4, ty + 12], fill=col + (255,))
        d.text((x1 + 2, ty), text, fill=(255, 255, 255, 255), font=font)
    label = f"frame {frame_identity.frame}" + (f"  {note}" if note else "")
    d.rectangle([0, 0, d.textlength(label, font=font) + 6, 13], fill=(0, 0, 0, 200))
    d.text((3, 0), label, fill=(255, 255, 255, 255), font=font)
    return np.asarray(img.convert("RGB"))


def stack_images(images: List[np.ndarray], pad_value: int = 255) -> np.ndarray:
    """Pad uint8 ``[H_i, W_i, 3]`` images to a common size (bottom/right, white) and stack
    them ``[N, H, W, 3]``."""
    h = max(i.shape[0] for i in images)
    w = max(i.shape[1] for i in images)
    out = np.full((len(images), h, w, 3), pad_value, dtype=np.uint8)
    for k, im in enumerate(images):
        out[k, :im.shape[0], :im.shape[1]] = im
    return out


def case_previews(frames, ev, max_frames: int = 2, width: int = 420) -> List[tuple]:
    """Annotated frames of an evaluation for the report: the first sampled frame, plus the
    worst one (lowest per-frame binding accuracy, or an identity swap, or a person missing)
    when it differs. Returns ``[(caption, uint8 [h, w, 3]), ...]`` at most ``width`` wide."""
    n = len(ev.frames)
    if n == 0:
        return []
    acc = ev.binding.get("per_frame_accuracy") or [None] * n
    found = [len(fr.assigned) for fr in ev.frames]
    swap_at = {s["sample"] for s in ev.identity.get("swaps", [])}

    def badness(t):
        a = acc[t] if acc[t] is not None else 1.0
        return (a, -(t in swap_at), found[t], t)

    picks = [0]
    worst = min(range(n), key=badness)
    if worst != 0 and len(picks) < max_frames:
        picks.append(worst)
    labels = [p["phrase"] for p in ev.people]
    out = []
    for t in picks:
        f = frames[t]
        rgb = f.detach().float().cpu().numpy() if hasattr(f, "detach") else np.asarray(f)
        arr = render_overlay(rgb[..., :3], ev.frames[t], ev.regions[t], labels)
        if arr.shape[1] > width:
            h = max(1, round(arr.shape[0] * width / arr.shape[1]))
            arr = np.asarray(Image.fromarray(arr).resize((width, h), Image.BILINEAR))
        note = [] if acc[t] is None else [f"binding {100 * acc[t]:.0f}%"]
        if t in swap_at:
            note.append("identity swap")
        note.append(f"{found[t]}/{len(ev.people)} people found")
        out.append((f"frame {ev.frames[t].frame}: " + ", ".join(note), arr))
    return out


def heatmap_image(ev) -> torch.Tensor:
    """Evaluate's heatmap IMAGE ``[1, H, W, 3]``: :func:`render_matrix` of an evaluation,
    titled with its binding accuracy, swap rate and verdict counts."""
    b = ev.binding
    acc = "n/a" if b["accuracy"] is None else f"{100 * b['accuracy']:.0f}%"
    swap = "n/a" if b["swap_rate"] is None else f"{100 * b['swap_rate']:.0f}%"
    v = b.get("verdicts") or {}
    counts = " ".join(f"{v.get(k, 0)} {k}" for k in ("correct", "wrong", "missing",
                                                      "undecided", "unscored") if v.get(k))
    title = (f"binding accuracy {acc} ({b.get('decided', 0)}/{b['total_pairs']} decided), "
             f"swap rate {swap}; {counts} ({ev.backend})" if b["phrases"]
             else "no attribute images to compare")
    if getattr(ev, "status", "scored") == "unscored":
        title = "UNSCORED (no face / nobody found): " + title
    arr = render_matrix(ev.matrix, [p["phrase"] for p in ev.people], b["phrases"],
                        b["owners"], title)
    return from_uint8(arr).unsqueeze(0)


def overlay_images(frames, ev) -> torch.Tensor:
    """Evaluate's overlay IMAGE ``[S, H, W, 3]``: each sampled frame (``[S, H, W, 3]`` float)
    with every person's face box and regions (:func:`render_overlay`)."""
    labels = [p["phrase"] for p in ev.people]
    imgs = [render_overlay(f.numpy(), fi, reg, labels)
            for f, fi, reg in zip(frames, ev.frames, ev.regions)]
    return from_uint8(stack_images(imgs))
