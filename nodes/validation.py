"""Input checks shared by the nodes: the ONE place they live.

ComfyUI 0.3.x does not check V3 combo values against their options, and it skips its own
min/max checks for every input a node's ``validate_inputs`` takes (ours take all of them,
through ``**values``). So :func:`validate` checks every input of a node against the node's own
schema -- type, finiteness, ``min``/``max``, combo choices, text length -- plus the work
limits below. Each node writes its checks once, in ``validate_inputs`` (a 400 answer from
``/prompt`` naming the input); ``execute`` runs that same method through :func:`check_inputs`
on the values it receives (linked values are only known then).

ComfyUI converts widget values before ``validate_inputs`` sees them (``bool("false")`` is
``True``, ``int(5.7)`` is ``5``, ``str(12345)``, ``bool(None)``; a ``null`` combo is not
checked at all), so :func:`check_raw_prompt` -- an ``on_prompt`` handler -- looks at the raw
JSON of LumosX nodes first and turns a wrongly typed value (``null`` included) into a
:class:`RefusedValue`: ComfyUI's own number/boolean conversion refuses it with our message,
and a text or combo input hands it to ``validate_inputs``, which refuses it the same way.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Tuple

log = logging.getLogger("LumosX")

# -- work limits (generous for a 1.3B video model, but finite) --------------------------------
#: Latent tokens of one video, ``(width/16) * (height/16) * ((length-1)//4 + 1)``: 4x the
#: released 832x480x81 (32,760 tokens); e.g. 1280x720x81 = 75,600 is allowed.
MAX_VIDEO_TOKENS = 131072
#: Latent tokens of a whole batch (batch_size x tokens per video).
MAX_BATCH_TOKENS = 262144
#: Characters in any text input (prompt, negative prompt, phrases).
MAX_TEXT_CHARS = 65536


@dataclass(frozen=True)
class Spec:
    """What a node declares about one input."""

    name: str
    kind: str                        # INT, FLOAT, BOOLEAN, STRING, COMBO or another type
    min: Optional[float] = None
    max: Optional[float] = None
    options: Optional[Tuple] = None


_SPECS: Dict[object, Dict[str, Spec]] = {}


def specs_of(cls) -> Dict[str, Spec]:
    """Input specs of a node class from its own ``define_schema`` (cached: the numeric bounds
    and static choices never change)."""
    key = getattr(cls.define_schema, "__func__", cls.define_schema)
    specs = _SPECS.get(key)
    if specs is None:
        specs = {}
        for inp in cls.define_schema().inputs:
            kind = getattr(inp, "io_type", None) or type(inp).__qualname__.split(".")[0]
            options = getattr(inp, "options", None)
            specs[inp.id] = Spec(inp.id, str(kind), getattr(inp, "min", None),
                                 getattr(inp, "max", None),
                                 tuple(options) if options is not None else None)
        _SPECS[key] = specs
    return specs


def _num(v) -> str:
    return repr(v) if isinstance(v, float) and not v.is_integer() else str(int(v)) \
        if isinstance(v, (int, float)) and math.isfinite(v) else repr(v)


def value_error(spec: Spec, value) -> Optional[str]:
    """``None`` when ``value`` suits ``spec`` (or is not given: a linked input), else a
    message naming the input and the fix."""
    if isinstance(value, RefusedValue):
        return value.message
    if value is None:
        return None
    name, kind = spec.name, spec.kind
    if kind == "BOOLEAN":
        if not isinstance(value, bool):
            return f"{name} = {value!r}: expected true or false (a JSON boolean, not a string)"
        return None
    if kind in ("INT", "FLOAT"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            what = "a whole number" if kind == "INT" else "a number"
            return f"{name} = {value!r}: expected {what}"
        if not math.isfinite(value):
            return f"{name} = {value!r}: must be a finite number"
        if kind == "INT" and not float(value).is_integer():
            return f"{name} = {value!r}: expected a whole number"
        if spec.min is not None and value < spec.min:
            return f"{name} = {_num(value)}: must be at least {_num(spec.min)}"
        if spec.max is not None and value > spec.max:
            return f"{name} = {_num(value)}: must be at most {_num(spec.max)}"
        return None
    if kind == "STRING":
        if not isinstance(value, str):
            return f"{name}: expected text, got {type(value).__name__}"
        if len(value) > MAX_TEXT_CHARS:
            return (f"{name}: {len(value)} characters is more than the limit of "
                    f"{MAX_TEXT_CHARS}")
        return None
    if kind == "COMBO" and spec.options is not None:
        return choice_error(name, value, spec.options)
    return None


def validate(cls, values: dict, *extra: Optional[str], custom: Iterable[str] = ()):
    """Check every given input of ``cls`` against its schema (inputs in ``custom`` are the
    node's own business, e.g. file names listed at run time), then the node's ``extra``
    messages. Returns ``True`` or the first message (what ``validate_inputs`` returns)."""
    specs = specs_of(cls)
    skip = set(custom)
    errors = [value_error(specs[k], v) for k, v in values.items()
              if k in specs and (k not in skip or isinstance(v, RefusedValue))]
    return first_error(*errors, *extra)


def choice_error(name: str, value, options: Iterable) -> Optional[str]:
    """``None`` when ``value`` is one of ``options`` (or not given: a linked input)."""
    if value is None:
        return None
    options = list(options)
    if value in options:
        return None
    shown = ", ".join(repr(o) for o in options[:12]) + (" ..." if len(options) > 12 else "")
    return f"{name} = {value!r} is not one of the choices: {shown}"


def multiple_error(name: str, value, multiple: int, why: str) -> Optional[str]:
    """``None`` unless an int ``value`` is not a positive multiple of ``multiple``."""
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    if value < multiple or value % multiple:
        return (f"{name} = {value}: must be a positive multiple of {multiple} ({why}); try "
                f"{max(multiple, round(value / multiple) * multiple)}")
    return None


def video_tokens(width: int, height: int, length: int) -> int:
    """Latent tokens the DiT attends over for one video of this size (VAE /8 in space, /4 in
    time, patches 2x2)."""
    return (width // 16) * (height // 16) * ((length - 1) // 4 + 1)


def work_error(width, height, length, batch_size=1) -> Optional[str]:
    """``None`` when a video of this size (and batch) is within the work limits."""
    vals = (width, height, length, batch_size)
    if any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in vals):
        return None     # the type/bounds checks report these
    tokens = video_tokens(width, height, length)
    if tokens > MAX_VIDEO_TOKENS:
        return (f"width x height x length = {width}x{height}x{length} is {tokens} latent "
                f"tokens, more than the limit of {MAX_VIDEO_TOKENS} per video (4x the released "
                f"832x480x81): make the video smaller or shorter")
    if tokens * batch_size > MAX_BATCH_TOKENS:
        return (f"batch_size = {batch_size}: {batch_size} videos of {tokens} latent tokens is "
                f"more than the limit of {MAX_BATCH_TOKENS} per batch: queue fewer at once")
    return None


def latent_work_error(name: str, samples) -> Optional[str]:
    """The work limits for a video LATENT ``[B, 16, T, H/8, W/8]`` from any node."""
    shape = tuple(getattr(samples, "shape", ()))
    if len(shape) != 5:
        return None
    b, _, t, h, w = shape
    tokens = t * (h // 2) * (w // 2)
    if tokens > MAX_VIDEO_TOKENS:
        return (f"{name}: a video latent of {t}x{h}x{w} is {tokens} tokens, more than the "
                f"limit of {MAX_VIDEO_TOKENS} per video: make the video smaller or shorter")
    if tokens * b > MAX_BATCH_TOKENS:
        return (f"{name}: a batch of {b} videos of {tokens} tokens is more than the limit of "
                f"{MAX_BATCH_TOKENS} per batch")
    return None


def first_error(*errors: Optional[str]):
    """``True`` when every check passed, else the first message (what validate_inputs
    returns)."""
    for e in errors:
        if e:
            return e
    return True


class MissingFile(str):
    """A check's message about a file or folder that is not there (raised as
    ``FileNotFoundError``, not ``ValueError``)."""


def raise_if_invalid(result) -> None:
    """Raise the message of a failed check (``True`` passes)."""
    if result is not True:
        raise (FileNotFoundError if isinstance(result, MissingFile) else ValueError)(str(result))


def check_inputs(cls, arguments: dict) -> None:
    """``execute``'s half of a node's checks: the node's own ``validate_inputs`` -- the one
    place its checks are written -- over the values the node really received (``execute``
    passes ``locals()``). ``/prompt`` saw only the widget constants; a value linked from
    another node (a primitive, a math node) arrives unchecked, and a node called from Python
    skips ``/prompt`` altogether. Raises ``ValueError`` with the message ``/prompt`` gives."""
    specs = specs_of(cls)
    raise_if_invalid(cls.validate_inputs(**{k: v for k, v in arguments.items()
                                            if k in specs}))


# -- raw API values ---------------------------------------------------------------------------

class RefusedValue(str):
    """Stands in for a wrongly typed raw value: a string (so the prompt stays JSON), whose
    conversion to INT/FLOAT/BOOLEAN -- the first thing ComfyUI's validation does -- raises
    with our message; ComfyUI reports it under the input's name."""

    def __new__(cls, raw, message: str):
        self = super().__new__(cls, repr(raw))
        self.message = message
        return self

    def _refuse(self):
        raise ValueError(self.message)

    def __bool__(self):
        self._refuse()

    def __int__(self):
        self._refuse()

    def __float__(self):
        self._refuse()

    def __index__(self):
        self._refuse()

    def __str__(self):
        return self     # ComfyUI's str() of a STRING input keeps it a RefusedValue


