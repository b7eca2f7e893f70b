"""Input limits, the one checker: what a value of each input kind may be, the work one graph
may ask for, and the rules a node declares beside its schema (one table per node, read by
:func:`check`). Pure Python. Every message names the input and says what to do; a check that
fails returns it (``None`` when the value is fine or not known yet, e.g. a linked input)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Optional, Sequence, Tuple

from .video_size import VideoSize

#: Latent tokens of one video (see :class:`VideoSize`): 4x the released 832x480x81
#: (32,760 tokens); e.g. 1280x720x81 = 75,600 is allowed.
MAX_VIDEO_TOKENS = 131072
#: Latent tokens of a whole batch (batch x tokens per video).
MAX_BATCH_TOKENS = 262144
#: Characters in any text input (prompt, negative prompt, phrases).
MAX_TEXT_CHARS = 65536
#: Largest prompt weight ``(word:w)`` (in absolute value, nesting multiplied) when Bind's
#: ``weight_syntax`` is on; ComfyUI's own examples stay within 0.5-1.5.
MAX_TOKEN_WEIGHT = 10.0


class MissingFile(str):
    """A message about a file or folder that is not there (raised as ``FileNotFoundError``)."""


@dataclass(frozen=True)
class Spec:
    """What a node's schema declares about one input."""

    name: str
    kind: str                        # INT, FLOAT, BOOLEAN, STRING, COMBO or a socket type
    min: Optional[float] = None
    max: Optional[float] = None
    options: Optional[Tuple] = None

    @classmethod
    def of(cls, declared) -> "Spec":
        """The spec of a declared input (anything with ``id`` and, where it has them,
        ``io_type``, ``min``, ``max``, ``options``: a ComfyUI ``io`` input)."""
        options = getattr(declared, "options", None)
        return cls(declared.id, str(getattr(declared, "io_type", None)),
                   getattr(declared, "min", None), getattr(declared, "max", None),
                   None if options is None else tuple(options))


def _num(v) -> str:
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        return str(int(v))
    return repr(v) if isinstance(v, float) else str(v)


def choice_error(name: str, value, options: Iterable) -> Optional[str]:
    options = list(options)
    if value is None or value in options:
        return None
    shown = ", ".join(repr(o) for o in options[:12]) + (" ..." if len(options) > 12 else "")
    return f"{name} = {value!r} is not one of the choices: {shown}"


def value_error(spec: Spec, value) -> Optional[str]:
    """Type, finiteness, bounds, text length and choice of one value."""
    name, kind = spec.name, spec.kind
    if value is None:
        return None
    if kind == "BOOLEAN" and not isinstance(value, bool):
        return f"{name} = {value!r}: expected true or false (a JSON boolean, not a string)"
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
    if kind == "STRING":
        if not isinstance(value, str):
            return f"{name}: expected text, got {type(value).__name__}"
        if len(value) > MAX_TEXT_CHARS:
            return f"{name}: {len(value)} characters is more than the limit of {MAX_TEXT_CHARS}"
        return text_error(name, value)
    if kind == "COMBO" and spec.options is not None:
        return choice_error(name, value, spec.options)
    return None


