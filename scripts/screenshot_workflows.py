#!/usr/bin/env python
"""Screenshots of the shipped workflows as ComfyUI shows them, for ``docs/``.

Starts the test host (a throw-away base directory whose input/ holds drawn pictures: no
photos end up in the screenshots), loads each ``workflows/*.json`` (UI format) in the app in
a headless Chromium, frames the graph and saves ``docs/workflow_<name>.png`` and, shrunk to
512 pixels wide, ``workflows/<name>.jpg``: the thumbnail ComfyUI's templates browser shows
beside the workflow; then ``docs/bind_report.png``: the Bind node showing a binding report.

    make screenshots   # or: $(python3 -I lumosx_core/cli/host.py python --oldest) scripts/screenshot_workflows.py

Made on the oldest test host, like the workflows: ComfyUI 0.33's frontend shows a throw-away
base without model files with an error panel over the graph.

Needs Debian's chromium; a CJK font (``apt-get install fonts-wqy-microhei``) renders the
Bind node's default (Chinese, the released) negative prompt instead of boxes.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile

import frontend
import standin

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

DOCS = os.path.join(ROOT, "docs")
WORKFLOWS = os.path.join(ROOT, "workflows")

SAMPLE_REPORT = ("background 'cozy, warmly lit room': tokens 28-33 \"cozy, warmly lit room\"\n"
                 "object 'white lamp': tokens 21-22 \"white lamp\"\n"
                 "person 1 face 'man': tokens 1-1 \"man\"\n"
                 "person 1 attribute 'white jacket': tokens 4-5 \"white jacket\"\n"
                 "person 2 face 'woman': tokens 8-8 \"woman\"\n"
                 "person 2 attribute 'yellow scarf': tokens 11-12 \"yellow scarf\"")


def shrink_png(path: str) -> str:
    """256 colours, optimised: the pictures get committed (a third of the size, and UI
    screenshots have few colours)."""
    from PIL import Image
    with Image.open(path) as im:
        q = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                       dither=Image.Dither.NONE)
    q.save(path, "PNG", optimize=True)
    return path


THUMB_WIDTH = 512


def thumbnail(png: str, jpg: str, width: int = THUMB_WIDTH) -> str:
    """``png`` shrunk to ``width`` pixels wide as a JPEG (the templates browser's thumbnail)."""
    from PIL import Image
    with Image.open(png) as im:
        im = im.convert("RGB")
        im = im.resize((width, max(1, round(im.height * width / im.width))), Image.LANCZOS)
    im.save(jpg, "JPEG", quality=82, optimize=True)
    return jpg


def shoot_bind_report(app, workflow: dict, path: str) -> str:
    """Load ``workflow``, deliver an ``executed`` message with a report to its Bind node the
    way the server does, and screenshot the node."""
    app.load_workflow(workflow)
    bind_id = next(n["id"] for n in workflow["nodes"] if n["type"] == "LumosXBind")
    app.js("""([id, text]) => {
        const api = window.comfyAPI.api.api;
        api.dispatchEvent(new CustomEvent('executed', {detail: {node: String(id),
            display_node: String(id), output: {text: [text]}, prompt_id: 'docs'}}));
        const n = window.app.graph.getNodeById(id);
        const c = window.app.canvas, el = c.canvas;
        const w = el.clientWidth, h = el.clientHeight;
        const s = Math.min(1.3, (h - 40) / (n.size[1] + LiteGraph.NODE_TITLE_HEIGHT));
        c.ds.scale = s;
        c.ds.offset[0] = w / 2 / s - (n.pos[0] + n.size[0] / 2);
        c.ds.offset[1] = h / 2 / s - (n.pos[1] + (n.size[1] - LiteGraph.NODE_TITLE_HEIGHT) / 2);
        c.setDirty(true, true); c.draw(true, true);
    }""", [bind_id, SAMPLE_REPORT])
    app.page.wait_for_timeout(600)
    return app.screenshot(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=DOCS)
    ap.add_argument("--only", action="append",
                    help="only this workflow (name; repeatable), and no Bind report picture")
    args = ap.parse_args(argv)
    files = sorted(f for f in glob.glob(os.path.join(WORKFLOWS, "*.json"))
                   if (not args.only or os.path.basename(f)[:-5] in args.only))
    with tempfile.TemporaryDirectory(prefix="lumosx-shots-") as tmp:
        standin.demo_inputs(os.path.join(tmp, "input"), photos=False)
        host = frontend.start_host(tmp)
        try:
            with frontend.open_app(host.url, width=1800, height=1100) as app:
                app.hide_chrome()
                for path in files:
                    with open(path, encoding="utf-8") as f:
                        workflow = json.load(f)
                    app.load_workflow(workflow)
                    app.page.wait_for_timeout(800)  # image previews
                    app.frame()
                    name = os.path.splitext(os.path.basename(path))[0]
                    out = shrink_png(app.screenshot(
                        os.path.join(args.out, f"workflow_{name}.png")))
                    thumb = thumbnail(out, os.path.join(WORKFLOWS, name + ".jpg"))
                    print(f"wrote {os.path.relpath(out, ROOT)} and {os.path.relpath(thumb, ROOT)}")
                if not args.only:
                    app.page.set_viewport_size({"width": 1000, "height": 900})
                    sub = os.path.join(WORKFLOWS, "subject_consistent.json")
                    with open(sub, encoding="utf-8") as f:
                        out = shrink_png(shoot_bind_report(
                            app, json.load(f), os.path.join(args.out, "bind_report.png")))
                    print(f"wrote {os.path.relpath(out, ROOT)}")
                ours = app.errors(ours_only=True)
                if ours:
                    print("errors from the LumosX script:", *ours, sep="\n", file=sys.stderr)
                    return 1
        finally:
            host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
