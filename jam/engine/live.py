"""Live call and response: the engine (:class:`~jam.engine.callresponse.CallResponse`)
driven by MIDI input and monotonic time, its answers handed to the scheduler thread."""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

import mido
import numpy as np

from jam.engine.assembly import make_generator, make_tempo, warm_up
from jam.engine.callresponse import AnswerNote, CallResponse, EngineSettings, Stop
from jam.engine.clock import Clock
from jam.engine.runner import Mode
from jam.engine.scheduler import Scheduler

log = logging.getLogger(__name__)


class CallMode(Mode):
    """Live call and response for the run loop (:mod:`jam.engine.runner`).

    The MIDI input thread only appends to a queue; the main thread (the engine thread)
    drains it in :meth:`poll`, runs :class:`CallResponse` at the ``now`` it is given, and
    hands answer notes to the scheduler thread as (deadline, message) pairs tagged with the
    answer's id, so a barge-in is one ``cancel(tag)``. Answers go out on ``--channel``,
    else on the channel the player used last.
    """

    name = "call"

    def __init__(self, engine: CallResponse, channel: int | None = None) -> None:
        self.engine = engine
        self.channel = channel  # 0-15, or None: follow the player
        self._player_channel = 0
        self._inbox: deque[tuple[mido.Message, float]] = deque()

    @classmethod
    def from_config(cls, config: Any) -> CallMode:
        settings = EngineSettings.from_config(config)
        generator = make_generator(config.model, config.device)
        warm_up(generator, settings, config.tempo == "follow")
        clock = Clock(config.bpm, settings.meter)
        engine = CallResponse(generator, clock, make_tempo(config.tempo, config.bpm), settings,
                              np.random.default_rng(config.seed))
        return cls(engine, None if config.channel is None else config.channel - 1)

    def on_message(self, message: mido.Message, when: float) -> None:
        self._inbox.append((message, when))

    def poll(self, now: float) -> float | None:
        """Handle the queued input, then the engine's work due at ``now``; returns the
        seconds until the engine next needs a poll (None: only on input)."""
        engine = self.engine
        while self._inbox:
            message, when = self._inbox.popleft()
            kind = message.type
            if kind == "note_on" and message.velocity > 0:
                self._player_channel = message.channel
                self._out(engine.note_on(message.note, message.velocity, when))
            elif kind in ("note_on", "note_off"):
                engine.note_off(message.note, when)
            elif kind == "control_change":
                self._out(engine.control(message.control, message.value, when))
        self._out(engine.poll(now))
        wake = engine.wakeup()
        return None if wake is None else wake - now

    def _out(self, events: list[AnswerNote | Stop]) -> None:
        scheduler: Scheduler = self.scheduler
        channel = self._player_channel if self.channel is None else self.channel
        for event in events:
            if isinstance(event, Stop):
                scheduler.cancel(event.answer)
                continue
            scheduler.schedule(
                ((event.on, mido.Message("note_on", channel=channel, note=event.pitch,
                                         velocity=event.velocity)),
                 (event.off, mido.Message("note_off", channel=channel, note=event.pitch,
                                          velocity=0))),
                tag=event.answer)

    def stop(self) -> None:
        stats = self.engine.stats
        log.info("call mode: %d calls, %d answers, %d barge-ins, %d answers ended early "
                 "(generation behind)", stats.calls, stats.answers, stats.barge_ins,
                 stats.degraded)
