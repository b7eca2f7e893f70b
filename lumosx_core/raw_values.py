"""Raw ``/prompt`` values of the wrong JSON type, refused before ComfyUI converts them.

ComfyUI converts raw widget values before a node's ``validate_inputs`` sees them
(``bool("false")`` is ``True``, ``int(5.7)`` is ``5``, a ``null`` combo goes unchecked), so
each wrongly typed raw value of a LumosX node is replaced by a :class:`RefusedValue`, whose
conversion (or ``validate_inputs``) raises our message. A :class:`RefusedValue` copies and
pickles as a value (ComfyUI deep-copies the prompts it queues). No ComfyUI import here.
"""
from __future__ import annotations

import logging
from typing import Callable, Dict, Optional

from .limits import Spec, json_type_error

log = logging.getLogger("LumosX")


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


def refuse_raw_values(json_data, specs_for: Callable[[object], Optional[Dict[str, Spec]]]):
    """Every wrongly typed raw value in a ``/prompt`` body, of a node whose input specs
    ``specs_for(class_type)`` gives (``None``: not ours, untouched), becomes a
    :class:`RefusedValue` (in place; the body is returned)."""
    prompt = json_data.get("prompt") if isinstance(json_data, dict) else None
    for node in (prompt.values() if isinstance(prompt, dict) else ()):
        specs = specs_for(node.get("class_type")) if isinstance(node, dict) else None
        inputs = node.get("inputs") if specs is not None else None
        if not isinstance(inputs, dict):
            continue
        for name, raw in list(inputs.items()):
            spec = specs.get(name)
            err = None if spec is None or isinstance(raw, RefusedValue) else \
                json_type_error(spec, raw)
            if err:
                kind = RefusedText if spec.kind in ("STRING", "COMBO") else RefusedValue
                inputs[name] = kind(repr(raw), err)
    return json_data


def safe_prompt_handler(check: Callable[[dict], dict]) -> Callable[[dict], dict]:
    """An ``on_prompt`` handler running ``check`` on each ``/prompt`` body that never breaks
    ``/prompt`` for other packs' graphs: a failure is logged and the body passes unchanged.
    Marked ``_lumosx`` (a server gets it once)."""
    def handler(json_data):
        try:
            return check(json_data)
        except Exception:  # noqa: BLE001 - the server's other graphs must still run
            log.exception("LumosX: raw input check failed")
            return json_data
    handler._lumosx = True
    return handler
