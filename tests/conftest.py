"""Test set-up: make the test host's ComfyUI importable (in CPU mode), load the pack the way
ComfyUI does, and share small model factories."""
import importlib.util
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")
if ROOT not in sys.path:  # lumosx_core (appended: our nodes/ must not shadow ComfyUI's)
    sys.path.append(ROOT)
from lumosx_core.cli import _host  # noqa: E402  (the one place that knows the host layout)

#: The ComfyUI under test: $LUMOSX_COMFYUI (`make test` sets it; your own folder works too),
#: else the test host whose venv runs pytest, else the newest test host.
COMFY = _host.comfyui_dir()
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
PACK_MODULE = "ComfyUI_LumosX"


def _fix_sys_path():
    """ComfyUI has a top-level ``nodes`` module and so do we (our ``nodes/`` package): ComfyUI
    must come first on sys.path; the repo root only serves ``import lumosx_core``."""
    sys.path[:] = [p for p in sys.path
                   if os.path.abspath(p or os.getcwd()) not in (ROOT, TESTS, COMFY)]
    sys.path.insert(0, COMFY)
    sys.path.insert(0, TESTS)
    sys.path.append(ROOT)


def _host_cpu_mode():
    """Run ComfyUI in-process on the CPU (there is no GPU on CI machines), and bind the name
    ``nodes`` to ComfyUI's module before anything can pick up our package by that name."""
    try:
        from comfy.cli_args import args
    except ImportError:  # host not built: core-only tests still run
        return
    args.cpu = True
    mod = sys.modules.get("nodes")
    if mod is not None and not hasattr(mod, "NODE_CLASS_MAPPINGS"):
        del sys.modules["nodes"]
    import nodes  # noqa: F401  (ComfyUI's)


_fix_sys_path()
_host_cpu_mode()


def pytest_collectstart(collector):
    _fix_sys_path()


def load_pack():
    """Import this repository as a ComfyUI custom-node package (relative imports and all)."""
    if PACK_MODULE in sys.modules:
        return sys.modules[PACK_MODULE]
    spec = importlib.util.spec_from_file_location(
        PACK_MODULE, os.path.join(ROOT, "__init__.py"), submodule_search_locations=[ROOT])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[PACK_MODULE] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def pack():
    return load_pack()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One real headless ComfyUI server with this pack, shared by the whole session."""
    from host_server import ComfyServer
    import e2e_setup
    base = str(tmp_path_factory.mktemp("comfy_base"))
    info = e2e_setup.prepare_base(base)
    srv = ComfyServer(base, extra_packs=[e2e_setup.TEST_PACK])
    srv.assets = info
    try:
        srv.start()
    except Exception:
        srv.stop()
        raise
    yield srv
    srv.stop()
