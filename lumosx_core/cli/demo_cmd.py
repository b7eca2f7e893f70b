"""``lumosx demo --comfyui DIR``: make a ComfyUI ready for the shipped workflows and show that
they run there -- one command on the user's own ComfyUI.

It runs the pack's ``scripts/demo.py`` on that ComfyUI's own Python (torch, insightface): the
pictures the workflows load go into ``DIR/input/`` (faces cropped from insightface's sample
photo, the rest drawn), then the shipped subject-consistent workflow is queued on a headless
server of that ComfyUI -- with the real weights when ``DIR/models`` has them (``lumosx models
get``), else on small generated stand-in models (the video is noise; it proves every node
runs). ``--pictures-only`` stops after the pictures. Needs the pack's folder (a git clone or a
Manager install), which holds ``scripts/``.
"""
from __future__ import annotations

import os
import subprocess

from .host import find_comfyui, find_python, pack_root


def register(subparsers) -> None:
    demo = subparsers.add_parser(
        "demo", help="put the shipped workflows' pictures into a ComfyUI and run one there",
        description=__doc__.split("\n\n")[0].replace("``", ""))
    demo.add_argument("--comfyui", metavar="DIR", required=True,
                      help="your ComfyUI folder (with main.py): pictures go to DIR/input/")
    demo.add_argument("--pictures-only", action="store_true",
                      help="only put the pictures into DIR/input/; run nothing")
    demo.add_argument("--standin", action="store_true",
                      help="stand-in models even when the real ones are in DIR/models")
    demo.add_argument("--python", metavar="PY", help="interpreter for ComfyUI (default: the "
                      "one next to it: venv/, .venv/, the portable build's)")
    demo.add_argument("--out", metavar="DIR", help="where the video and preview go "
                      "(default: output/ in the pack folder)")
    demo.add_argument("--base-dir", metavar="DIR", help="the demo server's base directory "
                      "(default .host/demo in the pack folder)")
    demo.add_argument("--timeout", type=float, default=0.0,
                      help="give up after this many seconds of rendering (default: never)")
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    root = pack_root()
    if root is None:
        print("lumosx demo: needs the ComfyUI-LumosX pack folder (a git clone or a Manager "
              "install, with scripts/); this lumosx is installed without it")
        return 2
    try:
        comfy = find_comfyui(args.comfyui)
    except FileNotFoundError as e:
        print(f"lumosx demo: {e}")
        return 2
    cmd = [find_python(comfy, args.python), os.path.join(root, "scripts", "demo.py"),
           "--comfyui", comfy]
    for flag in ("pictures_only", "standin"):
        if getattr(args, flag):
            cmd.append("--" + flag.replace("_", "-"))
    for opt in ("out", "base_dir"):
        if getattr(args, opt):
            cmd += ["--" + opt.replace("_", "-"), os.path.abspath(getattr(args, opt))]
    if args.timeout:
        cmd += ["--timeout", str(args.timeout)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [root] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
    return subprocess.call(cmd, cwd=root, env=env)
