"""The ``lumosx`` command against live test hosts: ``serve`` starts a second ComfyUI, ``run``
fans the shipped workflows (stand-in models, in UI and API format) out over both
servers, follows them, downloads the videos and previews; failures exit non-zero with the
node's error text. Plus the command-line editing helpers on their own."""
import json
import os
import subprocess
import sys
import time
import types

import pytest

import demo
import e2e_setup
import shipped
from lumosx_core.cli import workflow_edit as _workflow
from lumosx_core.cli.api import format_prompt_error
from lumosx_core.cli.workflow_format import WorkflowError

pytestmark = pytest.mark.host_matrix  # run on every test host

BIN = os.path.join(os.path.dirname(sys.executable), "lumosx")
SIZE = {"width": 64, "height": 48, "length": 5}


def lumosx(*args, timeout=600, **kw):
    """The installed console script in a subprocess."""
    cmd = [BIN] if os.path.exists(BIN) else [sys.executable, "-m", "lumosx_core.cli"]
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, cwd=shipped.ROOT, **kw)


def lumosx_here(capsys, *args):
    """The same command in this process (fast: torch is imported already)."""
    from lumosx_core.cli import main
    capsys.readouterr()
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return types.SimpleNamespace(returncode=rc, stdout=out.out, stderr=out.err)


