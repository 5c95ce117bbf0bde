"""The run loop's chores besides the mode, done on the main thread at each turn of its loop:
watching the ports (:class:`~jam.midi.watch.PortWatch`), the systemd watchdog and status,
the reload on SIGHUP and the terminal's status line.

- **Watchdog**: ``WATCHDOG=1`` every :meth:`Notifier.watchdog_interval` seconds, sent from
  the main loop (so a stuck main loop sends none) and only while the scheduler thread is
  alive and not stuck (:meth:`Scheduler.healthy`). When the pings stop, systemd kills and
  restarts jam (``WatchdogSec=`` in the unit).
- **Status**: ``STATUS=`` with the status line's text when it changes (at most once a second),
  so ``systemctl status jam`` shows the state; on a terminal the same text is the status line
  (:mod:`jam.service.statusline`, at most 10 updates a second).
- **Reload** (SIGHUP, ``systemctl reload jam``): the configuration is built again the way it
  was at start (the same file, the same command-line values on top). An invalid file keeps
  the old settings (one log line); a valid one goes to ``mode.reload(config)``. Ports, the
  MIDI API and the mode are kept: changing them needs a restart (logged).

Test hook: ``JAM_TEST_STALL_AFTER`` (read once, at start) stalls jam on purpose so that a test
can see the watchdog pings stop: ``SECONDS`` makes the main loop sleep for good that many
seconds after start; ``scheduler:SECONDS`` makes the scheduler thread's next send after that
time block for good (as a send to a hung device would). Never set it outside tests.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from typing import Any, Callable, Mapping

from jam.config import OPTIONS, Config
from jam.errors import JamError
from jam.midi.watch import PortWatch, WatchedPort
from jam.service.notify import Notifier
from jam.service.statusline import MIN_INTERVAL, StatusLine, format_status

log = logging.getLogger(__name__)

STALL_VARIABLE = "JAM_TEST_STALL_AFTER"
STATUS_INTERVAL = 1.0  # s: at most one STATUS= to systemd a second
RESTART_KEYS = ("api", "in", "out", "mode")  # a reload keeps these: the ports stay open


def stall_from_env(environ: Mapping[str, str] = os.environ) -> tuple[str, float] | None:
    """The test hook's (what, seconds after start), or None; a malformed value is an error
    (a test that sets it must not silently test nothing)."""
    value = environ.get(STALL_VARIABLE, "").strip()
    if not value:
        return None
    what, _, seconds = value.rpartition(":")
    what = what or "main"
    try:
        after = float(seconds)
    except ValueError:
        after = -1.0
    if what not in ("main", "scheduler") or after < 0:
        raise JamError(f"{STALL_VARIABLE}={value!r}: expected SECONDS or scheduler:SECONDS "
                       f"(a test hook)")
    return what, after


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):
        return "(changed)"
    return f"{value:g}" if isinstance(value, float) else str(value)


def changes(old: Config, new: Config) -> list[tuple[str, Any, Any]]:
    """(key, old value, new value) of each option that differs, in option order."""
    return [(o.key, getattr(old, o.attr), getattr(new, o.attr)) for o in OPTIONS
            if getattr(old, o.attr) != getattr(new, o.attr)]


class _StalledPort:
    """The test hook's output: sends block for good once ``after`` (monotonic) is past."""

    def __init__(self, port: Any, after: float) -> None:
        self.port = port
        self.name = getattr(port, "name", "stalled")
        self._after = after
        self._never = threading.Event()

    def send(self, message: Any) -> None:
        if time.monotonic() >= self._after:
            log.warning("test hook %s: the scheduler's send blocks for good now", STALL_VARIABLE)
            self._never.wait()
        self.port.send(message)


