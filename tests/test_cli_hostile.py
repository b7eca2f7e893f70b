"""``lumosx run`` against hostile command lines and files (issue #25): a workflow path that is
a FIFO or a device is refused without blocking; a sweep of too many jobs is refused before any
is built, saying the limit and how to raise it; every parse error is exit 2 with a message and
no traceback; a job whose Sampler the server refused while it ran the preview exits 1."""
import json
import os
import time
import types

import pytest

import shipped
from test_cli import _overrides, lumosx, lumosx_here

from lumosx_core.cli import run as run_cmd
from lumosx_core.cli.workflow_edit import MAX_JOBS, MAX_WORKFLOW_DEPTH
from lumosx_core.cli.workflow_format import WorkflowError

pytestmark = pytest.mark.host_matrix  # run on every test host

NO_SERVER = "http://127.0.0.1:9"


def _usage_error(r, *pieces):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    for piece in pieces:
        assert piece in r.stderr, (piece, r.stderr)


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "folder"])
def test_non_regular_workflow_path_refused_without_blocking(tmp_path, capsys, kind):
    path = tmp_path / "workflow.json"
    if kind == "fifo":
        os.mkfifo(path)                 # nobody writes: opening it would block for ever
    elif kind == "dev_zero":
        os.symlink("/dev/zero", path)   # reading it would never end
    else:
        path.mkdir()
    t0 = time.time()
    # the FIFO in a subprocess, so a blocking open fails the test instead of hanging it
    r = (lumosx("run", path, "--server", NO_SERVER, timeout=120) if kind == "fifo" else
         lumosx_here(capsys, "run", path, "--server", NO_SERVER))
    what = {"fifo": "a named pipe (FIFO)", "dev_zero": "a character device",
            "folder": "a folder"}[kind]
    _usage_error(r, f"{path}: not a regular file (it is {what})")
    assert time.time() - t0 < 120


def _deep(n):
    return "[" * n + "]" * n


@pytest.mark.parametrize("case", ["deep_file", "deep_api_input", "deep_set", "deep_sweep",
                                  "not_json", "not_utf8", "not_a_workflow", "bad_sweep"])
def test_every_parse_error_is_exit_2_with_a_message(tmp_path, capsys, case):
    path = tmp_path / "w.json"
    extra = []
    ok = {"1": {"class_type": "A", "inputs": {"x": 1}}}
    if case == "deep_file":
        path.write_text(_deep(500))
        piece = f"nested more than {MAX_WORKFLOW_DEPTH} levels deep"
    elif case == "deep_api_input":
        path.write_text('{"1": {"class_type": "A", "inputs": {"x": ' + _deep(500) + "}}}")
        piece = f"nested more than {MAX_WORKFLOW_DEPTH} levels deep"
    elif case in ("deep_set", "deep_sweep"):
        path.write_text(json.dumps(ok))
        extra = (["--set", "1.x=" + _deep(5000)] if case == "deep_set" else
                 ["--sweep", "1.x=[" + _deep(5000) + "]"])
        piece = f"nested more than {MAX_WORKFLOW_DEPTH} levels deep"
    elif case == "not_json":
        path.write_text('{"1": ')
        piece = "not JSON"
    elif case == "not_utf8":
        path.write_bytes(b'{"1": "\xff\xfe"}')
        piece = "not UTF-8 text"
    elif case == "not_a_workflow":
        path.write_text("[1, 2, 3]")
        piece = "neither an API-format workflow"
    else:
        path.write_text(json.dumps(ok))
        extra = ["--sweep", "1.x=5"]
        piece = "expected NODE.INPUT=[v1, v2, ...]"
    _usage_error(lumosx_here(capsys, "run", path, "--server", NO_SERVER, *extra), piece)


def test_malformed_api_workflow_is_a_workflow_error(tmp_path):
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"1": {"class_type": "A", "inputs": [1, 2]}}))
    args = types.SimpleNamespace(workflows=[str(path)], set=["1.x=2"], sweep=[], replace=[],
                                 max_jobs=MAX_JOBS)
    with pytest.raises(WorkflowError, match=r"w.json: a malformed workflow \(TypeError"):
        run_cmd.build_jobs(args, lambda: {})


def test_sweep_limit_checked_before_building(tmp_path, capsys):
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"1": {"class_type": "A", "inputs": {"x": 1, "y": 2}}}))
    values = json.dumps(list(range(2000)))
    t0 = time.time()
    r = lumosx_here(capsys, "run", path, "--server", NO_SERVER,
                    "--sweep", f"1.x={values}", "--sweep", f"1.y={values}")
    took = time.time() - t0
    _usage_error(r, f"4000000 jobs (1 workflow(s) x 2000 x 2000 values) is more than the limit "
                    f"of {MAX_JOBS} jobs per run", "raise the limit with --max-jobs N")
    assert took < 5, f"{took:.1f}s: the jobs were built before the limit was checked"
    # the limit is the option's: 2 workflows x 2 x 2 = 8 jobs
    sweeps = ["--sweep", "1.x=[1, 2]", "--sweep", "1.y=[3, 4]"]
    r = lumosx_here(capsys, "run", path, path, "--server", NO_SERVER, "--max-jobs", 7, *sweeps)
    _usage_error(r, "8 jobs (2 workflow(s) x 2 x 2 values) is more than the limit of 7")
    r = lumosx_here(capsys, "run", path, path, "--server", NO_SERVER, "--max-jobs", 8, *sweeps)
    assert r.returncode == 3, r.stderr                       # past the limit: no server


def test_refused_sampler_with_a_running_preview_exits_1(server, tmp_path, capsys):
    """ComfyUI runs the outputs a refused node does not feed (the binding preview) and
    answers 200: the job is still not what was asked for."""
    r = lumosx_here(capsys, "run", shipped.api_path("subject_consistent"),
                    "--server", server.url, "--out", tmp_path, *_overrides(server),
                    "--set", "LumosXSampler.cfg=NaN")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "cfg = nan: must be a finite number" in r.stderr
    assert "refused nodes of this job" in r.stderr
    assert "(LumosXSampler)" in r.stderr
    assert any(f.endswith(".png") for _, _, fs in os.walk(tmp_path) for f in fs)  # the preview
