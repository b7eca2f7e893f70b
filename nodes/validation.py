"""Input checks, glue side. Every node is a :class:`LumosXNode`: its ``validate_inputs`` hands
the node's schema and its table of rules (``CHECKS``) to the one checker,
``lumosx_core.limits.check``; ``execute`` runs the same on the values it received
(:func:`check_inputs`: linked values are only known then).

ComfyUI converts raw widget values before ``validate_inputs`` sees them (``bool("false")`` is
``True``, ``int(5.7)`` is ``5``, a ``null`` combo goes unchecked), so an ``on_prompt`` handler
first replaces each wrongly typed raw value of a LumosX node by a :class:`RefusedValue`, whose
conversion (or ``validate_inputs``) raises our message. Errors are plain ``ValueError`` /
``FileNotFoundError`` holding a string; a :class:`RefusedValue` copies and pickles as a value
(ComfyUI deep-copies the prompts it queues)."""
from __future__ import annotations

import logging
from typing import Dict

from comfy_api.latest import io

from ..lumosx_core.limits import MissingFile, Spec, check, json_type_error

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


class RefusedValue(str):
    """Stands in for a wrongly typed raw value: a string (the prompt stays JSON) whose
    conversion to INT/FLOAT/BOOLEAN -- ComfyUI's first validation step -- raises
    ``ValueError(message)``; ComfyUI reports it under the input's name."""

    def __new__(cls, text: str, message: str):
        self = super().__new__(cls, text)
        self.message = str(message)
        return self

    def __reduce__(self):
        return type(self), (str.__str__(self), self.message)

    def _refuse(self):
        raise ValueError(self.message)

    __bool__ = __int__ = __float__ = __index__ = _refuse

    def __str__(self):
        return self     # ComfyUI's str() of a STRING input keeps it a RefusedValue


class RefusedText(RefusedValue):
    """For a text or combo input: ComfyUI does not convert those, so it must behave as a
    (true) string until ``validate_inputs`` reports it."""

    def __bool__(self):
        return True


def check_raw_prompt(json_data, nodes_by_id: Dict[str, type]):
    """``on_prompt`` handler body: every wrongly typed raw value of a LumosX node of a
    ``/prompt`` body becomes a :class:`RefusedValue`."""
    prompt = json_data.get("prompt") if isinstance(json_data, dict) else None
    for node in (prompt.values() if isinstance(prompt, dict) else ()):
        cls = nodes_by_id.get(node.get("class_type")) if isinstance(node, dict) else None
        inputs = node.get("inputs") if cls is not None else None
        if not isinstance(inputs, dict):
            continue
        specs = specs_of(cls)
        for name, raw in list(inputs.items()):
            spec = specs.get(name)
            err = None if spec is None or isinstance(raw, RefusedValue) else \
                json_type_error(spec, raw)
            if err:
                kind = RefusedText if spec.kind in ("STRING", "COMBO") else RefusedValue
                inputs[name] = kind(repr(raw), err)
    return json_data


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
