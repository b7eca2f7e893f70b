"""Starting a ComfyUI server with this pack, and THE one place that knows where the test hosts
live: ``scripts/build_host.sh``, the Makefile (through ``scripts/run_tests.py``), the tests and
the scripts all ask this module.

Test hosts (built by ``scripts/build_host.sh``): one folder per ComfyUI version, each with its
own interpreter because their pinned requirements differ::

    .host/<version>/ComfyUI/   the ComfyUI source tree (``main.py``)
    .host/<version>/venv/      its Python, with ComfyUI's, the pack's and the tests' requirements
    .host/<version>/stamps/    what the build has done (idempotent re-runs)
    .host/<version>/frontend-<NEWEST_FRONTEND>/   the newest test host only: the newest
                               ComfyUI frontend, beside the venv (which keeps its ComfyUI's
                               pinned one); the browser tests also run with it
                               (``--front-end-root``, see :attr:`TestHost.newest_frontend`)

A user's own ComfyUI folder gets a test environment of its own (``.host/own/<name>-<hash>/venv``,
see :func:`own_env`) that sees that install's packages and adds the test requirements, so
nothing is installed into the user's Python.

The layout part (everything above :class:`Host`) needs only the standard library: run this file
as a script (``python3 -I lumosx_core/cli/host.py ...``) to ask it from shell code.
"""
from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import List, Optional, Sequence

#: The repository (when this package runs from a checkout, e.g. an editable install).
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
PACK_DIR_NAME = "ComfyUI-LumosX"
#: Where the test hosts live (``$LUMOSX_HOSTS`` moves them, e.g. to share them between checkouts).
HOSTS_DIR = os.environ.get("LUMOSX_HOSTS") or os.path.join(REPO_ROOT, ".host")
#: The newest ComfyUI frontend (``comfyui-frontend-package`` on the package index, pinned by
#: version): ``scripts/build_host.sh`` installs it into the newest test host's folder, and the
#: browser tests run there with it as well as with the host's own pinned frontend.
NEWEST_FRONTEND = "1.58.1"
#: The layout before hosts had a folder per version (``.host/ComfyUI`` + ``.venv``); still found.
LEGACY_COMFYUI = os.path.join(REPO_ROOT, ".host", "ComfyUI")
LEGACY_PYTHON = os.path.join(REPO_ROOT, ".venv", "bin", "python")


def _version_key(version: str):
    return tuple(int(p) if p.isdigit() else 0 for p in re.split(r"[.+-]", version))


def comfyui_version(comfy_dir: str) -> Optional[str]:
    """The version a ComfyUI folder declares (``comfyui_version.py``), or None."""
    try:
        with open(os.path.join(comfy_dir, "comfyui_version.py"), encoding="utf-8") as f:
            m = re.search(r"__version__\s*=\s*['\"]([^'\"]+)['\"]", f.read())
        return m.group(1) if m else None
    except OSError:
        return None


@dataclass(frozen=True)
class TestHost:
    """One test host: a ComfyUI version with its own interpreter."""
    __test__ = False  # not a pytest test class

    version: str
    root: str
    comfyui: str
    python: str

    @property
    def stamps(self) -> str:
        return os.path.join(self.root, "stamps")

    @property
    def venv(self) -> str:
        return os.path.dirname(os.path.dirname(self.python))

    def built(self) -> bool:
        return os.path.isfile(os.path.join(self.comfyui, "main.py")) and os.path.exists(self.python)

    @property
    def frontend_dir(self) -> str:
        """Where the build puts :data:`NEWEST_FRONTEND` (``pip install --target``)."""
        return os.path.join(self.root, f"frontend-{NEWEST_FRONTEND}")

    @property
    def newest_frontend(self) -> str:
        """The folder to give ComfyUI's ``--front-end-root`` for :data:`NEWEST_FRONTEND`."""
        return os.path.join(self.frontend_dir, "comfyui_frontend_package", "static")


def host_for(version: str) -> TestHost:
    """Where the test host for ComfyUI ``version`` lives (built or not)."""
    root = os.path.join(HOSTS_DIR, version)
    return TestHost(version, root, os.path.join(root, "ComfyUI"),
                    os.path.join(root, "venv", "bin", "python"))


def built_hosts() -> List[TestHost]:
    """The test hosts built here, newest ComfyUI first (the legacy ``.host/ComfyUI`` too, when
    no per-version folder has that version)."""
    hosts = {}
    if os.path.isdir(HOSTS_DIR):
        for name in os.listdir(HOSTS_DIR):
            if re.fullmatch(r"\d+(\.\d+)+", name):
                h = host_for(name)
                if h.built():
                    hosts[name] = h
    legacy_version = comfyui_version(LEGACY_COMFYUI)
    if legacy_version and legacy_version not in hosts and os.path.exists(LEGACY_PYTHON) \
            and os.path.isfile(os.path.join(LEGACY_COMFYUI, "main.py")):
        hosts[legacy_version] = TestHost(legacy_version, os.path.dirname(LEGACY_COMFYUI),
                                         LEGACY_COMFYUI, LEGACY_PYTHON)
    return sorted(hosts.values(), key=lambda h: _version_key(h.version), reverse=True)


