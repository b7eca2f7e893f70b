"""A real headless ComfyUI server (the test host) with this pack, for end-to-end tests through
the HTTP API: the ``lumosx`` command's launcher (:class:`lumosx_core.cli.host.Host`) plus a few
request helpers. Everything it writes stays under its own base directory."""
from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid

import requests

from lumosx_core.cli.host import PACK_DIR_NAME, Host, comfyui_dir  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMFY = comfyui_dir()  # the ComfyUI under test (as in conftest)


class ComfyServer(Host):
    """The test host on the CPU, in this Python, with ``base_dir`` as its base directory."""

    def __init__(self, base_dir: str, extra_packs=(), extra_args=()):
        super().__init__(COMFY, python=sys.executable, base_directory=base_dir,
                         extra_packs=extra_packs, cpu=True,
                         extra_args=["--disable-api-nodes", "--dont-print-server",
                                     *extra_args],
                         log_path=os.path.join(base_dir, "server.log"))
        self.client_id = uuid.uuid4().hex

    def start(self, timeout: float = 180.0) -> "ComfyServer":
        return super().start(timeout=timeout)

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


@contextlib.contextmanager
def e2e_server(base: str, extra_args=(), prepared=None):
    """A started :class:`ComfyServer` over ``base`` laid out by ``e2e_setup.prepare_base``
    (stand-in models, inputs, the test pack; ``prepared``: its result when the caller already
    prepared it) with ``.assets``; stopped afterwards."""
    import e2e_setup
    info = prepared if prepared is not None else e2e_setup.prepare_base(base)
    srv = ComfyServer(base, extra_packs=[e2e_setup.TEST_PACK], extra_args=extra_args)
    srv.assets = info
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
