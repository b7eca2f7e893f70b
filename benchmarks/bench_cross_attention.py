"""Cross-attention with the relational text bias vs the plain (unbiased) text
cross-attention over the same queries: the bias's own cost, per image chunk.

    python benchmarks/bench_cross_attention.py
    python benchmarks/bench_cross_attention.py --device cuda --dtype bf16 --full
    python benchmarks/bench_cross_attention.py --smoke --out /tmp/x
"""
from __future__ import annotations

import argparse

import common
import torch

from lumosx_core import relational_cross_attention, text_weights  # noqa: E402
from lumosx_core.relational.attention import sdpa_attention  # noqa: E402
from bench_self_attention import DTYPES, layout_for  # noqa: E402


def run(args):
    dtype = DTYPES[args.dtype]
    rows = []
    for n in args.refs:
        layout = layout_for(n)
        gh, gw = args.grid
        P = gh * gw
        L = layout.sequence_length(args.frames, P)
        C = args.heads * args.head_dim
        g = torch.Generator().manual_seed(n)
        q = torch.randn(1, L, C, generator=g).to(args.device, dtype)
        k = torch.randn(1, args.text_len, C, generator=g).to(args.device, dtype)
        v = torch.randn(1, args.text_len, C, generator=g).to(args.device, dtype)
        masks = torch.zeros(1, layout.num_images, args.text_len, dtype=torch.bool)
        for i in range(layout.num_images):
            masks[0, i, 4 + 3 * i: 6 + 3 * i] = True
        w = text_weights(layout, masks).to(args.device)
        fns = {
            "biased": lambda: relational_cross_attention(q, k, v, args.heads, layout,
                                                         args.frames, gh, gw, w, 0.5, True),
            "plain": lambda: sdpa_attention(q, k, v, args.heads),
        }
        t = common.time_alternating(fns, args.repeats, args.device)
        row = {"refs": n, "L": L, "time_s": {k_: x["median_s"] for k_, x in t.items()}}
        row["overhead"] = row["time_s"]["biased"] / row["time_s"]["plain"] - 1
        rows.append(row)
        print(f"refs {n:2d} L {L}: biased/plain {1 + row['overhead']:.3f}", flush=True)
    return {"rows": rows}


def report(res, args):
    head = ["refs", "L", "biased s", "plain s", "overhead of the cross-attention"]
    rows = [[r["refs"], r["L"], r["time_s"]["biased"], r["time_s"]["plain"],
             f"{100 * r['overhead']:.1f}%"] for r in res["rows"]]
    return (f"Text cross-attention, {args.frames} frames, {args.grid[0]}x{args.grid[1]} grid, "
            f"{args.heads} heads x {args.head_dim}, {args.text_len} text tokens, {args.dtype} on "
            f"{args.device}; median of {args.repeats}. The bias touches only the condition "
            f"queries (one image at a time); its cost relative to a whole block is in "
            f"step.md.\n\n" + common.md_table(head, rows))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32", choices=sorted(DTYPES))
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--frames", type=int, default=21)
    ap.add_argument("--grid", type=int, nargs=2, default=[15, 26])
    ap.add_argument("--text-len", type=int, default=512)
    ap.add_argument("--refs", type=int, nargs="+", default=[1, 3, 6, 9, 12])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--out", default=common.RESULTS)
    args = ap.parse_args(argv)
    if args.full:
        args.grid = [30, 52]
    if args.smoke:
        args.heads, args.head_dim, args.frames, args.grid = 2, 16, 2, [3, 4]
        args.text_len, args.refs, args.repeats = 16, [3], 1
    res = run(args)
    md = common.finish("cross_attention", res, args, report(res, args))
    print(f"wrote {md}")
    return res


if __name__ == "__main__":
    main()
