"""Call and response: listening -> answering -> listening.

:class:`CallResponse` is the engine, free of ports and threads: events go in with their
times, timed answer notes come out. The live mode (:class:`CallMode`) drives it from the
engine thread with monotonic time and hands the notes to the scheduler thread; the offline
``jam respond`` (:mod:`jam.engine.offline`) drives the very same object on a virtual clock.

When the call ends (see :class:`~jam.engine.listener.PhraseDetector`) the answer starts
on the next beat (``align: bar``: the next bar) at least :attr:`EngineSettings.lead`
seconds ahead, lasts ``answer_bars`` bars (default: as many bars as the call, at most
``max_answer_bars``), is sampled with the configured temperature/top-p and the key and
range mask (``key: auto`` = the key estimated from the call), and its velocity follows the
call's mean velocity (bar downbeats a little louder). Answer tokens are pulled only
``lookahead`` beats ahead of the clock, so a barge-in wastes little and the model's work
is spread out; a note whose onset is already due when it is computed is not played late:
the answer ends there (at a note boundary), and that is counted and logged once.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

import mido
import numpy as np

from jam.engine.clock import Clock, FixedTempo, FollowTempo, Meter, TempoSource
from jam.engine.listener import Call, Listener, PhraseDetector
from jam.engine.runner import Mode
from jam.engine.scheduler import Scheduler
from jam.generators.base import AnswerSpec, Generator
from jam.music import tokens as tk
from jam.music.sampling import SamplerSettings, pitch_mask
from jam.music.theory import Key, estimate_key, parse_key

log = logging.getLogger(__name__)

ACCENT = 8  # velocity added on bar downbeats


@dataclass(frozen=True)
class EngineSettings:
    """The engine's options (see :mod:`jam.config` for their meaning)."""

    meter: Meter = Meter()
    listen_silence: float = 1.0
    end_call_cc: int | None = None
    max_call: int | None = 4
    align: str = "beat"
    answer_bars: int | None = None
    max_answer_bars: int = 8
    sampler: SamplerSettings = SamplerSettings()
    key: str | None = "auto"
    low: int = 36
    high: int = 96
    barge_in: str = "stop"
    lookahead: float = 1.0  # beats
    lead: float = 0.010  # seconds from the end of a call to the earliest answer note
    margin: float = 0.002  # seconds: a note computed closer than this to its onset is late

    @classmethod
    def from_config(cls, config: Any) -> "EngineSettings":
        return cls(
            meter=Meter.parse(config.meter), listen_silence=config.listen_silence,
            end_call_cc=config.end_call_cc, max_call=config.max_call, align=config.align,
            answer_bars=config.answer_bars, max_answer_bars=config.max_answer_bars,
            sampler=SamplerSettings(config.temperature, config.top_p), key=config.key,
            low=config.low, high=config.high, barge_in=config.barge_in,
            lookahead=config.lookahead)


@dataclass(frozen=True)
class AnswerNote:
    """One note of an answer: grid ticks and the deadlines (seconds) they map to."""

    answer: int  # which answer (the scheduler tag)
    pitch: int
    velocity: int
    start: int
    end: int
    on: float
    off: float


@dataclass(frozen=True)
class Stop:
    """Stop answer ``answer`` now: drop its pending notes and end its sounding ones."""

    answer: int


@dataclass
class _Answer:
    id: int
    start: int
    end: int
    velocity: int
    tokens: Iterator[int]
    made: int = 0  # tick up to which notes have been computed
    taken: list[int] = field(default_factory=list)
    done: bool = False  # nothing more will be computed
    cut_short: bool = False  # ended early: the generator saw tokens that are not played


@dataclass
class EngineStats:
    """What happened since the start."""

    calls: int = 0
    answers: int = 0
    barge_ins: int = 0
    degraded: int = 0  # answers ended early because generation fell behind


