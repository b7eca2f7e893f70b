"""Loading the LumosX DiT: released formats, conversion cache, safety and clear refusals."""
import os
import subprocess
import sys

import pytest
import torch

from lumosx_core.convert import CheckpointError, inspect_wan, load_checkpoint


def _official(sd):
    """The authors' training-checkpoint shape: an EMA dict of DDP-prefixed keys."""
    return {"ema": {"module." + k: v for k, v in sd.items()}, "step": torch.tensor(1000),
            "optimizer": {"lr": 1e-5}}


def _loader():
    from ComfyUI_LumosX.nodes import model
    return model


def test_official_pt_converts_once_and_loads(folders, wan_sd, monkeypatch, pack):
    dm, lx = folders
    src = lx / "lumosx_official.pt"
    torch.save(_official(wan_sd), src)
    model = _loader()
    assert "lumosx_official.pt" in model.model_choices()
    m = model.LumosXModelLoader.execute("lumosx_official.pt", "default").result[0]
    import comfy.patcher_extension as pe
    assert m.get_wrappers(pe.WrappersMP.DIFFUSION_MODEL, pack.nodes.patch.WRAPPER_KEY)
    loaded = m.model.diffusion_model.state_dict()
    for k in ("blocks.0.self_attn.q.weight", "head.modulation", "patch_embedding.weight"):
        assert torch.equal(loaded[k].float(), wan_sd[k].float()), k
    cache = str(src) + ".lumosx.safetensors"
    assert os.path.isfile(cache)
    assert "lumosx_official.pt.lumosx.safetensors" not in model.model_choices()

    # second load reads the cache, never the pickle
    import lumosx_core.convert as conv   # the one copy; the nodes' relative import is it too
    assert pack.lumosx_core.convert is conv

    def boom(*a, **k):
        raise AssertionError("pickle read again")
    monkeypatch.setattr(conv, "load_pickle", boom)
    model.LumosXModelLoader.execute("lumosx_official.pt", "default")


def test_code_executing_pickle_is_refused(folders, tmp_path):
    dm, lx = folders
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"blocks.0.self_attn.q.weight": torch.zeros(1), "x": Evil()}, lx / "evil.pt")
    with pytest.raises(ValueError, match="refused"):
        _loader().LumosXModelLoader.execute("evil.pt", "default")
    assert not marker.exists()


def test_safetensors_and_wrong_models(folders, wan_sd):
    from safetensors.torch import save_file
    dm, lx = folders
    save_file(wan_sd, str(dm / "ok.safetensors"))
    assert _loader().LumosXModelLoader.execute("ok.safetensors", "default").result[0] is not None

    i2v = dict(wan_sd, **{"img_emb.proj.0.bias": torch.zeros(4),
                          "blocks.0.cross_attn.k_img.weight": torch.zeros(4, 4)})
    vace = dict(wan_sd, **{"vace_patch_embedding.weight": torch.zeros(4, 96, 1, 2, 2)})
    te = {"shared.weight": torch.zeros(10, 8), "encoder.final_layer_norm.weight": torch.ones(8)}
    for name, sd, match in [("i2v.safetensors", i2v, "image-to-video"),
                            ("vace.safetensors", vace, "VACE"),
                            ("umt5.safetensors", te, "text encoder")]:
        save_file(sd, str(dm / name))
        with pytest.raises(ValueError, match=f"model_name '{name}'.*{match}"):
            _loader().LumosXModelLoader.execute(name, "default")


