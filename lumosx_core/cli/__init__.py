"""The ``lumosx`` command line.

Subcommands live in their own modules, each exposing ``register(subparsers)`` that adds its
parser and sets ``func`` (called with the parsed args, returning the exit code):

* ``lumosx serve`` -- :mod:`lumosx_core.cli.serve` (start ComfyUI with this pack);
* ``lumosx run`` -- :mod:`lumosx_core.cli.run` (queue workflows through ComfyUI's HTTP API);
* ``lumosx eval`` -- :mod:`lumosx_core.cli.eval_cmd` (identity and binding scores);
* ``lumosx models`` -- :mod:`lumosx_core.cli.models` (the model files: status, get);
* ``lumosx demo`` -- :mod:`lumosx_core.cli.demo_cmd` (a ComfyUI made ready for the shipped
  workflows: their pictures, and one of them run there).

No ComfyUI import: the commands talk to a server, a model hub or work on files.
"""
from __future__ import annotations

import argparse
import sys

from . import demo_cmd, eval_cmd, models, run, serve


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lumosx", description="ComfyUI-LumosX: run workflows on ComfyUI servers, score "
                                   "generated videos, fetch the model files.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in (serve, run, eval_cmd, models, demo_cmd):   # their optional libraries are imported when a command runs
        mod.register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
