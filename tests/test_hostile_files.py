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

import pytest
import torch

import bombs
from bombs import save_dcp
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
    meta = bombs.read_metadata(path)
    edit(meta)
    bombs.write_metadata(path, meta)


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
        match = r"stores 80 bytes of tensor data, its metadata says \[1048576, 1048576\]"
    elif case == "missing_chunk":
        def edit(m):
            m.state_dict_metadata["a"].size = torch.Size([8, 5])   # chunk covers half
        match = "cover 20 of its 40 values"
    elif case == "shape":
        def edit(m):
            m.state_dict_metadata["a"].size = torch.Size([5, 4])
            m.state_dict_metadata["a"].chunks[0].sizes = torch.Size([5, 4])
        match = "inconsistent"
    elif case == "evil_chunk":     # a torch.save archive with the tensor's bytes, and code
        buf = io.BytesIO()
        torch.save({"t": torch.zeros(4, 5), "x": Evil(marker)}, buf)
        evil = buf.getvalue()
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


# -- the metadata unpickler changes nothing (issues #25, #28) ---------------------------------

@pytest.fixture(scope="module")
def genuine_dcp(tmp_path_factory, wan_sd):
    return save_dcp({"model": {k: v.clone() for k, v in wan_sd.items()}},
                    tmp_path_factory.mktemp("dcp") / "genuine")


@pytest.mark.parametrize("case", sorted(bombs.mutating_metadata()))
def test_metadata_cannot_change_the_process(case, genuine_dcp, tmp_path, wan_sd):
    """A ``.metadata`` using only allowed names that tries BUILD/setattr on an allowed class,
    a function, an enum member or a value, a getattr chain, copyreg or a ``__reduce_ex__``
    result: refused naming the file, and pathlib and every allowed class, enum member and
    function are exactly as before; a genuine checkpoint still loads afterwards."""
    from lumosx_test_pack.process_state import process_state
    import shutil
    path = tmp_path / "crafted"
    shutil.copytree(genuine_dcp, path)
    (path / ".metadata").write_bytes(bombs.mutating_metadata()[case])
    before = process_state()
    with pytest.raises(UnsafeCheckpointError, match=r"refused to read crafted/\.metadata: it "
                                                      r"asks to"):
        load_checkpoint(str(path))
    after = process_state()
    changed = sorted(k for k in before if before[k] != after.get(k))
    assert not changed and before == after, changed
    sd = load_checkpoint(str(genuine_dcp))
    assert torch.equal(sd["blocks.0.ffn.0.weight"], wan_sd["blocks.0.ffn.0.weight"])


def test_process_state_sees_a_build_on_an_allowed_class():
    """The fingerprint the test above compares does see the change the old unpickler let
    through (``pickle.Unpickler`` restricted by ``find_class`` alone)."""
    import pathlib
    from lumosx_test_pack.process_state import process_state

    class FindClassOnly(pickle.Unpickler):          # the unpickler before issue #25
        def find_class(self, module, name):
            return conv.MetadataUnpickler(io.BytesIO(b""))._allowed[(module, name)]
    before = process_state()
    original = pathlib.PosixPath.__dict__.get("is_relative_to")
    try:
        data = bombs.mutating_metadata()["build_posixpath_setattr"]
        FindClassOnly(io.BytesIO(data)).load()
        assert pathlib.PosixPath.is_relative_to == "x"
        assert process_state()["pathlib.PosixPath"] != before["pathlib.PosixPath"]
    finally:
        if original is None:
            del pathlib.PosixPath.is_relative_to
        else:
            pathlib.PosixPath.is_relative_to = original
    assert process_state() == before


# -- files that declare more than they hold (issue #28) --------------------------------------

@pytest.fixture
def no_torch_load(monkeypatch):
    """torch.load must never be reached: the file is refused from its headers."""
    def boom(*a, **k):
        raise AssertionError("torch.load reached a file its headers should have refused")
    monkeypatch.setattr(torch, "load", boom)


def test_pt_with_compressed_record_refused_unread(tmp_path, no_torch_load):
    path = tmp_path / "bomb.pt"
    assert bombs.pt_with_compressed_record(path, 64 << 20) < 1 << 20
    with pytest.raises(CheckpointError, match=r"refused bomb.pt: its record archive/data/0 is compressed .* declaring "
                                              r"67108864"):
        load_checkpoint(str(path))


def _patch_directory_size(path, record: str, size: int) -> None:
    """Make the zip directory of a torch.save archive declare ``size`` bytes for ``record``."""
    import struct
    data = bytearray(open(path, "rb").read())
    name = record.encode()
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        n = struct.unpack("<H", data[at + 28:at + 30])[0]
        if bytes(data[at + 46:at + 46 + n]) == name:
            data[at + 20:at + 28] = struct.pack("<II", size, size)
            break
        at = data.find(b"PK\x01\x02", at + 4)
    else:
        raise AssertionError(record)
    open(path, "wb").write(bytes(data))


