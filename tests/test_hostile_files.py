"""Hostile model files: nothing the pack reads can run code, and broken files get an
explanation instead of a crash (issue #13).

The torch-distributed checkpoint (DCP) tests save real checkpoints with
``torch.distributed.checkpoint`` and then replace pieces of them with pickles that would
create a marker file if they were ever unpickled by plain ``pickle``."""
import io
import os
import pickle
import subprocess
import sys
import warnings

import pytest
import torch

import lumosx_core.convert as conv
from lumosx_core.convert import CheckpointError, UnsafeCheckpointError, load_checkpoint

class Evil:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _loader():
    from ComfyUI_LumosX.nodes import model
    return model


def save_dcp(state: dict, path) -> str:
    import torch.distributed.checkpoint as dcp
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dcp.save(state, checkpoint_id=str(path), no_dist=True)
    return str(path)


def _convert_cli(*args, cwd=None):
    import tempfile
    return subprocess.run([sys.executable, "-m", "lumosx_core.convert", *map(str, args)],
                          cwd=cwd or tempfile.gettempdir(), capture_output=True, text=True,
                          timeout=300)


# -- torch-distributed checkpoints ------------------------------------------------------------

def test_genuine_dcp_loads_without_plain_pickle(folders, wan_sd, monkeypatch):
    """A real DCP save (nested dict, bf16 and fp32 tensors, non-tensor items) loads exactly,
    and neither torch's plain-pickle ``read_metadata`` nor ``pickle.load`` is ever used."""
    _, lx = folders
    state = {"model": {k: v.clone() for k, v in wan_sd.items()},
             "extra": {"half": torch.arange(6, dtype=torch.bfloat16).reshape(2, 3)},
             "step": 1000, "name": "lumosx"}
    save_dcp(state, lx / "lumosx_dcp")

    from torch.distributed.checkpoint.filesystem import FileSystemReader

    def refuse(*a, **k):
        raise AssertionError("plain pickle used on a checkpoint")
    monkeypatch.setattr(FileSystemReader, "read_metadata", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)

    flat = conv.load_distributed(str(lx / "lumosx_dcp"))
    assert torch.equal(flat["extra.half"], state["extra"]["half"])
    assert flat["extra.half"].dtype == torch.bfloat16
    assert "step" not in flat and "name" not in flat        # non-tensor items are not read
    for k, v in wan_sd.items():
        assert torch.equal(flat["model." + k], v), k

    m = _loader().LumosXModelLoader.execute("lumosx_dcp/", "default").result[0]
    got = m.model.diffusion_model.state_dict()
    for k in ("blocks.0.ffn.0.weight", "head.modulation", "patch_embedding.weight"):
        assert torch.equal(got[k].float(), wan_sd[k].float()), k


def _evil_dcp(base, wan_sd, marker, name="evil_dcp"):
    path = save_dcp({"model": {k: v.clone() for k, v in wan_sd.items()}}, base / name)
    with open(os.path.join(path, ".metadata"), "wb") as f:
        pickle.dump({"payload": Evil(marker)}, f)
    return path


def test_dcp_metadata_exploit_refused_by_loader(folders, wan_sd, tmp_path):
    _, lx = folders
    marker = tmp_path / "pwned_loader"
    _evil_dcp(lx, wan_sd, marker)
    model = _loader()
    assert "evil_dcp/" in model.model_choices()       # listed: the error comes on loading
    with pytest.raises(ValueError) as e:
        model.LumosXModelLoader.execute("evil_dcp/", "default")
    msg = str(e.value)
    assert "model_name 'evil_dcp/'" in msg and "refused" in msg and "posix.system" in msg, msg
    assert "could run code" in msg
    assert not marker.exists()
    assert not os.path.exists(str(lx / "evil_dcp") + conv.CACHE_SUFFIX)


def test_dcp_metadata_exploit_refused_by_convert_cli(wan_sd, tmp_path):
    marker = tmp_path / "pwned_cli"
    src = _evil_dcp(tmp_path, wan_sd, marker)
    dst = tmp_path / "out.safetensors"
    r = _convert_cli(src, dst)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "refused" in r.stderr and "could run code" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not marker.exists()
    assert not dst.exists() and not os.path.exists(str(dst) + ".partial")


