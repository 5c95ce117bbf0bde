"""The run loop: open ports, start the scheduler, drive a mode, stop cleanly.

A *mode* (thru forwarding, call and response) is a :class:`Mode`. The loop calls

- ``start(scheduler)`` once, before the input port opens (send only through the scheduler);
- ``on_message(message, when)`` on the MIDI input thread for each incoming message, with
  ``when`` = ``time.monotonic()`` at arrival (keep it short: the next message waits);
- ``poll(now)`` on the main thread after each input message, when the delay it last
  returned has passed, and at least every :data:`MAX_WAIT` s;
- ``stop()`` once at shutdown, after the input port closed and before the final panic;
- ``status()`` on the main thread for the status line and systemd's status, at most 10 times
  a second (see :meth:`Mode.status` for the keys);
- ``reload(config)`` on the main thread when SIGHUP brought a valid new configuration.

Input that is no MIDI message (a truncated message, stray bytes) never reaches the mode: the
input port drops and counts it (see :func:`jam.midi.ports.decode_event`), and the loop's
last line (``stopping (...)``) says how many were dropped, how many messages came in and how
many were lost on the way in (by the JACK input's helper, when jam did not read in time).

A port opened by name (``--in``/``--out``) that vanishes (a pulled cable) does not stop the
run: it is logged once, what cannot be sent is dropped and counted, and the port is opened
again by the same name when it returns (the output first gets a panic); see
:mod:`jam.midi.watch`. SIGHUP reloads the configuration; under systemd the loop sends
``READY=1``, ``WATCHDOG=1`` while healthy, ``STATUS=`` and ``STOPPING=1``; on a terminal it
keeps a status line (see :mod:`jam.service.upkeep`).

Shutdown (SIGINT, SIGTERM, or an exception in any thread or in the mode): the input closes,
the mode stops, the scheduler sends note-offs for every sounding note and CC64=0, CC123,
CC120 on the channels used, the output closes. Signals return 0; an error is raised again
after the cleanup (the CLI prints it on one line).
"""

from __future__ import annotations

import logging
import select
import socket
import sys
import time
from contextlib import ExitStack
from typing import Callable

import mido

from jam.config import Config
from jam.engine.scheduler import LATE_AFTER, Scheduler
from jam.engine.stage import clock_in_port
from jam.errors import JamError
from jam.midi.ports import CONNECT_HINTS, VIRTUAL_IN, VIRTUAL_OUT, RtMidiSystem, close_output
from jam.midi.watch import PortWatch, WatchedPort
from jam.service import statusline
from jam.service.notify import Notifier
from jam.service.signals import stop_on_signals, thread_errors_to
from jam.service.upkeep import Upkeep

log = logging.getLogger(__name__)

MAX_WAIT = 0.05  # s: how long a stop request can go unnoticed by the main loop
SWITCH_INTERVAL = 0.0005  # s: GIL switch interval, so busy Python code delays sends less


