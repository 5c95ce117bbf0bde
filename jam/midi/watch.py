"""Surviving a pulled cable: the ports jam opened by name are watched in the port lists, closed
when they vanish and opened again, by the same name, when they return.

rtmidi and mido report no disconnection, so :class:`PortWatch` looks at the port lists of the
:class:`~jam.midi.ports.MidiSystem`'s long-lived lister clients (a new client per look would
use up ALSA's clients) at most every :data:`WATCH_INTERVAL` seconds, from the main loop. A port
that is gone is logged once; the ``attach`` callback is told (None) before the port is closed,
so the output's sender (the scheduler) drops what it cannot send from then on. When the name
is listed again, the port is opened again and handed to ``attach`` (the scheduler then sends
the panic on it first), and that is logged once too. Virtual ports (no ``--in``/``--out``)
are jam's own and cannot vanish: they are not watched.

A port returns under its old name, or under a name that the user's ``--in``/``--out`` text
matches alone (see :func:`~jam.midi.ports.match_port`), or under the old name with different
ALSA client:port numbers (a USB device plugged into another socket).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any, Callable, Sequence

from jam.errors import JamError
from jam.midi.ports import MidiSystem, match_port

log = logging.getLogger(__name__)

WATCH_INTERVAL = 0.5  # s between looks at the port lists
_ALSA_NUMBERS = re.compile(r" \d+:\d+$")  # "USB Keyboard:USB Keyboard MIDI 1 20:0"


def _plain(name: str) -> str:
    return _ALSA_NUMBERS.sub("", name)


class WatchedPort:
    """One port opened by name (``kind`` "input" or "output") that may vanish and return.

    ``query`` is the user's ``--in``/``--out`` text (None: a virtual port, never watched);
    ``open(name)`` opens the port of that exact name; ``attach(port or None)`` (settable
    later) hands the current port to its user (None: it is gone); ``close(port)`` releases
    one that is gone. ``port`` is None while the device is away (given as None: it was
    not there at start, and ``query`` is awaited); ``outages`` counts the times it went."""

    def __init__(self, kind: str, port: Any, query: str | None,
                 open: Callable[[str], Any], attach: Callable[[Any | None], None] | None = None,
                 close: Callable[[Any], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if port is None and query is None:
            raise ValueError("a port that is not open needs the query to wait for")
        self.kind = kind
        self.port = port
        self.name: str = port.name if port is not None else query
        self.query = query
        self.outages = 0
        self.gone_since: float | None = None if port is not None else clock()
        self._seen = port is not None  # opened once already (else: awaited since start)
        self.reopen_seconds: float | None = None  # last return: listed -> reopened (s)
        self._open = open
        self.attach = attach
        self._close = close or (lambda gone: gone.close())
        self._clock = clock
        self._dropped_before = 0  # input bytes dropped by ports closed earlier
        self._received_before = 0  # input messages received by ports closed earlier
        self._lost_before = 0  # input events lost by ports closed earlier
        self._failed_name: str | None = None  # a reopen that failed (logged once)

    @property
    def gone(self) -> bool:
        return self.port is None

    @property
    def dropped(self) -> int:
        """Malformed input dropped by this port and the ones it replaced (inputs)."""
        return self._dropped_before + (getattr(self.port, "dropped", 0) if self.port else 0)

    @property
    def received(self) -> int:
        """Messages received by this port and the ones it replaced (inputs)."""
        return self._received_before + (getattr(self.port, "received", 0) if self.port else 0)

    @property
    def lost(self) -> int:
        """Events lost before jam read them, by this port and the ones it replaced (an input
        that can count them: the JACK input's helper process)."""
        return self._lost_before + (getattr(self.port, "lost", 0) if self.port else 0)

    def find(self, names: Sequence[str]) -> str | None:
        """The listed name this port returns under, if any (see the module text)."""
        if self.name in names:
            return self.name
        if self.query is not None:
            try:
                return match_port(self.query, names, self.kind)
            except JamError:
                pass
        plain = [n for n in names if _plain(n) == _plain(self.name)]
        return plain[0] if len(plain) == 1 else None

    def check(self, names: Sequence[str]) -> str | None:
        """Compare with the current port list; return "gone", "back" or None (no change)."""
        if self.port is not None:
            if self.name in names:
                return None
            self._lose()
            return "gone"
        name = self.find(names)
        if name is None:
            return None
        listed = self._clock()
        try:
            port = self._open(name)
        except (JamError, OSError) as err:
            if name != self._failed_name:
                self._failed_name = name
                log.warning("%s '%s' is listed again but does not open yet (%s); trying "
                            "again", self.kind, name, err)
            return None
        self._failed_name = None
        self.port, self.name = port, port.name
        if self.attach is not None:
            self.attach(port)
        self.reopen_seconds = self._clock() - listed
        away = listed - self.gone_since if self.gone_since is not None else 0.0
        self.gone_since = None
        if self._seen:
            log.info("%s '%s' is back after %.1f s: reopened%s", self.kind, self.name, away,
                     ", all notes off sent" if self.kind == "output" else "")
        else:
            log.info("%s '%s' is there after %.1f s: opened", self.kind, self.name, away)
        self._seen = True
        return "back"

    def _lose(self) -> None:
        port, self.port = self.port, None
        self.outages += 1
        self.gone_since = self._clock()
        self._dropped_before += getattr(port, "dropped", 0)
        self._received_before += getattr(port, "received", 0)
        self._lost_before += getattr(port, "lost", 0)
        if self.attach is not None:
            self.attach(None)
        try:
            self._close(port)
        except Exception as err:  # noqa: BLE001 - the device is gone; its port may be too
            log.debug("closing %s '%s' failed: %s", self.kind, self.name, err)
        what = ("what jam sends is dropped" if self.kind == "output"
                else "jam hears nothing from it")
        log.warning("%s '%s' is gone (cable pulled or device off?); %s until it returns, "
                    "then jam reopens it", self.kind, self.name, what)


class PortWatch:
    """The watched ports of one run, checked by :meth:`poll` at most every ``interval``
    seconds with the system's lister clients. ``on_change(port, "gone" | "back")`` hears of
    each change."""

    def __init__(self, system: MidiSystem, ports: Sequence[WatchedPort],
                 interval: float = WATCH_INTERVAL,
                 on_change: Callable[[WatchedPort, str], None] | None = None) -> None:
        self.system = system
        self.ports = list(ports)
        self.interval = interval
        self.on_change = on_change
        self.checks = 0
        self._next = 0.0

    def until_next(self, now: float) -> float | None:
        """Seconds until :meth:`poll` has work (None: nothing is watched)."""
        return max(self._next - now, 0.0) if self.ports else None

    def poll(self, now: float) -> None:
        if not self.ports or now < self._next:
            return
        self._next = now + self.interval
        self.checks += 1
        listings: dict[str, list[str]] = {}
        for watched in self.ports:
            if watched.kind not in listings:
                listings[watched.kind] = (self.system.input_names() if watched.kind == "input"
                                          else self.system.output_names())
            change = watched.check(listings[watched.kind])
            if change is not None and self.on_change is not None:
                self.on_change(watched, change)

    @property
    def gone(self) -> list[WatchedPort]:
        return [p for p in self.ports if p.gone]
