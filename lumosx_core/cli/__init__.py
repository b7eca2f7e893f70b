"""The ``lumosx`` command line.

Subcommands live in their own modules, each exposing ``register(subparsers)`` that adds its
parser and sets ``func`` (called with the parsed args, returning the exit code):

* ``lumosx serve`` / ``lumosx run`` -- :mod:`lumosx_core.cli.run` (ComfyUI HTTP API);
* ``lumosx eval`` -- :mod:`lumosx_core.cli.eval_cmd` (identity and binding scores).

No ComfyUI import: the commands talk to a server or work on files.
"""
from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMAND_MODULES = ("run", "eval_cmd")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lumosx", description="ComfyUI-LumosX: run workflows on ComfyUI servers, score "
                                   "generated videos.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            mod = importlib.import_module(f"{__name__}.{name}")
        except ImportError as e:  # an optional dependency is missing: say so on use
            p = sub.add_parser(name, help=f"(unavailable: {e})")
            p.set_defaults(func=lambda args, e=e: _unavailable(e))
            continue
        mod.register(sub)
    return parser


def _unavailable(e) -> int:
    print(f"lumosx: this command is unavailable: {e}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
