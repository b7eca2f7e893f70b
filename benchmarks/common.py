"""Shared benchmark plumbing: alternating timed runs, peak memory (allocator-exact on both CPU
and CUDA, plus peak RSS in a fresh process as a cross-check), machine facts, and writing
JSON + markdown results."""
from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")


def setup_paths(need_comfy: bool = False, pytorch_attention: bool = False) -> None:
    """When asked, make ComfyUI (the ComfyUI under test, see ``lumosx_core.cli.host``)
    importable in CPU-or-GPU mode. ``lumosx_core`` comes from the installed package (``make
    host`` installs this checkout editable); this folder is on ``sys.path`` as the scripts' own.
    ``pytorch_attention``: make ComfyUI use PyTorch SDPA (its default on NVIDIA/AMD GPUs; on
    the CPU it otherwise picks the sub-quadratic attention, whose score chunks are sized to
    the free memory)."""
    if need_comfy:
        from lumosx_core.cli.host import import_comfyui
        import_comfyui()
        from comfy.cli_args import args
        if pytorch_attention:
            args.use_pytorch_cross_attention = True


def add_model_args(ap, dtypes, layers: int, grid, heads: int = 12) -> None:
    """The options every benchmark of a Wan-shaped DiT takes: device, dtype and the model's
    size (the released widths by default), ``layers`` blocks, ``--frames`` latent frames on a
    ``grid`` of tokens."""
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32", choices=sorted(dtypes))
    ap.add_argument("--dim", type=int, default=1536)
    ap.add_argument("--heads", type=int, default=heads)
    ap.add_argument("--ffn", type=int, default=8960)
    ap.add_argument("--text-dim", type=int, default=4096)
    ap.add_argument("--layers", type=int, default=layers)
    ap.add_argument("--frames", type=int, default=21)
    ap.add_argument("--grid", type=int, nargs=2, default=list(grid), help="token grid Hp Wp")


def attention_backend() -> str:
    """Name of the attention function ComfyUI picked (after ``setup_paths(need_comfy=True)``)."""
    import comfy.ldm.modules.attention as a
    return getattr(a.optimized_attention, "__name__", str(a.optimized_attention))


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch
        torch.cuda.synchronize()


