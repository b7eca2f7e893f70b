"""The batch report: one JSON of every score and a self-contained HTML page with plots
(matplotlib, embedded as base64 PNG; without matplotlib the binding matrices are drawn with
Pillow and the bar charts left out), worst cases first."""
from __future__ import annotations

import base64
import datetime
import html
import io
import json
import math
import os
from typing import List, Optional

import numpy as np
from PIL import Image

from ..drawing import person_color
from .render import render_matrix
from .verdicts import VERDICTS

REPORT_VERSION = 1


# -- scores ---------------------------------------------------------------------------------

def _mean(values) -> Optional[float]:
    v = [x for x in values if x is not None]
    return float(np.mean(v)) if v else None


#: each verdict's colour in the HTML report (its ``.v-<verdict>`` badge)
VERDICT_COLORS = {"correct": "#1b7f2a", "wrong": "#b00020", "missing": "#8a2be2",
                  "undecided": "#b07000", "unscored": "#555555"}


def case_state(case: dict) -> str:
    """"unscored" (a video without faces, or with none of the people: nothing scored),
    "error", "missing video", "partial" (someone not found) or "scored"."""
    if case.get("status") != "ok" or not case.get("evaluation"):
        return case.get("status", "error")
    return case["evaluation"].get("status", "scored")


_RANK = {"unscored": 0, "error": 1, "missing video": 2, "partial": 3, "scored": 4}


def severity_key(case: dict):
    """Sort key, worst first: unscored cases (no faces, nobody found) first, then failed
    cases and cases without video, then cases with someone not found; then the lowest share
    of correct pairs (wrong, missing, undecided and unscored pairs all count against it),
    highest swap rate, most identity swaps, lowest face similarity, lowest detection rate."""
    state = case_state(case)
    rank = _RANK.get(state, 1)
    if state in ("unscored", "error", "missing video"):
        return (rank, 0.0, 0.0, 0, 0.0, 0.0, case.get("case_id", ""))
    ev = case["evaluation"]
    b, i = ev["binding"], ev["identity"]
    v = b.get("verdicts") or {}
    total = b.get("total_pairs") or 0
    share = (v.get("correct", 0) / total) if total else 1.0
    swap = b["swap_rate"] or 0.0
    sims = [p["similarity_mean"] if p["similarity_mean"] is not None else -1.0
            for p in i["people"]]
    return (rank, share, -swap, -i["n_swaps"], min(sims) if sims else 1.0,
            i["detection_rate"] if i["detection_rate"] is not None else 1.0,
            case.get("case_id", ""))


def summarize(cases: List[dict]) -> dict:
    """Pooled scores. Every pair of every case with a video is counted, with its verdict:
    the pairs of an unscored case are there as "unscored", never as passes. Binding
    accuracy = correct / decided (correct + wrong + missing) pairs, reported with the
    counts."""
    ok = [c for c in cases if c.get("status") == "ok" and c.get("evaluation")]
    people = [p for c in ok for p in c["evaluation"]["identity"]["people"]]
    found = [p for p in people if p["detected"]]
    all_pairs = [e for c in ok for e in c["evaluation"]["binding"]["pairs"]]
    counts = {k: sum(e.get("verdict") == k for e in all_pairs) for k in VERDICTS}
    decided = [e for e in all_pairs if e.get("verdict") in ("correct", "wrong", "missing")]
    unscored_cases = [c["case_id"] for c in ok if case_state(c) == "unscored"]
    partial_cases = [c["case_id"] for c in ok if case_state(c) == "partial"]
    return {
        "cases": len(cases),
        "scored": len(ok) - len(unscored_cases),
        "unscored": len(unscored_cases),
        "unscored_cases": unscored_cases,
        "partial_cases": partial_cases,
        "missing_video": sum(c.get("status") == "missing video" for c in cases),
        "errors": sum(c.get("status") == "error" for c in cases),
        "people": len(people),
        "people_found": len(found),
        "face_similarity_mean": _mean(p["similarity_mean"] for p in people),
        "face_similarity_min": min((p["similarity_mean"] for p in people
                                    if p["similarity_mean"] is not None), default=None),
        "detection_rate_mean": _mean(p["detection_rate"] for p in people),
        "identity_swaps": sum(c["evaluation"]["identity"]["n_swaps"] for c in ok),
        # people whose face changed person at least once, of the people found
        "identity_swap_rate": (sum(1 for p in found if p["swaps"]) / len(found))
        if found else None,
        "binding_pairs": len(all_pairs),
        "binding_pairs_scored": len(all_pairs) - counts["unscored"],
        "binding_pairs_decided": len(decided),
        "verdicts": counts,
        "binding_accuracy": (counts["correct"] / len(decided)) if decided else None,
        "binding_swap_rate": (sum(e["swap"] for e in decided) / len(decided))
        if decided else None,
        "binding_margin_mean": _mean(e.get("margin") for e in all_pairs
                                     if e.get("verdict") != "unscored"),
        "worst_first": [c["case_id"] for c in sorted(cases, key=severity_key)],
    }


