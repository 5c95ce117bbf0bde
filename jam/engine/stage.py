"""The live call mode's MIDI clock and recording (``--clock-in``, ``--clock-out``,
``--record``), wired in one place.

:class:`Stage` holds the parts the options ask for (:class:`~jam.engine.midiclock.MidiClockIn`,
:class:`~jam.engine.midiclock.MidiClockOut`, :class:`~jam.engine.recorder.SessionRecorder`);
:class:`~jam.engine.live.CallMode` calls it on the input thread (:meth:`Stage.on_input`), on
the clock input's thread (:meth:`Stage.on_clock`) and on the engine thread (:meth:`Stage.start`,
:meth:`Stage.before` and :meth:`Stage.after` each poll, :meth:`Stage.stop`).
"""

from __future__ import annotations

import time
from typing import Any

import mido

from jam.engine.midiclock import CLOCK_TYPES, MidiClockIn, MidiClockOut
from jam.engine.recorder import SessionRecorder
from jam.errors import JamError
from jam.music.meter import Meter

SAME = "same"  # --clock-in same: the clock comes on the player's input port


def clock_in_port(config: Any) -> str | None:
    """The port ``--clock-in`` names for a second input (None: off, or ``same``)."""
    value = config.clock_in
    return None if value is None or value.strip().lower() == SAME else value


class Stage:
    """MIDI clock in, clock out and recording for the live call mode (each optional)."""

    def __init__(self, clock_in: MidiClockIn | None = None,
                 clock_out: MidiClockOut | None = None,
                 recorder: SessionRecorder | None = None) -> None:
        self.clock_in = clock_in
        self.clock_out = clock_out
        self.recorder = recorder
        self._seen: tuple[int, int | None] = (0, None)  # (calls, answer id) at the last poll

    @classmethod
    def from_config(cls, config: Any) -> Stage | None:
        """The parts ``config`` asks for; None if none. JamError for a clock in and out."""
        if config.clock_in is not None and config.clock_out is not None:
            raise JamError("--clock-in and --clock-out cannot be used together: while jam "
                           "follows an incoming clock it sends none (connect that clock to "
                           "your other gear as well)")
        clock_in = clock_out = recorder = None
        if config.clock_in is not None:
            clock_in = MidiClockIn(config.bpm, same_port=clock_in_port(config) is None)
        if config.clock_out is not None:
            clock_out = MidiClockOut()
        if config.record is not None:
            recorder = SessionRecorder(config.record, Meter.parse(config.meter))
        if clock_in is None and clock_out is None and recorder is None:
            return None
        return cls(clock_in, clock_out, recorder)

    # --- input threads ---------------------------------------------------------------------

    def on_input(self, message: mido.Message, when: float) -> bool:
        """A message from the player's input port; False if it is not the player's (MIDI
        clock: queued for the clock with ``--clock-in same``, else ignored)."""
        if message.type in CLOCK_TYPES:
            if self.clock_in is not None and self.clock_in.same_port:
                self.clock_in.feed(message, when)
            return False
        if self.recorder is not None:
            self.recorder.played(message, when)
        return True

    def on_clock(self, message: mido.Message, when: float) -> None:
        """A message from the ``--clock-in`` port."""
        if self.clock_in is not None:
            self.clock_in.feed(message, when)

    # --- engine thread ---------------------------------------------------------------------

    def start(self, scheduler: Any, engine: Any, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self.clock_out is not None:
            if scheduler.clock_port is None:
                raise JamError("--clock-out: no clock output port was opened")
            self.clock_out.start(scheduler, engine.clock, now)
        if self.recorder is not None:
            self.recorder.start(scheduler, engine.clock, now)

    def before(self, engine: Any, now: float) -> None:
        """Before the input is handled: the clock moves to the incoming MIDI clock."""
        if self.clock_in is not None:
            self.clock_in.update(engine.clock, now)

    def after(self, engine: Any, now: float, wake: float | None) -> float | None:
        """After the engine's work: clock ticks out, the recording's tempo and phrase
        boundaries; returns the earliest of ``wake`` and what these need."""
        wakes = [wake]
        clock = engine.clock
        if self.clock_out is not None:
            wakes.append(self.clock_out.update(clock, now))
        if self.clock_in is not None:
            wakes.append(self.clock_in.wakeup())
        recorder = self.recorder
        if recorder is not None and recorder.active:
            seen = (engine.stats.calls, None if engine.answer is None else engine.answer.id)
            calls, answer = self._seen
            if seen[0] != calls or answer is not None and seen[1] != answer:
                recorder.boundary(now)  # a call ended, or an answer ended or was stopped
            self._seen = seen
            recorder.follow(clock, now)
            wakes.append(recorder.poll(now))
        due = [w for w in wakes if w is not None]
        return min(due) if due else None

    def stop(self, now: float | None = None) -> None:
        if self.recorder is not None:
            self.recorder.close(time.monotonic() if now is None else now)
