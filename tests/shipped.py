"""Test helpers for the shipped files (workflows, artifacts). The modules under ``scripts/``
are imported by their own names (``import demo``): the test bootstrap puts ``scripts/`` on
``sys.path``."""
from __future__ import annotations

import importlib
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, "scripts")
WORKFLOWS = os.path.join(ROOT, "workflows")  # the UI format: the templates browser lists these
API_WORKFLOWS = os.path.join(WORKFLOWS, "api")  # the API format: `lumosx run`, /prompt
NAMES = ["identity_consistent", "subject_consistent", "three_people", "ab_relational",
         "dual_cfg", "from_photos"]
ARTIFACTS = os.environ.get("LUMOSX_ARTIFACTS", os.path.join(ROOT, "output", "test-artifacts"))


def load_script(name: str):
    """``scripts/<name>.py`` as the module ``name`` (same as ``import name``)."""
    return importlib.import_module(name)


def ui_path(name: str) -> str:
    return os.path.join(WORKFLOWS, name + ".json")


def api_path(name: str) -> str:
    return os.path.join(API_WORKFLOWS, name + ".api.json")


def load(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def artifact(name: str) -> str:
    os.makedirs(ARTIFACTS, exist_ok=True)
    return os.path.join(ARTIFACTS, name)


OUR_PREFIX = "LumosX"  # our node ids; core nodes are everything else in the shipped files


def _id_key(node_id: str):
    return (0, int(node_id), "") if str(node_id).isdigit() else (1, 0, str(node_id))


def api_differences(got: dict, shipped: dict, object_info: dict) -> list:
    """What an API-format export of a shipped workflow on this host (the converter's, or the
    app's own) loses or changes against the shipped API file, as a list of problems (empty: in
    agreement).

    Our nodes must match exactly (titles too). Core nodes are ComfyUI's to change, so they are
    held to what a host can legitimately do: keep the node and every link (a default title is
    the host frontend's display name, ``DualCFGGuider`` or ``Dual CFG Guider``); keep every shipped
    value, under its own name or moved into a dynamic input of newer ComfyUI (``codec`` ->
    ``format.codec``); add only inputs the host's ``/object_info`` defines (``bit_depth``,
    ``format.codec.encoding``). A value that is dropped or changed is reported."""
    problems = []
    if set(got) != set(shipped):
        problems.append(f"node ids: got {sorted(got, key=_id_key)}, "
                        f"shipped {sorted(shipped, key=_id_key)}")
    for nid in sorted(set(got) & set(shipped), key=_id_key):
        g, s = got[nid], shipped[nid]
        kind = s["class_type"]
        where = f"node {nid} ({kind})"
        if g.get("class_type") != kind:
            problems.append(f"{where}: class_type {g.get('class_type')!r}")
            continue
        gi, si = g.get("inputs", {}), s.get("inputs", {})
        if kind.startswith(OUR_PREFIX):
            if g.get("_meta") != s.get("_meta"):
                problems.append(f"{where}: _meta {g.get('_meta')!r} != {s.get('_meta')!r}")
            if gi != si:
                keys = sorted(set(gi) | set(si))
                diff = {k: (gi.get(k, "<missing>"), si.get(k, "<missing>")) for k in keys
                        if gi.get(k, "<missing>") != si.get(k, "<missing>")}
                problems.append(f"{where}: inputs differ (got, shipped): {diff}")
            continue
        for key, value in si.items():
            if isinstance(value, list):  # a link
                if gi.get(key) != value:
                    problems.append(f"{where}: link {key}={value} became {gi.get(key)!r}")
                continue
            homes = [k for k in gi if k == key or k.endswith("." + key)]
            if not any(gi[k] == value for k in homes):
                problems.append(f"{where}: value {key}={value!r} lost "
                                f"(got {({k: gi[k] for k in homes}) or 'nothing'})")
        spec = (object_info.get(kind) or {}).get("input") or {}
        known = set(spec.get("required") or {}) | set(spec.get("optional") or {})
        for key, value in gi.items():
            if key in si:
                continue
            if isinstance(value, list):
                problems.append(f"{where}: new link {key}={value}")
            elif key.split(".")[0] not in known:
                problems.append(f"{where}: input {key!r} that this host does not define")
    return problems


STANDIN_SIZE = {"width": 64, "height": 48, "length": 5}


def standin_prompt(prompt: dict, spiece: str, seed: int, steps: int = 1, size=None) -> dict:
    """An API-format shipped workflow turned into its stand-in run (``make demo``'s
    replacements: the test-only tiny umT5, the stand-in face pack, a tiny size, ``steps``) with
    ``seed`` on every sampler (a fresh seed: ComfyUI's cache does not answer for it)."""
    import copy
    from lumosx_core.cli import workflow_edit
    demo = load_script("demo")
    prompt = copy.deepcopy(prompt)
    classes = {n["class_type"] for n in prompt.values()}
    args = demo.standin_overrides(spiece, size=size or STANDIN_SIZE, steps=steps,
                                  classes=classes)
    pairs = list(zip(args[::2], args[1::2]))
    sets = [workflow_edit.parse_assignment(v) for k, v in pairs if k == "--set"]
    if "LumosXSampler" in classes:
        sets.append(("LumosXSampler", "seed", seed))
    else:  # a custom-sampling graph (dual CFG): steps and seed live in core nodes
        sets = [s for s in sets if s[0] != "LumosXSampler"]
        sets += [("BasicScheduler", "steps", steps), ("RandomNoise", "noise_seed", seed)]
    workflow_edit.apply_replacements(prompt, [v for k, v in pairs if k == "--replace"])
    workflow_edit.apply_sets(prompt, sets)
    return prompt


def output_files(server, hist: dict) -> list:
    """Paths of the files a finished prompt wrote into the server's output folder."""
    files = []
    for out in (hist.get("outputs") or {}).values():
        for items in out.values():
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict) and item.get("filename") and \
                        item.get("type", "output") == "output":
                    files.append(os.path.join(server.base, "output", item.get("subfolder", ""),
                                              item["filename"]))
    return files
