"""A one-line progress display on stderr: a live bar on a terminal, plain event lines
elsewhere (logs, CI). Sampler steps (``lumosx run``) and byte transfers (``lumosx models get``)."""
from __future__ import annotations

import shutil
import time
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


def human_size(n) -> str:
    """``1.5 GB``-style size (decimal units, as model hubs show them); ``?`` when unknown."""
    if n is None:
        return "?"
    n = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} GB"


def duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Transfer:
    """The bar of one file's bytes: done / total, rate and time left. Live on a terminal;
    elsewhere a line at 0, 25, 50, 75 and 100 % (:meth:`Progress.step`'s rule)."""

    def __init__(self, progress: Progress, label: str, total, start: int = 0,
                 verb: str = "", interval: float = 0.25):
        self.progress, self.label, self.total, self.verb = progress, label, total, verb
        self.start = self.done = start
        self.t0 = self._last = time.time()
        self.interval = interval
        self._quarter = -1

    def line(self) -> str:
        elapsed = max(time.time() - self.t0, 1e-6)
        rate = (self.done - self.start) / elapsed
        parts = [f"{self.verb}{self.label}"]
        if self.total:
            parts.append(f"{bar(self.done, self.total)} {100 * self.done / self.total:3.0f}%")
        parts.append(f"{human_size(self.done)}/{human_size(self.total)}")
        parts.append(f"{human_size(rate)}/s")
        if self.total and rate > 0:
            parts.append(f"{duration((self.total - self.done) / rate)} left")
        return "  ".join(parts)

    def update(self, done: int, force: bool = False) -> None:
        self.done = done
        now = time.time()
        if not force and now - self._last < self.interval and done != self.total:
            return
        self._last = now
        if self.progress.tty:
            self.progress.status(self.line())
            return
        quarter = int(4 * done / self.total) if self.total else None
        if quarter != self._quarter:
            self._quarter = quarter
            self.progress.event(self.line())

    def finish(self, text: str) -> None:
        self.progress.event(text)

