"""``lumosx eval``: score generated videos against their reference cases.

    lumosx eval CASES [CASES ...] --videos DIR [--out DIR] [--frames 8] [--face-pack PACK]

CASES are case folders in the LumosX reference-case layout (``caption.txt`` = "<case
id>;<caption>", ``subjects/<n>/face_<phrase>.png`` and attribute images), or folders holding
such cases at any depth. The generated video of a case is found in ``--videos`` by its case id
(the first field of ``caption.txt``): ``<case id>.mp4`` (or .webm .mkv .mov .avi .m4v .webp
.gif .png) or a folder ``<case id>/`` of frame images. Writes ``lumosx_eval.json`` (every
score) and ``lumosx_eval.html`` (plots, worst cases first) into ``--out``.

Every (person, attribute) pair gets a verdict: correct, wrong, missing, undecided or
unscored, with its reason (docs/evaluation.md). ``--clip-vision FILE`` compares regions and
attributes with a ComfyUI CLIP-vision model (e.g. ``clip_vision_h.safetensors``) instead of
the weight-free colour/texture descriptor; the model is read by ComfyUI itself, so
``--comfyui DIR`` (the ComfyUI folder) is needed with it.

Exit status: 0 when every case with a video was fully scored; 1 when a case failed, or was
unscored (no face in its video, or none of its people found), or someone in it was not found
(their pairs unscored); 2 when nothing could be scored at all: no case had a video, or the
arguments, face pack or CLIP-vision model are wrong.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time

log = logging.getLogger("LumosX")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="score generated videos: face identity and attribute binding",
        description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cases", nargs="+", metavar="CASES",
                   help="case folder(s) in the reference-case layout, or folders of cases")
    p.add_argument("--videos", required=True, metavar="DIR",
                   help="folder of generated videos named <case id>.<ext> or <case id>/ frames")
    p.add_argument("--out", default="lumosx_eval", metavar="DIR",
                   help="where lumosx_eval.json and lumosx_eval.html go (default: ./lumosx_eval)")
    p.add_argument("--frames", type=int, default=8, metavar="N",
                   help="frames sampled evenly per video (0 = all; default 8)")
    p.add_argument("--face-pack", default=None, metavar="PACK",
                   help="insightface pack: a folder holding its .onnx files, or a name looked "
                        "up as <root>/models/<name> (default: antelopev2, then buffalo_l)")
    p.add_argument("--insightface-root", action="append", default=[], metavar="DIR",
                   help="root holding models/<pack>/ (repeatable; ComfyUI's "
                        "models/insightface and ~/.insightface are always searched)")
    p.add_argument("--det-size", type=int, default=640, help="face detector input size")
    p.add_argument("--provider", choices=("auto", "CPU", "CUDA"), default="auto",
                   help="ONNX Runtime device (default auto)")
    p.add_argument("--min-face-similarity", type=float, default=0.2,
                   help="least ArcFace similarity for a face to count as a person (0.2)")
    p.add_argument("--body-width", type=float, default=2.8,
                   help="body region width in face widths (2.8)")
    p.add_argument("--body-height", type=float, default=3.5,
                   help="body region height in face heights (3.5)")
    p.add_argument("--clip-vision", default=None, metavar="FILE",
                   help="a ComfyUI CLIP-vision model (.safetensors, e.g. models/clip_vision/"
                        "clip_vision_h.safetensors) for the appearance comparison; needs "
                        "--comfyui")
    p.add_argument("--comfyui", default=os.environ.get("LUMOSX_COMFYUI"), metavar="DIR",
                   help="the ComfyUI folder whose loader reads --clip-vision (default: "
                        "$LUMOSX_COMFYUI)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


class _Progress:
    """tqdm over the frames of all cases when available, else a plain text bar."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.done, self.enabled = total, 0, enabled
        self.bar = None
        self.start = time.time()
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                pass
            else:
                self.bar = tqdm(total=total, unit="frame", desc="lumosx eval", file=sys.stderr)

    def describe(self, text: str):
        if self.bar is not None:
            self.bar.set_postfix_str(text)

    def grow(self, n: int):
        self.total += n
        if self.bar is not None:
            self.bar.total = self.total
            self.bar.refresh()

    def update(self, n: int = 1):
        if n <= 0:
            return
        self.done += n
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(n)
            return
        width = 30
        fill = int(width * self.done / max(self.total, 1))
        sys.stderr.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {self.done}/{self.total} "
                         f"frames, {time.time() - self.start:.0f}s")
        sys.stderr.flush()

    def close(self):
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            sys.stderr.write("\n")


