"""A real headless ComfyUI server (the test host) with this pack installed, for end-to-end
tests through the HTTP API. Everything it writes stays under its own base directory."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid

import requests

from lumosx_core.cli import host as _host

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMFY = _host.comfyui_dir()  # the ComfyUI under test (as in conftest)
PACK_DIR_NAME = "ComfyUI-LumosX"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    def __init__(self, base_dir: str, extra_packs=(), extra_args=()):
        self.base = base_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(base_dir, "server.log")
        self.extra_packs = list(extra_packs)
        self.extra_args = list(extra_args)
        self.proc = None
        self.client_id = uuid.uuid4().hex

    # -- life cycle ---------------------------------------------------------------------
    def prepare(self):
        for sub in ("custom_nodes", "models/diffusion_models", "models/vae", "models/text_encoders",
                    "input", "output", "temp", "user"):
            os.makedirs(os.path.join(self.base, sub), exist_ok=True)
        link = os.path.join(self.base, "custom_nodes", PACK_DIR_NAME)
        if not os.path.exists(link):
            os.symlink(ROOT, link)
        for src in self.extra_packs:
            dst = os.path.join(self.base, "custom_nodes", os.path.basename(src))
            if not os.path.exists(dst):
                os.symlink(src, dst)

    def start(self, timeout: float = 180.0):
        self.prepare()
        cmd = [sys.executable, os.path.join(COMFY, "main.py"), "--cpu", "--listen", "127.0.0.1",
               "--port", str(self.port), "--base-directory", self.base, "--disable-api-nodes",
               "--dont-print-server",
               "--database-url", "sqlite:///" + os.path.join(self.base, "user", "comfyui.db"),
               *self.extra_args]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=COMFY, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited early:\n{self.log()}")
            try:
                if requests.get(self.url + "/system_stats", timeout=2).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"ComfyUI did not start in {timeout}s:\n{self.log()}")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if getattr(self, "_log", None):
            self._log.close()

    def log(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # -- API ------------------------------------------------------------------------------
    def get(self, path: str, **kw):
        r = requests.get(self.url + path, timeout=kw.pop("timeout", 30), **kw)
        r.raise_for_status()
        return r.json()

    def queue(self, prompt: dict) -> requests.Response:
        return requests.post(self.url + "/prompt",
                             json={"prompt": prompt, "client_id": self.client_id}, timeout=30)

    def wait(self, prompt_id: str, timeout: float = 600.0) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            hist = self.get(f"/history/{prompt_id}")
            if prompt_id in hist and hist[prompt_id].get("status", {}).get("completed") is not None:
                status = hist[prompt_id]["status"]
                if status.get("completed") or status.get("status_str") in ("error", "success"):
                    return hist[prompt_id]
            time.sleep(0.5)
        raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout}s")

    def run(self, prompt: dict, timeout: float = 600.0) -> dict:
        r = self.queue(prompt)
        if r.status_code != 200:
            raise AssertionError(f"/prompt refused the graph: {r.status_code} {r.text}")
        return self.wait(r.json()["prompt_id"], timeout)


def import_failures(log: str, name: str = PACK_DIR_NAME) -> list:
    """Log lines that report our pack failing to import."""
    bad = []
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if ("IMPORT FAILED" in line or "Cannot import" in line) and name in line:
            bad.append(line)
        if "Error while calling comfy_entrypoint" in line and name in line:
            bad.append(line)
    return bad
