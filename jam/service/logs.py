"""Where jam's log lines go and how they look.

On a terminal or in a file: ``jam: message`` on stderr, no time stamp (a person reads it
as it comes). Under journald (``$JOURNAL_STREAM`` names the very stream stderr is, as
systemd documents for services): no ``jam: `` (the journal already says ``jam[PID]:``) and
a syslog priority prefix (``<4>`` for a warning), which journald reads as the line's
priority, so ``journalctl -p warning -u jam`` finds warnings. Never a time stamp: the
journal keeps its own.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Mapping, TextIO

PREFIX_FORMAT = "jam: %(message)s"

# logging level -> syslog priority (sd-daemon.h's SD_DEBUG .. SD_CRIT)
_PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4),
               (logging.INFO, 6))


def to_journal(stream: TextIO, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether ``stream`` is journald's stream for this service (``$JOURNAL_STREAM`` is
    ``DEVICE:INODE`` of it; a child that redirected stderr does not match)."""
    value = environ.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    try:
        stat = os.fstat(stream.fileno())
        return (int(device), int(inode)) == (stat.st_dev, stat.st_ino)
    except (ValueError, OSError, AttributeError):
        return False


class JournalFormatter(logging.Formatter):
    """``<priority>message``: the message alone, its priority in the syslog prefix."""

    def format(self, record: logging.LogRecord) -> str:
        priority = next((p for level, p in _PRIORITIES if record.levelno >= level), 7)
        text = super().format(record)
        # every line of a multi-line record (a traceback) keeps the priority
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines() or [""])


def formatter_for(stream: TextIO, environ: Mapping[str, str] = os.environ) -> logging.Formatter:
    if to_journal(stream, environ):
        return JournalFormatter("%(message)s")
    return logging.Formatter(PREFIX_FORMAT)


def configure(debug: bool, stream: TextIO | None = None) -> None:
    """Set up the root logger once (as :func:`logging.basicConfig`: nothing changes if it
    already has handlers)."""
    stream = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter_for(stream))
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, handlers=[handler])
