"""Relational self-attention over ~20k tokens never allocates anything like an L x L mask."""
import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json, resource, time
    import torch
    torch.set_num_threads(2)
    from lumosx_core import ConditionLayout, relational_self_attention
    layout = ConditionLayout(non_person=1, groups=[2, 1])   # 4 condition frames
    frames, P = 9, 1560                                      # 480x832 token grid
    L = layout.sequence_length(frames, P)
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, L, 32, generator=g) for _ in range(3))
    # warm up kernels on a small problem so one-time allocations are not counted
    small = ConditionLayout(0, [1])
    s = small.sequence_length(1, 16)
    relational_self_attention(q[:, :s], k[:, :s], v[:, :s], 1, small, 1, 16)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.time()
    out = relational_self_attention(q, k, v, 1, layout, frames, P)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"L": L, "extra_peak": peak - before, "seconds": time.time() - t0,
                      "finite": bool(torch.isfinite(out).all())}))
""")


def test_peak_memory_far_below_dense_mask():
    # lumosx_core comes from PYTHONPATH, which the test bootstrap (conftest.py) sets
    res = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout.strip().splitlines()[-1])
    L = info["L"]
    assert L >= 20_000
    dense_mask_bytes = L * L * 4
    assert info["finite"]
    # the whole attention (output included) must stay under 5% of one float L x L mask
    assert info["extra_peak"] < 0.05 * dense_mask_bytes, info
