#!/usr/bin/env bash
# Run every benchmark and redraw the plot.
#   benchmarks/run_all.sh          CPU, reduced sizes (a few minutes on 2 idle cores); the
#                                  released-size block (bench_released.py) is separate: it
#                                  takes tens of minutes on 2 cores -- run it with nice.
#   benchmarks/run_all.sh --gpu    CUDA, bf16, the released size: 480x832, 81 frames, 9
#                                  references (L = 46,800) -- writes results/*_cuda_bf16.* and
#                                  *_cuda.* next to the CPU files, in the same format.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$(python3 -I lumosx_core/cli/host.py python)}  # the default test host's
if [[ "${1:-}" == "--gpu" ]]; then
    $PY -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "no CUDA device")'
    $PY benchmarks/bench_released.py --device cuda --dtype bf16            # 1 block: ours/Phantom/dense
    $PY benchmarks/bench_step.py --device cuda --dtype bf16 --full         # 30 blocks: whole step
    $PY benchmarks/bench_step.py --device cuda --dtype fp32 --full
    $PY benchmarks/bench_self_attention.py --device cuda --dtype bf16 --full
    $PY benchmarks/bench_cross_attention.py --device cuda --dtype bf16 --full
    exit 0
fi
$PY benchmarks/bench_self_attention.py
$PY benchmarks/bench_cross_attention.py
$PY benchmarks/bench_step.py
$PY benchmarks/bench_step.py --dtype bf16 --repeats 1
$PY benchmarks/plot.py