@pytest.fixture(scope="module")
def second_server(tmp_path_factory):
    """Another ComfyUI with this pack, started by ``lumosx serve``."""
    from lumosx_core.cli.host import free_port
    base = str(tmp_path_factory.mktemp("comfy_base_2"))
    info = e2e_setup.prepare_base(base)
    port = free_port()
    log_path = os.path.join(base, "serve.log")
    cmd = [BIN] if os.path.exists(BIN) else [sys.executable, "-m", "lumosx_core.cli"]
    cmd += ["serve", "--base-directory", base, "--port", str(port), "--cpu",
            "--extra-pack", e2e_setup.TEST_PACK, "--", "--dont-print-server",
            "--disable-api-nodes"]
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=shipped.ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 240
        while True:
            with open(log_path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            if f"ready at {url}" in text:
                break
            assert proc.poll() is None, f"lumosx serve exited:\n{text[-4000:]}"
            assert time.time() < deadline, f"lumosx serve not ready:\n{text[-4000:]}"
            time.sleep(0.5)
        yield types.SimpleNamespace(url=url, base=base, info=info, proc=proc, log=log_path)
    finally:
        proc.terminate()  # lumosx serve stops its ComfyUI on SIGTERM
        try:
            proc.wait(timeout=30)
        finally:
            log.close()


def _overrides(server, classes=("LumosXFaceEncoder",), **size):
    return demo.standin_overrides(server.assets["standin_spiece"], size=size or SIZE, steps=2,
                                  classes=classes)


#: batches that together run every shipped workflow in both formats (UI and API); the dual-CFG
#: graph has no LumosX Sampler (its steps and seed live in BasicScheduler and RandomNoise)
BATCHES = {
    "mixed": ([shipped.api_path("identity_consistent"), shipped.ui_path("subject_consistent"),
               shipped.api_path("three_people"), shipped.api_path("ab_relational")], []),
    "swapped": ([shipped.ui_path("identity_consistent"), shipped.api_path("subject_consistent"),
                 shipped.ui_path("three_people"), shipped.ui_path("ab_relational")],
                ["--set", "LumosXSampler.seed=31337"]),  # not answered from ComfyUI's cache
    "dual_cfg": ([shipped.ui_path("dual_cfg"), shipped.api_path("dual_cfg")],
                 ["--set", "BasicScheduler.steps=2"]),
    # People From Photo instead of Face Encoders: its face pack is set on it
    "from_photos": ([shipped.api_path("from_photos"), shipped.ui_path("from_photos")],
                    ["--set", "LumosXSampler.seed=4242"]),
}


@pytest.mark.parametrize("batch", sorted(BATCHES))
def test_batch_fans_out_over_two_servers(server, second_server, tmp_path, batch):
    files, extra = BATCHES[batch]
    every = sorted(os.path.relpath(f, shipped.WORKFLOWS) for fs, _ in BATCHES.values() for f in fs)
    assert every == sorted([n + ".json" for n in shipped.NAMES]
                           + [os.path.join("api", n + ".api.json") for n in shipped.NAMES])
    opts = _overrides(server, classes=("LumosXPeopleFromPhoto",) if batch == "from_photos"
                      else ("LumosXFaceEncoder",))
    if batch == "dual_cfg":  # the stand-in options as pairs, without the LumosX Sampler's
        opts = [a for opt, value in zip(opts[::2], opts[1::2])
                if not value.startswith("LumosXSampler.") for a in (opt, value)]
    # a Bind of this batch's own, so that it runs (a cached node sends no report)
    opts += ["--set", f"LumosXBind.negative_prompt=blurry, batch {batch}"]
    out, result = tmp_path / "out", tmp_path / "jobs.json"
    r = lumosx("run", *files, "--server", server.url, "--server", second_server.url,
               "--out", out, "--json", result, *opts, *extra)
    assert r.returncode == 0, r.stdout + r.stderr + server.log()[-3000:]
    jobs = json.loads(result.read_text())
    assert [j["status"] for j in jobs] == ["success"] * len(files)
    assert {j["server"] for j in jobs} == {server.url, second_server.url}  # both got work
    for job in jobs:
        assert set(job["ran"]) | set(job["cached"]) == set(job["nodes"]), job  # every node
        assert job["texts"], job  # the Bind report came back
        (video,) = [f for f in job["files"] if f.endswith(".mp4")]
        (preview,) = [f for f in job["files"] if f.endswith(".png")]
        assert f"job-{job['job']}" in video
        import av
        with av.open(os.path.join(shipped.ROOT, video)) as c:
            stream = c.streams.video[0]
            frames = sum(1 for _ in c.decode(stream))
            width = stream.codec_context.width
        assert frames == SIZE["length"]
        # the A/B graph stitches on and off side by side with a 16 px gap
        ab = os.path.basename(job["workflow"]).startswith("ab_relational.")
        assert width == (2 * SIZE["width"] + 16 if ab else SIZE["width"])
        assert os.path.getsize(os.path.join(shipped.ROOT, preview)) > 1000
    assert "person 1 face 'man'" in r.stdout  # the binding report is printed
    if batch == "from_photos":  # and People From Photo's: who wears the painted shirt
        assert "person 3 wears: mask 1" in r.stdout, r.stdout
    assert "[#" in r.stderr  # progress from the websocket
    assert batch == "dual_cfg" or "LumosX Sampler" in r.stderr
    assert "success" in r.stderr


def test_refused_workflow_exits_1_with_the_node_errors(server, tmp_path, capsys):
    r = lumosx_here(capsys, "run", shipped.api_path("subject_consistent"),
                    "--server", server.url, "--out", tmp_path, *_overrides(server),
                    "--set", "LumosXBind.width=70")
    assert r.returncode == 1
    assert "width = 70: must be a positive multiple of 16" in r.stderr
    assert "(LumosXBind)" in r.stderr and "refused" in r.stderr


def test_failing_node_exits_1_with_its_exception(server, tmp_path, capsys):
    r = lumosx_here(capsys, "run", shipped.api_path("identity_consistent"),
                    "--server", server.url, "--out", tmp_path, *_overrides(server),
                    "--set", "LumosXBind.strict=true",
                    "--set", "Person 1: man.face_phrase=zebra")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "(LumosXBind) failed" in r.stderr and "zebra" in r.stderr
    assert "binding failed" in r.stderr


def test_timeout_cancels_the_job(server, tmp_path, capsys):
    r = lumosx_here(capsys, "run", shipped.api_path("identity_consistent"),
                    "--server", server.url, "--out", tmp_path,
                    *_overrides(server, width=128, height=96, length=9),
                    "--set", "LumosXSampler.seed=123", "--timeout", "0.5")
    assert r.returncode == 1
    assert "timed out after" in r.stderr
    queue = server.get("/queue")
    assert not queue["queue_pending"]


def test_bad_options_and_missing_server(server, tmp_path, capsys):
    r = lumosx_here(capsys, "run", shipped.api_path("identity_consistent"),
                    "--server", server.url, "--set", "Nope.seed=1")
    assert r.returncode == 2 and "no node 'Nope'" in r.stderr
    r = lumosx_here(capsys, "run", str(tmp_path / "missing.json"), "--server", server.url)
    assert r.returncode == 2 and "cannot read" in r.stderr
    r = lumosx_here(capsys, "run", shipped.api_path("identity_consistent"),
                    "--server", "http://127.0.0.1:9")
    assert r.returncode == 3 and "no ComfyUI server reachable" in r.stderr


def test_serve_dry_run_links_the_pack(tmp_path, capsys):
    r = lumosx("serve", "--dry-run", "--base-directory", tmp_path, "--port", "8123", "--cpu",
               "--extra-pack", e2e_setup.TEST_PACK)
    assert r.returncode == 0, r.stderr
    assert "--base-directory" in r.stdout and "--port 8123" in r.stdout and "--cpu" in r.stdout
    link = tmp_path / "custom_nodes" / "ComfyUI-LumosX"
    assert os.path.realpath(link) == os.path.realpath(shipped.ROOT)
    assert (tmp_path / "custom_nodes" / "lumosx_test_pack").exists()
    r = lumosx_here(capsys, "serve", "--dry-run", "--comfyui", tmp_path)
    assert r.returncode == 2 and "not a ComfyUI folder" in r.stderr


# ------------------------------------------------------------------------------------------
# the editing helpers
# ------------------------------------------------------------------------------------------
def _prompt():
    return {"1": {"class_type": "A", "inputs": {"x": 1}, "_meta": {"title": "first"}},
            "2": {"class_type": "B", "inputs": {"y": ["1", 0]}, "_meta": {"title": "Sampler: on"}},
            "3": {"class_type": "B", "inputs": {"y": ["1", 0]}, "_meta": {"title": "second b"}}}


def test_set_targets_ids_titles_and_class_types():
    p = _prompt()
    _workflow.apply_sets(p, [_workflow.parse_assignment("1.x=5"),
                             _workflow.parse_assignment("Sampler: on.seed=7"),
                             _workflow.parse_assignment("B.text=hello world"),
                             _workflow.parse_assignment('first.link=["3", 0]'),
                             _workflow.parse_assignment('first.s="42"')])
    assert p["1"]["inputs"] == {"x": 5, "link": ["3", 0], "s": "42"}
    assert p["2"]["inputs"]["seed"] == 7
    assert p["2"]["inputs"]["text"] == p["3"]["inputs"]["text"] == "hello world"
    with pytest.raises(WorkflowError, match="expected NODE.INPUT=VALUE"):
        _workflow.parse_assignment("1.x")
    with pytest.raises(WorkflowError, match="expected NODE.INPUT"):
        _workflow.parse_assignment("x=1")


def test_replace_and_sweep():
    p = _prompt()
    _workflow.apply_replacements(p, ["first=C"])
    assert p["1"] == {"inputs": {}, "class_type": "C", "_meta": {"title": "first"}}
    sweeps = [_workflow.parse_sweep("B.seed=[1, 2]"), _workflow.parse_sweep("1.x=[true, false]")]
    combos = _workflow.sweep_combinations(sweeps)
    assert len(combos) == 4 and combos[0] == [("B", "seed", 1), ("1", "x", True)]
    assert _workflow.sweep_combinations([]) == [[]]
    with pytest.raises(WorkflowError, match="JSON list"):
        _workflow.parse_sweep("B.seed=3")
    with pytest.raises(WorkflowError, match="NODE=CLASS_TYPE"):
        _workflow.apply_replacements(p, ["first"])


def test_prompt_error_text_merges_repeated_input_errors():
    body = {"error": {"message": "Prompt outputs failed validation"},
            "node_errors": {"14": {"class_type": "LumosXBind", "errors": [
                {"message": "Custom validation failed for node", "details": f"{n} - bad width",
                 "extra_info": {"input_name": n}} for n in ("prompt", "width")] + [
                {"message": "Value not in list", "details": "mode: 'x' not in [...]",
                 "extra_info": {"input_name": "mode"}}]}}}
    text = format_prompt_error(body)
    assert text.splitlines() == [
        "/prompt refused the workflow: Prompt outputs failed validation",
        "  node 14 (LumosXBind) [prompt, width]: Custom validation failed for node: bad width",
        "  node 14 (LumosXBind): Value not in list: mode: 'x' not in [...]"]
