"""Input checks shared by the nodes. ComfyUI 0.3.x does not check V3 combo values against
their options, so every node checks its own (in ``validate_inputs`` -- a 400 answer from
``/prompt`` naming the input -- and again when it runs)."""
from __future__ import annotations

from typing import Iterable, Optional


def choice_error(name: str, value, options: Iterable) -> Optional[str]:
    """``None`` when ``value`` is one of ``options`` (or not given: a linked input)."""
    if value is None:
        return None
    options = list(options)
    if value in options:
        return None
    shown = ", ".join(repr(o) for o in options[:12]) + (" ..." if len(options) > 12 else "")
    return f"{name} = {value!r} is not one of the choices: {shown}"


def first_error(*errors: Optional[str]):
    """``True`` when every check passed, else the first message (what validate_inputs
    returns)."""
    for e in errors:
        if e:
            return e
    return True


def raise_if_invalid(result) -> None:
    if result is not True:
        raise ValueError(result)
