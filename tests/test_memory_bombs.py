"""Small inputs, bounded memory, on a real headless server (issues #25, #28): each hostile
picture or model file, then a normal job. Asserted, with the bounds that *Limits* in
docs/security-and-errors.md states:

* a hostile picture: what our nodes add to the server's peak (ComfyUI's own ``LoadImage``
  decodes it first and is measured apart: its output stays cached, so the job with our nodes
  runs only them) is under :data:`PICTURE_PEAK`;
* a hostile model file: refused, naming it, while the server's peak grows less than
  :data:`FILE_PEAK`; a crafted ``.metadata`` leaves every object it could name unchanged;
* after each, a normal job gives exactly the output of the first one, and the server's
  resident memory is within :data:`RETAINED` of what it was after that first one.

Peaks are the kernel's high-water mark of the server process (``VmHWM``, reset through
``/proc/<pid>/clear_refs`` before each job), not samples. Big sizes are declared, never
written: the whole set of files takes a few MB on disk."""
import os

import numpy as np
import psutil
import pytest
import torch

import bombs
import e2e_setup
from host_server import e2e_server
from lumosx_core.wan_checkpoint import WanInfo, expected_shapes
from standin import tiny_dit_state_dict
from test_robustness import error_of, frames_of

pytestmark = pytest.mark.host_matrix  # run on every test host

MB = 1 << 20
#: the bounds of *Limits* in docs/security-and-errors.md:
#: what our nodes may add to the server's peak for one hostile picture
PICTURE_PEAK = 640 * MB
#: what refusing one hostile model file may add to the server's peak
FILE_PEAK = 64 * MB
#: resident memory after the next normal job, above the first normal job's
RETAINED = 160 * MB

GIB = 1 << 30
PICTURES = {"declares_9000.png": (9000, 9000, False),        # 65 bytes
            "zeros_12000.png": (12000, 12000, True)}          # 420 KB
PICTURE_USES = [("declares_9000.png", "background"), ("zeros_12000.png", "attribute"),
                ("zeros_12000.png", "face photo")]
#: model file -> what its refusal says
MODEL_FILES = {
    "compressed_1g.pt": "record archive/data/0 is compressed",
    "oversized_shard/": "gives __0_0.distcp (model.blocks.0.modulation at [0, 0, 0]) "
                        "1073741824 bytes for 3072 bytes",
    "sparse_released_size/": "(model.patch_embedding.weight at [0, 0, 0, 0, 0]) is sparse",
    "pipe.safetensors": "is not a regular file: it is a named pipe (FIFO)",
    "dev_zero.safetensors": "is not a regular file: it is a character device",
    "nan_weights.safetensors": "tensor blocks.0.ffn.0.weight holds NaN or infinite values",
    "bool_weights.safetensors": "tensor blocks.0.ffn.0.weight is torch.bool",
}
#: the picture's place in e2e_setup.lumosx_graph: the LoadImage node it replaces
PLACES = {"background": "10", "attribute": "8", "face photo": "4"}


def _status(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


class Meter:
    """The server's resident memory now, and its peak since :meth:`start`."""

    def __init__(self, pid: int):
        self.pid = pid

    def rss(self) -> int:
        return psutil.Process(self.pid).memory_info().rss

    def start(self) -> int:
        with open(f"/proc/{self.pid}/clear_refs", "w") as f:
            f.write("5")                          # peak := now
        return _status(self.pid, "VmRSS")

    def peak(self) -> int:
        return _status(self.pid, "VmHWM")


def _write_files(base: str) -> None:
    inp = os.path.join(base, "input")
    for name, (w, h, whole) in PICTURES.items():
        bombs.png(os.path.join(inp, name), w, h, whole)
    dm = os.path.join(base, "models", "diffusion_models")
    lx = os.path.join(base, "models", "lumosx")
    os.makedirs(lx, exist_ok=True)
    bombs.pt_with_compressed_record(os.path.join(dm, "compressed_1g.pt"), GIB)
    sd = tiny_dit_state_dict(dim=128, layers=1, ffn=128)
    bombs.dcp_oversized_shard(os.path.join(lx, "oversized_shard"), GIB, {"model": sd},
                              "model.blocks.0.modulation")
    released = WanInfo(dim=1536, layers=30, ffn_dim=8960, in_dim=16, out_dim=16, text_dim=4096)
    bombs.dcp_sparse(os.path.join(lx, "sparse_released_size"),          # 5.7 GB declared
                     {"model." + k: v for k, v in expected_shapes(released).items()})
    os.mkfifo(os.path.join(dm, "pipe.safetensors"))
    os.symlink("/dev/zero", os.path.join(dm, "dev_zero.safetensors"))
    nan = dict(sd, **{"blocks.0.ffn.0.weight": sd["blocks.0.ffn.0.weight"].clone()})
    nan["blocks.0.ffn.0.weight"][0, 0] = float("nan")
    import assets
    assets.write_safetensors(nan, os.path.join(dm, "nan_weights.safetensors"))
    assets.write_safetensors(dict(sd, **{"blocks.0.ffn.0.weight": sd["blocks.0.ffn.0.weight"]
                                         .bool()}), os.path.join(dm, "bool_weights.safetensors"))
    genuine = bombs.save_dcp({"model": sd}, os.path.join(lx, "genuine"))
    for case, data in bombs.mutating_metadata().items():    # the genuine shard, linked
        os.makedirs(os.path.join(lx, case))
        os.link(os.path.join(genuine, "__0_0.distcp"), os.path.join(lx, case, "__0_0.distcp"))
        with open(os.path.join(lx, case, ".metadata"), "wb") as f:
            f.write(data)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("bombs_base"))
    info = e2e_setup.prepare_base(base)
    _write_files(base)
    with e2e_server(base, prepared=info) as s:      # default caching: see the module doc
        s.meter = Meter(s.proc.pid)
        yield s