def default_host() -> Optional[TestHost]:
    """The test host used when none is named: ``$LUMOSX_HOST`` (a version), else the newest
    built one."""
    hosts = built_hosts()
    want = os.environ.get("LUMOSX_HOST")
    if want:
        for h in hosts:
            if h.version == want:
                return h
        return None
    return hosts[0] if hosts else None


def host_of(comfy_dir: str) -> Optional[TestHost]:
    """The test host whose ComfyUI is ``comfy_dir``, if it is one."""
    for h in built_hosts():
        if _same(h.comfyui, comfy_dir):
            return h
    return None


def test_host_dir() -> str:
    """The default test host's ComfyUI folder (where it would be when none is built)."""
    h = default_host()
    if h is not None:
        return h.comfyui
    return host_for(os.environ.get("LUMOSX_HOST") or "0.3.75").comfyui


def own_env(comfy_dir: str) -> str:
    """The test environment (a venv folder) for a user's own ComfyUI folder ``comfy_dir``:
    built by ``scripts/build_host.sh --comfyui DIR``, it sees that install's packages through a
    ``.pth`` file and holds only the test requirements they lack."""
    real = os.path.realpath(comfy_dir)
    tag = hashlib.sha256(real.encode()).hexdigest()[:8]
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(real.rstrip(os.sep)) or "comfyui")
    return os.path.join(HOSTS_DIR, "own", f"{name}-{tag}", "venv")


def pack_root() -> Optional[str]:
    """The pack's folder when this code runs from a checkout of it, else None."""
    init = os.path.join(REPO_ROOT, "__init__.py")
    if os.path.isdir(os.path.join(REPO_ROOT, "nodes")) and os.path.isfile(init):
        with open(init, encoding="utf-8") as f:
            if "WEB_DIRECTORY" in f.read():
                return REPO_ROOT
    return None


def running_host() -> Optional[TestHost]:
    """The test host whose venv runs this interpreter (``.host/0.3.75/venv/bin/python -m
    pytest`` tests ComfyUI 0.3.75), if any."""
    for h in built_hosts():
        if _same(h.venv, sys.prefix):
            return h
    return None


def installed_in() -> Optional[str]:
    """The ComfyUI folder this checkout is installed in (``<ComfyUI>/custom_nodes/<pack>``),
    if it is."""
    parent = os.path.dirname(REPO_ROOT)
    if os.path.basename(parent) == "custom_nodes":
        comfy = os.path.dirname(parent)
        if os.path.isfile(os.path.join(comfy, "main.py")):
            return comfy
    return None


def find_comfyui(explicit: Optional[str] = None) -> str:
    """``explicit``, else ``$LUMOSX_COMFYUI`` / ``$COMFYUI_PATH``, else the ComfyUI this pack
    is installed in, else the test host whose venv runs this interpreter, else the default
    test host."""
    own = running_host()
    candidates = [explicit] if explicit else [os.environ.get("LUMOSX_COMFYUI"),
                                               os.environ.get("COMFYUI_PATH"), installed_in(),
                                               own.comfyui if own else None, test_host_dir()]
    for c in candidates:
        if c and os.path.isfile(os.path.join(c, "main.py")):
            return os.path.abspath(c)
    if explicit:
        raise FileNotFoundError(f"{explicit}: not a ComfyUI folder (no main.py)")
    raise FileNotFoundError("no ComfyUI found: pass --comfyui DIR (your ComfyUI folder), set "
                            "LUMOSX_COMFYUI, or build the test host with `make host`")


def comfyui_dir() -> str:
    """:func:`find_comfyui`, or where the default test host would be when there is none (for
    code that must not fail before a host is built, e.g. the tests' set-up)."""
    try:
        return find_comfyui()
    except FileNotFoundError:
        return test_host_dir()