def test_pt_record_larger_than_the_file_refused_unread(tmp_path, no_torch_load):
    path = tmp_path / "short.pt"
    torch.save({"w": torch.zeros(4)}, path)
    _patch_directory_size(path, "short/data/0", 1 << 30)
    with pytest.raises(CheckpointError, match="record short/data/0 declares 1073741824 bytes, "
                                              "more than the file holds"):
        load_checkpoint(str(path))


def test_dcp_oversized_shard_refused_unread(tmp_path, no_torch_load):
    path = bombs.dcp_oversized_shard(tmp_path / "big_shard", 1 << 30)
    with pytest.raises(CheckpointError, match=r"gives __0_0.distcp \(a at \[0\]\) 1073741824 "
                                              r"bytes for 4 bytes of tensor data"):
        load_checkpoint(path)


def test_dcp_sparse_shard_refused_unread(tmp_path, no_torch_load):
    path = bombs.dcp_sparse(tmp_path / "sparse", {"a": (1 << 28,)})
    assert os.stat(os.path.join(path, "__0_0.distcp")).st_blocks == 0
    with pytest.raises(CheckpointError, match=r"__0_0.distcp \(a at \[0\]\) is sparse"):
        load_checkpoint(path)


@pytest.mark.parametrize("case,match", [
    ("huge_header", "its header declares 1099511627776 bytes, more than a model needs"),
    ("past_end", "truncated"), ("zeros", "not a valid safetensors"),
])
def test_safetensors_header_checked_before_reading(tmp_path, case, match):
    import struct
    path = tmp_path / "x.safetensors"
    if case == "huge_header":
        path.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    elif case == "past_end":
        path.write_bytes(struct.pack("<Q", 4096) + b"{}")
    else:
        with open(path, "wb") as f:
            f.truncate(1 << 20)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(str(path))


def test_zeros_are_damaged_not_dangerous(folders):
    """A checkpoint of zeros (e.g. a sparse file) is "not a checkpoint", never "could run
    code"."""
    _, lx = folders
    with open(lx / "zeros.pt", "wb") as f:
        f.truncate(1 << 20)
    with pytest.raises(ValueError) as e:
        _loader().LumosXModelLoader.execute("zeros.pt", "default")
    msg = str(e.value)
    assert "not a PyTorch checkpoint" in msg and "could run code" not in msg, msg


# -- not a regular file -----------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["fifo", "dev_zero_link", "link_to_fifo", "broken_link"])
def test_non_regular_model_files_named_as_such(folders, kind):
    """A FIFO, a device or a link to one is refused as "not a regular file" (never opened: a
    FIFO would block forever), a dangling link as "not found"."""
    dm, _ = folders
    path = dm / f"{kind}.safetensors"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev_zero_link":
        os.symlink("/dev/zero", path)
    elif kind == "link_to_fifo":
        os.mkfifo(dm / "pipe")
        os.symlink(dm / "pipe", path)
    else:
        os.symlink(dm / "nowhere.safetensors", path)
    with pytest.raises(ValueError) as e:
        _loader().LumosXModelLoader.execute(path.name, "default")
    msg = str(e.value)
    assert msg.startswith(f"model_name '{path.name}'"), msg
    if kind == "broken_link":
        assert "not found" in msg and "a link to a missing file" in msg, msg
    else:
        what = "a character device" if kind == "dev_zero_link" else "a named pipe (FIFO)"
        assert "is not a regular file" in msg and what in msg and "not found" not in msg, msg
    with pytest.raises(CheckpointError, match="not a regular file|not found"):
        conv.convert(str(path), str(dm / "out.safetensors"))


@pytest.mark.parametrize("part", ["shard_fifo", "shard_dev_zero", "metadata_dev_zero"])
def test_non_regular_dcp_parts_named(tmp_path, part):
    path = save_dcp({"a": torch.ones(3)}, tmp_path / "ck")
    target = os.path.join(path, ".metadata" if part.startswith("metadata") else "__0_0.distcp")
    os.remove(target)
    if part == "shard_fifo":
        os.mkfifo(target)
    else:
        os.symlink("/dev/zero", target)
    with pytest.raises(CheckpointError, match="is not a regular file"):
        load_checkpoint(path)


# -- the weights a DiT needs ------------------------------------------------------------------

def _write(fmt, sd, base):
    """``sd`` as a safetensors file, a torch.save file or a DCP folder; returns the path."""
    from safetensors.torch import save_file
    if fmt == "safetensors":
        save_file(sd, str(base) + ".safetensors")
        return str(base) + ".safetensors"
    if fmt == "pt":
        torch.save({"ema": sd}, str(base) + ".pt")
        return str(base) + ".pt"
    return save_dcp({"model": sd}, base)