class RefusedText(RefusedValue):
    """A :class:`RefusedValue` for a text or combo input: ComfyUI does not convert those, so
    it reaches ``validate_inputs`` (whose :func:`validate` reports it) and must behave as a
    string there (``if pack: ...``) until then."""

    def __bool__(self):
        return True


def raw_type_error(spec: Spec, raw) -> Optional[str]:
    """The type part of :func:`value_error` for a value exactly as it came in the JSON."""
    if spec.kind not in ("BOOLEAN", "INT", "FLOAT", "STRING", "COMBO"):
        return None
    if isinstance(raw, dict) and "__value__" in raw:
        raw = raw["__value__"]
    if isinstance(raw, list) and len(raw) == 2:
        return None     # a link
    if raw is None:
        return (f"{spec.name} = null: give a value (or leave the input out to use its "
                f"default)")
    if spec.kind == "STRING" and not isinstance(raw, str):
        return f"{spec.name} = {raw!r:.80}: expected text (a JSON string)"
    if spec.kind == "COMBO":
        return None     # validate_inputs checks the choice
    return value_error(Spec(spec.name, spec.kind), raw)


def check_raw_prompt(json_data, nodes_by_id: Dict[str, type]):
    """``on_prompt`` handler body: for every LumosX node of a ``/prompt`` body, replace each
    wrongly typed raw value by a :class:`RefusedValue`. Never raises (ComfyUI would only log
    it)."""
    prompt = json_data.get("prompt") if isinstance(json_data, dict) else None
    if not isinstance(prompt, dict):
        return json_data
    for node in prompt.values():
        if not isinstance(node, dict):
            continue
        cls = nodes_by_id.get(node.get("class_type"))
        inputs = node.get("inputs")
        if cls is None or not isinstance(inputs, dict):
            continue
        specs = specs_of(cls)
        for name, raw in list(inputs.items()):
            spec = specs.get(name)
            if spec is None or isinstance(raw, RefusedValue):
                continue
            err = raw_type_error(spec, raw)
            if err:
                text = spec.kind in ("STRING", "COMBO")
                inputs[name] = (RefusedText if text else RefusedValue)(raw, err)
    return json_data


def install_prompt_check(node_classes) -> bool:
    """Register :func:`check_raw_prompt` with the running ComfyUI server (once)."""
    try:
        from server import PromptServer
        instance = PromptServer.instance
    except (ImportError, AttributeError):
        return False    # no server (in-process use): execute() still checks everything
    by_id = {}
    for c in node_classes:
        try:
            by_id[c.define_schema().node_id] = c
        except Exception:  # noqa: BLE001 - a node whose schema fails is reported by ComfyUI
            continue
    if any(getattr(h, "_lumosx", False) for h in instance.on_prompt_handlers):
        return True

    def handler(json_data):
        try:
            return check_raw_prompt(json_data, by_id)
        except Exception:  # noqa: BLE001 - never break /prompt for other packs' graphs
            log.exception("LumosX: raw input check failed")
            return json_data
    handler._lumosx = True
    instance.add_on_prompt_handler(handler)
    return True