def import_comfyui(comfy_dir: Optional[str] = None, cpu: Optional[bool] = None) -> str:
    """Make the ComfyUI folder ``comfy_dir`` (default :func:`comfyui_dir`) importable in this
    process (``import comfy``) for the in-process tools: the benchmarks, the stand-in models of
    ``scripts/standin.py`` and ``lumosx eval --clip-vision``. ComfyUI is a folder, not an
    installed package, so this is the one place outside the test bootstrap
    (``tests/conftest.py``) that puts a folder on ``sys.path``. ``cpu``: ComfyUI's ``--cpu``
    (default: when torch sees no CUDA device). Returns the folder."""
    comfy_dir = os.path.abspath(comfy_dir or comfyui_dir())
    if not os.path.isdir(os.path.join(comfy_dir, "comfy")):
        raise FileNotFoundError(f"{comfy_dir}: not a ComfyUI folder (no comfy/ package); build "
                                f"the test host with `make host` or pass your ComfyUI folder")
    if comfy_dir not in sys.path:
        sys.path.insert(0, comfy_dir)
    import torch
    from comfy.cli_args import args
    args.cpu = (not torch.cuda.is_available()) if cpu is None else bool(cpu)
    return comfy_dir


def find_python(comfy_dir: str, explicit: Optional[str] = None) -> str:
    """The interpreter that runs ``comfy_dir``: ``explicit``; ``$LUMOSX_PYTHON``; a test host's
    own venv; a venv next to or inside the ComfyUI folder; the portable build's; else ours."""
    if explicit:
        return explicit
    if os.environ.get("LUMOSX_PYTHON"):
        return os.environ["LUMOSX_PYTHON"]
    host = host_of(comfy_dir)
    if host is not None:
        return host.python
    for rel in ("venv/bin/python", ".venv/bin/python", "../venv/bin/python",
                "../.venv/bin/python", "venv/Scripts/python.exe", ".venv/Scripts/python.exe",
                "../python_embeded/python.exe"):
        py = os.path.normpath(os.path.join(comfy_dir, rel))
        if os.path.exists(py):
            return py
    return sys.executable


