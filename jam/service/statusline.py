"""The live status line on a terminal: one line, rewritten in place (``\\r``, no scrolling).

It shows the mode's :meth:`~jam.engine.runner.Mode.status` (state, tempo, key, the last
answer, echoes) and the run loop's own counters (dropped messages, late sends, ports that
are gone). :func:`format_status` is pure; :func:`wanted` decides whether to show it at all
(stdout a terminal, not under systemd); :class:`StatusLine` owns the terminal line, and
:meth:`StatusLine.guard_logging` makes every log record clear the line before it is printed
and redraw it after, so log lines are never mangled by it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
from typing import Any, Iterator, Mapping, TextIO

MIN_INTERVAL = 0.1  # s: at most 10 updates a second
CLEAR = "\r\x1b[K"  # to the start of the line, erase to its end
SEPARATOR = " | "


def wanted(stream: TextIO, environ: Mapping[str, str] = os.environ) -> bool:
    """Show a status line on ``stream``? Only on a terminal that understands ``ESC [ K``, and
    never under systemd (``$INVOCATION_ID`` or ``$NOTIFY_SOCKET`` set: the output is a log)."""
    if environ.get("INVOCATION_ID") or environ.get("NOTIFY_SOCKET"):
        return False
    if environ.get("TERM", "") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def _bpm(value: Any) -> str:
    rounded = round(float(value), 1)
    return f"{rounded:g} BPM"


def _answer(answer: Any) -> str:
    if not isinstance(answer, Mapping):
        return f"last answer {answer}"
    parts = []
    bars, notes, late = answer.get("bars"), answer.get("notes"), answer.get("late")
    if bars is not None:
        parts.append(f"{bars:g} bar{'' if bars == 1 else 's'}" if isinstance(bars, (int, float))
                     else f"{bars} bars")
    if notes is not None:
        parts.append(f"{notes} note{'' if notes == 1 else 's'}")
    if late:
        parts.append(f"{late} late")
    return "last answer " + (", ".join(parts) if parts else "-")


# mode.status() keys shown in this order (the rest: "key value" after them)
_KNOWN = ("mode", "state", "bpm", "key", "last_answer", "echoes")


def format_status(mode: str, status: Mapping[str, Any], counters: Mapping[str, Any],
                  width: int = 80) -> str:
    """The status line (at most ``width`` - 1 characters, so the cursor never wraps).

    ``mode`` is the mode's name, unless ``status`` says another (``mode``: a sub-mode).
    ``status`` is what the mode reports (keys of :meth:`Mode.status`; missing ones are
    left out, unknown scalar ones are shown as ``key value``); ``counters`` are the run
    loop's: ``dropped_in`` (malformed input), ``dropped_out`` (output messages dropped
    while a port was gone), ``late`` (sends later than 1 ms) and ``gone`` (names of the
    ports that are away)."""
    parts = [str(status.get("mode") or mode)]
    if status.get("state"):
        parts.append(str(status["state"]))
    if isinstance(status.get("bpm"), (int, float)):
        parts.append(_bpm(status["bpm"]))
    if "key" in status:
        parts.append(str(status["key"]) if status["key"] else "no key")
    if status.get("last_answer") is not None:
        parts.append(_answer(status["last_answer"]))
    if status.get("echoes") is not None:
        parts.append(f"echoes {status['echoes']}")
    for name, value in status.items():
        if name not in _KNOWN and isinstance(value, (str, int, float, bool)):
            parts.append(f"{name.replace('_', ' ')} {value}")
    dropped_in, dropped_out = counters.get("dropped_in", 0), counters.get("dropped_out", 0)
    parts.append(f"dropped {dropped_in} in, {dropped_out} out")
    if counters.get("late"):
        parts.append(f"{counters['late']} late sends")
    for gone in counters.get("gone", ()):
        parts.append(f"{gone} GONE")
    line = SEPARATOR.join(parts)
    limit = max(width - 1, 1)
    return line if len(line) <= limit else line[:max(limit - 1, 0)] + "~"


class StatusLine:
    """The line at the bottom of the terminal (``stream``, normally stdout)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lock = threading.RLock()  # writes of the line and of log records take turns
        self.updates = 0
        self._text = ""
        self._shown = False

    def width(self) -> int:
        return shutil.get_terminal_size((80, 24)).columns

    def show(self, text: str) -> None:
        """Replace the line with ``text`` (nothing is written if it did not change)."""
        with self.lock:
            if text == self._text and self._shown:
                return
            self._text = text
            self._write(CLEAR + text)
            self._shown = True
            self.updates += 1

    def clear(self) -> None:
        """Erase the line (the cursor stays at the start of the empty line)."""
        with self.lock:
            if self._shown:
                self._write(CLEAR)
                self._shown = False

    def redraw(self) -> None:
        with self.lock:
            if self._text and not self._shown:
                self._write(CLEAR + self._text)
                self._shown = True

    def close(self) -> None:
        """Erase the line for good."""
        with self.lock:
            self.clear()
            self._text = ""

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # the terminal went away: the music goes on
            pass

    @contextlib.contextmanager
    def guard_logging(self, logger: logging.Logger | None = None) -> Iterator[None]:
        """While inside, every handler of ``logger`` (the root logger) clears the line
        before it prints a record and redraws it after."""
        logger = logging.getLogger() if logger is None else logger
        originals = list(logger.handlers)
        for handler in originals:
            logger.removeHandler(handler)
            logger.addHandler(_Guarded(handler, self))
        try:
            yield
        finally:
            for guarded in list(logger.handlers):
                if isinstance(guarded, _Guarded) and guarded.line is self:
                    logger.removeHandler(guarded)
            for handler in originals:
                logger.addHandler(handler)


class _Guarded(logging.Handler):
    """A handler that prints through ``inner`` with the status line out of the way."""

    def __init__(self, inner: logging.Handler, line: StatusLine) -> None:
        super().__init__(inner.level)
        self.inner = inner
        self.line = line

    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        with self.line.lock:
            self.line.clear()
            try:
                return bool(self.inner.handle(record))
            finally:
                self.line.redraw()

    def emit(self, record: logging.LogRecord) -> None:  # not used: handle() delegates
        self.inner.emit(record)