def test_truncated_safetensors(folders, wan_sd):
    from safetensors.torch import save_file
    dm, _ = folders
    path = dm / "broken.safetensors"
    save_file(wan_sd, str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        _loader().LumosXModelLoader.execute("broken.safetensors", "default")


def test_missing_file_error_names_the_command_that_fetches_it(folders):
    from lumosx_core.model_files import load_manifest
    dit = load_manifest().get("lumosx_dit")
    msg = _loader().name_error(dit.name)
    assert msg.startswith(f"model_name '{dit.name}': not found in models/diffusion_models or "
                          f"models/lumosx")
    assert f"`lumosx models get --only {dit.id}` downloads, verifies and converts" in msg
    assert dit.repo in msg and "LumosX_models/" in msg
    other = _loader().name_error("my_own_finetune.safetensors")
    assert "put the file there" in other and f"fetches the shipped {dit.name}" in other
    with pytest.raises(ValueError, match="lumosx models get"):
        _loader().LumosXModelLoader.execute(dit.name, "default")


def test_path_traversal_refused(folders):
    with pytest.raises(ValueError, match="only files inside the model folders"):
        _loader().resolve_model("../../etc/passwd")


def test_distributed_checkpoint_folder(folders, wan_sd):
    import torch.distributed.checkpoint as dcp
    _, lx = folders
    ckpt = lx / "lumosx_dcp"
    dcp.save({"model": {k: v.clone() for k, v in wan_sd.items()}}, checkpoint_id=str(ckpt),
             no_dist=True)
    model = _loader()
    assert "lumosx_dcp/" in model.model_choices()
    m = model.LumosXModelLoader.execute("lumosx_dcp/", "default").result[0]
    got = m.model.diffusion_model.state_dict()["blocks.0.ffn.0.weight"].float()
    assert torch.equal(got, wan_sd["blocks.0.ffn.0.weight"].float())


def test_inspect_names_14b_and_wan22():
    base = {"head.modulation": torch.zeros(1, 2, 8), "blocks.0.self_attn.q.weight": torch.zeros(1),
            "blocks.0.cross_attn.k.weight": torch.zeros(1),
            "text_embedding.0.weight": torch.zeros(1, 4096), "blocks.0.ffn.0.weight": torch.zeros(1)}
    big = dict(base, **{"patch_embedding.weight": torch.zeros(5120, 16, 1, 2, 2),
                        "head.head.weight": torch.zeros(64, 1)})
    with pytest.raises(CheckpointError, match="14B"):
        inspect_wan(big)
    w22 = dict(base, **{"patch_embedding.weight": torch.zeros(3072, 48, 1, 2, 2),
                        "head.head.weight": torch.zeros(192, 1)})
    with pytest.raises(CheckpointError, match="Wan 2.2"):
        inspect_wan(w22)


def test_convert_cli(tmp_path, wan_sd):
    src, dst = tmp_path / "official.pth", tmp_path / "out.safetensors"
    torch.save({"model": {"module." + k: v for k, v in wan_sd.items()}}, src)
    r = subprocess.run([sys.executable, "-m", "lumosx_core.convert", str(src), str(dst)],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "Wan 2.1 T2V" in r.stdout
    sd = load_checkpoint(str(dst))
    assert set(sd) == set(wan_sd) and inspect_wan(sd).dim == 128
    bad = tmp_path / "bad.pth"
    torch.save({"shared.weight": torch.zeros(3, 3)}, bad)
    r = subprocess.run([sys.executable, "-m", "lumosx_core.convert", str(bad), str(dst)],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 2 and "text encoder" in r.stderr


def _run_one_step(pack, m):
    """One sampling step through ComfyUI (plain conditioning); returns (latent, the dtype of
    the activations leaving the first DiT block)."""
    from shared_inputs import relational_cond
    seen = []
    hook = m.model.diffusion_model.blocks[0].register_forward_hook(
        lambda mod, args, out: seen.append(out.dtype))
    try:
        pos, neg = relational_cond(pack, refs=False)
        out = pack.nodes.sampling.LumosXSampler.execute(
            m, pos, neg, {"samples": torch.zeros(1, 16, 2, 8, 10)}, 0, 2, 4.0, "lumosx_released",
            "lumosx_released", 8.0, 1.0).result[0]["samples"]
    finally:
        hook.remove()
    return out, seen[0]


def test_compute_dtype_bf16_released(folders, wan_sd, pack):
    from safetensors.torch import save_file
    dm, _ = folders
    save_file(wan_sd, str(dm / "tiny.safetensors"))
    model = _loader()
    schema = {i.id: i for i in model.LumosXModelLoader.GET_SCHEMA().inputs}
    assert schema["compute_dtype"].default == "default"
    assert "bf16 (released)" in schema["compute_dtype"].options
    host = model.LumosXModelLoader.execute("tiny.safetensors", "default").result[0]
    bf16 = model.LumosXModelLoader.execute("tiny.safetensors", "default",
                                           "bf16 (released)").result[0]
    assert bf16.model.diffusion_model.blocks[0].self_attn.q.weight.dtype == torch.bfloat16
    assert bf16.get_model_object("manual_cast_dtype") == torch.bfloat16
    a, a_dtype = _run_one_step(pack, host)
    b, b_dtype = _run_one_step(pack, bf16)
    assert a_dtype == torch.float32 and b_dtype == torch.bfloat16   # the DiT really ran in bf16
    rel = ((a - b).norm() / a.norm()).item()
    assert torch.isfinite(b).all() and 1e-5 < rel < 0.1, rel      # bf16 rounding, same model
    fp16 = model.LumosXModelLoader.execute("tiny.safetensors", "default", "fp16").result[0]
    assert _run_one_step(pack, fp16)[1] == torch.float16
    assert "compute_dtype" in model.LumosXModelLoader.validate_inputs(compute_dtype="bf16")


class _Folders:
    """ComfyUI's ``folder_paths`` reduced to what ``DitFiles`` asks: plain folders on disk."""

    def __init__(self, **bases):
        self.bases = {k: [str(v)] for k, v in bases.items()}

    def get_folder_paths(self, folder):
        return self.bases.get(folder, [])

    def get_filename_list(self, folder):
        return sorted(os.path.relpath(os.path.join(d, f), base).replace(os.sep, "/")
                      for base in self.get_folder_paths(folder)
                      for d, _, files in os.walk(base) for f in files
                      if f.endswith((".safetensors", ".pt")))   # ComfyUI's extension filter

    def get_full_path(self, folder, name):
        for base in self.get_folder_paths(folder):
            path = os.path.join(base, name)
            if os.path.isfile(path):
                return path
        return None


def test_dit_files_list_resolve_and_refuse_without_a_host(tmp_path):
    """lumosx_core.model_lookup on plain folders: converted copies are not listed, a
    distributed checkpoint folder is listed as ``name/``, names outside the folders and
    missing names are refused naming model_name."""
    from lumosx_core.convert import CACHE_SUFFIX
    from lumosx_core.model_lookup import DitFiles
    dm, lx = tmp_path / "dm", tmp_path / "lx"
    (dm / "sub").mkdir(parents=True)
    lx.mkdir()
    (dm / "sub" / "a.safetensors").write_bytes(b"x")
    (lx / "b.pt").write_bytes(b"x")
    (lx / ("b.pt" + CACHE_SUFFIX)).write_bytes(b"x")
    dcp = lx / "run" / "ckpt"
    dcp.mkdir(parents=True)
    (dcp / ".metadata").write_bytes(b"x")
    (dcp / "__0_0.distcp").write_bytes(b"x")
    files = DitFiles(_Folders(diffusion_models=dm, lumosx=lx))
    assert files.choices() == ["b.pt", "run/ckpt/", "sub/a.safetensors"]
    assert files.resolve("sub/a.safetensors") == str(dm / "sub" / "a.safetensors")
    assert files.resolve("run/ckpt/") == str(dcp)
    assert files.name_error("b.pt") is None and files.name_error(None) is None
    for bad in ("../b.pt", str(lx / "b.pt"), "sub\\..\\..\\x"):
        assert "only files inside the model folders" in files.name_error(bad)
        with pytest.raises(ValueError, match="only files inside the model folders") as refused:
            files.resolve(bad)
        assert str(refused.value) == files.name_error(bad)     # one wording, whichever runs
    assert files.name_error("nope.safetensors").startswith("model_name 'nope.safetensors': "
                                                           "not found in models/")
    with pytest.raises(ValueError, match="not found in models/diffusion_models or "
                                         "models/lumosx"):
        files.resolve("nope.safetensors")


def test_weight_options():
    from lumosx_core.model_lookup import COMPUTE_RELEASED, weight_options
    assert weight_options("default") == {}
    assert weight_options("fp8_e4m3fn_fast") == {"dtype": torch.float8_e4m3fn,
                                                 "fp8_optimizations": True}
    assert weight_options("fp8_e5m2", "fp32") == {"dtype": torch.float8_e5m2}   # fp8 wins
    assert weight_options("default", COMPUTE_RELEASED) == {"dtype": torch.bfloat16}
