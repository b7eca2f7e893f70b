"""One denoising step of a Wan-shaped DiT (ComfyUI's own WanModel): LumosX ("ours") vs
ComfyUI's stock Phantom forward (``time_dim_concat``, same number of tokens, no relational
features) vs no references -- time and whole-step peak allocated memory -- the cost of the
relational text bias inside a block, and the LumosX set-up outside the blocks per step
(before/after the per-run cache).

CPU default: the real width (dim 1536, 12 heads of 128, ffn 8960, text 512 tokens), 21 latent
frames and 9 references at a reduced token grid, a few blocks. ``--full`` is the released
size (30 blocks, 480x832 -> 30x52 grid, bf16) for a GPU.

    python benchmarks/bench_step.py
    python benchmarks/bench_step.py --device cuda --dtype bf16 --full
    python benchmarks/bench_step.py --dtype bf16        # writes step_bf16.json/.md
    python benchmarks/bench_step.py --smoke --out /tmp/x

Peak memory: ``common.peak_allocated`` (CPU: every allocation/free PyTorch's allocator reports
to torch.profiler; CUDA: max_memory_allocated), one cold call per variant -- "ours" builds
its whole set-up inside the measured call, as on a run's first step.
"""
from __future__ import annotations

import argparse
import os
import sys

import common  # noqa: E402

common.setup_paths(need_comfy=True, pytorch_attention="--pytorch-attention" in sys.argv)

import torch  # noqa: E402

from lumosx_core import relational_forward  # noqa: E402
from lumosx_core.relational.cross_attention import biased_images, cell_index, text_weights  # noqa: E402
from lumosx_core.relational.forward import (RelationalCache, RelationalConfig,  # noqa: E402
                                            forward_setup, prepare_phrase_masks)
from lumosx_core.relational.positions import position_ids, rope_freqs  # noqa: E402
from lumosx_core.relational.self_attention import self_attention_plan  # noqa: E402
from bench_self_attention import DTYPES, layout_for  # noqa: E402


def setup_fns(model, layout, T, Hp, Wp, B, context_len, masks, dev, layers):
    """The LumosX work outside the transformer blocks of one step, three ways:

    * ``before``: what every step built before the per-run cache: RoPE table of the relational
      positions, phrase masks and text weights once, then in every block the self-attention
      gather indices, one cell index per image and a device->host read of the biased flags;
    * ``first_step``: :func:`forward_setup` with an empty cache (a run's first step);
    * ``cached``: :func:`forward_setup` with the run's cache (every later step).
    """
    n_c = layout.num_images

    def before():
        rope_freqs(model, position_ids(layout, T, Hp, Wp, True), device=dev)
        w = text_weights(layout, prepare_phrase_masks(masks, layout, B, context_len, dev))
        for _ in range(layers):
            self_attention_plan(layout, T, Hp * Wp, dev)
            for _ in range(n_c):
                cell_index(Hp, Wp, True, device=dev)
            biased_images(w)

    def setup(cache):
        return forward_setup(model, RelationalConfig(layout), T, Hp, Wp, B, context_len, masks,
                             dev, cache=cache)

    run_cache = RelationalCache()
    setup(run_cache)
    return {"before": before, "first_step": lambda: setup(RelationalCache()),
            "cached": lambda: setup(run_cache)}


