"""The one test bootstrap: the only place that loads code by file path or puts this checkout's
code (core, tests, scripts) on ``sys.path``. (Elsewhere only
``lumosx_core.cli.host.import_comfyui`` adds a ComfyUI folder, for the in-process tools: the
benchmarks, ``scripts/standin.py`` and ``lumosx eval --clip-vision``.)

* The repository root is NEVER on ``sys.path``: its ``nodes/`` package would shadow ComfyUI's
  top-level ``nodes`` module. (``pytest`` runs in importlib mode, so it adds nothing; a
  ``python -m pytest`` started from the root prepends the root: it is dropped here.)
* ``lumosx_core`` is THIS checkout's core, even when the venv's editable install points at
  another checkout (git worktrees sharing one venv): it is imported here from its folder, and
  subprocesses (the ``lumosx`` CLI, benchmarks, ComfyUI servers) get ``PYTHONPATH`` = a
  folder that holds nothing but a link to it.
* ComfyUI (``$LUMOSX_COMFYUI``, else the test host that ``lumosx_core.cli.host`` names) is importable, in
  CPU mode; ``tests/``, ``tests/fixtures/`` and ``scripts/`` are importable by their module
  names (``import assets``, ``import lumosx_test_pack``, ``import demo``).
* The pack is imported the way ComfyUI imports it (as the package ``ComfyUI_LumosX``, relative
  imports and all), and its ``ComfyUI_LumosX.lumosx_core[.x]`` is served by the top-level
  ``lumosx_core[.x]``: ONE copy of the core, so a test monkeypatches ``lumosx_core.x`` and
  the nodes see it. (Only tests import both names; a ComfyUI server imports the core once,
  relatively, and needs nothing of this.)
"""
import atexit
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import shutil
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")
SCRIPTS = os.path.join(ROOT, "scripts")
FIXTURES = os.path.join(TESTS, "fixtures")
COMFY = None  # the ComfyUI under test: set below by lumosx_core.cli.host (see _comfy_under_test)
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
PACK_MODULE = "ComfyUI_LumosX"


def _core_path() -> str:
    """A folder holding only ``lumosx_core`` (a link to this checkout's)."""
    folder = tempfile.mkdtemp(prefix="lumosx_core_path_")
    atexit.register(shutil.rmtree, folder, True)
    os.symlink(os.path.join(ROOT, "lumosx_core"), os.path.join(folder, "lumosx_core"))
    return folder


def _drop_root() -> None:
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != ROOT]


def _comfy_under_test() -> str:
    """$LUMOSX_COMFYUI (`make test` sets it; your own ComfyUI folder works too), else the test
    host whose venv runs pytest, else the newest test host: lumosx_core.cli.host, the one
    place that knows the host layout, decides."""
    from lumosx_core.cli import host
    return host.comfyui_dir()


def _bootstrap_sys_path() -> None:
    _drop_root()
    sys.path[:0] = [TESTS, FIXTURES, SCRIPTS, COMFY]
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [_core_path()] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])


def _import_core() -> None:
    """``import lumosx_core`` from this checkout (its real path, for readable tracebacks)."""
    spec = importlib.machinery.PathFinder.find_spec("lumosx_core", [ROOT])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["lumosx_core"] = mod
    spec.loader.exec_module(mod)


