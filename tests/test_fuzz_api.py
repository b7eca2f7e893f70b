"""Fuzz every input of every LumosX node through ``/prompt`` on the real headless host
(issue #13). The values are generated from ``/object_info`` (each input's declared type,
bounds and choices), not from a hand list: boundaries and one step past them, non-finite
numbers, wrong JSON types and oversized values.

* Every value that is not a valid value of its input must be refused: ``node_errors`` for
  the mutated node naming the input (never a 5xx; the mutated node never runs).
* Boundary values (min, max, first/last choice, true/false, the longest text allowed) may be
  accepted, or refused naming the input (the work limits refuse e.g. the largest video).
* Each value goes in a graph cut down to the outputs downstream of the mutated node, plus
  the *normal job* (Bind on a background picture, its preview saved under a new name): a
  refused value leaves the normal job valid, so ComfyUI queues the job anyway and the prompt
  worker copies and runs the job that holds the value -- as a client's whole workflow with
  one bad value would be. The normal job's preview must equal the fresh server's bit for bit,
  in the job of every value and so in the job right after it. After every batch of
  :data:`BATCH` values a normal job without any hostile value is computed afresh (a
  never-cached node before Bind, one LumosX Sampler step on a 32x32x1 latent) and its latent
  compared bit for bit with the fresh server's. Values are sent while a test-only gate job
  holds the executor; accepted values (200 steps, 16384 px are valid) are taken back from the
  queue before the gate opens, so they are checked at ``/prompt`` but never executed.
* A seeded sample of cheap accepted values is then run for real (tiny sizes): each succeeds or
  fails naming the input; after each, the fresh normal job again.
"""
import collections
import contextlib
import copy
import json
import math
import os
import random
import time
import uuid

import numpy as np
import pytest
import requests
import torch
from PIL import Image

import e2e_setup
from host_server import e2e_server

PACK_MODULE = "ComfyUI-LumosX"
#: Accepted values run for real after the /prompt phase (tiny sizes, cached upstream nodes).
EXECUTE_SAMPLE = 3
#: Characters of the longest text any LumosX input takes (lumosx_core/limits.py MAX_TEXT_CHARS).
MAX_TEXT = 65536
SEED = 13


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with e2e_server(str(tmp_path_factory.mktemp("fuzz_base"))) as s:
        yield s


def base_graph(srv, seed=0, prefix="fuzz"):
    """The end-to-end graph plus every LumosX node it lacks: Apply, Evaluate, the released
    sampler + schedule driving SamplerCustom, and the photo nodes (Cut Out, People From Photo,
    Pick Person)."""
    g = e2e_setup.lumosx_graph(srv.assets["spiece"], prefix=prefix, seed=seed)
    g["19"] = {"class_type": "LumosXEvaluate",
               "inputs": {"frames": ["16", 0], "references": ["13", 0],
                          "pack": e2e_setup.FACE_PACK, "sample_frames": 2,
                          "min_face_similarity": 0.2, "body_width": 2.8, "body_height": 3.5,
                          "det_size": 320, "provider": "CPU"}}
    g["20"] = {"class_type": "LumosXApply", "inputs": {"model": ["2", 0]}}
    g["15"]["inputs"]["model"] = ["20", 0]
    g["21"] = {"class_type": "LumosXReleasedSampler", "inputs": {}}
    g["22"] = {"class_type": "LumosXReleasedSchedule",
               "inputs": {"steps": 2, "shift": 8.0, "denoise": 1.0}}
    g["23"] = {"class_type": "SamplerCustom",
               "inputs": {"model": ["20", 0], "add_noise": True, "noise_seed": seed, "cfg": 6.0,
                          "positive": ["14", 0], "negative": ["14", 1], "sampler": ["21", 0],
                          "sigmas": ["22", 0], "latent_image": ["14", 2]}}
    g["24"] = {"class_type": "VAEDecode", "inputs": {"samples": ["23", 0], "vae": ["3", 0]}}
    g["25"] = {"class_type": "SaveAnimatedWEBP",
               "inputs": {"images": ["24", 0], "filename_prefix": prefix + "_released",
                          "fps": 16.0, "lossless": False, "quality": 80, "method": "fastest"}}
    # the photo nodes, on the from_photos workflow's painted pictures
    g["26"] = {"class_type": "LoadImage", "inputs": {"image": "lumosx_product_photo.png"}}
    g["27"] = {"class_type": "LumosXCutOut",
               "inputs": {"image": ["26", 0], "mask": ["26", 1], "parts": "all parts"}}
    g["28"] = {"class_type": "LoadImage", "inputs": {"image": "lumosx_group_photo.png"}}
    g["29"] = {"class_type": "LumosXPeopleFromPhoto",
               "inputs": {"image": ["28", 0], "garments": ["28", 1], "pack": e2e_setup.FACE_PACK,
                          "order": "left to right", "max_people": 0,
                          "crop": "face box (released)", "margin": 0.3, "size": 128,
                          "det_size": 320, "provider": "CPU", "body_width": 2.8,
                          "body_height": 3.5, "assign": "each part to its main wearer",
                          "min_overlap": 0.2}}
    g["30"] = {"class_type": "LumosXPickPerson", "inputs": {"people": ["29", 2], "index": 3}}
    g["31"] = {"class_type": "SaveImage",
               "inputs": {"images": ["27", 0], "filename_prefix": prefix + "_cutout"}}
    g["32"] = {"class_type": "SaveImage",
               "inputs": {"images": ["30", 0], "filename_prefix": prefix + "_person"}}
    return g