class Upkeep:
    """The chores of one run (see the module text); :meth:`tick` at each turn of the loop."""

    def __init__(self, *, mode: Any, scheduler: Any, config: Config,
                 load_config: Callable[[], Config] | None = None,
                 watch: PortWatch | None = None, inputs: list[WatchedPort | Any] = (),
                 notifier: Notifier | None = None, status_line: StatusLine | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 environ: Mapping[str, str] = os.environ) -> None:
        self.mode = mode
        self.scheduler = scheduler
        self.config = config
        self.watch = watch
        self.notifier = notifier or Notifier(address="")
        self.status_line = status_line
        self.reloads = 0
        self._load_config = load_config
        self._inputs = list(inputs)
        self._clock = clock
        self._watchdog_interval = Notifier.watchdog_interval() if self.notifier.enabled else None
        now = clock()
        self._next_ping = now
        self._next_line = now
        self._next_status = now
        self._last_status = ""
        self._unhealthy = False
        self._status_failed = False
        stall = stall_from_env(environ)
        self._stall = None if stall is None else (stall[0], now + stall[1])  # (what, when)
        if self._stall is not None and self._stall[0] == "scheduler":
            scheduler.replace_port(_StalledPort(scheduler.port, self._stall[1]))
            self._stall = None

    # --- from the run loop ----------------------------------------------------------------

    def ready(self, status: str) -> None:
        """Ports open, mode started: ``READY=1`` (and the status) to systemd."""
        self.notifier.ready(status)
        if self._watchdog_interval is not None:
            log.debug("watchdog: a ping every %.2f s while healthy", self._watchdog_interval)

    def tick(self, now: float) -> None:
        if self._stall is not None and now >= self._stall[1]:
            log.warning("test hook %s: the main loop stalls for good now", STALL_VARIABLE)
            threading.Event().wait()
        if self.watch is not None:
            self.watch.poll(now)
        if self._watchdog_interval is not None and now >= self._next_ping:
            self._ping(now)
        if self.status_line is not None and now >= self._next_line:
            self._next_line = now + MIN_INTERVAL
            self.status_line.show(self.status_text(self.status_line.width()))
        if self.notifier.enabled and now >= self._next_status:
            self._next_status = now + STATUS_INTERVAL
            text = self.status_text(200)
            if text != self._last_status:
                self._last_status = text
                self.notifier.send(f"STATUS={text}")

    def stopping(self, reason: str) -> None:
        self.notifier.send("STOPPING=1", f"STATUS=stopping ({reason})")
        if self.status_line is not None:
            self.status_line.close()

    def port_changed(self, port: WatchedPort, change: str) -> None:
        """From :class:`PortWatch`: tell systemd at once (the status line shows it anyway)."""
        what = "gone; waiting for it" if change == "gone" else "back"
        self.notifier.send(f"STATUS={port.kind} '{port.name}' {what}")
        self._next_status = self._clock() + STATUS_INTERVAL

    # --- the chores -----------------------------------------------------------------------

    def counters(self) -> dict[str, Any]:
        stats = self.scheduler.stats()
        gone = [f"{p.kind} '{p.name}'" for p in self.watch.gone] if self.watch else []
        return {"dropped_in": sum(getattr(p, "dropped", 0) for p in self._inputs),
                "dropped_out": stats.dropped, "late": stats.late, "gone": gone}

    def mode_status(self) -> dict[str, Any]:
        try:
            return dict(self.mode.status() or {})
        except Exception as err:  # noqa: BLE001 - a display never stops the music
            if not self._status_failed:
                self._status_failed = True
                log.debug("mode.status() failed: %s: %s", type(err).__name__, err)
            return {}

    def status_text(self, width: int) -> str:
        return format_status(self.mode.name, self.mode_status(), self.counters(), width)

    def _ping(self, now: float) -> None:
        if self.scheduler.healthy(now):
            self.notifier.watchdog()
            assert self._watchdog_interval is not None
            self._next_ping = now + self._watchdog_interval
            if self._unhealthy:
                self._unhealthy = False
                log.info("watchdog: the scheduler thread is turning again; pings resume")
        elif not self._unhealthy:
            self._unhealthy = True
            log.error("watchdog: the scheduler thread is stuck or dead; no more pings "
                      "(systemd restarts jam)")

    def reload(self) -> None:
        """Build the configuration again and hand it to the mode (see the module text)."""
        self.reloads += 1
        if self._load_config is None:
            log.warning("reload (SIGHUP): this run has no configuration to read again; "
                        "nothing changed")
            return
        old = self.config
        try:
            new = self._load_config()
        except JamError as err:
            log.warning("reload (SIGHUP) refused, old settings kept: %s", err)
            return
        changed = changes(old, new)
        fixed = [key for key, _, _ in changed if key in RESTART_KEYS]
        if fixed:
            kept = {o.attr: getattr(old, o.attr) for o in OPTIONS if o.key in fixed}
            new = dataclasses.replace(new, **kept)
            log.warning("reload (SIGHUP): %s changed; restart jam to change ports, API or "
                        "mode (kept as they were)", ", ".join(fixed))
        applied = [c for c in changed if c[0] not in fixed]
        where = new.source or "no config file"
        if not applied:
            log.info("reload (SIGHUP): %s read again, nothing to change", where)
            self.config = new
            return
        try:
            self.mode.reload(new)
        except JamError as err:
            log.warning("reload (SIGHUP) refused, old settings kept: %s", err)
            return
        except Exception as err:  # noqa: BLE001 - a bad reload never stops the music
            log.error("reload (SIGHUP) failed, old settings kept: internal error: %s: %s",
                      type(err).__name__, err)
            return
        if any(key == "debug" for key, _, _ in applied):
            logging.getLogger().setLevel(logging.DEBUG if new.debug else logging.INFO)
        self.config = new
        listed = ", ".join(f"{key} {_shown(a)} -> {_shown(b)}" for key, a, b in applied)
        log.info("reload (SIGHUP): applied from %s: %s", where, listed)
        self.notifier.send(f"STATUS=reloaded: {listed}")