def run(args) -> int:
    from ..evaluation import (ColorTextureBackend, InsightFaceDetector, Settings,
                              evaluate_video, find_face_pack, load_face_analysis)
    from ..evaluation.cases import discover_cases, load_case, read_caption
    from ..evaluation.render import case_previews
    from ..evaluation.report import (build_report, case_state, verdict_counts_text,
                                     write_html, write_json)
    from ..evaluation.verdicts import thresholds_for
    from ..evaluation.video import find_video, read_frames

    if args.frames < 0:
        print("lumosx eval: --frames must be >= 0", file=sys.stderr)
        return 2
    if not os.path.isdir(args.videos):
        print(f"lumosx eval: --videos {args.videos}: no such folder", file=sys.stderr)
        return 2
    dirs = []
    for root in args.cases:
        if not os.path.isdir(root):
            print(f"lumosx eval: {root}: no such folder", file=sys.stderr)
            return 2
        dirs += [d for d in discover_cases(root) if d not in dirs]
    if not dirs:
        print("lumosx eval: no case folders (with caption.txt) found in "
              + ", ".join(args.cases), file=sys.stderr)
        return 2

    # match cases to videos first: the progress bar counts frames
    plan, results, seen = [], [], {}
    for d in dirs:
        entry = {"case_id": os.path.basename(d), "case_dir": d, "caption": "", "video": None,
                 "status": "ok", "error": None}
        try:
            case_id, caption = read_caption(d)
        except (OSError, ValueError) as e:
            entry.update(status="error", error=str(e))
            results.append(entry)
            continue
        entry.update(case_id=case_id, caption=caption)
        if case_id in seen:
            entry.update(status="error", error=f"case id {case_id!r} also used by {seen[case_id]}")
            results.append(entry)
            continue
        seen[case_id] = d
        entry["video"] = find_video(args.videos, case_id)
        if entry["video"] is None:
            entry["status"] = "missing video"
            entry["error"] = (f"no {case_id}.<mp4|webm|mkv|mov|avi|m4v|webp|gif|png> or "
                              f"{case_id}/ frames folder in {os.path.abspath(args.videos)}")
            results.append(entry)
            continue
        plan.append(entry)
    if not plan:
        print("lumosx eval: no case has a generated video in " + args.videos, file=sys.stderr)
        for r in results:
            print(f"  {r['case_id']}: {r['error']}", file=sys.stderr)
        return 2

    try:
        pack = find_face_pack(args.face_pack, args.insightface_root)
        detector = InsightFaceDetector(load_face_analysis(pack, args.provider, args.det_size),
                                       args.det_size)
    except (FileNotFoundError, RuntimeError, ValueError) as e:
        print(f"lumosx eval: {e}", file=sys.stderr)
        return 2
    settings = Settings(min_face_similarity=args.min_face_similarity,
                        body_width=args.body_width, body_height=args.body_height)
    backend = ColorTextureBackend()
    if args.clip_vision:
        try:
            backend = load_clip_vision_backend(args.clip_vision, args.comfyui)
        except (FileNotFoundError, RuntimeError, ValueError) as e:
            print(f"lumosx eval: {e}", file=sys.stderr)
            return 2

    planned = args.frames if args.frames > 0 else 1     # per case, corrected on the way
    previews = {}
    progress = _Progress(planned * len(plan), not args.no_progress)
    for entry in plan:
        progress.describe(entry["case_id"])
        state = {"counted": 0, "planned": planned}

        def on_frame(done, n, state=state):
            if n != state["planned"]:
                progress.grow(n - state["planned"])
                state["planned"] = n
            progress.update(done - state["counted"])
            state["counted"] = done

        try:
            case = load_case(entry["case_dir"])
            frames, idx, total = read_frames(entry["video"], args.frames)
            entry["frames_total"] = total
            entry["frame_indices"] = idx
            ev = evaluate_video(frames, case.references, detector, backend,
                                frame_indices=idx, settings=settings, progress=on_frame)
            entry["evaluation"] = ev.to_dict()
            previews[entry["case_id"]] = case_previews(frames, ev)
        except Exception as e:  # one broken case must not stop the batch
            log.debug("case %s failed", entry["case_id"], exc_info=True)
            entry.update(status="error", error=f"{type(e).__name__}: {e}")
        progress.update(state["planned"] - state["counted"])
        results.append(entry)
    progress.close()

    report = build_report(results, {
        "frames": args.frames, "face_pack": pack, "det_size": args.det_size,
        "appearance": backend.name, "clip_vision": args.clip_vision,
        "thresholds": thresholds_for(backend.name).as_dict(), **settings.as_dict()})
    os.makedirs(args.out, exist_ok=True)
    json_path = write_json(report, os.path.join(args.out, "lumosx_eval.json"))
    html_path = write_html(report, os.path.join(args.out, "lumosx_eval.html"), previews)
    s = report["summary"]

    def pct(v):
        return "n/a" if v is None else f"{100 * v:.0f}%"

    def num(v):
        return "n/a" if v is None else f"{v:.3f}"

    print(f"{s['scored']}/{s['cases']} cases scored ({s['unscored']} UNSCORED, "
          f"{s['missing_video']} without video, {s['errors']} failed)")
    print(f"face similarity mean {num(s['face_similarity_mean'])} (worst person "
          f"{num(s['face_similarity_min'])}), detection {pct(s['detection_rate_mean'])}, "
          f"identity swaps {s['identity_swaps']} (identity swap rate "
          f"{pct(s['identity_swap_rate'])} of {s['people_found']} people found)")
    print(f"binding accuracy {pct(s['binding_accuracy'])} ({s['binding_pairs_decided']}/"
          f"{s['binding_pairs']} pairs decided, {s['binding_pairs_scored']}/"
          f"{s['binding_pairs']} scored), swap rate {pct(s['binding_swap_rate'])}, margin "
          f"{num(s['binding_margin_mean'])}")
    print("pairs: " + verdict_counts_text(s["verdicts"]))
    print("worst first: " + ", ".join(s["worst_first"]))
    for r in report["cases"]:
        state = case_state(r)
        if r["status"] != "ok":
            print(f"  {r['case_id']}: {r['status']}: {r['error']}")
        elif state in ("unscored", "partial"):
            why = "; ".join(r["evaluation"].get("warnings", []))
            print(f"  {r['case_id']}: {'UNSCORED' if state == 'unscored' else 'partly unscored'}"
                  f": {why}")
    print(f"wrote {json_path}")
    print(f"wrote {html_path}")
    return 1 if (s["errors"] or s["unscored"] or s["partial_cases"]) else 0