class Mode:
    """Base class of what the run loop drives; override what you need."""

    name = "mode"
    midi_clock = False  # True: the loop opens --clock-in PORT and --clock-out for it

    def start(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    def on_message(self, message: mido.Message, when: float) -> None:
        """An input message (MIDI input thread)."""

    def on_clock(self, message: mido.Message, when: float) -> None:
        """A message from the ``--clock-in`` port (its input thread; only if
        :attr:`midi_clock`)."""

    def poll(self, now: float) -> float | None:
        """Periodic work (main thread); return seconds until the next call, or None."""
        return None

    def stop(self) -> None:
        """Shutdown: stop producing events (the scheduler panics afterwards)."""

    def status(self) -> dict:
        """What the status line shows (main thread, at most 10 times a second; keep it
        cheap). Known keys, each optional: ``state`` (e.g. "listening"), ``bpm`` (number),
        ``key`` (e.g. "D minor", or None), ``last_answer`` ({"bars", "notes", "late"}),
        ``echoes`` (count); any other scalar is shown as "key value". Default: nothing."""
        return {}

    def reload(self, config: Config) -> None:
        """A new configuration after SIGHUP (main thread); apply what can change while
        running. Ports, the MIDI API and the mode are never changed by a reload. Raise
        JamError to refuse it (the old settings stay). Default: nothing to apply."""


class RunControl:
    """Stop flag, first error, and the main loop's wake-up: a socket pair that input threads
    write to (:meth:`wake`) and that signals wake through :func:`signal.set_wakeup_fd`
    (:attr:`wakeup_fd`), so a stop is noticed at once. :meth:`stop` only sets an attribute
    (safe in a signal handler)."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.error: BaseException | None = None
        self.reload_requested = False
        self._receiver, self._sender = socket.socketpair()
        for end in (self._receiver, self._sender):
            end.setblocking(False)

    @property
    def wakeup_fd(self) -> int:
        return self._sender.fileno()

    def stop(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    def request_reload(self) -> None:
        """SIGHUP: reload at the next turn of the loop (safe in a signal handler)."""
        self.reload_requested = True

    def fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self.stop(f"error: {error}")
        self.wake()

    def wake(self) -> None:
        try:
            self._sender.send(b"w")
        except (BlockingIOError, OSError):  # full: a wake-up is pending anyway; or closed
            pass

    def wait(self, timeout: float) -> None:
        """Return after ``timeout`` seconds, or sooner when woken."""
        if select.select([self._receiver], [], [], timeout)[0]:
            try:
                while self._receiver.recv(4096):
                    pass
            except BlockingIOError:
                pass

    def close(self) -> None:
        self._receiver.close()
        self._sender.close()


def _describe(port: WatchedPort, virtual_name: str, device: str) -> str:
    if port.query is None:
        return f"virtual port '{virtual_name}' (connect your {device} to it)"
    return f"'{port.name}'" + (" (not there yet)" if port.gone else "")


def _open_or_wait(open_port: Callable[[str | None], object], query: str | None, wait: bool
                  ) -> object | None:
    """The port ``query`` names, opened; with ``wait`` (under systemd) one that is not there
    yet is awaited instead (None: the port watch opens it when it appears)."""
    try:
        return open_port(query)
    except JamError as err:
        if not wait or query is None:
            raise
        log.warning("%s; waiting for it (opened when it appears)", err)
        return None


def run(config: Config, mode: Mode, load_config: Callable[[], Config] | None = None) -> int:
    """Run ``mode`` until a stop signal (returns 0) or an error (raised after cleanup).
    ``load_config()`` builds the configuration again for a reload (SIGHUP)."""
    control = RunControl()
    sys.setswitchinterval(SWITCH_INTERVAL)
    with ExitStack() as cleanup:
        cleanup.callback(control.close)
        cleanup.enter_context(stop_on_signals(control.stop, control.wakeup_fd,
                                              reload=control.request_reload))
        cleanup.enter_context(thread_errors_to(control.fail))
        notifier = Notifier()
        cleanup.callback(notifier.close)
        system = RtMidiSystem.connect(config.api)
        cleanup.callback(system.close)
        output = _open_or_wait(system.open_output, config.out, wait=notifier.enabled)
        out_link = WatchedPort("output", output, config.out, system.open_output,
                               close=lambda gone: gone.close())
        cleanup.callback(_close_current, out_link, close_output)
        clock_output = None
        if mode.midi_clock and config.clock_out is not None:
            clock_output = system.open_output(config.clock_out, flag="--clock-out")
            cleanup.callback(close_output, clock_output)
            log.info("MIDI clock out to '%s'", clock_output.name)
        scheduler = Scheduler(output, clock_port=clock_output, on_error=control.fail,
                              collect_garbage=True)  # garbage collected between notes
        out_link.attach = scheduler.replace_port
        scheduler.start()
        cleanup.callback(_quietly, scheduler.close)
        mode.start(scheduler)
        cleanup.callback(_quietly, mode.stop)

        def on_input(message: mido.Message) -> None:
            try:
                mode.on_message(message, time.monotonic())
            except BaseException as err:  # noqa: BLE001 - stops the run, never lost
                control.fail(err)
            control.wake()

        input_port = _open_or_wait(lambda query: system.open_input(query, callback=on_input),
                                   config.in_, wait=notifier.enabled)
        in_link = WatchedPort("input", input_port, config.in_,
                              lambda name: system.open_input(name, callback=on_input))
        cleanup.callback(_close_current, in_link, lambda port: port.close())
        if mode.midi_clock and clock_in_port(config) is not None:
            def on_clock(message: mido.Message) -> None:
                try:
                    mode.on_clock(message, time.monotonic())
                except BaseException as err:  # noqa: BLE001 - stops the run, never lost
                    control.fail(err)
                control.wake()

            clock_input = system.open_input(clock_in_port(config), callback=on_clock,
                                            flag="--clock-in")
            cleanup.callback(clock_input.close)
            log.info("MIDI clock in from '%s'", clock_input.name)
        if config.in_ is None or config.out is None:
            log.info("connecting to jam's virtual ports (%s API): %s", system.api,
                     CONNECT_HINTS[system.api])
        log.info("%s mode (%s API): input %s, output %s; scheduler: %s; Ctrl-C stops",
                 mode.name, system.api, _describe(in_link, VIRTUAL_IN, "keyboard"),
                 _describe(out_link, VIRTUAL_OUT, "synth"), scheduler.realtime)
        watch = PortWatch(system, [link for link in (in_link, out_link) if link.query])
        line = statusline.StatusLine(sys.stdout) if statusline.wanted(sys.stdout) else None
        if line is not None:
            cleanup.enter_context(line.guard_logging())
            cleanup.callback(line.close)
        upkeep = Upkeep(mode=mode, scheduler=scheduler, config=config, load_config=load_config,
                        watch=watch, inputs=[in_link], notifier=notifier, status_line=line)
        watch.on_change = upkeep.port_changed
        upkeep.ready(f"{mode.name} mode: input {_describe(in_link, VIRTUAL_IN, 'keyboard')}, "
                     f"output {_describe(out_link, VIRTUAL_OUT, 'synth')}")
        delay: float | None = None
        while control.reason is None:
            control.wait(MAX_WAIT if delay is None else min(max(delay, 0.0), MAX_WAIT))
            if control.reason is None:
                try:
                    delay = mode.poll(time.monotonic())
                    if control.reload_requested:
                        control.reload_requested = False
                        upkeep.reload()
                    upkeep.tick(time.monotonic())
                except Exception as err:  # noqa: BLE001
                    control.fail(err)
        upkeep.stopping(control.reason)
        stats = scheduler.stats()
        log.info("stopping (%s): all notes off; sent %d messages, %d late by > %g ms, "
                 "worst %.2f ms, %d dropped while the output was gone; received %d input "
                 "messages, lost %d on the way in; dropped %d malformed input messages",
                 control.reason, stats.sent, stats.late, LATE_AFTER * 1e3,
                 stats.max_lateness * 1e3, stats.dropped, in_link.received, in_link.lost,
                 in_link.dropped)
    if control.error is not None:
        raise control.error
    return 0


def _close_current(link: WatchedPort, close: Callable[[object], object]) -> None:
    """Close the port a link holds now (none while its device is away)."""
    if link.port is not None:
        close(link.port)


def _quietly(step: Callable[[], object]) -> None:
    """Run a cleanup step; log its failure instead of hiding the error that stopped us."""
    try:
        step()
    except Exception as err:  # noqa: BLE001
        log.debug("cleanup step %s failed: %s", getattr(step, "__qualname__", step), err)
