"""Input checks, glue side: a node's schema and ``CHECKS`` go to the one checker
(``lumosx_core.limits.check``) in ``validate_inputs`` and again in ``execute`` (linked values
are only known then); an ``on_prompt`` handler refuses wrongly typed raw values first."""
from __future__ import annotations

import functools
from typing import Dict

from comfy_api.latest import io

from ..lumosx_core.limits import MissingFile, Spec, check
from ..lumosx_core.raw_values import RefusedValue, refuse_raw_values, safe_prompt_handler


@functools.lru_cache(maxsize=None)
def specs_of(cls) -> Dict[str, Spec]:
    """The input specs of a node class, from its own schema."""
    return {i.id: Spec.of(i) for i in cls.define_schema().inputs}


def validate(cls, values: dict):
    """``True``, or the first message about ``values`` (inputs by name): a refused raw value,
    then every value against the node's schema and ``CHECKS``."""
    refused = next((v.message for v in values.values() if isinstance(v, RefusedValue)), None)
    return refused or check(specs_of(cls), cls.CHECKS, values) or True


def schema(node_id: str, display_name: str, **fields) -> io.Schema:
    """A LumosX node's schema: category ``LumosX`` and the other ``io.Schema`` fields."""
    return io.Schema(node_id=node_id, display_name=display_name, category="LumosX", **fields)


class LumosXNode(io.ComfyNode):
    """A LumosX node: its inputs are checked against its schema and its ``CHECKS``."""

    CHECKS = ()     #: the node's rules (``lumosx_core.limits``) beyond its schema

    @classmethod
    def validate_inputs(cls, **values):
        return validate(cls, values)


def check_inputs(cls, arguments: dict) -> None:
    """``execute``'s half of the checks, on the values it received (``locals()``)."""
    specs = specs_of(cls)
    msg = validate(cls, {k: v for k, v in arguments.items() if k in specs})
    if msg is not True:
        raise (FileNotFoundError if isinstance(msg, MissingFile) else ValueError)(str(msg))


def check_raw_prompt(json_data, nodes_by_id: Dict[str, type]):
    """``on_prompt`` handler body: every wrongly typed raw value of a LumosX node of a
    ``/prompt`` body becomes a ``RefusedValue``."""
    return refuse_raw_values(json_data, lambda kind: specs_of(nodes_by_id[kind])
                             if isinstance(kind, str) and kind in nodes_by_id else None)


def install_prompt_check(node_classes) -> bool:
    """Register :func:`check_raw_prompt` with the running ComfyUI server (once)."""
    try:
        from server import PromptServer
        instance = PromptServer.instance
    except (ImportError, AttributeError):
        return False    # no server (in-process use): execute() still checks everything
    if not any(getattr(h, "_lumosx", False) for h in instance.on_prompt_handlers):
        by_id = {c.GET_SCHEMA().node_id: c for c in node_classes}
        instance.add_on_prompt_handler(safe_prompt_handler(lambda b: check_raw_prompt(b, by_id)))
    return True