@pytest.mark.parametrize("global_name", ["builtins.eval", "subprocess.Popen", "os.system",
                                         "torch.load", "collections.namedtuple"])
def test_dcp_unpickler_allows_only_metadata_classes(global_name, tmp_path):
    """Whatever callable a crafted ``.metadata`` names, the unpickler refuses it unlooked-up."""
    module, name = global_name.rsplit(".", 1)
    data = b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n)R."
    with pytest.raises(UnsafeCheckpointError, match=f"build {module}.{name}"):
        conv.MetadataUnpickler(io.BytesIO(data)).load()


def test_dcp_bytes_item_pickle_never_read(tmp_path, wan_sd):
    """``dcp.load`` reads non-tensor items with ``weights_only=False``; ours never reads
    them: an evil pickle stored as a checkpoint's byte item stays inert."""
    marker = tmp_path / "pwned_bytes"
    path = save_dcp({"model": {k: v.clone() for k, v in wan_sd.items()},
                     "extra": io.BytesIO(pickle.dumps(Evil(marker)))}, tmp_path / "ck")
    sd = load_checkpoint(path)
    assert "blocks.0.ffn.0.weight" in sd
    assert not marker.exists()


def _rewrite_metadata(path, edit):
    with open(os.path.join(path, ".metadata"), "rb") as f:
        meta = conv.MetadataUnpickler(f).load()
    edit(meta)
    with open(os.path.join(path, ".metadata"), "wb") as f:
        pickle.dump(meta, f)


@pytest.mark.parametrize("case", ["traversal", "huge", "missing_chunk", "shape", "evil_chunk",
                                  "empty_metadata", "junk_metadata", "missing_file"])
def test_dcp_crafted_metadata_refused(tmp_path, case):
    """Well-formed-looking metadata that points outside the folder, asks for more memory
    than its files hold, leaves a tensor partly unwritten, or whose chunk is an evil pickle:
    each a clean CheckpointError, never uninitialised weights or code."""
    marker = tmp_path / "pwned"
    path = save_dcp({"a": torch.randn(4, 5), "b": torch.ones(3)}, tmp_path / "ck")
    (tmp_path / "outside.distcp").write_bytes(b"x" * 10)
    match = None
    if case == "traversal":
        def edit(m):
            for info in m.storage_data.values():
                info.relative_path = "../outside.distcp"
        match = "not a plain file name"
    elif case == "huge":
        def edit(m):
            m.state_dict_metadata["a"].size = torch.Size([1 << 20, 1 << 20])
            m.state_dict_metadata["a"].chunks[0].sizes = torch.Size([1 << 20, 1 << 20])
        match = "describes .* bytes of tensors"
    elif case == "missing_chunk":
        def edit(m):
            m.state_dict_metadata["a"].size = torch.Size([8, 5])   # chunk covers half
        match = "cover 20 of its 40 values"
    elif case == "shape":
        def edit(m):
            m.state_dict_metadata["a"].size = torch.Size([5, 4])
            m.state_dict_metadata["a"].chunks[0].sizes = torch.Size([5, 4])
        match = "inconsistent"
    elif case == "evil_chunk":
        evil = pickle.dumps(Evil(marker), protocol=2)
        with open(os.path.join(path, "evil.distcp"), "wb") as f:
            f.write(evil)

        def edit(m):
            for idx, info in m.storage_data.items():
                if idx.fqn == "a":
                    info.relative_path, info.offset, info.length = "evil.distcp", 0, len(evil)
        match = "refused"
    elif case == "missing_file":
        def edit(m):
            for info in m.storage_data.values():
                info.relative_path = "nope.distcp"
        match = "missing"
    if case == "empty_metadata":
        open(os.path.join(path, ".metadata"), "wb").close()
        match = "empty"
    elif case == "junk_metadata":
        with open(os.path.join(path, ".metadata"), "wb") as f:
            f.write(os.urandom(4096))
        match = "cannot read|refused"
    else:
        _rewrite_metadata(path, edit)
    with pytest.raises(CheckpointError, match=match):
        conv.load_distributed(path)
    assert not marker.exists()