@pytest.mark.parametrize("fmt", ["safetensors", "pt", "dcp"])
@pytest.mark.parametrize("case,match", [
    ("bool", r"tensor blocks.0.ffn.0.weight is torch.bool: a DiT's weights are floating point"),
    ("int64", r"tensor blocks.0.ffn.0.weight is torch.int64"),
    ("nan", r"tensor blocks.0.ffn.0.weight holds NaN or infinite values"),
    ("inf_bf16", r"tensor head.head.weight holds NaN or infinite values"),
    ("missing", r"tensor blocks.0.ffn.2.bias \[128\] missing: a Wan 2.1 T2V DiT with dim 128, "
                r"1 block, ffn 128"),
    ("misshaped", r"tensor blocks.0.ffn.2.weight has shape \[128, 64\]; a Wan 2.1 T2V DiT "
                  r"with dim 128, 1 block, ffn 128, text 4096 needs \[128, 128\]"),
])
def test_unusable_weights_named_with_file_and_tensor(tmp_path, wan_sd, fmt, case, match,
                                                     monkeypatch):
    """bool / int64 / NaN / inf weights and missing or mis-shaped tensors: refused, naming the
    file and the tensor (and the shape it should have) -- never a black video, a raw KeyError
    or a size-mismatch message. Dtype, presence and shape are checked from the headers, before
    any data is read."""
    sd = {k: v.clone() for k, v in wan_sd.items()}
    if case in ("bool", "int64"):
        sd["blocks.0.ffn.0.weight"] = sd["blocks.0.ffn.0.weight"].to(getattr(torch, case))
    elif case == "nan":
        sd["blocks.0.ffn.0.weight"][3, 5] = float("nan")
    elif case == "inf_bf16":
        sd = {k: v.to(torch.bfloat16) for k, v in sd.items()}
        sd["head.head.weight"][0, 0] = float("inf")
    elif case == "missing":
        del sd["blocks.0.ffn.2.bias"]
    else:
        sd["blocks.0.ffn.2.weight"] = sd["blocks.0.ffn.2.weight"][:, :64].contiguous()
    path = _write(fmt, sd, tmp_path / "bad")
    name = os.path.basename(path)
    if case not in ("nan", "inf_bf16"):          # refused from the headers alone
        monkeypatch.setattr(conv, "load_checkpoint", lambda p: (_ for _ in ()).throw(
            AssertionError("data read")))
    with pytest.raises(CheckpointError, match=f"^{name}: {match}"):
        conv.load_checked(path)
    with pytest.raises(CheckpointError, match=match):
        conv.convert(path, str(tmp_path / "out.safetensors"))
    assert not (tmp_path / "out.safetensors").exists()


def test_nan_in_float8_weights_found(tmp_path, wan_sd):
    sd = {k: v.to(torch.float8_e4m3fn) for k, v in wan_sd.items()}
    raw = sd["blocks.0.self_attn.q.weight"].view(torch.uint8)
    raw[0, 0] = 0x7F                                   # e4m3fn NaN
    path = _write("safetensors", sd, tmp_path / "fp8")
    with pytest.raises(CheckpointError, match="blocks.0.self_attn.q.weight holds NaN"):
        conv.load_checked(path)


def test_missing_block_named(tmp_path):
    from standin import tiny_dit_state_dict
    sd = tiny_dit_state_dict(dim=128, layers=3, ffn=128)
    for k in [k for k in sd if k.startswith("blocks.1.")]:
        del sd[k]
    with pytest.raises(CheckpointError, match=r"tensor blocks.1.modulation \[1, 6, 128\], "
                                              r".* and 23 more missing"):
        conv.inspect_wan(sd, "three_blocks.safetensors")


@pytest.mark.parametrize("config", [dict(dim=128, ffn=128, layers=2, text_dim=4096),
                                    dict(dim=1536, ffn=8960, layers=30, text_dim=4096)])
def test_expected_shapes_are_comfyuis_wan_model(config):
    """The table of tensors checked is exactly ComfyUI's own T2V WanModel's state dict, for
    the test model and the released 1.3B size (built on the meta device)."""
    import comfy.ldm.wan.model
    import comfy.ops
    model = comfy.ldm.wan.model.WanModel(
        model_type="t2v", patch_size=(1, 2, 2), text_len=512, in_dim=16, dim=config["dim"],
        ffn_dim=config["ffn"], freq_dim=256, text_dim=config["text_dim"], out_dim=16,
        num_heads=config["dim"] // 128, num_layers=config["layers"], qk_norm=True,
        cross_attn_norm=True, eps=1e-6, operations=comfy.ops.disable_weight_init,
        device="meta")
    theirs = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    info = conv.WanInfo(dim=config["dim"], layers=config["layers"], ffn_dim=config["ffn"],
                        in_dim=16, out_dim=16, text_dim=config["text_dim"])
    assert conv.expected_shapes(info) == theirs
