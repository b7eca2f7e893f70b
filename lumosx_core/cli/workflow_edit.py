"""Loading workflows and editing them from the command line (``--set``, ``--replace``,
``--sweep``)."""
from __future__ import annotations

import copy
import itertools
import json
import math
import os
import stat
from typing import Any, Dict, List, Sequence, Tuple

from .workflow_format import WorkflowError, is_api_workflow, is_ui_workflow

#: Largest workflow file read (bytes): ComfyUI's own workflows are kilobytes.
MAX_WORKFLOW_BYTES = 64 << 20
#: Deepest nesting of lists and objects in a workflow (ComfyUI's own nest about 6 deep).
MAX_WORKFLOW_DEPTH = 64
#: Jobs one ``lumosx run`` may create (workflows x sweep combinations) unless --max-jobs.
MAX_JOBS = 1000

_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISDIR, "a folder"))


def _loads(text: str, what: str, plain_text: bool = False) -> Any:
    """``json.loads`` of ``text`` refusing, as a :class:`WorkflowError` naming ``what``, JSON
    nested more than :data:`MAX_WORKFLOW_DEPTH` deep and -- unless ``plain_text``, which
    returns ``text`` itself then -- text that is not JSON."""
    try:
        value = json.loads(text)
        deep = depth(value) > MAX_WORKFLOW_DEPTH
    except RecursionError:
        deep = True
    except ValueError as e:
        if plain_text:
            return text
        raise WorkflowError(f"{what}: not JSON ({e})") from None
    if deep:
        raise WorkflowError(f"{what}: JSON nested more than {MAX_WORKFLOW_DEPTH} levels deep")
    return value


def load_json(path: str) -> Any:
    """A workflow file's JSON. Only a regular file is opened (a FIFO or device named as the
    workflow would block or never end); every failure is a :class:`WorkflowError`."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise WorkflowError(f"{path}: cannot read ({e.strerror or e})") from None
    if not stat.S_ISREG(st.st_mode):
        what = next((name for test, name in _KINDS if test(st.st_mode)), "not a file")
        raise WorkflowError(f"{path}: not a regular file (it is {what}): give a workflow "
                            f"JSON file")
    if st.st_size > MAX_WORKFLOW_BYTES:
        raise WorkflowError(f"{path}: {st.st_size} bytes is more than the limit of "
                            f"{MAX_WORKFLOW_BYTES} for a workflow file")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_WORKFLOW_BYTES + 1)
    except OSError as e:
        raise WorkflowError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise WorkflowError(f"{path}: not JSON (not UTF-8 text: {e.reason} at byte "
                            f"{e.start})") from None
    return _loads(text, path)


def depth(data: Any) -> int:
    """How deep lists and objects nest in ``data`` (a scalar: 0), without recursion."""
    deepest, todo = 0, [(data, 1)]
    while todo:
        item, d = todo.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, d)
            todo += [(v, d + 1) for v in (item.values() if isinstance(item, dict) else item)]
    return deepest


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
    return _loads(text, f"value {text[:40]!r}...", plain_text=True)


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


def count_jobs(workflows: int, sweeps: Sequence[Tuple[str, str, List[Any]]],
               limit: int = MAX_JOBS) -> int:
    """The number of jobs ``workflows`` files times every sweep combination make, checked
    against ``limit`` before any is built: a :class:`WorkflowError` saying how to raise it."""
    sizes = [len(values) for _, _, values in sweeps]
    n = workflows * math.prod(sizes)
    if n > limit:
        shape = " x ".join(str(k) for k in sizes) + " values" if sizes else "no sweep"
        raise WorkflowError(f"{n} jobs ({workflows} workflow(s) x {shape}) is more than the "
                            f"limit of {limit} jobs per run: sweep fewer values, or raise the "
                            f"limit with --max-jobs N")
    return n


def sweep_combinations(sweeps: Sequence[Tuple[str, str, List[Any]]]):
    """Every combination of the sweeps, as lists of ``(node, input, value)``."""
    if not sweeps:
        return [[]]
    axes = [[(ref, name, v) for v in values] for ref, name, values in sweeps]
    return [list(combo) for combo in itertools.product(*axes)]


def describe(assignments: Sequence[Tuple[str, str, Any]]) -> str:
    return ", ".join(f"{ref}.{name}={json.dumps(v)}" for ref, name, v in assignments)
