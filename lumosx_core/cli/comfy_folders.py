"""Where a ComfyUI reads its model folders: asked of that ComfyUI's own ``folder_paths``, in a
subprocess with that ComfyUI's Python, with what ComfyUI's ``main.py`` adds at start-up (its
``extra_model_paths.yaml``, ``--extra-model-paths-config``, ``--base-directory`` and the other
folder options, passed through). Folders that a custom node registers at import time (this
pack's ``lumosx`` and ``insightface``) are ``models/<name>`` unless an extra-paths file
names them, which is what the pack does when ComfyUI loads it. No ComfyUI import here.
"""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from typing import Dict, List, Sequence

# Runs in the ComfyUI's Python with the ComfyUI folder as the working directory: argv[1] the
# ComfyUI folder, argv[2] JSON list of main.py arguments, argv[3] JSON list of folder names.
_PROBE = r"""
import itertools, json, logging, os, sys
logging.disable(logging.CRITICAL)
root, argv, names = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
sys.path.insert(0, root)
sys.argv = [os.path.join(root, "main.py")] + argv
import comfy.options
comfy.options.enable_args_parsing()
from comfy.cli_args import args
import folder_paths
try:
    from utils import extra_config
except ImportError:
    extra_config = None
if extra_config is not None:
    own = os.path.join(root, "extra_model_paths.yaml")
    if os.path.isfile(own):
        extra_config.load_extra_path_config(own)
    for path in itertools.chain(*(getattr(args, "extra_model_paths_config", None) or [])):
        extra_config.load_extra_path_config(path)
out = {"models_dir": folder_paths.models_dir, "folders": {}}
for name in names:
    if name in folder_paths.folder_names_and_paths:
        out["folders"][name] = list(folder_paths.get_folder_paths(name))
    else:
        out["folders"][name] = [os.path.join(folder_paths.models_dir, name)]
print("LUMOSX_FOLDERS " + json.dumps(out))
"""


class FoldersError(RuntimeError):
    """ComfyUI's folders could not be read."""


@dataclass(frozen=True)
class Folders:
    """The model folders of one ComfyUI (or a bare models folder)."""

    models_dir: str
    paths: Dict[str, List[str]]   # folder name -> the paths ComfyUI reads, in its order
    source: str                   # what they come from, for messages

    def target(self, name: str) -> str:
        """Where a new file of folder ``name`` goes: the first path ComfyUI lists for it
        (its default; an ``is_default`` extra path comes first), except that among
        ComfyUI's own sub-folders the one named like the folder wins (``diffusion_models``
        over the legacy ``unet`` ComfyUI lists first)."""
        paths = self.paths.get(name) or [os.path.join(self.models_dir, name)]
        first = os.path.normpath(paths[0])
        models = os.path.normpath(self.models_dir)
        if os.path.dirname(first) == models:
            canonical = os.path.join(models, name)
            if any(os.path.normpath(p) == canonical for p in paths):
                return canonical
        return paths[0]


def comfy_folders(comfy_dir: str, python: str, names: Sequence[str],
                  comfy_args: Sequence[str] = (), timeout: float = 120.0) -> Folders:
    """Ask the ComfyUI in ``comfy_dir`` (run by ``python``) where ``names`` live."""
    cmd = [python, "-c", _PROBE, comfy_dir, json.dumps(list(comfy_args)),
           json.dumps(list(names))]
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # that ComfyUI's own modules, not ours
    try:
        r = subprocess.run(cmd, cwd=comfy_dir, capture_output=True, text=True, timeout=timeout,
                           env=env)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise FoldersError(f"cannot run {python} to read ComfyUI's model folders: {e}") from None
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("LUMOSX_FOLDERS ")), None)
    if r.returncode != 0 or line is None:
        tail = (r.stderr or r.stdout).strip().splitlines()[-6:]
        raise FoldersError(f"could not read the model folders of {comfy_dir} with {python} "
                           f"(exit {r.returncode}):\n  " + "\n  ".join(tail))
    data = json.loads(line[len("LUMOSX_FOLDERS "):])
    extra = " ".join(comfy_args)
    return Folders(models_dir=data["models_dir"], paths=data["folders"],
                   source=f"ComfyUI {comfy_dir}" + (f" ({extra})" if extra else ""))
