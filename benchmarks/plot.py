"""Plot how attention cost grows with references and resolution, from results/*.json.

    python benchmarks/plot.py [--results benchmarks/results] [--out docs/attention_cost.png]
"""
from __future__ import annotations

import argparse
import json
import os

import common  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=common.RESULTS)
    ap.add_argument("--out", default=os.path.join(common.ROOT, "docs", "attention_cost.png"))
    args = ap.parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(os.path.join(args.results, "self_attention.json")) as f:
        res = json.load(f)
    rows = res["rows"]
    base_grid = "{}x{}".format(*res["args"]["grid"])
    by_refs = sorted([r for r in rows if r["grid"] == base_grid], key=lambda r: r["refs"])
    by_size = sorted([r for r in rows if r["refs"] == res["args"]["headline_refs"]],
                     key=lambda r: r["L"])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    methods = [("unmasked", "one unmasked attention (stock)"), ("ours", "LumosX split attention"),
               ("dense", "dense L x L mask (naive port)")]
    for ax, data, key, xlabel in ((axes[0], by_refs, "refs", "reference images"),
                                  (axes[1], by_size, "L", "tokens (video + references)")):
        for m, label in methods:
            pts = [(r[key], r["time_s"][m]) for r in data if m in r["time_s"]]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("seconds per self-attention")
        ax.grid(alpha=0.3)
    axes[0].set_title(f"time vs references ({base_grid} grid, 21 frames)")
    axes[1].set_title(f"time vs size ({res['args']['headline_refs']} references)")
    axes[1].set_xscale("log")
    axes[1].set_yscale("log")
    axes[0].legend(fontsize=8)
    ax = axes[2]
    for m, label in methods:
        pts = [(r["L"], r["peak_bytes"][m] / 2 ** 20) for r in by_size
               if m in r.get("peak_bytes", {}) and r["peak_bytes"][m] > 0]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("tokens (video + references)")
    ax.set_ylabel("extra peak memory (MiB)")
    ax.set_title("peak memory vs size")
    ax.grid(alpha=0.3)
    m = res["machine"]
    fig.suptitle(f"Relational self-attention cost on {m.get('cpu_model', m['processor'])} "
                 f"({m['torch_threads']} threads), torch {m['torch']}", fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