def load_clip_vision_backend(path: str, comfyui: str = None):
    """An appearance backend over the CLIP-vision model ``path``, read by ComfyUI's own
    loader (``comfy.clip_vision.load``) from the ComfyUI folder ``comfyui``: ComfyUI knows
    every CLIP-vision layout its users have (ViT-H/L/G, SigLIP, DINOv2) and lumosx_core has
    no ``comfy`` import of its own. Only ``.safetensors`` files are read (no code in model
    files). Raises ``FileNotFoundError`` / ``RuntimeError`` with the fix."""
    from ..evaluation.appearance import clip_vision_embedder
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--clip-vision {path}: no such file")
    if not path.lower().endswith(".safetensors"):
        raise ValueError(f"--clip-vision {path}: only .safetensors files are read (a pickled "
                         f"checkpoint can run code); convert it or use ComfyUI's "
                         f"clip_vision_h.safetensors")
    if not comfyui:
        raise RuntimeError("--clip-vision needs ComfyUI to read the model: pass --comfyui DIR "
                           "(the ComfyUI folder) or set LUMOSX_COMFYUI; without it the "
                           "weight-free colour/texture descriptor is used when --clip-vision "
                           "is left out")
    comfyui = os.path.abspath(os.path.expanduser(comfyui))
    if not os.path.isfile(os.path.join(comfyui, "comfy", "clip_vision.py")):
        raise RuntimeError(f"--comfyui {comfyui}: not a ComfyUI folder (no "
                           f"comfy/clip_vision.py)")
    from .host import import_comfyui
    try:
        import_comfyui(comfyui)   # --cpu when torch sees no CUDA device
        import comfy.clip_vision
    except Exception as e:  # ComfyUI present but not importable (its requirements missing)
        raise RuntimeError(f"--comfyui {comfyui}: ComfyUI could not be imported "
                           f"({type(e).__name__}: {e}); run lumosx eval with ComfyUI's "
                           f"Python environment") from e
    try:
        model = comfy.clip_vision.load(path)
    except Exception as e:
        raise RuntimeError(f"--clip-vision {path}: ComfyUI could not read it "
                           f"({type(e).__name__}: {e})") from e
    if model is None:
        raise RuntimeError(f"--clip-vision {path}: ComfyUI does not recognise this file as a "
                           f"CLIP-vision model (use e.g. models/clip_vision/"
                           f"clip_vision_h.safetensors)")
    return clip_vision_embedder(model)