def _run(srv, graph):
    """``(history, peak above the resident memory at the start)`` of one job."""
    before = srv.meter.start()
    hist = srv.run(graph, timeout=900)
    return hist, srv.meter.peak() - before


def _normal(srv, prefix):
    return e2e_setup.lumosx_graph(srv.assets["spiece"], prefix=prefix)


def _state(srv) -> str:
    hist = srv.run({"1": {"class_type": "LumosXTestProcessState", "inputs": {}}})
    return hist["outputs"]["1"]["text"][0]


@pytest.fixture(scope="module")
def baseline(srv):
    """The normal job's output and the server's memory after it (the second run: the first
    warms up models and kernels), and the fingerprint of what a metadata pickle could name."""
    srv.run(_normal(srv, "warmup"))
    hist = srv.run(_normal(srv, "baseline"))
    assert hist["status"]["status_str"] == "success", hist["status"]
    return {"frames": frames_of(srv, hist, "17"), "rss": srv.meter.rss(),
            "state": _state(srv), "seen": []}


def _then_a_normal_job(srv, baseline, label):
    hist = srv.run(_normal(srv, "after_" + label.replace(" ", "_").replace("/", "")))
    assert hist["status"]["status_str"] == "success", (label, hist["status"])
    assert np.array_equal(frames_of(srv, hist, "17"), baseline["frames"]), label
    grown = srv.meter.rss() - baseline["rss"]
    baseline["seen"].append((label, grown))
    assert grown < RETAINED, f"{label}: resident memory {grown / MB:.0f} MB above the first " \
                             f"normal job's after the next normal job ({baseline['seen']})"


@pytest.mark.parametrize("picture,use", PICTURE_USES)
def test_hostile_picture_then_normal_job(srv, baseline, picture, use):
    load = {"1": {"class_type": "LoadImage", "inputs": {"image": picture}},
            "2": {"class_type": "GetImageSize", "inputs": {"image": ["1", 0]}},
            "3": {"class_type": "PreviewAny", "inputs": {"source": ["2", 0]}}}
    hist, comfy_peak = _run(srv, load)                 # ComfyUI's own decode, cached after
    assert hist["status"]["status_str"] == "success", hist["status"]
    g = _normal(srv, "hostile")
    g[PLACES[use]]["inputs"]["image"] = picture
    hist, ours = _run(srv, g)
    print(f"\n{picture} as {use}: LoadImage's peak +{comfy_peak / MB:.0f} MB, ours "
          f"+{ours / MB:.0f} MB, {hist['status']['status_str']}")
    assert hist["status"]["status_str"] == "success", hist["status"]
    assert ours < PICTURE_PEAK, f"our nodes added {ours / MB:.0f} MB to the peak"
    assert "more than the limit of 16.8 Mpx" in srv.log()
    _then_a_normal_job(srv, baseline, f"{picture} as {use}")


@pytest.mark.parametrize("name", sorted(MODEL_FILES))
def test_hostile_model_file_then_normal_job(srv, baseline, name):
    g = _normal(srv, "hostile")
    g["2"]["inputs"]["model_name"] = name
    hist, peak = _run(srv, g)
    print(f"\n{name}: refused, peak +{peak / MB:.0f} MB")
    err = error_of(hist)
    assert err["node_id"] == "2", err
    msg = err["exception_message"]
    assert msg.startswith(f"model_name '{name}'") and MODEL_FILES[name] in msg, msg
    assert peak < FILE_PEAK, f"refusing {name} added {peak / MB:.0f} MB to the peak"
    _then_a_normal_job(srv, baseline, name)


def test_crafted_metadata_leaves_the_server_unchanged(srv, baseline):
    """Every crafted ``.metadata`` of ``bombs.mutating_metadata`` (BUILD onto pathlib and the
    allowed classes, an enum member, torch's layout lookup; getattr chains; copyreg;
    ``__reduce_ex__`` results) through the Model Loader of the live server, one job each:
    each refused naming the file; then every object such a pickle can name is as before (the
    server's own fingerprint of their attributes) and a normal job gives the same output."""
    for case in sorted(bombs.mutating_metadata()):
        g = _normal(srv, "crafted")
        g["2"]["inputs"]["model_name"] = case + "/"
        err = error_of(srv.run(g))
        assert err["exception_message"].startswith(
            f"model_name '{case}/': refused to read {case}/.metadata: it asks to"), err
    assert _state(srv) == baseline["state"], "a crafted .metadata changed objects of the server"
    _then_a_normal_job(srv, baseline, "crafted metadata")
