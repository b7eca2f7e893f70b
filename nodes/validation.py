"""Input checks, glue side. Every node is a :class:`LumosXNode`: its ``validate_inputs`` hands
the node's schema and its table of rules (``CHECKS``) to the one checker,
``lumosx_core.limits.check``; ``execute`` runs the same on the values it received
(:func:`check_inputs`: linked values are only known then).

An ``on_prompt`` handler first replaces each wrongly typed raw value of a LumosX node by a
``RefusedValue`` (``lumosx_core.raw_values``). Errors are plain ``ValueError`` /
``FileNotFoundError`` holding a string."""
from __future__ import annotations

import logging
from typing import Dict

from comfy_api.latest import io

from ..lumosx_core.limits import MissingFile, Spec, check
from ..lumosx_core.raw_values import RefusedValue, refuse_raw_values

log = logging.getLogger("LumosX")
_SPECS: Dict[object, Dict[str, Spec]] = {}


def specs_of(cls) -> Dict[str, Spec]:
    """The input specs of a node class from its own schema (cached)."""
    key = getattr(cls.define_schema, "__func__", cls.define_schema)
    if key not in _SPECS:
        _SPECS[key] = {i.id: Spec(i.id, str(getattr(i, "io_type", None)), getattr(i, "min", None),
                                  getattr(i, "max", None),
                                  None if getattr(i, "options", None) is None else tuple(i.options))
                       for i in cls.define_schema().inputs}
    return _SPECS[key]


def validate(cls, values: dict):
    """``True``, or the first message about ``values`` (inputs by name): a refused raw value,
    then every value against the node's schema and the node's ``CHECKS``."""
    for value in values.values():
        if isinstance(value, RefusedValue):
            return value.message
    return check(specs_of(cls), getattr(cls, "CHECKS", ()), values) or True


def schema(node_id: str, display_name: str, **fields) -> io.Schema:
    """A LumosX node's schema: ``node_id``, ``display_name``, category ``LumosX`` and the
    other ``io.Schema`` fields (description, inputs, outputs, ...)."""
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
    return refuse_raw_values(json_data, lambda class_type: None if nodes_by_id.get(class_type)
                             is None else specs_of(nodes_by_id[class_type]))


def install_prompt_check(node_classes) -> bool:
    """Register :func:`check_raw_prompt` with the running ComfyUI server (once)."""
    try:
        from server import PromptServer
        instance = PromptServer.instance
    except (ImportError, AttributeError):
        return False    # no server (in-process use): execute() still checks everything
    if any(getattr(h, "_lumosx", False) for h in instance.on_prompt_handlers):
        return True
    by_id = {c.GET_SCHEMA().node_id: c for c in node_classes}

    def handler(json_data):
        try:
            return check_raw_prompt(json_data, by_id)
        except Exception:  # noqa: BLE001 - never break /prompt for other packs' graphs
            log.exception("LumosX: raw input check failed")
            return json_data
    handler._lumosx = True
    instance.add_on_prompt_handler(handler)
    return True
