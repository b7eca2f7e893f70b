"""`lumosx demo --comfyui DIR` / `make demo` end to end (scripts/demo.py in a temporary base
directory, stand-in mode) on a ComfyUI folder of the user's: it puts every picture the shipped
workflows load into that ComfyUI's input/, starts its own headless server of it, runs the
shipped subject-consistent workflow with the CLI, writes the video and the binding preview,
says plainly that the video is noise and which files to fetch, and checks that every node ran.
Plus its detection of the real weights."""
import os
import subprocess
import sys

import numpy as np
from PIL import Image

import demo
import shipped
import workflow_specs as specs



def own_comfyui(tmp_path):
    """A user's ComfyUI folder without models: the test host's ComfyUI files linked into a
    folder of its own, with empty input/ and models/."""
    from host_server import COMFY
    comfy = tmp_path / "ComfyUI"
    comfy.mkdir()
    for entry in os.listdir(COMFY):
        if entry not in ("input", "models", "output", "temp", "user", "custom_nodes"):
            os.symlink(os.path.join(COMFY, entry), comfy / entry)
    for sub in ("input", "models", "custom_nodes"):
        (comfy / sub).mkdir()
    return comfy


def shipped_pictures() -> set:
    """Every picture a shipped workflow loads (its Load Image nodes)."""
    return {n["widgets_values"][0] for name in shipped.NAMES
            for n in shipped.load(shipped.ui_path(name))["nodes"] if n["type"] == "LoadImage"}


def lumosx(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "lumosx_core.cli", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=shipped.ROOT)


def test_demo_puts_every_workflow_picture_into_a_comfyui(tmp_path):
    comfy = own_comfyui(tmp_path)
    mine = comfy / "input" / "my_photo.png"
    Image.new("RGB", (8, 8)).save(mine)
    before = mine.read_bytes()
    r = lumosx("demo", "--comfyui", str(comfy), "--pictures-only", "--python", sys.executable)
    assert r.returncode == 0, r.stdout + r.stderr
    names = shipped_pictures()
    assert len(names) >= 10 and all(n.startswith("lumosx_") for n in names)
    assert names <= {p.name for p in (comfy / "input").iterdir()}
    for name in names:
        with Image.open(comfy / "input" / name) as im:
            assert min(im.size) >= 256, (name, im.size)
    assert mine.read_bytes() == before  # the user's own pictures are left alone
    assert not (tmp_path / "demo").exists() and not list((comfy / "models").iterdir())
    r = lumosx("demo", "--comfyui", str(tmp_path / "nowhere"), "--pictures-only")
    assert r.returncode == 2 and "not a ComfyUI folder" in r.stdout


def test_demo_runs_end_to_end_in_stand_in_mode(tmp_path):
    out = tmp_path / "output"
    comfy = own_comfyui(tmp_path)
    r = lumosx("demo", "--comfyui", str(comfy), "--python", sys.executable,
               "--base-dir", str(tmp_path / "demo"), "--out", str(out))
    text = r.stdout + r.stderr
    assert r.returncode == 0, text[-6000:]
    assert "STAND-IN MODE" in r.stdout and "The video is NOISE" in r.stdout
    for name in (specs.DIT, specs.UMT5, specs.VAE, specs.FACE_PACK):
        assert name in r.stdout  # which files to fetch for a real video
    assert f"lumosx models get --models-dir {comfy / 'models'}" in r.stdout  # and how
    assert "lumosx run workflows/api/subject_consistent.api.json" in r.stdout  # through the CLI
    n_nodes = len(shipped.load(shipped.api_path("subject_consistent")))
    assert f"every node ran: {n_nodes}/{n_nodes}" in r.stdout

    video = out / "lumosx_subject_00001_.mp4"
    preview = out / "lumosx_subject_preview_00001_.png"
    assert f"video:           {video}" in r.stdout
    assert f"binding preview: {preview}" in r.stdout
    import av
    with av.open(str(video)) as c:
        stream = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(stream)]
    size = demo.STANDIN_SIZE
    assert len(frames) == size["length"]
    assert frames[0].shape == (size["height"], size["width"], 3)
    # the binding preview frames each person's pictures in the frontend's person colours
    arr = np.asarray(Image.open(preview).convert("RGB")).reshape(-1, 3).astype(int)
    for hex_color in ("#e6194b", "#3cb44b"):  # person 1, person 2
        rgb = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(arr - rgb).sum(1) < 10).sum() > 500, hex_color
    # the workflows' pictures are in the user's ComfyUI; the demo server had its own
    assert shipped_pictures() <= {p.name for p in (comfy / "input").iterdir()}
    inputs = tmp_path / "demo" / "standin" / "input"
    assert (inputs / "lumosx_man.png").is_file() and (inputs / "lumosx_room.png").is_file()


def test_real_weights_are_detected(tmp_path):
    models = tmp_path / "models"
    found, missing = demo.find_real_models(str(models))
    assert not found and len(missing) == 4
    for folder, name in (("diffusion_models", specs.DIT), ("text_encoders", specs.UMT5),
                         ("vae", specs.VAE)):
        (models / folder).mkdir(parents=True)
        with open(models / folder / name, "wb") as f:
            f.truncate(600 * 2 ** 20 if name == specs.DIT else 10)  # sparse: no disk used
    pack = models / "insightface" / "models" / "buffalo_l"
    pack.mkdir(parents=True)
    (pack / "det_10g.onnx").write_bytes(b"x")
    found, missing = demo.find_real_models(str(models))
    assert missing == [] and found["face_pack"] == "buffalo_l"
    # a stand-in under the real name is not mistaken for the real DiT
    with open(models / "diffusion_models" / specs.DIT, "wb") as f:
        f.truncate(3 * 2 ** 20)
    found, missing = demo.find_real_models(str(models))
    assert len(missing) == 1 and "not the real DiT" in missing[0]
