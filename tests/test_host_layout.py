"""Where the test hosts live (lumosx_core/cli/host.py, the one place that knows): one folder
per ComfyUI version, newest first, the legacy single-host layout still found, the interpreter
that runs a ComfyUI folder, and the shell view that scripts/build_host.sh evaluates."""
import os
import subprocess
import sys

import pytest

from lumosx_core.cli import host as _host


def _fake_host(root, version, legacy=False):
    comfy = os.path.join(root, ".host", "ComfyUI") if legacy else \
        os.path.join(root, ".host", version, "ComfyUI")
    py = os.path.join(root, ".venv", "bin", "python") if legacy else \
        os.path.join(root, ".host", version, "venv", "bin", "python")
    for d in (comfy, os.path.dirname(py)):
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(comfy, "main.py"), "w") as f:
        f.write("")
    with open(os.path.join(comfy, "comfyui_version.py"), "w") as f:
        f.write(f'__version__ = "{version}"\n')
    with open(py, "w") as f:
        f.write("")
    return comfy, py


@pytest.fixture
def layout(tmp_path, monkeypatch):
    root = str(tmp_path)
    monkeypatch.setattr(_host, "HOSTS_DIR", os.path.join(root, ".host"))
    monkeypatch.setattr(_host, "LEGACY_COMFYUI", os.path.join(root, ".host", "ComfyUI"))
    monkeypatch.setattr(_host, "LEGACY_PYTHON", os.path.join(root, ".venv", "bin", "python"))
    for var in ("LUMOSX_HOST", "LUMOSX_COMFYUI", "COMFYUI_PATH", "LUMOSX_PYTHON"):
        monkeypatch.delenv(var, raising=False)
    return root


def test_hosts_newest_first_by_version_not_by_name(layout, monkeypatch):
    assert _host.built_hosts() == [] and _host.default_host() is None
    for v in ("0.3.75", "0.33.0", "0.4.1"):
        _fake_host(layout, v)
    os.makedirs(os.path.join(layout, ".host", "0.9.0", "ComfyUI"))  # not built: no main.py
    os.makedirs(os.path.join(layout, ".host", "demo"))                # not a host
    assert [h.version for h in _host.built_hosts()] == ["0.33.0", "0.4.1", "0.3.75"]
    assert _host.default_host().version == "0.33.0"
    assert _host.find_comfyui() == os.path.join(layout, ".host", "0.33.0", "ComfyUI")
    monkeypatch.setenv("LUMOSX_HOST", "0.3.75")
    assert _host.test_host_dir() == os.path.join(layout, ".host", "0.3.75", "ComfyUI")
    monkeypatch.setenv("LUMOSX_HOST", "9.9.9")  # a named host that is not built: none
    assert _host.default_host() is None


def test_legacy_single_host_is_found_unless_a_version_folder_has_it(layout):
    comfy, py = _fake_host(layout, "0.3.75", legacy=True)
    (h,) = _host.built_hosts()
    assert (h.version, h.comfyui, h.python) == ("0.3.75", comfy, py)
    new_comfy, new_py = _fake_host(layout, "0.3.75")
    (h,) = _host.built_hosts()
    assert (h.comfyui, h.python) == (new_comfy, new_py)


def test_python_for_a_comfyui_folder(layout, tmp_path, monkeypatch):
    comfy, py = _fake_host(layout, "0.33.0")
    assert _host.find_python(comfy) == py  # a test host: its own venv
    mine = tmp_path / "mine" / "ComfyUI"
    (mine / "venv" / "bin").mkdir(parents=True)
    (mine / "main.py").write_text("")
    (mine / "venv" / "bin" / "python").write_text("")
    assert _host.find_python(str(mine)) == str(mine / "venv" / "bin" / "python")
    assert _host.find_python(str(mine), explicit="/x/python") == "/x/python"
    monkeypatch.setenv("LUMOSX_PYTHON", "/y/python")
    assert _host.find_python(str(mine)) == "/y/python"
    monkeypatch.setenv("LUMOSX_COMFYUI", str(mine))
    assert _host.find_comfyui() == str(mine)
    own = _host.own_env(str(mine))  # one test environment per folder, under .host/own/
    assert own.startswith(os.path.join(layout, ".host", "own", "ComfyUI-")) and \
        own.endswith("venv") and own == _host.own_env(str(mine) + "/")


def test_shell_view_needs_only_the_standard_library():
    """build_host.sh and the Makefile run the file with a bare ``python3 -I``."""
    path = os.path.join(_host.REPO_ROOT, "lumosx_core", "cli", "host.py")
    r = subprocess.run([sys.executable, "-I", "-S", path, "shell", "0.33.0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    values = dict(line.split("=", 1) for line in r.stdout.splitlines())
    assert values["COMFY"].endswith(os.path.join("0.33.0", "ComfyUI"))
    assert values["PY"].endswith(os.path.join("0.33.0", "venv", "bin", "python"))
    assert values["FRONTEND_ROOT"] == os.path.join(values["FRONTEND_DIR"],
                                                   "comfyui_frontend_package", "static")
    assert values["FRONTEND_DIR"].endswith(os.path.join("0.33.0",
                                                        "frontend-" + values["FRONTEND_VERSION"]))
    r = subprocess.run([sys.executable, "-I", "-S", path, "nonsense"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "shell VERSION" in r.stderr


def test_browser_frontends_per_host(layout, tmp_path):
    """The newest test host runs the browser tests with its pinned frontend and with the newest
    one from the folder beside its venv; an older host and your own ComfyUI with their own."""
    import frontend
    newest, _ = _fake_host(layout, "0.33.0")
    older, _ = _fake_host(layout, "0.3.75")
    static = os.path.join(layout, ".host", "0.33.0", f"frontend-{_host.NEWEST_FRONTEND}",
                          "comfyui_frontend_package", "static")
    assert frontend.frontends(newest) == [(frontend.PINNED, None),
                                          (_host.NEWEST_FRONTEND, static)]
    assert frontend.frontends(older) == [(frontend.PINNED, None)]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "main.py").write_text("")
    assert frontend.frontends(str(mine)) == [(frontend.PINNED, None)]