def make_model(dim, heads, ffn, layers, text_dim, device, dtype, seed=0):
    import comfy.ldm.wan.model
    import comfy.ops
    m = comfy.ldm.wan.model.WanModel(
        model_type="t2v", patch_size=(1, 2, 2), text_len=512, in_dim=16, dim=dim, ffn_dim=ffn,
        freq_dim=256, text_dim=text_dim, out_dim=16, num_heads=heads, num_layers=layers,
        qk_norm=True, cross_attn_norm=True, eps=1e-6,
        operations=comfy.ops.disable_weight_init, device="cpu", dtype=torch.float32)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.fill_(1.0)
            elif "modulation" in name:
                p.copy_(torch.randn(p.shape, generator=g) / dim ** 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    m = m.to(device=device, dtype=dtype)
    m.patch_embedding.to(torch.float32)   # ComfyUI keeps the patch embedding in fp32
    return m.eval()


def run(args):
    dtype = DTYPES[args.dtype]
    dev = args.device
    model = make_model(args.dim, args.heads, args.ffn, args.layers, args.text_dim, dev, dtype)
    layout = layout_for(args.refs)
    n_c = layout.num_images
    gh, gw = args.grid
    H, W = gh * 2, gw * 2
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 16, args.frames, H, W, generator=g).to(dev, dtype)
    cond = torch.randn(1, 16, n_c, H, W, generator=g).to(dev, dtype)
    ctx = torch.randn(1, 512, args.text_dim, generator=g).to(dev, dtype)
    t = torch.tensor([500.0], device=dev)
    masks = torch.zeros(1, n_c, 512, dtype=torch.bool, device=dev)
    for i in range(n_c):      # every reference names 2-3 prompt tokens, people distinct
        masks[0, i, 4 + 3 * i: 6 + 3 * i] = True

    @torch.no_grad()
    def ours():
        return relational_forward(model, x, t, ctx, cond, layout, masks)

    @torch.no_grad()
    def ours_no_bias():
        return relational_forward(model, x, t, ctx, cond, layout, masks, cross_mask=False)

    @torch.no_grad()
    def phantom():
        return model(x, t, ctx, time_dim_concat=cond)

    @torch.no_grad()
    def no_refs():
        return model(x, t, ctx)

    fns = {"ours": ours, "ours_no_bias": ours_no_bias, "phantom": phantom, "no_refs": no_refs}
    mem = {}
    if args.memory_only or not args.no_memory:   # before timing: a cold call of each variant
        if dev.startswith("cuda"):
            no_refs()        # library workspaces (cuBLAS, ...) are allocated before measuring
        for name in ("ours", "phantom", "no_refs"):
            mem[name] = common.peak_allocated(fns[name], dev)
    P = gh * gw
    row = {"grid": f"{gh}x{gw}", "frames": args.frames, "refs": args.refs,
           "tokens": (args.frames + n_c) * P, "video_tokens": args.frames * P,
           "layers": args.layers}
    if mem:
        row["peak_bytes"] = {k: v["peak_bytes"] for k, v in mem.items()}
        row["peak_method"] = next(iter(mem.values()))["method"]
        row["mem_ratio_ours_phantom"] = mem["ours"]["peak_bytes"] / mem["phantom"]["peak_bytes"]
        row["mem_ratio_ours_no_refs"] = mem["ours"]["peak_bytes"] / mem["no_refs"]["peak_bytes"]
    if not args.memory_only:
        res = common.time_alternating(fns, args.repeats, dev)
        out = {k: v["median_s"] for k, v in res.items()}
        sfns = setup_fns(model, layout, args.frames, gh, gw, 1, 512, masks, dev, args.layers)
        st = common.time_alternating(sfns, max(5, args.repeats * 5), dev)
        setup_s = {k: v["median_s"] for k, v in st.items()}
        row.update(time_s=out, ratio_ours_phantom=out["ours"] / out["phantom"],
                   ratio_ours_no_refs=out["ours"] / out["no_refs"],
                   bias_overhead=out["ours"] / out["ours_no_bias"] - 1.0,
                   per_block_s={k: v / args.layers for k, v in out.items()},
                   setup_s=setup_s,
                   setup_share={k: v / out["ours"] for k, v in setup_s.items()})
    return {"rows": [row], "attention_backend": common.attention_backend()}


def memory_report(res, args) -> str:
    """The ``--memory-only`` table: peak allocated memory of one cold step per variant."""
    r = res["rows"][0]
    rows = [[k, v / 2 ** 20] for k, v in r["peak_bytes"].items()]
    m = r["mem_ratio_ours_phantom"]
    return "\n".join([
        f"Whole-step peak allocated memory (no timing): WanModel dim {args.dim}, {args.heads} "
        f"heads, ffn {args.ffn}, {args.layers} blocks, {args.dtype} on {args.device}; "
        f"{args.frames} latent frames, {args.refs} references, {r['grid']} token grid "
        f"({r['tokens']} tokens, of which {r['video_tokens']} video); ComfyUI attention "
        f"backend: {res['attention_backend']}. 'phantom' = ComfyUI's stock time_dim_concat "
        f"forward over the same tokens.", "",
        common.md_table(["variant", "peak allocated MiB"], rows), "",
        "Peak allocated = " + r["peak_method"] + "; one cold call each (ours builds its "
        "set-up inside it).", "",
        f"- ours/stock Phantom: {m:.3f} (target <= 1.05) -> "
        + ("met" if m <= 1.05 else f"MISSED by {m - 1.05:.3f}")
        + f"; ours/no references {r['mem_ratio_ours_no_refs']:.3f}"])


