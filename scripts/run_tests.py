#!/usr/bin/env python3
"""``make test``: build the test hosts, then run the suite on every ComfyUI we test.

* the whole suite on the newest test host (ComfyUI 0.33.0 when ``../shared/hosts`` has it, else
  0.3.75);
* on every other test host, the tests marked ``host_matrix``: the server, the shipped
  workflows end to end (``/prompt`` and ``lumosx run``, UI and API format), the UI -> API
  converter against the host's own ``/object_info``, the CLI and the browser load test;
* with ``--comfyui DIR`` (``make test COMFYUI=DIR``) instead: the whole suite on YOUR ComfyUI
  folder, run by a test environment that sees that install's packages and adds only the test
  requirements (``scripts/build_host.sh --comfyui DIR``; nothing is installed into your Python).

Arguments after ``--`` go to pytest (``make test PYTEST_ARGS="-k workflow -x"``). Standard
library only: run it with any Python 3 (``python3.11 scripts/run_tests.py``). Where the hosts
live is decided by ``lumosx_core/cli/host.py`` (asked here, not repeated).
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MATRIX_MARKER = "host_matrix"


HOST_PY = os.path.join(ROOT, "lumosx_core", "cli", "host.py")


def ask_layout(*args: str) -> str:
    """The answer of ``python3 -I lumosx_core/cli/host.py ARGS`` (the layout part of that module
    is standard library only; run as a script it imports neither torch nor the package)."""
    r = subprocess.run([sys.executable, "-I", HOST_PY, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"run_tests: {HOST_PY} {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout


def built_hosts():
    """``[(version, comfyui, python)]`` of the built test hosts, newest first."""
    return [tuple(line.split("\t")) for line in ask_layout("list").splitlines() if line]


def plan(args, hosts):
    """``[(label, python, comfyui, only_matrix)]``: what to run, in order."""
    if args.comfyui:
        own = {}
        for line in ask_layout("own", args.comfyui).splitlines():   # NAME=shell-quoted value
            name, value = line.split("=", 1)
            own[name] = "".join(shlex.split(value))
        comfy, py = own["COMFY"], os.path.join(own["OWN_VENV"], "bin", "python")
        version = own.get("VERSION") or "unknown version"
        return [(f"your ComfyUI {version} ({comfy})", py, comfy, False)]
    if not hosts:
        raise SystemExit("run_tests: no test host is built (scripts/build_host.sh failed?)")
    (version, comfy, python), rest = hosts[0], hosts[1:]
    runs = [(f"ComfyUI {version}", python, comfy, False)]
    runs += [(f"ComfyUI {v}", py, c, True) for v, c, py in rest]
    return runs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--comfyui", metavar="DIR", help="test your own ComfyUI folder instead")
    ap.add_argument("--no-build", action="store_true", help="do not (re)build the hosts first")
    ap.add_argument("--only-newest", action="store_true",
                    help="skip the other hosts' host_matrix runs")
    ap.add_argument("pytest_args", nargs=argparse.REMAINDER, help="-- then pytest arguments")
    args = ap.parse_args(argv)
    pytest_args = list(args.pytest_args)
    if pytest_args[:1] == ["--"]:
        pytest_args = pytest_args[1:]
    if args.comfyui:
        args.comfyui = os.path.abspath(os.path.expanduser(args.comfyui))

    if not args.no_build:
        cmd = ["bash", os.path.join(ROOT, "scripts", "build_host.sh")]
        if args.comfyui:
            cmd += ["--comfyui", args.comfyui]
        t0 = time.time()
        if subprocess.call(cmd, cwd=ROOT) != 0:
            print("run_tests: building the test host failed", file=sys.stderr)
            return 2
        print(f"run_tests: hosts built in {time.time() - t0:.0f} s", flush=True)

    hosts = built_hosts()
    if os.environ.get("LUMOSX_HOST"):  # one named host: the whole suite there
        hosts = [h for h in hosts if h[0] == os.environ["LUMOSX_HOST"]]
    runs = plan(args, hosts)
    if args.only_newest:
        runs = runs[:1]

    results = []
    for i, (label, python, comfy, only_matrix) in enumerate(runs):
        what = f"tests marked {MATRIX_MARKER}" if only_matrix else "the whole suite"
        print(f"\n=== {label}: {what} ===", flush=True)
        env = dict(os.environ, LUMOSX_COMFYUI=comfy, LUMOSX_PYTHON=python)
        if i > 0:  # keep the first run's screenshots where docs/development.md says they are
            base = os.environ.get("LUMOSX_ARTIFACTS",
                                  os.path.join(ROOT, "output", "test-artifacts"))
            env["LUMOSX_ARTIFACTS"] = os.path.join(base, label.split(" (")[0].replace(" ", "-"))
        cmd = [python, "-P", "-m", "pytest", "tests"]  # -P: the root never on sys.path
        if only_matrix:
            cmd += ["-m", MATRIX_MARKER]
        t0 = time.time()
        rc = subprocess.call(cmd + pytest_args, cwd=ROOT, env=env)
        results.append((label, what, rc, time.time() - t0))

    print("\n=== summary ===")
    for label, what, rc, seconds in results:
        state = "passed" if rc == 0 else f"FAILED (pytest exit {rc})"
        print(f"{label}, {what}: {state} in {seconds / 60:.1f} min")
    return 0 if all(rc == 0 for _, _, rc, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