class CallResponse:
    """The call-and-response state machine (one thread: the engine's)."""

    def __init__(self, generator: Generator, clock: Clock, tempo: TempoSource,
                 settings: EngineSettings = EngineSettings(),
                 rng: np.random.Generator | None = None) -> None:
        self.generator = generator
        self.clock = clock
        self.settings = settings
        self.rng = rng if rng is not None else np.random.default_rng()
        bar = settings.meter.bar_ticks
        self.detector = PhraseDetector(
            settings.listen_silence, settings.end_call_cc,
            None if settings.max_call is None else settings.max_call * bar)
        self.listener = Listener(generator, clock, tempo)
        self.answer: _Answer | None = None
        self.last_key: Key | None = None  # the key the last answer was masked to
        self.stats = EngineStats()
        self._ids = 0
        self._ignored: set[int] = set()
        self._masks: dict[Key | None, np.ndarray] = {}  # key -> pitch mask (range fixed)

    @property
    def state(self) -> str:
        return "answering" if self.answer is not None else "listening"

    # --- input -----------------------------------------------------------------------------

    def note_on(self, pitch: int, velocity: int, t: float) -> list[AnswerNote | Stop]:
        out: list[AnswerNote | Stop] = []
        self._retire(t)  # the answer may be over by now
        if self.answer is not None:
            if self.settings.barge_in == "ignore":
                self._ignored.add(pitch)
                return out
            out.append(self._stop(t))
        tick = self.listener.note_on(pitch, velocity, t)
        self.detector.note_on(pitch, t, tick)
        return out

    def note_off(self, pitch: int, t: float) -> None:
        if pitch in self._ignored:
            self._ignored.discard(pitch)
            return
        self.listener.note_off(pitch, t)
        self.detector.note_off(pitch, t)

    def control(self, control: int, value: int, t: float) -> list[AnswerNote | Stop]:
        reason = self.detector.control(control, value, t)
        if reason is not None and self.answer is None and self.listener.in_call:
            return self.end_call(t, reason)
        return []

    # --- time ------------------------------------------------------------------------------

    def wakeup(self) -> float | None:
        """When :meth:`poll` has something to do next (None: only on input)."""
        if self.answer is not None:
            a = self.answer
            if not a.done:
                return self.clock.seconds(a.made) - self.lookahead_seconds
            return self.clock.seconds(a.end)
        due = self.detector.due(self.clock) if self.clock.anchored else None
        return None if due is None else due[0]

    @property
    def lookahead_seconds(self) -> float:
        return self.settings.lookahead * self.clock.beat_seconds

    def poll(self, now: float) -> list[AnswerNote | Stop]:
        """End the call if it is due, compute the answer up to the lookahead, retire a
        finished answer."""
        if self.answer is None:
            due = self.detector.due(self.clock) if self.clock.anchored else None
            if due is not None and now >= due[0] and self.listener.in_call:
                return self.end_call(now, due[1])
            return []
        out: list[AnswerNote | Stop] = list(self._compute())
        self._retire(now)
        return out

    def _retire(self, now: float) -> None:
        """Back to listening once the whole answer is computed and has ended."""
        a = self.answer
        if a is not None and a.done and now >= self.clock.seconds(a.end):
            self.listener.answered(a.taken, a.start, a.end, stopped=a.cut_short)
            self.answer = None

    def end_call(self, now: float, reason: str) -> list[AnswerNote | Stop]:
        """The call is over (``reason``: silence, pedal, cc, max_call): start the answer."""
        s = self.settings
        self.listener.settle_tempo()
        unit = s.meter.bar_ticks if s.align == "bar" else tk.TICKS_PER_BEAT
        start = self.clock.next_boundary(max(now, self.clock.now()) + s.lead, unit)
        call = self.listener.end_call(start)
        self.detector.reset()
        self.stats.calls += 1
        bar = s.meter.bar_ticks
        if s.answer_bars is not None:
            bars = s.answer_bars
        else:  # as many bars as the call (an eighth of a bar of slack), capped
            bars = max(1, int(np.ceil((call.end - call.start) / bar - 0.125)))
        bars = min(bars, s.max_answer_bars)
        key = self.last_key = self._key(call)
        if key not in self._masks:
            self._masks[key] = pitch_mask(None if key is None else key.scale, s.low, s.high)
        spec = AnswerSpec(s.sampler, self._masks[key], ticks=bars * bar)
        self._ids += 1
        self.answer = _Answer(self._ids, start, start + bars * bar, call.velocity,
                              self.generator.continuation(spec, self.rng), made=start)
        self.stats.answers += 1
        log.debug("call ended (%s) with %d notes; answering %d bars from tick %d%s", reason,
                 len(call.notes), bars, start, f" in {key.name}" if key else "")
        return list(self._compute(limit=1))  # the rest follows from the next poll, at once

    def _key(self, call: Call) -> Key | None:
        if self.settings.key is None:
            return None
        if self.settings.key == "auto":
            return estimate_key(call.notes)
        return parse_key(self.settings.key)

    def _compute(self, limit: int | None = None) -> list[AnswerNote]:
        """Answer notes whose onsets fall before now + lookahead (at least one; at most
        ``limit``)."""
        a = self.answer
        if a is None or a.done:
            return []
        notes: list[AnswerNote] = []
        horizon = self.clock.now() + self.lookahead_seconds
        while not a.done and (not notes or self.clock.seconds(a.made) < horizon):
            onset, shift = next(a.tokens, None), next(a.tokens, None)
            if onset is None or shift is None:  # a generator that ran dry ends the answer
                a.done, a.end = True, a.made
                break
            a.taken += (onset, shift)
            start, a.made = a.made, a.made + tk.shift_ticks(shift)
            if tk.is_pitch(onset):
                on = self.clock.seconds(start)
                if on < self.clock.now() + self.settings.margin:
                    self._degrade(a, start)
                    break
                end = min(a.made, a.end)
                notes.append(AnswerNote(a.id, onset, self._velocity(a, start), start, end,
                                        on, self.clock.seconds(end)))
            if a.made >= a.end:
                a.done = True
            if limit is not None and len(notes) >= limit:
                break
        return notes

    def _degrade(self, a: _Answer, at: int) -> None:
        a.done, a.end, a.cut_short = True, at, True
        self.stats.degraded += 1
        if self.stats.degraded == 1:  # once; the total is logged at the end
            log.warning("answer %d ended early at tick %d: generation fell behind the "
                        "%.2f-beat lookahead (the machine is too slow or busy; a smaller "
                        "model or a longer --lookahead helps)", a.id, at,
                        self.settings.lookahead)

    def _velocity(self, a: _Answer, tick: int) -> int:
        accent = ACCENT if tick % self.settings.meter.bar_ticks == 0 else 0
        return int(min(127, max(1, a.velocity + accent)))

    def _stop(self, t: float) -> Stop:
        a = self.answer
        assert a is not None
        at = min(max(self.clock.tick(t), a.start), a.made)
        self.listener.answered(a.taken, a.start, at, stopped=True)
        self.answer = None
        self.stats.barge_ins += 1
        log.debug("barge-in: answer %d stopped at tick %d", a.id, at)
        return Stop(a.id)


