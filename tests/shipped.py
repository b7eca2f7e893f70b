"""Test helpers for the shipped files (workflows, artifacts). The modules under ``scripts/``
are imported by their own names (``import demo``): the test bootstrap puts ``scripts/`` on
``sys.path``."""
from __future__ import annotations

import importlib
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, "scripts")
WORKFLOWS = os.path.join(ROOT, "workflows")
NAMES = ["identity_consistent", "subject_consistent", "three_people", "ab_relational",
         "dual_cfg"]
ARTIFACTS = os.environ.get("LUMOSX_ARTIFACTS", os.path.join(ROOT, "output", "test-artifacts"))


def load_script(name: str):
    """``scripts/<name>.py`` as the module ``name`` (same as ``import name``)."""
    return importlib.import_module(name)


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