def time_alternating(fns: Dict[str, Callable[[], object]], repeats: int, device: str = "cpu",
                     warmup: int = 1) -> Dict[str, dict]:
    """Run every function ``warmup`` times, then ``repeats`` rounds in which each runs once
    (alternating, so drift hits all alike). Returns median/min/all seconds per name."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
            sync(device)
    times: Dict[str, List[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    return {k: {"median_s": statistics.median(v), "min_s": min(v), "runs_s": v}
            for k, v in times.items()}


def peak_rss_of(code: str, timeout: float = 900.0) -> dict:
    """Run ``code`` in a fresh Python; it must print one JSON line and may call
    ``mark()`` (defined for it) right before the measured work. Returns that JSON plus
    ``extra_peak_bytes``: the growth of the process's peak resident memory after mark()."""
    prelude = (
        "import json, resource, sys\n"
        "_MARK = [0]\n"
        "def _status(key):\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith(key):\n"
        "            return int(line.split()[1]) * 1024\n"
        "def mark():\n"
        "    # reset the peak-RSS high-water mark to the current RSS (Linux clear_refs 5)\n"
        "    try:\n"
        "        open('/proc/self/clear_refs', 'w').write('5')\n"
        "        _MARK[0] = _status('VmRSS:')\n"
        "    except OSError:\n"
        "        _MARK[0] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
        "def peak():\n"
        "    hwm = _status('VmHWM:')\n"
        "    if hwm is None:\n"
        "        hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
        "    return hwm - _MARK[0]\n")
    r = subprocess.run([sys.executable, "-c", prelude + code], cwd=HERE, capture_output=True,
                       text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-3000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


#: How :func:`peak_allocated` measures, written into the results.
PEAK_METHOD = {
    "cpu": "peak of the running sum of every allocation and free that PyTorch's CPU allocator "
           "(c10) reports to torch.profiler (profile_memory=True), above the bytes live when the "
           "measured call starts; exact for tensor storage, excludes oneDNN/MKL-internal scratch",
    "cuda": "torch.cuda.max_memory_allocated() - memory_allocated() after "
            "reset_peak_memory_stats(), with synchronize() before and after",
}


def _cpu_allocation_events(prof) -> List[tuple]:
    """(time_ns, signed bytes) of every CPU allocation/free the profiler saw, in time order."""
    from torch._C._profiler import _EventType
    out = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        if node.tag == _EventType.Allocation:
            ef = node.extra_fields
            if str(ef.device).startswith("cpu"):
                out.append((node.start_time_ns, int(ef.alloc_size)))
        stack.extend(node.children)
    out.sort()
    return out


def peak_allocated(fn: Callable[[], object], device: str = "cpu") -> dict:
    """Run ``fn`` once and return ``{"peak_bytes": ..., "method": ...}``: the largest number of
    bytes allocated at any moment during the call beyond what was live when it started
    (tensors ``fn`` frees that existed before count negatively, its result stays counted)."""
    import torch
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        result = fn()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
        del result
        return {"peak_bytes": int(peak), "method": PEAK_METHOD["cuda"]}
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
    del result
    cur = peak = 0
    for _, size in _cpu_allocation_events(prof):
        cur += size
        peak = max(peak, cur)
    return {"peak_bytes": int(peak), "method": PEAK_METHOD["cpu"]}


_RSS_MARK = [0]


def _proc_status(key: str):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def rss_mark() -> None:
    """Reset this process's peak-RSS high-water mark to its current RSS (Linux clear_refs 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        _RSS_MARK[0] = _proc_status("VmRSS:") or 0
    except OSError:
        _RSS_MARK[0] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def rss_peak_since_mark() -> int:
    """Growth of the peak RSS since :func:`rss_mark` (whole pages; includes library scratch)."""
    hwm = _proc_status("VmHWM:")
    if hwm is None:
        hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return int(hwm - _RSS_MARK[0])


def mem_available_bytes() -> int:
    """MemAvailable from /proc/meminfo (0 when unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def machine() -> dict:
    import torch
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def write_results(name: str, payload: dict, table: str, out_dir: str = RESULTS) -> str:
    os.makedirs(out_dir, exist_ok=True)
    payload = dict(payload, machine=machine(), written=time.strftime("%Y-%m-%d %H:%M:%S"))
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(payload, f, indent=2)
    md = os.path.join(out_dir, f"{name}.md")
    with open(md, "w") as f:
        m = payload["machine"]
        f.write(f"# {name}\n\nMachine: {m.get('cpu_model', m['processor'])}, "
                f"{m['cpu_count']} cores ({m['torch_threads']} torch threads)"
                + (f", GPU {m['gpu']}" if m.get("gpu") else "") +
                f"; torch {m['torch']}; Python {m['python']}; written {payload['written']}.\n\n")
        f.write(table.rstrip() + "\n")
    return md


def md_table(headers: List[str], rows: List[List[object]]) -> str:
    def fmt(x):
        if isinstance(x, float):
            return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"
        return str(x)
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def finish(name: str, res: dict, args, table: str) -> str:
    """Record the arguments with the results and write ``<name>[_cuda].json/.md``."""
    res["args"] = {k: (list(v) if isinstance(v, (list, tuple)) else v)
                   for k, v in vars(args).items()}
    if args.device != "cpu":
        name += "_" + args.device.split(":")[0]
    if getattr(args, "dtype", "fp32") != "fp32" and getattr(args, "dtype_suffix", False):
        name += "_" + args.dtype
    return write_results(name, res, table, args.out)