def make_generator(model: str | None, device: str = "auto") -> Generator:
    """``--model``: None = the shipped LSTM, "rules" = the rule-based responder, else a
    path to an exported ONNX model."""
    if model is not None and model.lower() == "rules":
        from jam.generators.rules import RulesGenerator

        return RulesGenerator()
    from jam.generators.lstm import LstmGenerator
    from jam.model.runtime import load_model

    return LstmGenerator(load_model(model, device))


def warm_up(generator: Generator, settings: EngineSettings, follow: bool) -> None:
    """Answer a 4-note call offline once, so one-time costs (lazy imports, the first
    onnxruntime runs) are paid before the first real call, not between its end and the
    answer's first note. The engine built afterwards resets the generator."""
    from jam.engine.offline import respond
    from jam.midi.files import Phrase

    call = [tk.Note(60 + 2 * i, 12 * i, 10) for i in range(4)]
    respond(Phrase(call), generator, replace(settings, answer_bars=1), follow=follow,
            rng=np.random.default_rng(0))


def make_tempo(tempo: str, bpm: float) -> TempoSource:
    """``--tempo fixed|follow`` with ``--bpm`` (follow: the first guess)."""
    return FollowTempo(bpm) if tempo == "follow" else FixedTempo(bpm)


class CallMode(Mode):
    """Live call and response for the run loop (:mod:`jam.engine.runner`).

    The MIDI input thread only appends to a queue; the main thread (the engine thread)
    drains it in :meth:`poll`, runs :class:`CallResponse`, and hands answer notes to the
    scheduler thread as (deadline, message) pairs tagged with the answer's id, so a
    barge-in is one ``cancel(tag)``. Answers go out on ``--channel``, else on the channel
    the player used last.
    """

    name = "call"

    def __init__(self, engine: CallResponse, channel: int | None = None) -> None:
        self.engine = engine
        self.channel = channel  # 0-15, or None: follow the player
        self._player_channel = 0
        self._inbox: deque[tuple[mido.Message, float]] = deque()

    @classmethod
    def from_config(cls, config: Any) -> "CallMode":
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
        self._out(engine.poll(time.monotonic()))
        wake = engine.wakeup()
        return None if wake is None else wake - time.monotonic()

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