def links(node):
    return [v[0] for v in node["inputs"].values()
            if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str)]


def focus(g, nid, is_output):
    """The part of ``g`` that ``/prompt`` validates when only the outputs downstream of
    ``nid`` are kept: a refusal of ``nid`` then leaves nothing to run."""
    down, grew = {nid}, True
    while grew:
        grew = False
        for k, node in g.items():
            if k not in down and any(s in down for s in links(node)):
                down.add(k)
                grew = True
    keep, todo = set(), [k for k in down if is_output(g[k]["class_type"])]
    assert todo, f"node {nid} ({g[nid]['class_type']}) reaches no output"
    while todo:
        k = todo.pop()
        if k not in keep:
            keep.add(k)
            todo += links(g[k])
    return {k: copy.deepcopy(g[k]) for k in keep}


def widget_inputs(info):
    """``name -> (type, options dict)`` of the inputs a value can be typed into."""
    out = {}
    for section in ("required", "optional"):
        for name, spec in (info.get("input") or {}).get(section, {}).items():
            kind = spec[0]
            opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            if isinstance(kind, list):
                out[name] = ("COMBO", dict(opts, options=kind))
            elif kind in ("INT", "FLOAT", "BOOLEAN", "STRING", "COMBO"):
                out[name] = (kind, opts)
    return out


#: wrong JSON types tried on every input (a one-element list is not a link)
WRONG_TYPES = [[1], {"a": 1}, None]


def mutations(kind, opts, rng):
    """``(class, value, may_accept)`` to try on one input, from its declaration."""
    lo, hi = opts.get("min"), opts.get("max")
    out = []
    if kind in ("INT", "FLOAT"):
        step = 1 if kind == "INT" else max(float(opts.get("step", 0.01) or 0.01), 1e-3)
        for v in (lo, hi):
            if v is not None:
                out.append(("boundary", v, True))
        if lo is not None:
            out.append(("past-bound", lo - step, False))
        if hi is not None:
            out.append(("past-bound", hi + step, False))
        out += [("oversized", 10 ** 30, False), ("oversized", -(10 ** 30), False),
                ("oversized", 1e308, False)]
        out += [("non-finite", v, False) for v in (math.nan, math.inf, -math.inf)]
        out += [("wrong-type", v, False) for v in ("7", "abc", True, False, "")]
        if kind == "INT":
            out.append(("wrong-type", 2.5, False))
    elif kind == "BOOLEAN":
        out += [("boundary", True, True), ("boundary", False, True)]
        out += [("wrong-type", v, False) for v in ("false", "true", 0, 1, "", 0.5)]
    elif kind == "STRING":
        out += [("boundary", "", True), ("boundary", "x" * MAX_TEXT, True)]
        out += [("oversized", "x" * (MAX_TEXT + 1), False),
                ("oversized", "\u2603" * (4 * MAX_TEXT), False)]
        out += [("wrong-type", v, False) for v in (12345, 1.5, True)]
    elif kind == "COMBO":
        options = opts.get("options") or []
        if options:
            out += [("boundary", options[0], True), ("boundary", options[-1], True)]
        out += [("wrong-type", v, False) for v in ("no-such-choice-\u2603", 5, True,
                                                     "../../etc/passwd")]
        out.append(("oversized", "c" * (MAX_TEXT + 1), False))
    out += [("wrong-type", v, False) for v in WRONG_TYPES]
    if kind == "COMBO" and opts.get("options"):
        out.append(("boundary", rng.choice(opts["options"]), True))
    return out