# -- broken single files ----------------------------------------------------------------------

@pytest.mark.parametrize("name,data,expect", [
    ("empty.pt", b"", "empty"),
    ("random.bin", None, "not a PyTorch checkpoint"),
    ("text.pth", b"hello, I am not a checkpoint\n" * 10, "not a PyTorch checkpoint"),
    ("zip.ckpt", b"PK\x03\x04" + bytes(300), "not a PyTorch checkpoint"),
])
def test_broken_pickle_files_explained(folders, name, data, expect):
    _, lx = folders
    if data is None:
        data = bytes(torch.randint(0, 256, (8192,), generator=torch.Generator().manual_seed(1),
                                   dtype=torch.uint8).tolist())
    (lx / name).write_bytes(data)
    with pytest.raises(ValueError) as e:
        _loader().LumosXModelLoader.execute(name, "default")
    msg = str(e.value)
    assert msg.startswith(f"model_name '{name}'") and expect in msg, msg
    assert "could run code" not in msg                  # broken is not dangerous
    assert isinstance(e.value, ValueError) and not isinstance(e.value, IndexError)


def test_evil_pt_is_called_unsafe(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(2), "x": Evil(marker)}, path)
    with pytest.raises(UnsafeCheckpointError, match="could run code"):
        conv.load_pickle(str(path))
    assert not marker.exists()


# -- conversion destinations ------------------------------------------------------------------

@pytest.fixture
def official_pt(tmp_path, wan_sd):
    src = tmp_path / "official.pth"
    torch.save({"model": {"module." + k: v for k, v in wan_sd.items()}}, src)
    return src


@pytest.mark.parametrize("case", ["missing_dir", "is_folder", "unwritable", "same_file"])
def test_convert_bad_destination_is_a_clean_error(tmp_path, official_pt, case):
    if case == "missing_dir":
        dst, expect = tmp_path / "no" / "such" / "out.safetensors", "does not exist"
    elif case == "is_folder":
        dst, expect = tmp_path / "a_folder", "is a folder"
        dst.mkdir()
    elif case == "unwritable":
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        dst, expect = ro / "out.safetensors", "not writable|cannot write|Permission denied"
        if os.access(ro, os.W_OK):   # root: permissions do not apply; /proc refuses anyone
            dst = "/proc/lumosx_out.safetensors"
    else:
        dst, expect = official_pt, "source itself"
    r = _convert_cli(official_pt, dst)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and r.stderr.startswith("error: "), r.stderr
    import re
    assert re.search(expect, r.stderr), r.stderr
    leftovers = [p for p in tmp_path.rglob("*.partial")]
    assert not leftovers and not os.path.exists(str(dst) + ".partial")


def test_failed_write_leaves_no_partial(tmp_path, official_pt, monkeypatch):
    dst = tmp_path / "out.safetensors"

    def fail(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(conv.os, "replace", fail)
    with pytest.raises(CheckpointError, match="No space left"):
        conv.convert(str(official_pt), str(dst))
    assert not dst.exists() and not list(tmp_path.glob("*.partial"))


# -- lumosx run --out --------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["is_file", "unwritable"])
def test_run_out_checked_before_queueing(tmp_path, case, capsys):
    """An unusable --out is refused before any server is contacted or any job queued."""
    from lumosx_core.cli import main
    if case == "is_file":
        out = tmp_path / "a_file"
        out.write_text("x")
        expect = "is a file"
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        out = ro / "sub"
        expect = "cannot write there"
        if os.access(ro, os.W_OK):     # root: permissions do not apply; /proc refuses anyone
            out = "/proc/lumosx_out/sub"
    wf = tmp_path / "wf.json"
    wf.write_text('{"1": {"class_type": "LumosXBind", "inputs": {}}}')
    rc = main(["run", str(wf), "--server", "http://127.0.0.1:9", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and expect in err and "--out" in err, err
    assert "not reachable" not in err
