"""The released size, one transformer block: LumosX ("ours") vs ComfyUI's stock Phantom forward
over the same tokens vs the dense-mask port -- time, peak allocated memory, the masks' sizes.

480x832, 81 frames (21 latent frames, 30x52 token grid), 2 people x (face + 2 attributes) +
background + 2 objects (9 references): L = 30 * 1560 = 46,800 tokens; dim 1536, 12 heads x
128, ffn 8960, 512 text tokens (Wan 2.1 1.3B / the LumosX DiT), a WanModel of ``--layers``
blocks (default 1) run through ``forward_orig``.

* ours: :func:`relational_forward` (split self-attention, per-image text bias, no L x L mask);
* phantom: ``WanModel(x, t, ctx, time_dim_concat=refs)`` -- stock, no relational features;
* dense: the naive port of the released code: the same forward with one SDPA over all tokens
  under a bool ``[L, L]`` self-attention mask, and a ``[B, heads, L, L_text]`` text bias.

Each variant runs in its own process. Before starting one, its peak is computed
(:func:`need_bytes`) and compared with the memory available (CPU: MemAvailable; CUDA: free
device memory); a variant whose need is above ``--fit`` of it is not run and its computed need
is recorded instead. CPU: one profiled call per variant (time and peak from the same call;
2 cores are slow: minutes per variant). CUDA: warm-up, ``--repeats`` timed calls, one peak
call (``max_memory_allocated``).

    nice -n 19 python benchmarks/bench_released.py                      # CPU, fp32
    python benchmarks/bench_released.py --device cuda --dtype bf16      # GPU
    python benchmarks/bench_released.py --smoke --out /tmp/x            # CI smoke (tiny)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import common  # noqa: E402  (this folder: the scripts' own)

# ComfyUI's SDPA attention, the backend the dense port also uses (and ComfyUI's own default on
# GPUs); --host-attention keeps the host's CPU default (sub-quadratic, chunked to free memory)
common.setup_paths(need_comfy=True, pytorch_attention="--host-attention" not in sys.argv)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from lumosx_core import ConditionLayout, relational_forward  # noqa: E402
from lumosx_core.relational.attention import merge_heads, split_heads  # noqa: E402
from lumosx_core.relational.cross_attention import image_bias, text_weights  # noqa: E402
from lumosx_core.relational.forward import pad_to_patch  # noqa: E402
from lumosx_core.relational.positions import position_ids, rope_freqs  # noqa: E402
from bench_self_attention import DTYPES, dense_self_mask  # noqa: E402
from bench_step import make_model  # noqa: E402

VARIANTS = ("ours", "phantom", "dense")
RELEASED_LAYOUT = ConditionLayout(non_person=3, groups=[3, 3])   # bg + 2 objects, 2 people


class DenseAttention:
    """``optimized_attention_override`` of the dense-mask port: self-attention calls get the
    bool ``[L, L]`` mask, text cross-attention calls the full ``[B, heads, L, L_text]`` bias."""

    def __init__(self, layout, T, Hp, Wp, context_len, masks, ratio=0.5, parity=True):
        self.layout, self.T, self.Hp, self.Wp = layout, T, Hp, Wp
        self.context_len, self.masks, self.ratio, self.parity = context_len, masks, ratio, parity
        self.seq_len = layout.sequence_length(T, Hp * Wp)
        self.mask = None
        self._expect_self = True

    def __call__(self, func, q, k, v, heads=None, *args, **kwargs):
        heads = heads if heads is not None else kwargs.pop("heads")
        kwargs.pop("heads", None)
        lq, lk = q.shape[1], k.shape[1]
        is_self = lk == self.seq_len and (lk != self.context_len or self._expect_self)
        if lq != self.seq_len or not (is_self or lk == self.context_len):
            return func(q, k, v, heads, *args, **kwargs)
        self._expect_self = not is_self
        if is_self:
            if self.mask is None:    # built on the first block, kept for the step
                self.mask = dense_self_mask(self.layout, self.T, self.Hp * self.Wp).to(q.device)
            out = F.scaled_dot_product_attention(split_heads(q, heads), split_heads(k, heads),
                                                 split_heads(v, heads), attn_mask=self.mask)
            return merge_heads(out)
        bias = self.cross_bias(q, k, heads)
        out = F.scaled_dot_product_attention(split_heads(q, heads), split_heads(k, heads),
                                             split_heads(v, heads), attn_mask=bias.to(q.dtype))
        return merge_heads(out)

    def cross_bias(self, q, k, heads):
        """``[B, heads, L, L_text]`` float32, zero on video rows: the same per-image bias as
        ours, materialised for the whole sequence the way the released code holds it."""
        B, L, _ = q.shape
        P = self.Hp * self.Wp
        bias = torch.zeros(B, heads, L, k.shape[1], device=q.device)
        w = text_weights(self.layout, self.masks.bool()).to(q.device)
        for c in range(self.layout.num_images):
            s0 = (self.T + c) * P
            bias[:, :, s0:s0 + P] = image_bias(q[:, s0:s0 + P], k, heads, self.Hp, self.Wp,
                                               w[:, c], self.ratio, self.parity)
        return bias


def dense_forward(model, x, t, ctx, cond, layout, masks):
    """The dense-mask port of one forward (same tokens and positions as ours)."""
    T, H, W = x.shape[2:]
    x_full = torch.cat([pad_to_patch(x, model.patch_size),
                        pad_to_patch(cond.to(x), model.patch_size)], dim=2)
    ph, pw = model.patch_size[1:]
    Hp, Wp = x_full.shape[3] // ph, x_full.shape[4] // pw
    freqs = rope_freqs(model, position_ids(layout, T, Hp, Wp, True), device=x.device)
    topts = {"optimized_attention_override":
             DenseAttention(layout, T, Hp, Wp, ctx.shape[1], masks)}
    out = model.forward_orig(x_full, t, ctx, freqs=freqs, transformer_options=topts)
    return out[:, :, :T, :H, :W]


def sizes(cfg: dict) -> dict:
    layout = ConditionLayout.from_dict(cfg["layout"])
    gh, gw = cfg["grid"]
    P = gh * gw
    L = layout.sequence_length(cfg["frames"], P)
    return {"P": P, "L": L, "video_tokens": cfg["frames"] * P, "n_c": layout.num_images}


def need_bytes(variant: str, cfg: dict, param_bytes: int) -> dict:
    """Computed peak of one call (bytes), the parts it comes from, and the masks' sizes.

    Activations of a Wan block at its widest (the FFN): the residual stream, the modulated
    input and the FFN's hidden and GELU outputs, ``(3 * dim + 2 * ffn) * L`` elements, plus the
    RoPE table (``L * d/2 * 4`` float32). Ours adds one more ``[L, dim]`` while its attention
    output is assembled from several calls, and one image's text bias
    (``heads * P * L_text`` float32). The dense port adds, during its self-attention (when q, k,
    v, the RoPE'd q, k and the output are alive: ``6 * L * dim``), its bool ``L^2`` mask and
    the additive ``L^2`` copy in the compute dtype that SDPA makes from a bool mask on the CPU
    and on non-flash GPU paths; and its ``[B, heads, L, L_text]`` float32 text bias.
    """
    s = sizes(cfg)
    L, P = s["L"], s["P"]
    eb = torch.finfo(DTYPES[cfg["dtype"]]).bits // 8
    dim, ffn, heads, lt = cfg["dim"], cfg["ffn"], cfg["heads"], cfg["text_len"]
    rope = L * (dim // heads // 2) * 4 * 4
    block = (3 * dim + 2 * ffn) * L * eb + rope
    parts = {"params": param_bytes, "block_activations": block}
    masks = {}
    if variant == "ours":
        parts["assembly"] = L * dim * eb
        parts["one_image_text_bias"] = heads * P * lt * 4
        masks["largest_bias_bytes"] = heads * P * lt * 4
    elif variant == "dense":
        mask_bool = L * L
        mask_conv = L * L * eb
        attn_phase = 6 * L * dim * eb + rope + mask_bool + mask_conv
        parts["self_attention_phase"] = attn_phase
        parts["cross_bias"] = heads * L * lt * 4
        masks.update(self_mask_bool_bytes=mask_bool, self_mask_additive_bytes=mask_conv,
                     cross_bias_bytes=heads * L * lt * 4)
    act = max(block + parts.get("assembly", 0) + parts.get("one_image_text_bias", 0),
              parts.get("self_attention_phase", 0) + parts.get("cross_bias", 0))
    return {"need_bytes": int(param_bytes + act), "activation_bytes": int(act),
            "parts": parts, "masks": masks}


def param_bytes_of(cfg: dict) -> int:
    with torch.device("meta"):
        m = make_meta_model(cfg)
    eb = torch.finfo(DTYPES[cfg["dtype"]]).bits // 8
    return sum(p.numel() for p in m.parameters()) * eb


def make_meta_model(cfg):
    import comfy.ldm.wan.model
    import comfy.ops
    return comfy.ldm.wan.model.WanModel(
        model_type="t2v", patch_size=(1, 2, 2), text_len=512, in_dim=16, dim=cfg["dim"],
        ffn_dim=cfg["ffn"], freq_dim=256, text_dim=cfg["text_dim"], out_dim=16,
        num_heads=cfg["heads"], num_layers=cfg["layers"], qk_norm=True, cross_attn_norm=True,
        eps=1e-6, operations=comfy.ops.disable_weight_init, device="meta")


def inputs(cfg: dict, dev: str, dtype):
    layout = ConditionLayout.from_dict(cfg["layout"])
    gh, gw = cfg["grid"]
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 16, cfg["frames"], gh * 2, gw * 2, generator=g).to(dev, dtype)
    cond = torch.randn(1, 16, layout.num_images, gh * 2, gw * 2, generator=g).to(dev, dtype)
    ctx = torch.randn(1, cfg["text_len"], cfg["text_dim"], generator=g).to(dev, dtype)
    t = torch.tensor([500.0], device=dev)
    masks = torch.zeros(1, layout.num_images, cfg["text_len"], dtype=torch.bool)
    for i in range(layout.num_images):   # each reference names 2 prompt tokens
        masks[0, i, 4 + 3 * i: 6 + 3 * i] = True
    return layout, x, t, ctx, cond, masks.to(dev)


def worker(cfg: dict) -> dict:
    """One variant in this (fresh) process: build, run, measure; returns a JSON-able dict."""
    dev, dtype = cfg["device"], DTYPES[cfg["dtype"]]
    torch.manual_seed(0)
    model = make_model(cfg["dim"], cfg["heads"], cfg["ffn"], cfg["layers"], cfg["text_dim"],
                       dev, dtype)
    layout, x, t, ctx, cond, masks = inputs(cfg, dev, dtype)
    variant = cfg["variant"]

    @torch.no_grad()
    def fn():
        if variant == "ours":
            return relational_forward(model, x, t, ctx, cond, layout, masks)
        if variant == "phantom":
            return model(x, t, ctx, time_dim_concat=cond)
        return dense_forward(model, x, t, ctx, cond, layout, masks)

    out = {"variant": variant}
    if dev.startswith("cuda"):
        fn()
        times = common.time_alternating({variant: fn}, cfg["repeats"], dev, warmup=0)[variant]
        out["time_s"] = times["median_s"]
        out["runs_s"] = times["runs_s"]
        out.update(common.peak_allocated(fn, dev))
        return out
    # CPU: one call, timed and profiled at once; peak RSS growth of the same call as a check.
    # Warm up the profiler and the block's kernels on a tiny input first (not measured).
    with torch.no_grad():
        model(x[:, :, :1, :4, :4], t, ctx)
    common.peak_allocated(lambda: torch.ones(1), dev)
    common.rss_mark()
    t0 = time.perf_counter()
    out.update(common.peak_allocated(fn, dev))
    out["time_s"] = time.perf_counter() - t0
    out["runs_s"] = [out["time_s"]]
    out["rss_growth_bytes"] = common.rss_peak_since_mark()
    return out


def available_bytes(dev: str) -> int:
    if dev.startswith("cuda"):
        return int(torch.cuda.mem_get_info()[0])
    return common.mem_available_bytes()


def run(args) -> dict:
    cfg = dict(device=args.device, dtype=args.dtype, dim=args.dim, heads=args.heads,
               ffn=args.ffn, text_dim=args.text_dim, text_len=512, layers=args.layers,
               frames=args.frames, grid=list(args.grid), layout=RELEASED_LAYOUT.to_dict(),
               repeats=args.repeats)
    pb = param_bytes_of(cfg)
    res = {"config": cfg, **sizes(cfg), "variants": {}, "setup_s": setup_timing(cfg, args),
           "attention_backend": common.attention_backend()}
    for variant in args.variants:
        need = need_bytes(variant, cfg, pb)
        avail = available_bytes(args.device)
        entry = {"computed": need, "available_bytes_at_start": avail}
        if args.plan_only:
            entry["ran"] = False
            entry["why_not"] = ("--plan-only: computed need "
                                f"{need['need_bytes'] / 2 ** 30:.1f} GiB recorded, not run")
        elif need["need_bytes"] > args.fit * avail:
            entry["ran"] = False
            entry["why_not"] = (f"computed need {need['need_bytes'] / 2 ** 30:.1f} GiB > "
                                f"{args.fit:.2f} x {avail / 2 ** 30:.1f} GiB available")
            print(f"{variant}: NOT RUN -- {entry['why_not']}", flush=True)
        else:
            print(f"{variant}: running (computed need {need['need_bytes'] / 2 ** 30:.2f} GiB, "
                  f"{avail / 2 ** 30:.1f} GiB available)", flush=True)
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker",
                                json.dumps(dict(cfg, variant=variant))],
                               capture_output=True, text=True, timeout=args.timeout)
            if r.returncode != 0:
                entry["ran"] = False
                entry["why_not"] = "failed: " + r.stderr[-1500:]
                print(f"{variant}: FAILED\n{r.stderr[-3000:]}", flush=True)
            else:
                entry["ran"] = True
                entry["result"] = json.loads(r.stdout.strip().splitlines()[-1])
                m = entry["result"]
                print(f"{variant}: {m['time_s']:.1f} s, peak allocated "
                      f"{m['peak_bytes'] / 2 ** 30:.2f} GiB", flush=True)
        res["variants"][variant] = entry
    res["validation"] = []
    for grid in args.validate_grids:     # same layout, smaller grids: measured vs computed
        vcfg = dict(cfg, grid=list(grid))
        for variant in args.variants:
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker",
                                json.dumps(dict(vcfg, variant=variant))],
                               capture_output=True, text=True, timeout=args.timeout)
            if r.returncode != 0:
                raise RuntimeError(r.stderr[-3000:])
            m = json.loads(r.stdout.strip().splitlines()[-1])
            res["validation"].append({
                "grid": list(grid), **sizes(vcfg), "variant": variant, "time_s": m["time_s"],
                "peak_bytes": m["peak_bytes"],
                "computed_bytes": need_bytes(variant, vcfg, 0)["activation_bytes"]})
            print(f"validate {grid} {variant}: peak {m['peak_bytes'] / 2 ** 20:.0f} MiB, "
                  f"computed {res['validation'][-1]['computed_bytes'] / 2 ** 20:.0f} MiB",
                  flush=True)
    return res


def setup_timing(cfg: dict, args) -> dict:
    """The LumosX set-up outside the blocks at this size (needs only the RoPE embedder):
    per step before the cache (RoPE table + text weights once, indices and a device read per
    block, for a 30-block model), on a run's first step, and on later (cached) steps."""
    import types
    from comfy.ldm.flux.layers import EmbedND
    from bench_step import setup_fns
    d = cfg["dim"] // cfg["heads"]
    stub = types.SimpleNamespace(rope_embedder=EmbedND(
        dim=d, theta=10000.0, axes_dim=[d - 4 * (d // 6), 2 * (d // 6), 2 * (d // 6)]))
    layout, _, _, _, _, masks = inputs(dict(cfg, text_dim=1), args.device, torch.float32)
    gh, gw = cfg["grid"]
    fns = setup_fns(stub, layout, cfg["frames"], gh, gw, 1, cfg["text_len"], masks,
                    args.device, 30)
    t = common.time_alternating(fns, 3, args.device)
    return {k: v["median_s"] for k, v in t.items()}


def gib(b):
    return b / 2 ** 30


def beyond_stock(dim=1536, heads=12, ffn=8960, frames=21, P=1560, layout=RELEASED_LAYOUT,
                 eb=2, batch=2, text_len=512) -> dict:
    """Computed memory a LumosX video needs beyond stock Wan 2.1 T2V at the same size
    (``eb``: bytes per activation element, 2 = bf16; ``batch`` 2 = cond + uncond batched).

    Stock Wan holds ``frames * P`` tokens; LumosX ``(frames + N_c) * P``. Everything below is
    the difference, per denoising step (activations are freed between blocks)."""
    Lv = frames * P
    L = layout.sequence_length(frames, P)
    dL = L - Lv
    d = dim // heads
    biggest = max([g * P for g in layout.groups] + [P])
    same = max(sum(1 for g in layout.groups if g * P == biggest), 1)
    out = {
        "video_tokens": Lv, "tokens": L, "extra_tokens": dL,
        "block_peak_extra": batch * dL * (3 * dim + 2 * ffn) * eb,      # FFN, the widest point
        "rope_extra": dL * (d // 2) * 16,
        "flash_qkvo_extra": batch * 4 * dL * dim * eb,                  # q, k, v, out
        "ours_attention_transient": batch * (L * dim * eb                 # output assembly
                                             + 3 * same * biggest * dim * eb)  # gathered groups
                                    + batch * heads * P * text_len * 4,   # one image's text bias
        "dense_mask": L * L * (1 + eb),      # bool + additive copy, shared by the batch
        "dense_text_bias": batch * heads * L * text_len * 4,
        "latents_extra": batch * 16 * layout.num_images * (P * 4) * 4,  # reference latents
    }
    return out


def beyond_stock_text(eb=2, name="bf16") -> str:
    b = beyond_stock(eb=eb)
    mib = lambda x: f"{x / 2 ** 20:,.0f} MiB"  # noqa: E731
    return "\n".join([
        f"## What a 480p / 81-frame LumosX video needs beyond stock Wan ({name}, cond + uncond "
        "batched)", "",
        f"- tokens: {b['tokens']:,} instead of {b['video_tokens']:,} (+{b['extra_tokens']:,}, "
        f"+{100 * b['extra_tokens'] / b['video_tokens']:.0f}%); the weights are the same.",
        f"- activations at a block's widest point (the FFN: residual, modulated input, hidden "
        f"and GELU, (3*dim + 2*ffn) per token): +{mib(b['block_peak_extra'])}; RoPE table "
        f"+{mib(b['rope_extra'])}; reference latents {mib(b['latents_extra'])}.",
        f"- attention working set, flash / sage / xformers / memory-efficient SDPA (O(L*d)): q, "
        f"k, v and output +{mib(b['flash_qkvo_extra'])}; ours adds, for a moment inside the "
        f"self-attention, {mib(b['ours_attention_transient'])} (output assembly, gathered "
        "person blocks, one image's text bias) -- below the FFN peak, so the step peak does "
        "not move. ComfyUI's split / sub-quadratic attention (its CPU default) materialises "
        "[heads, Lq, Lk] score chunks sized to the free memory; ours hands it (T*P) x L plus "
        "small per-block problems instead of L x L, so its working set is never above stock's.",
        f"- no L x L mask: the dense port would need {mib(b['dense_mask'])} for its "
        f"self-attention mask (bool + additive copy) and {mib(b['dense_text_bias'])} for its "
        "text bias, and a masked attention cannot use the flash / sage kernels.",
    ])


def report(res: dict, args) -> str:
    cfg = res["config"]
    v = res["variants"]
    head = ["variant", "seconds", "peak allocated GiB", "computed peak GiB", "peak RSS growth GiB",
            "note"]
    rows = []
    for name, e in v.items():
        c = gib(e["computed"]["activation_bytes"])
        if e["ran"]:
            r = e["result"]
            rows.append([name, r["time_s"], gib(r["peak_bytes"]), c,
                         gib(r["rss_growth_bytes"]) if "rss_growth_bytes" in r else "-", ""])
        else:
            rows.append([name, "-", "-", c, "-", "not run: " + e["why_not"].splitlines()[0]])
    L = res["L"]
    eb = torch.finfo(DTYPES[cfg["dtype"]]).bits // 8
    lines = [
        f"One forward with {cfg['layers']} transformer block(s) at the released size: "
        f"{args.frames} latent frames (81 video frames), {cfg['grid'][0]}x{cfg['grid'][1]} token "
        f"grid (480x832), layout {RELEASED_LAYOUT.to_dict()} (background + 2 objects, 2 people "
        f"x face + 2 attributes): L = {L:,} tokens ({res['video_tokens']:,} video + "
        f"{L - res['video_tokens']:,} reference); dim {cfg['dim']}, {cfg['heads']} heads x "
        f"{cfg['dim'] // cfg['heads']}, ffn {cfg['ffn']}; {cfg['dtype']} on {cfg['device']}; "
        f"ComfyUI attention backend for ours and Phantom: {res['attention_backend']} (the dense "
        "port calls SDPA with its mask).",
        "",
        common.md_table(head, rows), "",
        "Peak allocated = " + common.PEAK_METHOD["cuda" if cfg["device"].startswith("cuda")
                                                 else "cpu"]
        + ". Computed peak = activations by `need_bytes` in the script (parameters excluded, "
        f"{gib(v[next(iter(v))]['computed']['parts']['params']):.2f} GiB). A variant runs only "
        f"when its computed need is at most {args.fit:.2f} x the memory available at its start.",
        "",
        "## Mask sizes at this L", "",
        f"- dense self-attention mask: L^2 = {L * L:,} entries = {gib(L * L):.2f} GiB as bool; "
        f"SDPA turns a bool mask into an additive one in the compute dtype: "
        f"{gib(L * L * eb):.2f} GiB more in {cfg['dtype']} ({gib(L * L * 4):.2f} GiB fp32, "
        f"{gib(L * L * 2):.2f} GiB bf16); on GPUs any mask also rules out the flash/sage kernels.",
        f"- dense text bias [B, heads, L, L_text]: {gib(cfg['heads'] * L * 512 * 4):.2f} GiB "
        f"float32 per batch item (cond + uncond batched: twice).",
        f"- ours: no L x L tensor; the largest LumosX tensor is one image's text bias "
        f"[heads, P, L_text] = {cfg['heads'] * res['P'] * 512 * 4 / 2 ** 20:.0f} MiB float32, "
        "plus the RoPE table the stock forward also builds.",
    ]
    ours, ph = v.get("ours", {}), v.get("phantom", {})
    if ours.get("ran") and ph.get("ran"):
        ro, rp = ours["result"], ph["result"]
        lines += ["", "## Ratios", "",
                  f"- time ours/Phantom: {ro['time_s'] / rp['time_s']:.3f}",
                  f"- peak allocated ours/Phantom: {ro['peak_bytes'] / rp['peak_bytes']:.3f} "
                  "(target <= 1.05)"]
        d = v.get("dense", {})
        if d.get("ran"):
            rd = d["result"]
            lines += [f"- time ours/dense: {ro['time_s'] / rd['time_s']:.3f}",
                      f"- peak allocated ours/dense: {ro['peak_bytes'] / rd['peak_bytes']:.3f}"]
        lines += [f"- one block of ours takes {ro['time_s']:.0f} s here (30 per step)."]
    st = res["setup_s"]
    lines += ["", f"LumosX set-up outside the blocks per step at this size (30-block model): "
              f"{st['before']:.3f} s before the per-run cache, {st['first_step']:.3f} s on a "
              f"run's first step, {st['cached'] * 1e3:.2f} ms on later steps."]
    if res.get("validation"):
        vrows = []
        by = {}
        for r in res["validation"]:
            by.setdefault(r["L"], {})[r["variant"]] = r
            vrows.append([f"{r['grid'][0]}x{r['grid'][1]}", r["L"], r["variant"], r["time_s"],
                          r["peak_bytes"] / 2 ** 20, r["computed_bytes"] / 2 ** 20,
                          r["peak_bytes"] / r["computed_bytes"]])
        lines += ["", "## Measured at smaller grids (same layout, frames and model; checks the "
                  "computed peaks above)", "",
                  common.md_table(["grid", "L", "variant", "seconds", "peak allocated MiB",
                                   "computed MiB", "measured/computed"], vrows), ""]
        for L, d in sorted(by.items()):
            if "ours" in d and "phantom" in d:
                lines.append(f"- L = {L:,}: peak ours/Phantom "
                             f"{d['ours']['peak_bytes'] / d['phantom']['peak_bytes']:.3f} "
                             "(target <= 1.05)"
                             + (f", ours/dense {d['ours']['peak_bytes'] / d['dense']['peak_bytes']:.3f}"
                                if "dense" in d else ""))
    lines += ["", beyond_stock_text()]
    if not cfg["device"].startswith("cuda"):
        lines += ["", "CPU timings are one call each on a machine shared with other jobs "
                  "(load average at start in the JSON's args); under load they are not "
                  "comparable between variants -- compare times only from an idle machine or "
                  "the GPU run."]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_model_args(ap, DTYPES, layers=1, grid=(30, 52))
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per variant (CUDA)")
    ap.add_argument("--fit", type=float, default=0.5,
                    help="run a variant only if its computed need <= fit x available memory")
    ap.add_argument("--timeout", type=float, default=7200)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--plan-only", action="store_true",
                    help="record computed needs, mask sizes and set-up time; run no variant")
    ap.add_argument("--validate-grids", default="",
                    help="also measure at these smaller token grids, e.g. 8x12,15x26")
    ap.add_argument("--host-attention", action="store_true",
                    help="keep ComfyUI's default attention for this device (else PyTorch SDPA)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=common.RESULTS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return None
    if args.smoke:
        args.dim, args.heads, args.ffn, args.text_dim = 64, 2, 64, 32
        args.frames, args.grid = 2, [3, 4]
    args.validate_grids = [tuple(int(v) for v in g.split("x"))
                           for g in args.validate_grids.split(",") if g]
    args.dtype_suffix = True
    args.load_avg = os.getloadavg()
    res = run(args)
    md = common.finish("released", res, args, report(res, args))
    print(open(md).read())
    return res


if __name__ == "__main__":
    main()
