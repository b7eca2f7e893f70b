"""Loading workflows and editing them from the command line (``--set``, ``--replace``,
``--sweep``)."""
from __future__ import annotations

import copy
import itertools
import json
from typing import Any, Dict, List, Sequence, Tuple

from .workflow_format import WorkflowError, is_api_workflow, is_ui_workflow


def load_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise WorkflowError(f"{path}: cannot read ({e.strerror or e})") from None
    except ValueError as e:
        raise WorkflowError(f"{path}: not JSON ({e})") from None


def workflow_format(data: Any) -> str:
    if is_api_workflow(data):
        return "api"
    if is_ui_workflow(data):
        return "ui"
    if isinstance(data, dict) and is_api_workflow(data.get("prompt")):
        return "api-wrapped"  # a saved /prompt body
    raise WorkflowError("neither an API-format workflow ({id: {class_type, inputs}}) nor a "
                        "UI-format workflow ({nodes, links})")


def parse_value(text: str) -> Any:
    """JSON when it parses (numbers, true/false, null, "quoted", [\"node\", slot] links),
    otherwise the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def split_target(target: str, what: str) -> Tuple[str, str]:
    """``NODE.INPUT`` -> (NODE, INPUT); NODE may itself contain dots (titles)."""
    node, dot, name = target.rpartition(".")
    if not dot or not node or not name:
        raise WorkflowError(f"{what} {target!r}: expected NODE.INPUT (NODE = node id, title or "
                            f"class type)")
    return node, name


def parse_assignment(text: str, what: str = "--set") -> Tuple[str, str, Any]:
    target, eq, value = text.partition("=")
    if not eq:
        raise WorkflowError(f"{what} {text!r}: expected NODE.INPUT=VALUE")
    node, name = split_target(target.strip(), what)
    return node, name, parse_value(value)


def find_nodes(prompt: Dict[str, dict], ref: str) -> List[str]:
    """Node ids matching ``ref``: an id; else every node with that title; else every node of
    that class type."""
    if ref in prompt:
        return [ref]
    by_title = [k for k, v in prompt.items() if (v.get("_meta") or {}).get("title") == ref]
    if by_title:
        return by_title
    by_class = [k for k, v in prompt.items() if v.get("class_type") == ref]
    if by_class:
        return by_class
    known = ", ".join(f"{k} ({(v.get('_meta') or {}).get('title') or v.get('class_type')})"
                      for k, v in sorted(prompt.items(), key=lambda kv: _num(kv[0])))
    raise WorkflowError(f"no node {ref!r} in the workflow (nodes: {known})")


def _num(k):
    try:
        return (0, int(k), "")
    except ValueError:
        return (1, 0, k)


def apply_replacements(prompt: Dict[str, dict], replacements: Sequence[str]) -> None:
    """``NODE=CLASS_TYPE``: the node becomes a fresh node of that class (same id and title, no
    inputs: give them with ``--set``); links to it keep pointing at it."""
    for text in replacements:
        ref, eq, kind = text.partition("=")
        if not eq or not ref.strip() or not kind.strip():
            raise WorkflowError(f"--replace {text!r}: expected NODE=CLASS_TYPE")
        for node_id in find_nodes(prompt, ref.strip()):
            meta = copy.deepcopy(prompt[node_id].get("_meta") or {})
            prompt[node_id] = {"inputs": {}, "class_type": kind.strip()}
            if meta:
                prompt[node_id]["_meta"] = meta


def apply_sets(prompt: Dict[str, dict], assignments: Sequence[Tuple[str, str, Any]]) -> None:
    for ref, name, value in assignments:
        for node_id in find_nodes(prompt, ref):
            prompt[node_id].setdefault("inputs", {})[name] = value


def parse_sweep(text: str) -> Tuple[str, str, List[Any]]:
    ref, name, values = parse_assignment(text, "--sweep")
    if not isinstance(values, list) or not values:
        raise WorkflowError(f"--sweep {text!r}: expected NODE.INPUT=[v1, v2, ...] (a JSON list)")
    return ref, name, values


def sweep_combinations(sweeps: Sequence[Tuple[str, str, List[Any]]]):
    """Every combination of the sweeps, as lists of ``(node, input, value)``."""
    if not sweeps:
        return [[]]
    axes = [[(ref, name, v) for v in values] for ref, name, values in sweeps]
    return [list(combo) for combo in itertools.product(*axes)]


def describe(assignments: Sequence[Tuple[str, str, Any]]) -> str:
    return ", ".join(f"{ref}.{name}={json.dumps(v)}" for ref, name, v in assignments)
