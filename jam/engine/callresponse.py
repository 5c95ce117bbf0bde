"""Call and response: listening -> answering -> listening, as a pure state machine.

:class:`CallResponse` has no ports, no threads and no clock of its own: events go in with
their times (seconds, any timebase), timed answer notes come out, and every method that
depends on time takes ``now``. The live mode (:mod:`jam.engine.live`) drives it with
monotonic time and hands the notes to the scheduler thread; ``jam respond``
(:mod:`jam.engine.offline`) drives the very same object with virtual time.

When the call ends (see :class:`~jam.engine.listener.PhraseDetector`) the answer starts
on the next beat of the meter (``align: bar``: the next bar) at least ``lead`` seconds
ahead, lasts ``answer_bars`` bars (default: as many bars as the call, at most
``max_answer_bars``), is sampled with the configured temperature/top-p and the key and
range mask (``key: auto`` = the key estimated from the call), and its velocity follows the
call's mean velocity (bar downbeats a little louder). Answer tokens are pulled only
``lookahead`` beats ahead of ``now``, so a barge-in wastes little and the model's work
is spread out; a note whose onset is already due when it is computed is not played late:
the answer ends there (at a note boundary), and that is counted and logged once.

Between phrases the engine can also play the last answer again (:meth:`CallResponse.replay`),
answer the last call anew (:meth:`CallResponse.reroll`), forget the session
(:meth:`CallResponse.reset`) and take new settings (:meth:`CallResponse.update`).
``latency`` (seconds, the output latency) makes every note due that much earlier than its
musical time: the answer starts, is computed and is judged late with it included.

Musical decisions (where the answer starts, whether a note is late) are made on the grid
of ticks, with a tolerance of :data:`EPSILON_TICKS` for the rounding of float seconds;
seconds are only the deadlines handed to the scheduler.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

import numpy as np

from jam.config import default_config
from jam.engine.clock import Clock, TempoSource
from jam.engine.listener import Call, Listener, PhraseDetector, cut, window
from jam.generators.base import AnswerSpec, Generator
from jam.generators.blend import BlendGenerator
from jam.music import tokens as tk
from jam.music.meter import Meter
from jam.music.sampling import SamplerSettings, pitch_mask
from jam.music.theory import Key, estimate_key, parse_key

log = logging.getLogger(__name__)

ACCENT = 8  # velocity added on bar downbeats
LEAD = 0.010  # s from the end of a call to the earliest answer note (live)
MARGIN = 0.002  # s: a note computed closer than this to its onset is late (live)
EPSILON_TICKS = 1e-6  # grid positions closer than this are the same tick (float rounding)


@dataclass(frozen=True)
class EngineSettings:
    """The engine's options, built from the options table (:mod:`jam.config`): use
    :meth:`from_config`, or :meth:`defaults` and :func:`dataclasses.replace`."""

    meter: Meter
    listen_silence: float
    end_call_cc: int | None
    max_call: int | None
    align: str
    answer_bars: int | None
    max_answer_bars: int
    sampler: SamplerSettings
    key: str | None
    low: int
    high: int
    barge_in: str
    lookahead: float  # beats

    @classmethod
    def from_config(cls, config: Any) -> EngineSettings:
        return cls(
            meter=Meter.parse(config.meter), listen_silence=config.listen_silence,
            end_call_cc=config.end_call_cc, max_call=config.max_call, align=config.align,
            answer_bars=config.answer_bars, max_answer_bars=config.max_answer_bars,
            sampler=SamplerSettings(config.temperature, config.top_p), key=config.key,
            low=config.low, high=config.high, barge_in=config.barge_in,
            lookahead=config.lookahead)

    @classmethod
    def defaults(cls, **changes: Any) -> EngineSettings:
        """The shipped defaults (no config file read), with ``changes``."""
        return replace(cls.from_config(default_config()), **changes)


def allowed_classes(key_option: str | None, key: Key | None,
                    heard: frozenset[int]) -> frozenset[int] | None:
    """The pitch classes an answer may use: the key's scale, and with ``key: auto`` also
    every pitch class the player used in the session (``heard``): a blues call keeps its
    blue notes. None: no key constraint."""
    if key is None:
        return None
    extra = heard if key_option == "auto" else frozenset()
    return frozenset(key.scale) | extra


def answer_spec(settings: EngineSettings, mask: np.ndarray, ticks: int,
                ending: tuple[int, ...] | None) -> AnswerSpec:
    """What the engine asks the generator for: the configured sampling, ``mask`` (pitch
    classes and range), ``ticks`` of answer, ending on the ``ending`` pitch classes (the
    tonic triad) with the last beat's onsets held to them."""
    return AnswerSpec(settings.sampler, mask, ticks,
                      None if ending is None else frozenset(ending), settings.meter.beat_ticks)


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
    replay: bool = False  # tokens given, not generated: the generator never saw them


@dataclass
class EngineStats:
    """What happened since the start."""

    calls: int = 0
    answers: int = 0
    barge_ins: int = 0
    degraded: int = 0  # answers ended early because generation fell behind


