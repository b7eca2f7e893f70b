"""Self-attention: LumosX split attention ("ours") vs one unmasked attention over the same
tokens ("unmasked", what stock Wan/Phantom computes) vs the naive dense L x L mask ("dense").

Sweeps the number of references (1-12) at a fixed token grid and the token grid at 9
references; time is the median of alternating repeats in one process, peak memory is measured
in a fresh process per method (CPU: growth of peak RSS; CUDA: max_memory_allocated).

    python benchmarks/bench_self_attention.py            # CPU sweep, results/ files
    python benchmarks/bench_self_attention.py --device cuda --dtype bf16 --full   # GPU size
    python benchmarks/bench_self_attention.py --smoke --out /tmp/x                # CI smoke
"""
from __future__ import annotations

import argparse
import json

import common
import torch

from lumosx_core import ConditionLayout, relational_self_attention  # noqa: E402
from lumosx_core.relational.attention import sdpa_attention  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def layout_for(n_refs: int) -> ConditionLayout:
    """n references as people of a face + two attributes each (the remainder as one more,
    smaller person): 9 -> [3, 3, 3], the paper's busiest setting."""
    groups = [3] * (n_refs // 3) + ([n_refs % 3] if n_refs % 3 else [])
    return ConditionLayout(0, groups)


def dense_self_mask(layout: ConditionLayout, frames: int, P: int) -> torch.Tensor:
    """The naive competitor: the same attention rule as one materialised bool ``[L, L]`` mask
    (video queries see everything, every condition block only itself), built from the
    layout's blocks. The tests' independent oracle is ``tests/oracle.py``."""
    blocks = layout.blocks(frames, P)
    L = blocks[-1].stop
    mask = torch.zeros(L, L, dtype=torch.bool)
    mask[:blocks[0].stop] = True
    for b in blocks[1:]:
        mask[b.start:b.stop, b.start:b.stop] = True
    return mask


def make_qkv(L, heads, d, device, dtype, seed=0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    return [torch.randn(1, L, heads * d, generator=g).to(device=device, dtype=dtype)
            for _ in range(3)]


def methods(q, k, v, heads, layout, frames, P, with_dense=True):
    fns = {
        "ours": lambda: relational_self_attention(q, k, v, heads, layout, frames, P),
        "unmasked": lambda: sdpa_attention(q, k, v, heads),
    }
    if with_dense:
        mask = dense_self_mask(layout, frames, P).to(q.device)

        def dense():
            qh, kh, vh = (t.view(1, -1, heads, t.shape[-1] // heads).transpose(1, 2)
                          for t in (q, k, v))
            out = torch.nn.functional.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask)
            return out.transpose(1, 2).reshape(1, -1, q.shape[-1])
        fns["dense"] = dense
    return fns


MEM_CODE = """
import torch, json
import bench_self_attention as B
cfg = json.loads({cfg!r})
dtype = B.DTYPES[cfg["dtype"]]
layout = B.layout_for(cfg["refs"])
L = layout.sequence_length(cfg["frames"], cfg["P"])
q, k, v = B.make_qkv(L, cfg["heads"], cfg["d"], cfg["device"], dtype)
fn = B.methods(q, k, v, cfg["heads"], layout, cfg["frames"], cfg["P"], cfg["method"] == "dense")[cfg["method"]]
if cfg["device"].startswith("cuda"):
    fn(); torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    out = fn(); torch.cuda.synchronize()
    print(json.dumps({{"extra_peak_bytes": torch.cuda.max_memory_allocated() - base}}))
else:
    small = B.make_qkv(64, cfg["heads"], cfg["d"], "cpu", dtype)
    B.methods(*small, cfg["heads"], B.ConditionLayout(0, [1]), 1, 32, False)["ours"]()
    mark()
    out = fn()
    print(json.dumps({{"extra_peak_bytes": peak()}}))
"""


def peak_memory(cfg: dict) -> int:
    if cfg["device"].startswith("cuda"):
        # same process is fine on CUDA: the allocator reports the peak exactly
        code = MEM_CODE.format(cfg=json.dumps(cfg)).replace("mark()", "pass")
    else:
        code = MEM_CODE.format(cfg=json.dumps(cfg))
    return common.peak_rss_of(code)["extra_peak_bytes"]


def run(args) -> dict:
    dtype = DTYPES[args.dtype]
    rows = []
    configs = [(args.grid[0], args.grid[1], n) for n in args.refs]
    configs += [(h, w, args.headline_refs) for h, w in args.grids
                if (h, w) != tuple(args.grid)]
    for (gh, gw, n) in configs:
        P = gh * gw
        layout = layout_for(n)
        L = layout.sequence_length(args.frames, P)
        with_dense = L <= args.dense_max_tokens
        q, k, v = make_qkv(L, args.heads, args.head_dim, args.device, dtype)
        t = common.time_alternating(methods(q, k, v, args.heads, layout, args.frames, P,
                                            with_dense), args.repeats, args.device)
        row = {"grid": f"{gh}x{gw}", "tokens_per_frame": P, "refs": n, "groups": list(layout.groups),
               "L": L, "video_tokens": args.frames * P,
               "flop_ratio_ours_unmasked": (args.frames * P * L + sum(b.size ** 2 for b in
                                            layout.condition_blocks(args.frames, P))) / L ** 2,
               "time_s": {m: t[m]["median_s"] for m in t}}
        row["time_ratio_ours_unmasked"] = row["time_s"]["ours"] / row["time_s"]["unmasked"]
        if with_dense:
            row["time_ratio_ours_dense"] = row["time_s"]["ours"] / row["time_s"]["dense"]
        if not args.no_memory:
            mem = {}
            for m in t:
                cfg = dict(device=args.device, dtype=args.dtype, refs=n, frames=args.frames,
                           P=P, heads=args.heads, d=args.head_dim, method=m)
                mem[m] = peak_memory(cfg)
            row["peak_bytes"] = mem
            if mem["unmasked"] > 0:   # RSS grows by whole pages: tiny runs may read 0
                row["mem_ratio_ours_unmasked"] = mem["ours"] / mem["unmasked"]
            if with_dense and mem["dense"] > 0:
                row["mem_ratio_ours_dense"] = mem["ours"] / mem["dense"]
        rows.append(row)
        print(f"grid {gh}x{gw} refs {n:2d} L {L:6d}: ours/unmasked "
              f"{row['time_ratio_ours_unmasked']:.3f}"
              + (f", ours/dense {row['time_ratio_ours_dense']:.3f}" if with_dense else "")
              + (f", mem ours/unmasked {row['mem_ratio_ours_unmasked']:.3f}"
                 if "mem_ratio_ours_unmasked" in row else ""), flush=True)
        del q, k, v
    return {"rows": rows}


def report(res: dict, args) -> str:
    head = ["grid", "refs", "L", "FLOP ratio", "ours s", "unmasked s", "dense s",
            "ours/unmasked", "ours/dense", "mem ours/unmasked", "mem ours/dense", "peak ours MB"]
    rows = []
    for r in res["rows"]:
        pb = r.get("peak_bytes", {})
        rows.append([r["grid"], r["refs"], r["L"], r["flop_ratio_ours_unmasked"],
                     r["time_s"]["ours"], r["time_s"]["unmasked"], r["time_s"].get("dense", "-"),
                     r["time_ratio_ours_unmasked"], r.get("time_ratio_ours_dense", "-"),
                     r.get("mem_ratio_ours_unmasked", "-"), r.get("mem_ratio_ours_dense", "-"),
                     pb.get("ours", 0) / 2 ** 20 if pb else "-"])
    text = (f"Self-attention, {args.frames} video frames, {args.heads} heads x {args.head_dim}, "
            f"{args.dtype} on {args.device}; median of {args.repeats} alternating repeats. "
            f"FLOP ratio = ours/unmasked attention FLOPs.\n\n" + common.md_table(head, rows))
    return text + "\n\n" + targets_text(res, args)


def targets_text(res: dict, args) -> str:
    head = [r for r in res["rows"] if r["refs"] == args.headline_refs
            and r["grid"] == f"{args.grid[0]}x{args.grid[1]}"]
    if not head:
        return ""
    r = head[0]
    lines = [f"## Targets at {args.headline_refs} references ({r['grid']} grid, L = {r['L']})", ""]

    def check(name, value, limit):
        if value == "-" or value is None:
            lines.append(f"- {name}: not measured")
            return
        ok = value <= limit
        lines.append(f"- {name}: {value:.3f} (target <= {limit}) -> "
                     + ("met" if ok else f"MISSED by {value - limit:.3f}"))
    check("time ours/unmasked", r["time_ratio_ours_unmasked"], 0.8)
    check("time ours/dense", r.get("time_ratio_ours_dense"), 0.5)
    check("peak memory ours/unmasked", r.get("mem_ratio_ours_unmasked"), 1.1)
    mem = r.get("mem_ratio_ours_unmasked")
    if mem is not None and mem > 1.1:
        lines += ["", "Why the memory ratio misses 1.1: the unmasked attention's only allocation is "
                  "its output (PyTorch's CPU kernel writes it in the head-merged layout, so no "
                  "copy). Ours must produce the same single [B, L, C] tensor from several calls, "
                  "and SDPA has no out= argument: the video part's output and the assembled "
                  "sequence coexist for a moment, about twice one output. This is O(L*C) -- a "
                  "few MB here -- against the dense version's O(L^2) mask (see mem ours/dense). "
                  "Reordering the calls and assembling with one concatenation measured no better."]
    dense = r.get("time_ratio_ours_dense")
    if dense is not None and dense > 0.5 and not args.device.startswith("cuda"):
        unm = r["time_s"]["dense"] / r["time_s"]["unmasked"]
        lines += ["", "Why ours/dense misses 0.5 here: on the CPU, PyTorch's fused SDPA kernel "
                  "takes an arbitrary L x L mask at almost no extra cost (dense/unmasked = "
                  f"{unm:.2f} in this run), so the dense version costs about what the unmasked "
                  "attention costs and ours/dense is bounded by ours/unmasked (~ the FLOP ratio "
                  f"{r['flop_ratio_ours_unmasked']:.2f} plus per-block overhead). What the "
                  "dense mask costs on the CPU is memory (see the memory columns: it grows "
                  "with L^2). On GPUs an arbitrary mask rules out the flash/sage kernels, which "
                  "is where the time gap opens: measure with --device cuda --full."]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32", choices=sorted(DTYPES))
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--frames", type=int, default=21)
    ap.add_argument("--grid", type=int, nargs=2, default=[8, 12], help="token grid Hp Wp")
    ap.add_argument("--grids", type=str, default="4x6,8x12,12x18,15x26",
                    help="token grids for the size sweep at --headline-refs")
    ap.add_argument("--refs", type=int, nargs="+", default=[1, 3, 6, 9, 12])
    ap.add_argument("--headline-refs", type=int, default=9)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dense-max-tokens", type=int, default=12000)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--full", action="store_true",
                    help="the released size: 12 heads, 30x52 grid (480x832), 21 frames")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    ap.add_argument("--out", default=common.RESULTS)
    args = ap.parse_args(argv)
    if args.full:
        args.heads, args.grid, args.grids = 12, [30, 52], "30x52"
        args.dense_max_tokens = 10 ** 9 if args.device.startswith("cuda") else 0
    if args.smoke:
        args.heads, args.head_dim, args.frames, args.grid = 1, 16, 3, [2, 3]
        args.grids, args.refs, args.repeats, args.headline_refs = "2x3", [9], 1, 9
    args.grids = [tuple(int(x) for x in g.split("x")) for g in args.grids.split(",")]
    torch.manual_seed(0)
    res = run(args)
    md = common.finish("self_attention", res, args, report(res, args))
    print(f"wrote {md}")
    return res


if __name__ == "__main__":
    main()
