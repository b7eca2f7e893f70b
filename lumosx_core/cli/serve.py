"""``lumosx serve``: start ComfyUI headless with this pack -- the repository's test host by
default, or your own ComfyUI (``--comfyui DIR``) -- through :class:`.host.Host`, the one
launcher (the tests and scripts use it too)."""
from __future__ import annotations

import argparse
import signal
import sys

from .host import Host, find_comfyui, free_port
from .run import EXIT_FAILED, EXIT_OK, EXIT_USAGE


def register(subparsers) -> None:
    serve = subparsers.add_parser(
        "serve", help="start ComfyUI (the test host, or yours) with this pack",
        description="Start ComfyUI headless with ComfyUI-LumosX. Without --comfyui: "
                    "$LUMOSX_COMFYUI, $COMFYUI_PATH, else the repository's test host "
                    "(.host/<version>/ComfyUI, `make host`). The pack is linked into custom_nodes unless "
                    "a copy is installed there already. Arguments after `--` go to ComfyUI.")
    serve.add_argument("--comfyui", metavar="DIR", help="your ComfyUI folder (with main.py)")
    serve.add_argument("--python", metavar="PY", help="interpreter for ComfyUI (default: the "
                       "test host's .venv, a venv next to ComfyUI, or this one)")
    serve.add_argument("--listen", default="127.0.0.1", help="address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8188, help="port (default 8188; 0 = any free)")
    serve.add_argument("--base-directory", metavar="DIR",
                       help="keep models/, input/, output/, custom_nodes/, user/ under DIR")
    serve.add_argument("--extra-pack", metavar="DIR", action="append", default=[],
                       help="also link this custom-node folder (repeatable)")
    dev = serve.add_mutually_exclusive_group()
    dev.add_argument("--cpu", action="store_true", help="force CPU (default: CPU only when "
                     "torch sees no GPU)")
    dev.add_argument("--gpu", action="store_true", help="never add --cpu")
    serve.add_argument("--timeout", type=float, default=300.0,
                       help="seconds to wait for start-up (default 300)")
    serve.add_argument("--dry-run", action="store_true",
                       help="print the command and link the pack, do not start")
    serve.add_argument("comfy_args", nargs=argparse.REMAINDER,
                       help="`-- ARGS...`: passed to ComfyUI's main.py")
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    try:
        comfy = find_comfyui(args.comfyui)
    except FileNotFoundError as e:
        print(f"lumosx serve: {e}", file=sys.stderr)
        return EXIT_USAGE
    extra = list(args.comfy_args or [])
    if extra and extra[0] == "--":
        extra = extra[1:]
    cpu = True if args.cpu else (False if args.gpu else None)
    host = Host(comfy, python=args.python, port=args.port or free_port(),
                listen=args.listen, base_directory=args.base_directory,
                extra_packs=args.extra_pack, cpu=cpu, extra_args=extra)
    try:
        host.prepare()
    except (OSError, FileNotFoundError) as e:
        print(f"lumosx serve: {e}", file=sys.stderr)
        return EXIT_USAGE
    cmd = host.command()
    print(f"lumosx serve: ComfyUI {comfy}", flush=True)
    print(f"lumosx serve: pack {host.pack_entry}", flush=True)
    print("lumosx serve: " + " ".join(cmd), flush=True)
    if args.dry_run:
        return EXIT_OK

    def stop_on_term(signum, frame):  # `kill` / a supervisor: stop ComfyUI with us
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_term)
    host.start(wait=False)
    try:
        host.wait_ready(args.timeout)
        print(f"lumosx serve: ready at {host.url} (Ctrl-C stops it)\n"
              f"lumosx serve: try  lumosx run workflows/api/subject_consistent.api.json "
              f"--server {host.url}", flush=True)
        return host.proc.wait()
    except RuntimeError as e:
        print(f"lumosx serve: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        host.stop()
