"""Smoke runs of every benchmark script at a tiny size, so they cannot rot (the numbers are
produced by benchmarks/run_all.sh, not by tests)."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(script, out, *extra):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", script), *extra,
                        "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def test_benchmark_scripts_smoke(tmp_path):
    _run("bench_self_attention.py", tmp_path, "--smoke")
    res = json.loads((tmp_path / "self_attention.json").read_text())
    row = res["rows"][0]
    assert {"ours", "unmasked", "dense"} <= set(row["time_s"]) and "peak_bytes" in row
    assert 0 < row["flop_ratio_ours_unmasked"] < 1
    assert "Targets at 9 references" in (tmp_path / "self_attention.md").read_text()

    _run("bench_cross_attention.py", tmp_path, "--smoke")
    res = json.loads((tmp_path / "cross_attention.json").read_text())
    assert res["rows"][0]["time_s"]["biased"] > 0 and res["machine"]["torch"]

    out = _run("bench_step.py", tmp_path, "--smoke")
    res = json.loads((tmp_path / "step.json").read_text())
    row = res["rows"][0]
    assert set(row["time_s"]) == {"ours", "ours_no_bias", "phantom", "no_refs"}
    assert "ours/stock Phantom" in out
    assert all(row["peak_bytes"][k] > 0 for k in ("ours", "phantom", "no_refs"))
    assert set(row["setup_share"]) == {"before", "first_step", "cached"}
    _run("bench_step.py", tmp_path, "--smoke", "--memory-only")   # memory alone, no timing
    row = json.loads((tmp_path / "step_memory.json").read_text())["rows"][0]
    assert "time_s" not in row and row["mem_ratio_ours_phantom"] > 0
    assert "ours/stock Phantom" in (tmp_path / "step_memory.md").read_text()

    # the released-size script at a tiny size: all three variants run in their own processes,
    # and a variant whose computed need exceeds the allowed share is recorded, not skipped
    _run("bench_released.py", tmp_path, "--smoke")
    res = json.loads((tmp_path / "released.json").read_text())
    assert all(res["variants"][v]["ran"] for v in ("ours", "phantom", "dense"))
    assert res["variants"]["ours"]["result"]["peak_bytes"] > 0
    _run("bench_released.py", tmp_path, "--smoke", "--variants", "dense", "--fit", "1e-9")
    res = json.loads((tmp_path / "released.json").read_text())
    assert not res["variants"]["dense"]["ran"] and "computed need" in res["variants"]["dense"]["why_not"]
    assert "not run" in (tmp_path / "released.md").read_text()

    png = tmp_path / "cost.png"
    subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "plot.py"), "--results",
                    str(tmp_path), "--out", str(png)], check=True, capture_output=True, timeout=300)
    assert png.stat().st_size > 1000