def text_error(name: str, text: str) -> Optional[str]:
    """A lone surrogate (half of a UTF-16 pair, e.g. a JSON ``"\\ud83d"`` without its
    partner) is not text: no tokenizer can read it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        return (f"{name}: character {e.start + 1} is a lone surrogate "
                f"(U+{ord(text[e.start]):04X}), which is not text: remove it or send the whole "
                f"character (a JSON escape needs both halves of a surrogate pair)")
    return None


def json_type_error(spec: Spec, raw) -> Optional[str]:
    """The type part of :func:`value_error` for a value exactly as an API client sent it in
    JSON (before ComfyUI converts it): ``null``, text for a number, a number for text..."""
    if spec.kind not in ("BOOLEAN", "INT", "FLOAT", "STRING", "COMBO"):
        return None
    if isinstance(raw, dict) and "__value__" in raw:
        raw = raw["__value__"]
    if isinstance(raw, list) and len(raw) == 2:
        return None     # a link
    if raw is None:
        return f"{spec.name} = null: give a value (or leave the input out to use its default)"
    if spec.kind == "STRING" and not isinstance(raw, str):
        return f"{spec.name} = {raw!r:.80}: expected text (a JSON string)"
    return None if spec.kind == "COMBO" else value_error(Spec(spec.name, spec.kind), raw)


def work_error(size: VideoSize, latent: Optional[str] = None) -> Optional[str]:
    """``None`` when ``size`` is within the work limits. ``latent``: the name of the LATENT
    input the size was read from (else it came from width/height/length/batch_size)."""
    tokens = size.tokens
    t, hp, wp = size.grid
    if tokens > MAX_VIDEO_TOKENS:
        what = (f"{latent}: a video latent of {t}x{hp * 2}x{wp * 2}" if latent else
                f"width x height x length = {size.width}x{size.height}x{size.length}")
        return (f"{what} is {tokens} latent tokens, more than the limit of {MAX_VIDEO_TOKENS} "
                f"per video (4x the released 832x480x81): make the video smaller or shorter")
    if tokens * size.batch > MAX_BATCH_TOKENS:
        what = (f"{latent}: a batch of {size.batch} videos" if latent else
                f"batch_size = {size.batch}: {size.batch} videos")
        return (f"{what} of {tokens} latent tokens is more than the limit of "
                f"{MAX_BATCH_TOKENS} per batch: queue fewer at once")
    return None


def _whole(*values) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values)


# -- the rules a node declares (its table) -----------------------------------------------------

@dataclass(frozen=True)
class MultipleOf:
    """An INT input must be a positive multiple of ``of`` (``why`` says why)."""

    name: str
    of: int
    why: str

    def __call__(self, values: Dict[str, Any]) -> Optional[str]:
        v = values.get(self.name)
        if not _whole(v) or v % self.of == 0:
            return None
        return (f"{self.name} = {v}: must be a positive multiple of {self.of} ({self.why}); "
                f"try {max(self.of, round(v / self.of) * self.of)}")


@dataclass(frozen=True)
class NotBlank:
    """A text input must hold more than white space."""

    name: str
    message: str

    def __call__(self, values: Dict[str, Any]) -> Optional[str]:
        v = values.get(self.name)
        return self.message if isinstance(v, str) and not v.strip() else None


@dataclass(frozen=True)
class VideoWork:
    """The work limits on the video the width/height/length/batch_size inputs ask for."""

    def __call__(self, values: Dict[str, Any]) -> Optional[str]:
        v = [values.get(k) for k in ("width", "height", "length", "batch_size")]
        v[3] = 1 if v[3] is None else v[3]
        return work_error(VideoSize(*v)) if _whole(*v) else None


@dataclass(frozen=True)
class LatentWork:
    """The work limits on a video LATENT input ``[B, 16, T, h, w]`` from any node."""

    name: str

    def __call__(self, values: Dict[str, Any]) -> Optional[str]:
        v = values.get(self.name)
        shape = tuple(getattr(v.get("samples"), "shape", ())) if isinstance(v, dict) else ()
        return work_error(VideoSize.of_latent(shape), self.name) if len(shape) == 5 else None


@dataclass(frozen=True)
class Listed:
    """A choice checked by ``error(value)`` at run time (files that may appear after the
    node's choices were listed) instead of against the schema's options."""

    name: str
    error: Callable[[Any], Optional[str]]

    def __call__(self, values: Dict[str, Any]) -> Optional[str]:
        v = values.get(self.name)
        return None if v is None else self.error(v)


Rule = Callable[[Dict[str, Any]], Optional[str]]


def check(specs: Dict[str, Spec], rules: Sequence[Rule], values: Dict[str, Any]
          ) -> Optional[str]:
    """The first message about ``values`` (inputs by name; missing ones are not known yet):
    every value against its :class:`Spec`, then the node's rules. ``None`` when all pass."""
    listed = {r.name for r in rules if isinstance(r, Listed)}
    for name, value in values.items():
        spec = specs.get(name)
        if spec is not None:
            err = value_error(Spec(name, spec.kind) if name in listed else spec, value)
            if err:
                return err
    for rule in rules:
        err = rule(values)
        if err:
            return err
    return None
