#!/usr/bin/env bash
# Run every CPU benchmark at its default size and redraw the plot (a few minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$(python3 -I lumosx_core/cli/host.py python)}  # the default test host's
$PY benchmarks/bench_self_attention.py
$PY benchmarks/bench_cross_attention.py
$PY benchmarks/bench_step.py
$PY benchmarks/plot.py
