"""Starting a ComfyUI server with this pack: the repository's test host (``.host/ComfyUI``,
built by ``scripts/build_host.sh``) or a ComfyUI the user already has."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from typing import Optional, Sequence

from .api import ComfyClient

#: The repository (when this package runs from a checkout, e.g. an editable install).
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
PACK_DIR_NAME = "ComfyUI-LumosX"


def pack_root() -> Optional[str]:
    """The pack's folder when this code runs from a checkout of it, else None."""
    init = os.path.join(REPO_ROOT, "__init__.py")
    if os.path.isdir(os.path.join(REPO_ROOT, "nodes")) and os.path.isfile(init):
        with open(init, encoding="utf-8") as f:
            if "WEB_DIRECTORY" in f.read():
                return REPO_ROOT
    return None


def test_host_dir() -> str:
    return os.path.join(REPO_ROOT, ".host", "ComfyUI")


def find_comfyui(explicit: Optional[str] = None) -> str:
    """``explicit``, else ``$LUMOSX_COMFYUI`` / ``$COMFYUI_PATH``, else the test host."""
    candidates = [explicit] if explicit else [os.environ.get("LUMOSX_COMFYUI"),
                                               os.environ.get("COMFYUI_PATH"), test_host_dir()]
    for c in candidates:
        if c and os.path.isfile(os.path.join(c, "main.py")):
            return os.path.abspath(c)
    if explicit:
        raise FileNotFoundError(f"{explicit}: not a ComfyUI folder (no main.py)")
    raise FileNotFoundError("no ComfyUI found: pass --comfyui DIR (your ComfyUI folder), set "
                            "LUMOSX_COMFYUI, or build the test host with `make host`")


def find_python(comfy_dir: str, explicit: Optional[str] = None) -> str:
    """The interpreter that runs ``comfy_dir``: ``explicit``; the repo's ``.venv`` for the
    test host; a venv next to or inside the ComfyUI folder; the portable build's; else ours."""
    if explicit:
        return explicit
    if os.path.realpath(comfy_dir) == os.path.realpath(test_host_dir()):
        py = os.path.join(REPO_ROOT, ".venv", "bin", "python")
        if os.path.exists(py):
            return py
    for rel in ("venv/bin/python", ".venv/bin/python", "../venv/bin/python",
                "../.venv/bin/python", "venv/Scripts/python.exe", ".venv/Scripts/python.exe",
                "../python_embeded/python.exe"):
        py = os.path.normpath(os.path.join(comfy_dir, rel))
        if os.path.exists(py):
            return py
    return sys.executable


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


def _same(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


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