def report(res, args):
    if args.memory_only:
        return memory_report(res, args)
    r = res["rows"][0]
    head = ["variant", "seconds / step", "seconds / block"]
    rows = [[k, v, r["per_block_s"][k]] for k, v in r["time_s"].items()]
    if "peak_bytes" in r:
        head.append("peak allocated MiB")
        for row in rows:
            b = r["peak_bytes"].get(row[0])
            row.append(b / 2 ** 20 if b is not None else "-")
    lines = [f"One denoising step: WanModel dim {args.dim}, {args.heads} heads, ffn {args.ffn}, "
             f"{args.layers} blocks, {args.dtype} on {args.device}; {args.frames} latent frames, "
             f"{args.refs} references, {r['grid']} token grid ({r['tokens']} tokens, of which "
             f"{r['video_tokens']} video); median of {args.repeats} alternating repeats; "
             f"load average at start {args.load_avg[0]:.1f} on {os.cpu_count()} cores. "
             f"'phantom' = ComfyUI's stock time_dim_concat forward over the same tokens.", "",
             common.md_table(head, rows), "",
             "Peak allocated = " + r.get("peak_method", "not measured") + "; one cold call "
             "each (ours builds its set-up inside it). ComfyUI attention backend: "
             + res.get("attention_backend", "?") + (
                 " -- it materialises [heads, Lq, Lk] scores (chunked only when they do not fit "
                 "the free memory), which is why Phantom's L x L self-attention peaks above ours "
                 "((T*P) x L plus small blocks); --pytorch-attention measures with SDPA."
                 if "sub_quad" in res.get("attention_backend", "")
                 or "split" in res.get("attention_backend", "") else ""), "",
             "## Targets", "",
             f"- full step ours/stock Phantom: {r['ratio_ours_phantom']:.3f} (target <= 1.0) -> "
             + ("met" if r["ratio_ours_phantom"] <= 1.0 else
                f"MISSED by {r['ratio_ours_phantom'] - 1:.3f}"),
             f"- relational text-bias overhead (ours vs ours without the bias): "
             f"{100 * r['bias_overhead']:.2f}% of a step (target <= 5%) -> "
             + ("met" if r["bias_overhead"] <= 0.05 else
                f"MISSED by {100 * (r['bias_overhead'] - 0.05):.2f} points"),
             f"- ours vs no references: {r['ratio_ours_no_refs']:.3f}x (the references add "
             f"{r['tokens'] - r['video_tokens']} tokens)"]
    if "mem_ratio_ours_phantom" in r:
        m = r["mem_ratio_ours_phantom"]
        lines.append(f"- whole-step peak allocated memory ours/stock Phantom: {m:.3f} (target <= "
                     "1.05) -> " + ("met" if m <= 1.05 else f"MISSED by {m - 1.05:.3f}")
                     + f"; ours/no references {r['mem_ratio_ours_no_refs']:.3f}")
    sh = r["setup_share"]
    lines += ["", "## LumosX set-up outside the blocks, per step", "",
              common.md_table(["", "seconds", "share of a step (ours)"],
                              [["before the cache (every step)", r["setup_s"]["before"],
                                f"{100 * sh['before']:.3f}%"],
                               ["first step of a run", r["setup_s"]["first_step"],
                                f"{100 * sh['first_step']:.3f}%"],
                               ["later steps (cached)", r["setup_s"]["cached"],
                                f"{100 * sh['cached']:.3f}%"]]), "",
              f"'before' is the old per-step work: RoPE table, masks and weights once, and in "
              f"each of the {args.layers} blocks the gather indices, cell indices and a "
              "device->host read of the biased flags (a GPU sync per block). Cached: one read "
              "of the phrase masks per step (a few KB), everything else reused."]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_model_args(ap, DTYPES, layers=2, grid=(8, 12))
    ap.add_argument("--refs", type=int, default=9)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--memory-only", action="store_true",
                    help="only the peak memory of one cold step per variant (writes "
                         "step_memory*.json/.md)")
    ap.add_argument("--pytorch-attention", action="store_true",
                    help="ComfyUI attention = PyTorch SDPA (default on GPUs; CPU: sub-quadratic)")
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--out", default=common.RESULTS)
    args = ap.parse_args(argv)
    args.dtype_suffix = True
    args.load_avg = os.getloadavg()
    if args.full:
        args.layers, args.grid = 30, [30, 52]
    if args.smoke:
        args.dim, args.heads, args.ffn, args.text_dim, args.layers = 256, 2, 256, 64, 1
        args.frames, args.grid, args.refs, args.repeats = 2, [2, 3], 3, 1
    torch.manual_seed(0)
    res = run(args)
    md = common.finish("step_memory" if args.memory_only else "step", res, args,
                       report(res, args))
    print(open(md).read())
    return res


if __name__ == "__main__":
    main()