@dataclass(frozen=True)
class Played:
    """An answer as it was played: its tokens from its first note, velocity, length."""

    tokens: tuple[int, ...]
    velocity: int
    ticks: int
    notes: int
    late: bool  # it ended early because generation fell behind


class CallResponse:
    """The call-and-response state machine (one thread: the engine's)."""

    def __init__(self, generator: Generator, clock: Clock, tempo: TempoSource,
                 settings: EngineSettings, rng: np.random.Generator | None = None, *,
                 lead: float = LEAD, margin: float = MARGIN) -> None:
        self.generator = generator
        self.clock = clock
        self.settings = settings
        self.rng = rng if rng is not None else np.random.default_rng()
        self.lead, self.margin = lead, margin
        self.latency = 0.0  # s: notes are sent this much before their musical time
        self.detector = PhraseDetector()
        self.update(settings)
        self.listener = Listener(generator, clock, tempo)
        self.answer: _Answer | None = None
        self.last_key: Key | None = None  # the key the last answer was masked to
        self.last: Played | None = None  # the last answer as played (for replay)
        self._context: tuple[list[int], AnswerSpec, int] | None = None  # for reroll
        self.stats = EngineStats()
        self._ids = 0
        self._ignored: set[int] = set()

    @property
    def state(self) -> str:
        return "answering" if self.answer is not None else "listening"

    @property
    def idle(self) -> bool:
        """Between phrases: no answer playing and no call in progress."""
        return self.answer is None and not self.listener.in_call

    def update(self, settings: EngineSettings) -> None:
        """New settings: the sampling, length, key and range of the next answer, the phrase
        detector's. Change the meter only between phrases (:attr:`idle`)."""
        self.settings = settings
        self.clock.meter = settings.meter
        self._fixed_key = None if settings.key in (None, "auto") else parse_key(settings.key)
        self._masks: dict[frozenset[int] | None, np.ndarray] = {}  # classes -> pitch mask
        detector = self.detector
        detector.silence_beats = settings.listen_silence
        detector.end_call_cc = settings.end_call_cc
        detector.max_call_ticks = (None if settings.max_call is None
                                   else settings.max_call * settings.meter.bar_ticks)

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
                return self.clock.seconds(a.made) - self.lookahead_seconds - self.latency
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
        out: list[AnswerNote | Stop] = list(self._compute(now))
        self._retire(now)
        return out

    def _retire(self, now: float) -> None:
        """Back to listening once the whole answer is computed and has ended."""
        a = self.answer
        if a is not None and a.done and self._reached(now, a.end):
            self._played(a, a.end, stopped=a.cut_short)
            self.answer = None

    def _played(self, a: _Answer, end: int, stopped: bool) -> None:
        """Account for answer ``a`` played up to tick ``end`` (``stopped``: ended before
        the generator's last token); remember it for replay."""
        played = cut(a.taken, end - a.start)
        self.listener.answered(a.taken, a.start, end, stopped=stopped or a.replay)
        if played:
            notes = sum(1 for token in played if tk.is_pitch(token))
            self.last = Played(tuple(played), a.velocity, end - a.start, notes, a.cut_short)

    def end_call(self, now: float, reason: str) -> list[AnswerNote | Stop]:
        """The call is over (``reason``: silence, pedal, cc, max_call): start the answer."""
        s = self.settings
        self.listener.settle_tempo()
        unit = s.meter.bar_ticks if s.align == "bar" else s.meter.beat_ticks
        start = self._next(now, unit)
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
        heard = frozenset(self.listener.heard)
        classes = allowed_classes(s.key, key, heard)
        if classes not in self._masks:
            self._masks[classes] = pitch_mask(classes, s.low, s.high)
        ending = (key or estimate_key(call.notes)).triad if call.notes else None
        spec = answer_spec(s, self._masks[classes], bars * bar, ending)
        self._context = (list(self.listener.history), spec, call.velocity)
        log.debug("call ended (%s) with %d notes; answering %d bars from tick %d%s", reason,
                  len(call.notes), bars, start, f" in {key.name}" if key else "")
        return self._begin(now, start, spec, call.velocity)

    def _next(self, now: float, unit: int) -> int:
        """The first tick on a multiple of ``unit`` that a note can still be sent for."""
        earliest = self.clock.ticks_at(now + self.lead + self.latency) - EPSILON_TICKS
        return math.ceil(earliest / unit) * unit

    def _begin(self, now: float, start: int, spec: AnswerSpec,
               velocity: int) -> list[AnswerNote | Stop]:
        """Start a generated answer at tick ``start``; its first note now."""
        self._ids += 1
        self.answer = _Answer(self._ids, start, start + spec.ticks, velocity,
                              self.generator.continuation(spec, self.rng), made=start)
        self.stats.answers += 1
        log.debug("answer %d: sampling with temperature %g, top_p %g; %d bars%s", self._ids,
                  spec.sampler.temperature, spec.sampler.top_p,
                  spec.ticks // self.settings.meter.bar_ticks,
                  f" in {self.last_key.name}" if self.last_key else "")
        return list(self._compute(now, limit=1))  # the rest follows from the next poll

    # --- between phrases: replay, reroll, reset, hand over ------------------------------------

    def hand_over(self, now: float, reason: str = "control") -> list[AnswerNote | Stop]:
        """End the call now (a control was pressed); nothing if no call is in progress."""
        if self.answer is None and self.listener.in_call:
            return self.end_call(now, reason)
        return []

    def replay(self, now: float) -> list[AnswerNote | Stop]:
        """Play the last answer again from the next beat (between phrases only; returns
        nothing otherwise)."""
        last = self.last
        if last is None or not self.idle or not self.clock.anchored:
            return []
        start = self._next(now, self.settings.meter.beat_ticks)
        self.listener.silence_until(start)
        self._ids += 1
        self.answer = _Answer(self._ids, start, start + last.ticks, last.velocity,
                              iter(last.tokens), made=start, replay=True)
        self.stats.answers += 1
        log.debug("answer %d: replay of %d notes from tick %d", self._ids, last.notes, start)
        return list(self._compute(now, limit=1))

    def reroll(self, now: float) -> list[AnswerNote | Stop]:
        """A new answer to the last call, from the next beat: the one playing stops; the
        generator forgets it (its state is the one the call left)."""
        if self._context is None or self.listener.in_call:
            return []
        out: list[AnswerNote | Stop] = []
        if self.answer is not None:
            out.append(Stop(self.answer.id))
            self.answer = None
        history, spec, velocity = self._context
        start = self._next(now, self.settings.meter.beat_ticks)
        self.listener.restore(history, start)
        return out + self._begin(now, start, spec, velocity)

    def silence(self, now: float) -> list[AnswerNote | Stop]:
        """Stop the answer playing and close the call in progress without answering it
        (a panic, leaving the call mode)."""
        out: list[AnswerNote | Stop] = []
        if self.answer is not None:
            out.append(self._stop(now, barge_in=False))
        if self.listener.in_call:
            self.listener.end_call(self.clock.tick(now))
            self.detector.reset()
        return out

    def use(self, generator: Generator) -> None:
        """Answer with ``generator`` from now on, primed with the history (between phrases:
        :attr:`idle`)."""
        old = self.generator
        self.generator = generator
        self.listener.use(generator)
        if isinstance(old, BlendGenerator) and isinstance(generator, BlendGenerator):
            # the memory of the player outlives the model: it moves to the new generator
            generator.memory, generator.keep_memory = old.memory, old.keep_memory
            generator.memory.restart()
            generator.memory.feed(window(self.listener.history), learn=False)

    def reset(self, rng: np.random.Generator | None = None) -> list[AnswerNote | Stop]:
        """Forget the session (a new song): the answer playing stops, the generator and the
        history start afresh, the pulse waits for the next first note; ``rng`` replaces
        the random generator (a seeded one repeats the session's answers)."""
        out: list[AnswerNote | Stop] = []
        if self.answer is not None:
            out.append(Stop(self.answer.id))
            self.answer = None
        self.listener = Listener(self.generator, self.clock, self.listener.tempo)
        self.detector.reset()
        self.clock.origin = None
        self.last_key, self.last, self._context = None, None, None
        self._ignored.clear()
        if rng is not None:
            self.rng = rng
        return out

    def _key(self, call: Call) -> Key | None:
        if self.settings.key is None:
            return None
        if self.settings.key == "auto":
            return estimate_key(call.notes)
        return self._fixed_key

    def _reached(self, now: float, tick: int) -> bool:
        """Has time ``now`` reached grid tick ``tick`` (within float rounding)?"""
        return self.clock.ticks_at(now) >= tick - EPSILON_TICKS

    def _compute(self, now: float, limit: int | None = None) -> list[AnswerNote]:
        """Answer notes whose onsets fall before now + lookahead (at least one; at most
        ``limit``)."""
        a = self.answer
        if a is None or a.done:
            return []
        notes: list[AnswerNote] = []
        horizon = self.clock.ticks_at(now + self.lookahead_seconds + self.latency)
        too_late = self.clock.ticks_at(now + self.margin + self.latency) - EPSILON_TICKS
        while not a.done and (not notes or a.made < horizon):
            onset, shift = next(a.tokens, None), next(a.tokens, None)
            if onset is None or shift is None:  # a generator that ran dry ends the answer
                a.done, a.end = True, a.made
                break
            a.taken += (onset, shift)
            start, a.made = a.made, a.made + tk.shift_ticks(shift)
            if tk.is_pitch(onset):
                if start < too_late:
                    self._degrade(a, start)
                    break
                end = min(a.made, a.end)
                notes.append(AnswerNote(a.id, onset, self._velocity(a, start), start, end,
                                        self.clock.seconds(start), self.clock.seconds(end)))
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

    def _stop(self, t: float, barge_in: bool = True) -> Stop:
        a = self.answer
        assert a is not None
        at = min(max(self.clock.tick(t), a.start), a.made)
        self._played(a, at, stopped=True)
        self.answer = None
        if barge_in:
            self.stats.barge_ins += 1
        log.debug("%s: answer %d stopped at tick %d", "barge-in" if barge_in else "stop",
                  a.id, at)
        return Stop(a.id)
