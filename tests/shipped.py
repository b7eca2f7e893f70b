"""Test helpers for the shipped workflows, the demo and the browser: the modules under
``scripts/`` loaded by path (never as a generic ``scripts`` package), and the shipped files."""
from __future__ import annotations

import importlib.util
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, "scripts")
WORKFLOWS = os.path.join(ROOT, "workflows")
NAMES = ["identity_consistent", "subject_consistent", "three_people", "ab_relational",
         "dual_cfg"]
ARTIFACTS = os.environ.get("LUMOSX_ARTIFACTS", os.path.join(ROOT, "output", "test-artifacts"))


def load_script(name: str):
    """``scripts/<name>.py`` as module ``lumosx_scripts_<name>`` (its folder on sys.path so
    its own sibling imports work)."""
    mod_name = f"lumosx_scripts_{name}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    if SCRIPTS not in sys.path:
        sys.path.append(SCRIPTS)
    spec = importlib.util.spec_from_file_location(mod_name, os.path.join(SCRIPTS, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = mod
    spec.loader.exec_module(mod)
    return mod


def ui_path(name: str) -> str:
    return os.path.join(WORKFLOWS, name + ".json")


def api_path(name: str) -> str:
    return os.path.join(WORKFLOWS, name + ".api.json")


def load(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def artifact(name: str) -> str:
    os.makedirs(ARTIFACTS, exist_ok=True)
    return os.path.join(ARTIFACTS, name)