def verdict_counts_text(counts: dict) -> str:
    return ", ".join(f"{counts.get(k, 0)} {k}" for k in VERDICTS)


def build_report(cases: List[dict], settings: dict) -> dict:
    ordered = sorted(cases, key=severity_key)
    return {
        "tool": "lumosx eval",
        "version": REPORT_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "settings": settings,
        "summary": summarize(cases),
        "cases": ordered,
    }


def _json_default(o):
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def evaluation_json(ev, frames_total: int) -> str:
    """An evaluation as strict JSON text, with the number of frames the video had."""
    data = ev.to_dict()
    data["frames_total"] = frames_total
    return json.dumps(json_safe(data))


def json_safe(o):
    """A copy with NaN/inf -> None and numpy scalars/arrays -> Python (strict JSON)."""
    if isinstance(o, np.ndarray):
        return json_safe(o.tolist())
    if isinstance(o, np.generic):
        return json_safe(o.item())
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: json_safe(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [json_safe(v) for v in o]
    return o


def write_json(report: dict, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(json_safe(report), f, indent=1, default=_json_default, allow_nan=False)
    return path


# -- plots ------------------------------------------------------------------------------------

def _png_b64(array_or_fig) -> str:
    buf = io.BytesIO()
    if isinstance(array_or_fig, np.ndarray):
        Image.fromarray(array_or_fig).save(buf, format="PNG")
    else:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        FigureCanvasAgg(array_or_fig)
        array_or_fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(w: float, h: float):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return Figure(figsize=(w, h))


def plot_person_similarity(cases: List[dict]):
    rows = []
    for c in cases:
        if c.get("status") != "ok":
            continue
        for p in c["evaluation"]["identity"]["people"]:
            rows.append((f"{c['case_id']} / {p['person'] + 1}: {p['phrase']}",
                         p["similarity_mean"], p["similarity_max"], p["detection_rate"],
                         p["person"]))
    if not rows:
        return None
    rows.sort(key=lambda r: (-2 if r[1] is None else r[1]))      # worst first (top)
    fig = _figure(8.5, 0.9 + 0.32 * len(rows))
    if fig is None:
        return None
    ax = fig.add_subplot(111)
    y = np.arange(len(rows))[::-1]
    means = [r[1] if r[1] is not None else 0.0 for r in rows]
    ax.barh(y, means, color=[person_color(r[4]) for r in rows], alpha=0.85,
            label="mean over frames")
    ax.scatter([r[2] if r[2] is not None else 0.0 for r in rows], y, marker="|", s=160,
               color="black", label="max")
    for yy, r in zip(y, rows):
        text = "not found" if r[1] is None else f"{r[1]:.2f}  (detected {100 * r[3]:.0f}%)"
        ax.text(max(means + [0.0]) * 0.02 + (r[1] or 0.0), yy, "  " + text, va="center",
                fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels([r[0] for r in rows], fontsize=8)
    ax.set_xlabel("ArcFace cosine similarity to the reference face")
    ax.set_xlim(min(0.0, min(means) - 0.05), 1.0)
    ax.axvline(0.0, color="#888", lw=0.8)
    ax.set_title("Per-person face similarity (worst first)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    return fig


def plot_binding_accuracy(cases: List[dict]):
    rows = [(c["case_id"], c["evaluation"]["binding"]["accuracy"],
             c["evaluation"]["binding"]["swap_rate"]) for c in cases
            if c.get("status") == "ok" and c["evaluation"]["binding"]["accuracy"] is not None]
    if not rows:
        return None
    fig = _figure(8.5, 0.9 + 0.32 * len(rows))
    if fig is None:
        return None
    ax = fig.add_subplot(111)
    y = np.arange(len(rows))[::-1]
    ax.barh(y + 0.18, [r[1] for r in rows], height=0.36, color="#3cb44b",
            label="binding accuracy")
    ax.barh(y - 0.18, [r[2] for r in rows], height=0.36, color="#e6194b", label="swap rate")
    for yy, (_, acc, swap) in zip(y, rows):
        ax.text(1.02, yy, f"accuracy {100 * acc:.0f}%, swaps {100 * (swap or 0):.0f}%",
                va="center", fontsize=8, transform=ax.get_yaxis_transform())
    ax.set_yticks(y)
    ax.set_yticklabels([r[0] for r in rows], fontsize=8)
    ax.set_xlim(0, 1.0)
    ax.set_title("Binding per case (worst first)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, -0.08), fontsize=8, frameon=False,
              ncol=2)
    return fig


def plot_matrix(ev: dict, title: str):
    """Heatmap of the person x attribute similarity matrix (own attributes framed)."""
    b = ev["binding"]
    m = np.array([[np.nan if v is None else v for v in row] for row in b["matrix"]],
                 dtype=np.float64).reshape(len(ev["people"]), len(b["phrases"]))
    rows = [f"{p['person'] + 1}: {p['phrase']}" for p in ev["people"]]
    fig = _figure(1.6 + 1.1 * max(1, m.shape[1]), 1.0 + 0.8 * max(1, m.shape[0]))
    if fig is None or m.size == 0:
        return render_matrix(m, rows, b["phrases"], b["owners"], title) if m.size else None
    ax = fig.add_subplot(111)
    im = ax.imshow(np.ma.masked_invalid(m), cmap="viridis", aspect="auto")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    from matplotlib.patches import Rectangle
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            v = m[i, j]
            color = "black"
            if np.isfinite(v):
                r, g, bl, _ = im.cmap(im.norm(v))
                color = "black" if 0.299 * r + 0.587 * g + 0.114 * bl > 0.55 else "white"
            ax.text(j, i, "n/a" if not np.isfinite(v) else f"{v:.2f}", ha="center",
                    va="center", fontsize=9, color=color)
            if b["owners"][j] == i:
                ax.add_patch(Rectangle((j - 0.46, i - 0.46), 0.92, 0.92, fill=False,
                                       edgecolor="black", lw=3))
                ax.add_patch(Rectangle((j - 0.42, i - 0.42), 0.84, 0.84, fill=False,
                                       edgecolor="white", lw=1.5))
    ax.set_xticks(range(m.shape[1]))
    ax.set_xticklabels([f"{ph}\n(p{o + 1})" for ph, o in zip(b["phrases"], b["owners"])],
                       fontsize=8)
    ax.set_yticks(range(m.shape[0]))
    ax.set_yticklabels(rows, fontsize=8)
    for lab, o in zip(ax.get_xticklabels(), b["owners"]):
        lab.set_color(person_color(o))
    for k, lab in enumerate(ax.get_yticklabels()):
        lab.set_color(person_color(k))
    ax.set_title(title + "\n(framed: the person's own attributes)", fontsize=9)
    return fig


# -- HTML -------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;
max-width:1200px}
h1{font-size:22px} h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3} td.num{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b00020;font-weight:600} .good{color:#1b7f2a;font-weight:600}
.badge{display:inline-block;padding:1px 8px;border-radius:9px;font-size:12px;color:#fff}
.sw{display:inline-block;width:14px;height:14px;border:1px solid #999;vertical-align:middle;
margin-right:3px} .case{border:1px solid #e2e2e2;border-radius:6px;padding:8px 16px;margin:16px 0}
.caption{color:#555;font-size:13px} img{max-width:100%} .muted{color:#777}
.verdict{display:inline-block;padding:0 6px;border-radius:4px;font-weight:600;color:#fff}
.v-unscored{outline:2px dashed #b00020}
.reason{color:#555;font-size:12px} .unscored-box{border:2px dashed #b00020;padding:6px 10px;
background:#fff4f4}
""" + " ".join(f".v-{k}{{background:{c}}}" for k, c in VERDICT_COLORS.items()) + "\n"


def _e(x) -> str:
    return html.escape(str(x))


def _f(v, pct=False) -> str:
    if v is None:
        return "n/a"
    return f"{100 * v:.0f}%" if pct else f"{v:.3f}"


def _swatches(colors) -> str:
    return "".join(f'<span class="sw" style="background:{_e(c["hex"])}" '
                   f'title="{_e(c["hex"])} {100 * c["share"]:.0f}%"></span>'
                   f'<span class="muted">{100 * c["share"]:.0f}%</span> ' for c in colors)


def _img(b64: str, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{b64}">'


def _jpeg_b64(arr: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=85)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _case_html(c: dict, previews=None) -> str:
    out = [f'<div class="case" id="case-{_e(c["case_id"])}">']
    status = c.get("status")
    state = case_state(c)
    color = {"scored": "#1b7f2a", "missing video": "#b07000", "partial": "#b07000",
             "unscored": "#555555"}.get(state, "#b00020")
    out.append(f'<h2>{_e(c["case_id"])} <span class="badge state-{_e(state.replace(" ", "-"))}"'
               f' style="background:{color}">{_e(state.upper() if state == "unscored" else state)}'
               f'</span></h2>')
    out.append(f'<div class="caption">{_e(c.get("caption", ""))[:600]}</div>')
    out.append(f'<p class="muted">case: {_e(c.get("case_dir", ""))}<br>video: '
               f'{_e(c.get("video") or "-")}</p>')
    if status != "ok":
        if c.get("error"):
            out.append(f'<p class="bad">{_e(c["error"])}</p>')
        out.append("</div>")
        return "\n".join(out)
    ev = c["evaluation"]
    ident, bind = ev["identity"], ev["binding"]
    if state in ("unscored", "partial"):
        why = "; ".join(ev.get("warnings", [])) or state
        out.append(f'<p class="unscored-box"><b>{"Unscored" if state == "unscored" else "Partly unscored"}'
                   f':</b> {_e(why)}. Its pairs are reported as unscored, not as passes.</p>')
    out.append(f'<p>{len(ev["frames"])} frames sampled of {c.get("frames_total", "?")} '
               f'({_e(", ".join(str(f["frame"]) for f in ev["frames"]))}); appearance: '
               f'{_e(ev["backend"])}</p>')
    out.append("<h3>Identity</h3><table><tr><th>person</th><th>mean sim.</th><th>max</th>"
               "<th>min</th><th>detection rate</th><th>identity swaps</th>"
               "<th>per frame</th></tr>")
    for p in ident["people"]:
        det_cls = "bad" if p["detection_rate"] < 1 else ""
        per = " ".join("&ndash;" if s is None else f"{s:.2f}" for s in p["per_frame"])
        out.append(
            f'<tr><td style="color:{person_color(p["person"])}">{p["person"] + 1}: '
            f'{_e(p["phrase"])}</td><td class="num">{_f(p["similarity_mean"])}</td>'
            f'<td class="num">{_f(p["similarity_max"])}</td>'
            f'<td class="num">{_f(p["similarity_min"])}</td>'
            f'<td class="num {det_cls}">{_f(p["detection_rate"], True)} '
            f'({p["detected"]}/{p["frames"]})</td>'
            f'<td class="num {"bad" if p["swaps"] else ""}">{p["swaps"]}</td>'
            f'<td class="muted">{per}</td></tr>')
    out.append("</table>")
    for s in ident["swaps"]:
        ch = ", ".join(f'{x["from"] + 1}&rarr;{x["to"] + 1}' for x in s["changes"])
        out.append(f'<p class="bad">identity swap between frames {s["previous_frame"]} and '
                   f'{s["frame"]}: {ch}</p>')
    acc_cls = "good" if bind["accuracy"] == 1 else "bad"
    counts = bind.get("verdicts") or {}
    out.append(f'<h3>Binding</h3><p>accuracy <span class="{acc_cls}">'
               f'{_f(bind["accuracy"], True)}</span> ({bind.get("decided", 0)}/'
               f'{bind["total_pairs"]} pairs decided, {bind["scored"]}/{bind["total_pairs"]} '
               f'scored), swap rate {_f(bind["swap_rate"], True)}, '
               f'margin mean {_f(bind["margin_mean"])}, min {_f(bind["margin_min"])}, '
               f'per-frame accuracy mean {_f(bind.get("frame_accuracy_mean"), True)}</p>')
    out.append('<p class="verdict-counts">' + " ".join(
        f'<span class="verdict v-{k}">{counts.get(k, 0)} {k}</span>' for k in VERDICTS)
        + "</p>")
    if bind["phrases"]:
        fig = plot_matrix(ev, f'{c["case_id"]}: person x attribute similarity')
        if fig is not None:
            out.append(_img(_png_b64(fig), f'binding matrix {c["case_id"]}'))
    region_colors = bind.get("region_colors") or []
    out.append("<table><tr><th>person</th><th>attribute</th><th>kind</th><th>own</th>"
               "<th>best other</th><th>margin</th><th>verdict</th><th>attribute colours</th>"
               "<th>colours on the person</th></tr>")
    for e, a in zip(bind["pairs"], ev["attributes"]):
        v = e.get("verdict") or "unscored"
        label = v
        if v == "wrong" and e.get("winner_person") is not None:
            label = (f'wrong: worn by person '
                     f'{e["winner_person"] + 1}{" (swap)" if e["swap"] else ""}')
        verdict = (f'<span class="verdict v-{_e(v)}">{_e(label)}</span>'
                   f'<div class="reason">{_e(e.get("reason") or "")}</div>')
        rc = region_colors[e["person"]] if e["person"] < len(region_colors) else []
        margin = "n/a" if e["margin"] is None else f"{e['margin']:+.3f}"
        out.append(
            f'<tr><td style="color:{person_color(e["person"])}">{e["person"] + 1}</td>'
            f'<td>{_e(e["phrase"])}</td><td>{_e(e["kind"])}</td>'
            f'<td class="num">{_f(e["similarity"])}</td><td class="num">{_f(e["best_other"])}'
            f'</td><td class="num">{margin}</td>'
            f'<td>{verdict}</td><td>{_swatches(a.get("colors", []))}</td>'
            f'<td>{_swatches(rc)}</td></tr>')
    out.append("</table>")
    for s in bind["swaps"]:
        p, q = s["people"]
        out.append(f'<p class="bad">swap: person {p + 1} and person {q + 1} exchanged '
                   f'&ldquo;{_e(s["phrases"][0])}&rdquo; / &ldquo;{_e(s["phrases"][1])}'
                   f'&rdquo;</p>')
    for w in ev.get("warnings", []):
        out.append(f'<p class="bad">warning: {_e(w)}</p>')
    for caption, arr in (previews or {}).get(c["case_id"], []):
        out.append(f'<figure style="display:inline-block;margin:4px">'
                   f'<img alt="{_e(caption)}" src="data:image/jpeg;base64,{_jpeg_b64(arr)}">'
                   f'<figcaption class="muted">{_e(caption)}</figcaption></figure>')
    out.append("</div>")
    return "\n".join(out)


def render_html(report: dict, previews=None) -> str:
    """The page. ``previews``: ``{case id: [(caption, uint8 [H, W, 3] image), ...]}`` shown
    under each case (annotated frames)."""
    s = report["summary"]
    cases = report["cases"]
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'>",
             "<title>LumosX evaluation</title>", f"<style>{CSS}</style></head><body>",
             "<h1>LumosX evaluation: identity and attribute binding</h1>",
             f'<p class="muted">created {_e(report["created"])}; settings: '
             f'{_e(json.dumps(report["settings"]))}</p>',
             "<table id='summary'><tr><th>cases</th><th>scored</th><th>unscored</th>"
             "<th>missing video</th>"
             "<th>errors</th><th>people</th><th>face similarity (mean)</th>"
             "<th>face similarity (worst person)</th><th>detection rate</th>"
             "<th>identity swaps</th><th>identity swap rate</th><th>binding accuracy</th>"
             "<th>pairs decided</th><th>swap rate</th><th>margin (mean)</th></tr>",
             f'<tr><td class="num">{s["cases"]}</td><td class="num">{s["scored"]}</td>'
             f'<td class="num {"bad" if s.get("unscored") else ""}" id="unscored-cases">'
             f'{s.get("unscored", 0)}</td>'
             f'<td class="num">{s["missing_video"]}</td><td class="num">{s["errors"]}</td>'
             f'<td class="num">{s["people"]}</td>'
             f'<td class="num">{_f(s["face_similarity_mean"])}</td>'
             f'<td class="num">{_f(s["face_similarity_min"])}</td>'
             f'<td class="num">{_f(s["detection_rate_mean"], True)}</td>'
             f'<td class="num">{s["identity_swaps"]}</td>'
             f'<td class="num" id="identity-swap-rate">{_f(s.get("identity_swap_rate"), True)}</td>'
             f'<td class="num" id="binding-accuracy">{_f(s["binding_accuracy"], True)}</td>'
             f'<td class="num" id="pairs-decided">{s.get("binding_pairs_decided", 0)}/'
             f'{s["binding_pairs"]}</td>'
             f'<td class="num">{_f(s["binding_swap_rate"], True)}</td>'
             f'<td class="num">{_f(s["binding_margin_mean"])}</td></tr></table>',
             '<p id="summary-verdicts">Pairs: ' + " ".join(
                 f'<span class="verdict v-{k}">{(s.get("verdicts") or {}).get(k, 0)} {k}'
                 f'</span>' for k in VERDICTS) + "</p>",
             ('<p class="unscored-box" id="unscored-list"><b>Unscored cases</b> (no face, or '
              'none of the people found; not counted as passes): '
              + ", ".join(_e(x) for x in s["unscored_cases"]) + "</p>")
             if s.get("unscored_cases") else "",
             "<p>Worst cases first: " + ", ".join(
                 f'<a href="#case-{_e(c["case_id"])}">{_e(c["case_id"])}</a>' for c in cases)
             + "</p>"]
    for fig in (plot_person_similarity(cases), plot_binding_accuracy(cases)):
        if fig is not None:
            parts.append(_img(_png_b64(fig), "plot"))
    for c in cases:
        parts.append(_case_html(c, previews))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(report: dict, path: str, previews=None) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(render_html(report, previews))
    return path
