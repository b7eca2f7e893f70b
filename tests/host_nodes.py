"""Running ComfyUI's own nodes in-process, V1 and V3 alike: find a core node class by its id
(skipping the test when the host lacks it) and execute it with its defaults, as the server
would."""
import asyncio
import importlib
import inspect

import pytest


def core_node(module_name: str, node_id: str):
    """The class of core node ``node_id`` from ``comfy_extras.<module>`` (or ``nodes``); skip
    when this host does not have it."""
    try:
        mod = importlib.import_module(module_name)
    except ImportError as e:
        pytest.skip(f"host has no {module_name}: {e}")
    mapping = getattr(mod, "NODE_CLASS_MAPPINGS", {})
    if node_id in mapping:
        return mapping[node_id]
    from comfy_api.latest import io
    for obj in vars(mod).values():
        if (inspect.isclass(obj) and issubclass(obj, io.ComfyNode) and obj is not io.ComfyNode
                and obj.GET_SCHEMA().node_id == node_id):
            return obj
    pytest.skip(f"host has no core node {node_id}")


def run(cls, **kw):
    """Execute a node class as the server would, inputs not given taking their defaults.
    Returns the outputs as a tuple."""
    from comfy_api.latest import io
    if isinstance(cls, type) and issubclass(cls, io.ComfyNode):
        for inp in cls.GET_SCHEMA().inputs:
            if inp.id not in kw and getattr(inp, "default", None) is not None:
                kw[inp.id] = inp.default
        out = cls.execute(**kw)
        if inspect.iscoroutine(out):
            out = asyncio.run(out)
        return tuple(out.result)
    spec = cls.INPUT_TYPES()
    for group in ("required", "optional"):
        for name, (kind, *opts) in spec.get(group, {}).items():
            if name not in kw and opts and isinstance(opts[0], dict) and "default" in opts[0]:
                kw[name] = opts[0]["default"]
    out = getattr(cls(), cls.FUNCTION)(**kw)
    if inspect.iscoroutine(out):
        out = asyncio.run(out)
    return tuple(out)