def post(srv, prompt):
    """A ``/prompt`` the way a hostile client writes it (``NaN`` / ``Infinity`` literals)."""
    body = json.dumps({"prompt": prompt, "client_id": srv.client_id}, allow_nan=True)
    return requests.post(srv.url + "/prompt", data=body, timeout=60,
                         headers={"Content-Type": "application/json"})


def queue_ids(srv):
    q = srv.get("/queue")
    return ([item[1] for item in q["queue_running"]], [item[1] for item in q["queue_pending"]])


def wait_idle(srv, timeout=120.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        running, pending = queue_ids(srv)
        if not running and not pending:
            return
        time.sleep(0.1)
    raise TimeoutError(f"queue not empty after {timeout}s: {queue_ids(srv)}")


@contextlib.contextmanager
def gate(srv):
    """Hold the executor with the test pack's gate job for the duration of the block."""
    wait_idle(srv)
    release = os.path.join(srv.base, "temp", f"gate_{uuid.uuid4().hex}")
    r = srv.queue({"1": {"class_type": "LumosXTestGate", "inputs": {"release_file": release}}})
    assert r.status_code == 200, r.text
    gate_id = r.json()["prompt_id"]
    deadline = time.time() + 60
    while queue_ids(srv)[0] != [gate_id]:
        assert time.time() < deadline, f"gate job did not start: {queue_ids(srv)}"
        time.sleep(0.05)
    try:
        yield gate_id
    finally:
        open(release, "w").close()
        hist = srv.wait(gate_id, timeout=60)
        assert hist["status"]["status_str"] == "success", hist["status"]


def names_input(errors, name):
    """Whether an error names input ``name``: in its own message (a failed
    ``validate_inputs`` is listed under every input it was given, as ``"<input> - <message>"``,
    so only the message part counts), or as the input ComfyUI's own check refused."""
    for e in errors:
        extra = e.get("extra_info") or {}
        if e.get("type") == "custom_validation_failed":
            if name in e.get("details", "").partition(" - ")[2]:
                return True
        elif extra.get("input_name") == name or name in str(extra.get("exception_message", "")):
            return True
    return False


def short(v):
    return f"{v!r:.40}" + (f"...({len(v)} chars)" if isinstance(v, str) and len(v) > 40 else "")


#: node ids of the normal job (kept apart from the fuzz graph's)
PROBE_IDS = [str(900 + i) for i in range(11)]
#: values sent per gate; the normal job is computed afresh after each batch
BATCH = 128


def probe_part(srv, kind: str, prefix: str = "fuzz_next"):
    """The normal job, kind ``"next"`` (Bind on a background picture, cached after the first
    time, its preview saved again as ``prefix``) or ``"fresh"`` (a never-cached node before
    Bind, so Bind and one LumosX Sampler step on a 32x32x1 latent run again; the latent saved
    as ``prefix``)."""
    a, b, c, d, e, f, g_, h, i, j, k = PROBE_IDS
    g = {a: {"class_type": "LumosXTestTinyTextEncoder",
             "inputs": {"spiece_path": srv.assets["spiece"], "seed": 0}},
         c: {"class_type": "VAELoader", "inputs": {"vae_name": e2e_setup.VAE}},
         d: {"class_type": "LoadImage", "inputs": {"image": "garden.png"}},
         e: {"class_type": "LumosXReference",
             "inputs": {"image": [d, 0], "phrase": "sunny garden", "kind": "background"}},
         f: {"class_type": "LumosXBind",
             "inputs": {"clip": [a, 0], "vae": [c, 0], "prompt": e2e_setup.PROMPT,
                        "negative_prompt": "blurry", "references": [e, 0], "width": 32,
                        "height": 32, "length": 1, "batch_size": 1, "ratio": 0.5, "r2pe": True,
                        "self_mask": True, "cross_mask": True, "mode": "parity",
                        "uncond_bias": "positive phrase masks (released)", "strict": True}}}
    if kind == "next":
        g[k] = {"class_type": "SaveImage", "inputs": {"images": [f, 4], "filename_prefix": prefix}}
    else:
        g[g_] = {"class_type": "LumosXTestFresh", "inputs": {"image": [d, 0]}}
        g[e]["inputs"]["image"] = [g_, 0]
        g[b] = {"class_type": "LumosXModelLoader",
                "inputs": {"model_name": e2e_setup.DIT, "weight_dtype": "default"}}
        g[h] = {"class_type": "LumosXSampler",
                "inputs": {"model": [b, 0], "positive": [f, 0], "negative": [f, 1],
                           "latent": [f, 2], "seed": 7, "steps": 1, "cfg": 6.0,
                           "sampler_name": "euler", "scheduler": "simple", "shift": 8.0,
                           "denoise": 1.0}}
        g[i] = {"class_type": "SaveLatent", "inputs": {"samples": [h, 0], "filename_prefix": prefix}}
    return g


def probe_output(srv, hist):
    """What the normal job saved: the latent (``"fresh"``) or the preview's pixels
    (``"next"``); ``None`` when it did not finish well."""
    from safetensors.torch import load_file
    if hist is None or hist.get("status", {}).get("status_str") != "success":
        return None
    outputs = hist["outputs"]
    if PROBE_IDS[8] in outputs:
        item = outputs[PROBE_IDS[8]]["latents"][0]
    else:
        item = outputs[PROBE_IDS[10]]["images"][0]
    path = os.path.join(srv.base, "output", item.get("subfolder", ""), item["filename"])
    if path.endswith(".latent"):
        return load_file(path)["latent_tensor"]
    with Image.open(path) as im:
        return torch.from_numpy(np.asarray(im.convert("RGB")).copy())


def history(srv, prompt_id):
    return srv.get(f"/history/{prompt_id}").get(prompt_id)


def wait_all(srv, ids, timeout):
    """Wait until every job of ``ids`` is in the history; else the index of the first one
    that is not."""
    deadline = time.time() + timeout
    for n, pid in enumerate(ids):
        while history(srv, pid) is None:
            if time.time() > deadline:
                return n
            time.sleep(0.05)
    return None


@pytest.fixture(scope="module")
def fresh(srv):
    """The normal jobs' outputs on the fresh server, before any hostile value."""
    out = {}
    for kind in ("fresh", "next"):
        out[kind] = probe_output(srv, srv.run(probe_part(srv, kind, "fuzz_first_" + kind)))
        assert out[kind] is not None and out[kind].float().abs().sum() > 0, kind
    again = probe_output(srv, srv.run(probe_part(srv, "fresh", "fuzz_again")))
    assert torch.equal(again, out["fresh"])         # the normal job is deterministic
    assert torch.isfinite(out["fresh"]).all()
    return out


def fresh_job_matches(srv, fresh, prefix):
    out = probe_output(srv, srv.run(probe_part(srv, "fresh", prefix), timeout=300))
    return out is not None and torch.equal(out, fresh["fresh"])


def test_every_input_of_every_node(srv, fresh):
    t0 = time.time()
    all_info = srv.get("/object_info")
    info = {name: i for name, i in all_info.items()
            if PACK_MODULE in str(i.get("python_module", ""))}
    assert len(info) >= 10, sorted(info)
    g0 = base_graph(srv)
    by_class = {}
    for nid, node in sorted(g0.items(), key=lambda kv: int(kv[0])):
        by_class.setdefault(node["class_type"], nid)
    missing = sorted(set(info) - set(by_class))
    assert not missing, f"LumosX nodes not in the fuzz graph: {missing}"

    def is_output(cls):
        return bool(all_info[cls].get("output_node"))

    rng = random.Random(SEED)
    cases, tried_inputs = [], 0
    for cls, node_info in sorted(info.items()):
        nid = by_class[cls]
        g_focus = focus(g0, nid, is_output)
        for name, (kind, opts) in sorted(widget_inputs(node_info).items()):
            tried_inputs += 1
            cases += [(cls, nid, g_focus, name) + m for m in mutations(kind, opts, rng)]
    counts = collections.Counter()
    problems, accepted, checked = [], [], 0
    for start in range(0, len(cases), BATCH):
        sent = []               # (what, job id or None)
        with gate(srv):
            for cls, nid, g_focus, name, klass, value, may_accept in cases[start:start + BATCH]:
                g = copy.deepcopy(g_focus)
                g[nid]["inputs"][name] = value
                g.update(probe_part(srv, "next", f"fuzz_next_{start + len(sent)}"))
                r = post(srv, g)
                what = f"{cls}.{name} = {short(value)} ({klass})"
                job = None
                if r.status_code >= 500:
                    problems.append(f"{what}: HTTP {r.status_code} {r.text[:300]}")
                    counts[klass, "5xx"] += 1
                else:
                    body = r.json()
                    errs = (body.get("node_errors") or {}).get(nid, {}).get("errors", [])
                    job = body.get("prompt_id")
                    if errs:
                        counts[klass, "refused"] += 1
                        if not names_input(errs, name):
                            problems.append(f"{what}: HTTP {r.status_code}, {str(body)[:300]}")
                    elif r.status_code == 200 and job:
                        # accepted: taken back before it can run (it may be expensive)
                        requests.post(srv.url + "/queue", json={"delete": [job]}, timeout=30)
                        job = None
                        counts[klass, "accepted"] += 1
                        if not may_accept:
                            problems.append(f"{what}: accepted")
                        else:
                            accepted.append((cls, nid, name, value))
                    else:
                        problems.append(f"{what}: HTTP {r.status_code} without an error for "
                                        f"node {nid}: {str(body)[:300]}")
                sent.append((what, job))
        ran_jobs = [(what, job) for what, job in sent if job]
        stuck = wait_all(srv, [job for _, job in ran_jobs], timeout=150)
        assert stuck is None, (f"the prompt worker stopped: the job of {ran_jobs[stuck][0]} "
                               f"never finished ({len(queue_ids(srv)[1])} jobs pending)")
        for what, job in ran_jobs:
            out = probe_output(srv, history(srv, job))
            if out is None or not torch.equal(out, fresh["next"]):
                problems.append(f"{what}: the normal job in its job "
                                + ("failed" if out is None else "gave another preview"))
            checked += 1
        if not fresh_job_matches(srv, fresh, f"fuzz_batch_{start}"):
            problems.append(f"after {sent[-1][0]}: the normal job computed afresh failed or "
                            f"gave another latent")
    t_prompt = time.time() - t0

    # a seeded sample of cheap accepted values really runs (tiny sizes, few steps)
    def cheap(a):
        v = a[3]
        return not (isinstance(v, str) and len(v) > 64) and not (
            isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) > 64)
    sample = sorted((a for a in accepted if cheap(a)), key=repr)
    rng.shuffle(sample)
    ran = []
    for cls, nid, name, value in sample[:EXECUTE_SAMPLE]:
        g = focus(g0, nid, is_output)
        g[nid]["inputs"][name] = value
        for k, node in g.items():
            if "filename_prefix" in node["inputs"]:
                node["inputs"]["filename_prefix"] = f"fuzz_{cls}_{name}_{k}"
        hist = srv.run(g, timeout=600)
        status = hist["status"]["status_str"]
        ran.append(f"{cls}.{name}={short(value)}: {status}")
        if status != "success":
            msgs = [m for k, m in hist["status"]["messages"] if k == "execution_error"]
            assert msgs and name in msgs[0]["exception_message"], (cls, name, value, msgs)
        assert fresh_job_matches(srv, fresh, f"fuzz_ran_{len(ran)}"), ran[-1]
    t_run = time.time() - t0 - t_prompt

    assert srv.proc.poll() is None
    assert requests.get(srv.url + "/system_stats", timeout=10).ok

    table = collections.defaultdict(collections.Counter)
    for (klass, outcome), n in counts.items():
        table[klass][outcome] = n
    print(f"\nLumosX API fuzz: {len(info)} nodes, {tried_inputs} inputs, "
          f"{sum(counts.values())} values, {checked} of them run with a normal job that "
          f"matched the fresh server's, in {t_prompt:.0f}s; executed {len(ran)} in "
          f"{t_run:.0f}s")
    for klass in sorted(table):
        print(f"  {klass:<11} " + ", ".join(f"{o} {n}" for o, n in sorted(table[klass].items())))
    for line in ran:
        print("  ran " + line)
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
    assert sum(counts.values()) > 400