def _same(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def has_accelerator(python: str) -> bool:
    """Whether torch in ``python`` sees a CUDA / ROCm / XPU / MPS device."""
    code = ("import torch,sys;"
            "ok=torch.cuda.is_available() or (hasattr(torch,'xpu') and torch.xpu.is_available())"
            " or (hasattr(torch.backends,'mps') and torch.backends.mps.is_available());"
            "sys.exit(0 if ok else 1)")
    try:
        return subprocess.run([python, "-c", code], capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_pack(custom_nodes: str, src: str, name: str) -> str:
    """Make ``src`` (a pack folder) visible in ``custom_nodes``: an entry already pointing at
    it, else a symlink ``name``. Returns the entry's path."""
    os.makedirs(custom_nodes, exist_ok=True)
    for entry in os.listdir(custom_nodes):
        path = os.path.join(custom_nodes, entry)
        if _same(path, src):
            return path
    link = os.path.join(custom_nodes, name)
    if os.path.lexists(link):
        if os.path.islink(link) and not os.path.exists(link):
            os.unlink(link)  # dangling link from a moved checkout
        else:
            raise FileExistsError(f"{link} exists and is not this pack ({src}): remove it or "
                                  f"use that copy")
    os.symlink(src, link, target_is_directory=True)
    return link


def installed_copy(custom_nodes: str) -> Optional[str]:
    """A LumosX pack already installed in ``custom_nodes`` (by ComfyUI-Manager, a clone)."""
    if not os.path.isdir(custom_nodes):
        return None
    for entry in sorted(os.listdir(custom_nodes)):
        if entry.lower().replace("_", "-") in ("comfyui-lumosx", "lumosx"):
            path = os.path.join(custom_nodes, entry)
            if os.path.isdir(path):
                return path
    return None


class Host:
    """One ComfyUI process with this pack (and optional extra packs)."""

    def __init__(self, comfy_dir: str, python: Optional[str] = None, port: Optional[int] = None,
                 listen: str = "127.0.0.1", base_directory: Optional[str] = None,
                 extra_packs: Sequence[str] = (), cpu: Optional[bool] = None,
                 extra_args: Sequence[str] = (), log_path: Optional[str] = None,
                 link_pack: bool = True):
        self.comfy_dir = comfy_dir
        self.python = python or find_python(comfy_dir)
        self.port = port or free_port()
        self.listen = listen
        self.base = os.path.abspath(base_directory) if base_directory else None
        self.extra_packs = [os.path.abspath(p) for p in extra_packs]
        self.cpu = cpu
        self.extra_args = list(extra_args)
        self.log_path = log_path
        self.link_pack = link_pack
        self.proc: Optional[subprocess.Popen] = None
        self._log = None
        self.pack_entry: Optional[str] = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.listen in ("0.0.0.0", "::", "") else self.listen
        return f"http://{host}:{self.port}"

    def custom_nodes(self) -> str:
        return os.path.join(self.base or self.comfy_dir, "custom_nodes")

    def prepare(self) -> None:
        if self.base:
            for sub in ("custom_nodes", "models", "input", "output", "temp", "user"):
                os.makedirs(os.path.join(self.base, sub), exist_ok=True)
        nodes_dir = self.custom_nodes()
        if self.link_pack:
            src = pack_root()
            copy = installed_copy(nodes_dir)
            if copy and (src is None or not _same(copy, src)):
                self.pack_entry = copy  # the user's own installed copy wins
            elif src is not None:
                self.pack_entry = ensure_pack(nodes_dir, src, PACK_DIR_NAME)
            else:
                raise FileNotFoundError(
                    f"ComfyUI-LumosX is not installed in {nodes_dir} and this command does not "
                    f"run from a checkout of it: install the pack there first")
        for src in self.extra_packs:
            ensure_pack(nodes_dir, src, os.path.basename(src.rstrip(os.sep)))

    def command(self) -> list:
        cmd = [self.python, os.path.join(self.comfy_dir, "main.py"), "--listen", self.listen,
               "--port", str(self.port)]
        cpu = self.cpu if self.cpu is not None else not has_accelerator(self.python)
        if cpu:
            cmd.append("--cpu")
        if self.base:
            cmd += ["--base-directory", self.base, "--database-url",
                    "sqlite:///" + os.path.join(self.base, "user", "comfyui.db")]
        return cmd + self.extra_args

    def start(self, wait: bool = True, timeout: float = 300.0) -> "Host":
        self.prepare()
        cmd = self.command()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if self.log_path:
            os.makedirs(os.path.dirname(os.path.abspath(self.log_path)), exist_ok=True)
            self._log = open(self.log_path, "w")
            out = self._log
        else:
            out = None
        self.proc = subprocess.Popen(cmd, cwd=self.comfy_dir, stdout=out,
                                     stderr=subprocess.STDOUT if out else None, env=env)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 300.0) -> None:
        from .api import ComfyClient  # lazily: the layout part above runs without it
        client = ComfyClient(self.url, timeout=5)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited (code {self.proc.returncode}) before it was "
                                   f"ready{self._tail()}")
            if client.alive():
                return
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"ComfyUI was not ready after {timeout:.0f}s{self._tail()}")

    def _tail(self, n: int = 4000) -> str:
        if not self.log_path:
            return ""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return ":\n" + f.read()[-n:]
        except OSError:
            return ""

    def log(self) -> str:
        return self._tail(10 ** 9)[2:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self._log:
            self._log.close()
            self._log = None


def _main(argv: Sequence[str]) -> int:
    """Shell access to the layout (``python3 -I lumosx_core/cli/host.py COMMAND``):

    * ``shell VERSION``   ``HOST_ROOT= COMFY= VENV= PY= STAMPS= FRONTEND_VERSION= FRONTEND_DIR=
                          FRONTEND_ROOT=`` for that test host (to eval);
    * ``own DIR``         ``OWN_VENV= USER_PY= COMFY= VERSION=`` for a user's ComfyUI folder (to eval);
    * ``python [DIR]``    the Python that runs the tests and scripts (DIR: your ComfyUI's;
                          ``--oldest``: the oldest test host's);
    * ``list``            one ``VERSION COMFYUI PYTHON`` line per built test host, newest first.
    """
    import shlex
    if len(argv) == 2 and argv[0] == "shell":
        h = host_for(argv[1])
        pairs = [("HOST_ROOT", h.root), ("COMFY", h.comfyui), ("VENV", h.venv),
                 ("PY", h.python), ("STAMPS", h.stamps), ("FRONTEND_VERSION", NEWEST_FRONTEND),
                 ("FRONTEND_DIR", h.frontend_dir), ("FRONTEND_ROOT", h.newest_frontend)]
    elif len(argv) == 2 and argv[0] == "own":
        comfy = find_comfyui(argv[1])
        pairs = [("OWN_VENV", own_env(comfy)), ("USER_PY", find_python(comfy)),
                 ("COMFY", comfy), ("VERSION", comfyui_version(comfy) or "")]
    elif argv[:1] == ["python"] and len(argv) <= 2:
        # the interpreter that runs the tests / scripts: a user's ComfyUI folder's test
        # environment, else the default test host's
        if argv[1:] == ["--oldest"]:  # the shipped workflows are made there (see Makefile)
            hosts = built_hosts()
            py = hosts[-1].python if hosts else ""
        elif len(argv) == 2:
            py = os.path.join(own_env(find_comfyui(argv[1])), "bin", "python")
        else:
            host = default_host()
            py = host.python if host else ""
        if not py or not os.path.exists(py):
            print("no test host built: run `make host` (scripts/build_host.sh)", file=sys.stderr)
            return 1
        print(py)
        return 0
    elif argv == ["list"]:
        for h in built_hosts():
            print(h.version, h.comfyui, h.python, sep="\t")
        return 0
    else:
        print(_main.__doc__, file=sys.stderr)
        return 2
    for k, v in pairs:
        print(f"{k}={shlex.quote(v)}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
