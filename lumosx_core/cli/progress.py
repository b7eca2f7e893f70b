"""A one-line progress display on stderr: a live bar on a terminal, plain event lines
elsewhere (logs, CI)."""
from __future__ import annotations

import shutil
import sys


def bar(value: float, total: float, width: int = 24) -> str:
    frac = 0.0 if not total else max(0.0, min(1.0, value / total))
    filled = int(round(frac * width))
    return "[" + "#" * filled + "." * (width - filled) + "]"


class Progress:
    def __init__(self, stream=None, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._shown = False
        self._last_step = {}

    def _width(self) -> int:
        return max(40, shutil.get_terminal_size((100, 20)).columns - 1)

    def status(self, text: str) -> None:
        """The live line (terminal only)."""
        if self.quiet or not self.tty:
            return
        text = text[: self._width()]
        self.stream.write("\r" + text.ljust(self._width()))
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown and self.tty:
            self.stream.write("\r" + " " * self._width() + "\r")
            self.stream.flush()
            self._shown = False

    def event(self, text: str, force: bool = False) -> None:
        """A permanent line (on a terminal above the live line)."""
        if self.quiet and not force:
            return
        self.clear()
        self.stream.write(text + "\n")
        self.stream.flush()

    def step(self, key, value: int, total: int, text: str) -> None:
        """Sampler steps: live on a terminal; elsewhere a line at 0, 25, 50, 75 and 100 %."""
        line = f"{text} {bar(value, total)} {value}/{total}"
        if self.tty:
            self.status(line)
            return
        quarter = int(4 * value / total) if total else 4
        if self._last_step.get(key) != quarter:
            self._last_step[key] = quarter
            self.event(line)