class _OneCore(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``ComfyUI_LumosX.lumosx_core[.x]`` is the already imported ``lumosx_core[.x]``."""
    PREFIX = PACK_MODULE + ".lumosx_core"

    def find_spec(self, name, path=None, target=None):
        if name == self.PREFIX or name.startswith(self.PREFIX + "."):
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return importlib.import_module("lumosx_core" + spec.name[len(self.PREFIX):])

    def exec_module(self, module):
        pass


def _host_cpu_mode() -> None:
    """Run ComfyUI in-process on the CPU (there is no GPU on CI machines)."""
    try:
        from comfy.cli_args import args
    except ImportError:  # host not built: core-only tests still run
        return
    args.cpu = True


_drop_root()
_import_core()
COMFY = _comfy_under_test()
_bootstrap_sys_path()
sys.meta_path.insert(0, _OneCore())
_host_cpu_mode()


#: The fast tier (``make test-fast``, ``pytest -m fast``): the core math and every node
#: in-process -- no server, no browser, no subprocess -- minus the few slowest cases (the
#: hypothesis sweep against the dense oracle, the authors' reference cases, the converter run
#: as a subprocess, Bind on every hostile prompt), which the full suite runs.
FAST_MODULES = {"test_layout", "test_positions", "test_phrases", "test_image_prep", "test_solver",
                "test_relational_attention", "test_forward", "test_nodes", "test_loader",
                "test_prompt", "test_hostile_inputs", "test_cli_follow", "test_limits",
                "test_image_limits", "test_cutout", "test_hostile_photos", "test_help_pages",
                "test_docs"}
FAST_EXCLUDED = {"test_efficient_equals_dense_reference", "test_reference_cases_bind_every_phrase",
                 "test_convert_cli", "test_bind_reads_the_released_ids_and_masks",
                 "test_reducing_a_huge_tensor_claims_the_reduced_size_not_a_copy",
                 "test_lumosx_eval_on_a_huge_attribute_is_quick_and_small",
                 "test_cut_out_recovers_the_released_cutouts_from_busy_photos",
                 "test_cut_out_recovers_rescaled_cutouts",
                 "test_i18n_serves_our_chinese_entries",   # test_help_pages: live server
                 "test_help_pages_are_served_where_the_help_panel_looks"}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """A test marked ``browser`` needs Chromium and Playwright: without them it fails (CI
    must not pass without the browser tests) before any of its fixtures starts a server --
    it is skipped only when the user says ``LUMOSX_NO_BROWSER=1``."""
    if item.get_closest_marker("browser") is None:
        return
    import frontend
    problem = frontend.browser_missing()
    if problem and frontend.browser_opted_out():
        pytest.skip(f"{frontend.NO_BROWSER_ENV}=1 and no browser here: {problem}")
    if problem:
        pytest.fail(f"the browser tests cannot run: {problem} (set {frontend.NO_BROWSER_ENV}=1 "
                    f"to skip them on a machine without a browser)", pytrace=False)


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__.rpartition(".")[2] if item.module is not None else ""
        if module in FAST_MODULES and item.originalname not in FAST_EXCLUDED:
            item.add_marker(pytest.mark.fast)


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


@pytest.fixture(scope="module")
def N(pack):
    """The pack's node classes by node id."""
    import ComfyUI_LumosX.nodes as nodes_pkg
    return {cls.GET_SCHEMA().node_id: cls for cls in nodes_pkg.NODE_LIST}


@pytest.fixture(scope="module")
def clip():
    """ComfyUI's umT5 tokenizer/T5 classes built small (test-only text-encoder pack)."""
    import assets
    from lumosx_test_pack import build_tiny_clip
    return build_tiny_clip(assets.spiece_model())


@pytest.fixture(scope="module")
def vae():
    """A small Wan 2.1 VAE that ComfyUI's VAE class detects."""
    import assets
    import comfy.sd
    return comfy.sd.VAE(sd=assets.tiny_wan_vae_state_dict())


@pytest.fixture(scope="module")
def wan_sd():
    """A small Wan 2.1 T2V DiT state dict the stock detector accepts (checkpoint tests)."""
    from standin import tiny_dit_state_dict
    return tiny_dit_state_dict(dim=128, layers=1, ffn=128)


@pytest.fixture
def folders(tmp_path, monkeypatch, pack):
    """Empty ``diffusion_models`` and ``lumosx`` model folders, registered with ComfyUI."""
    import folder_paths
    dm, lx = tmp_path / "diffusion_models", tmp_path / "lumosx"
    dm.mkdir()
    lx.mkdir()
    exts = set(folder_paths.supported_pt_extensions)
    monkeypatch.setitem(folder_paths.folder_names_and_paths, "diffusion_models", ([str(dm)], exts))
    monkeypatch.setitem(folder_paths.folder_names_and_paths, "lumosx", ([str(lx)], exts))
    folder_paths.filename_list_cache.clear()
    yield dm, lx
    folder_paths.filename_list_cache.clear()


@pytest.fixture(scope="session")
def pack():
    return load_pack()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One real headless ComfyUI server with this pack, shared by the whole session."""
    from host_server import e2e_server
    with e2e_server(str(tmp_path_factory.mktemp("comfy_base"))) as srv:
        yield srv


@pytest.fixture(scope="module")
def face_root(pack, tmp_path_factory):
    """A temporary insightface root holding the test face pack (``face_fixtures``), the only
    one ComfyUI sees in this module; the prepared face models are dropped afterwards."""
    import folder_paths
    from face_fixtures import make_vectron_pack
    from lumosx_core.faces import detector
    root = tmp_path_factory.mktemp("insightface")
    make_vectron_pack(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(folder_paths.folder_names_and_paths, "insightface", ([str(root)], set()))
        yield root
    detector._CACHE.clear()
