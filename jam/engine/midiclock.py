"""MIDI clock in and out: jam follows another device's beat and bar, or drives other gear.

**In** (``--clock-in PORT``, or ``same`` for the input port): :class:`MidiClockIn` is a
:class:`~jam.engine.clock.TempoSource`. The input thread only queues each clock message
with its arrival time (:meth:`MidiClockIn.feed`); the engine thread drains the queue
(:meth:`MidiClockIn.update`) and moves the engine's :class:`~jam.engine.clock.Clock`:

- tempo: a least-squares line through the arrival times of the last :data:`WINDOW` clock
  ticks (24 per quarter note; two beats), leaving out the ticks far off a first line
  drawn from medians (:func:`robust_line`: a burst of late ticks after a hold-up moves
  nothing);
- phase: Start (FA) puts the song position at 0 (a downbeat), Song Position Pointer (F2)
  anywhere (in sixteenths), Continue (FB) resumes where the position is; the next tick is
  at that position and each tick advances it by one (ticks lost or delivered twice on the
  way are recounted when the next ticks all come a whole interval off, so a lost tick
  does not shift the bar). While the transport runs, the
  clock's origin (grid tick 0, a downbeat) is the time of song position 0 on that line, so
  the answer starts on the incoming beat (``--align bar``: the incoming bar);
- the clock is moved only when the fit puts the beat more than :data:`MOVE_TOLERANCE` away
  from it (now or a beat ahead), so what follows the clock (the metronome, scheduled
  notes) is not re-timed at every tick;
- calls do not move the clock while it is locked to a running transport.

When the transport is stopped (FC) but ticks still come, the tempo follows them and the
player sets the beat (as ``--tempo fixed`` does: the first note is a downbeat, each call
refines the phase). When no tick came for :data:`LOST_AFTER` seconds while running, one
warning is logged and jam goes on at the last tempo and phase (again like ``--tempo
fixed``); before any clock arrives, it plays at ``--bpm``.

**Out** (``--clock-out PORT``): :class:`MidiClockOut` schedules clock ticks (24 per quarter
on the engine's clock: tick ``n`` is due at grid position ``n / 2``), with Start before the
first, on the scheduler thread: the engine thread keeps them :data:`HORIZON` seconds ahead
and re-times the pending ones when the tempo or phase changes (the scheduler sends Stop
when it closes). A tick is never closer than half a tick interval to the one before nor
further than two, so a jump of jam's phase (a call in ``--tempo follow``) is absorbed over
a few beats instead of a burst or a pause.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from typing import Any, Sequence

import mido
import numpy as np

from jam.engine.clock import Clock, Pulse, TempoSource, fit_phase
from jam.music.tokens import TICKS_PER_BEAT

log = logging.getLogger(__name__)

PPQN = 24  # MIDI clock ticks per quarter note
CLOCKS_PER_TICK = PPQN // TICKS_PER_BEAT  # clock ticks per grid tick (2)
CLOCKS_PER_SIXTEENTH = PPQN // 4  # the unit of Song Position Pointer
CLOCK_TYPES = frozenset({"clock", "start", "stop", "continue", "songpos"})
WINDOW = 48  # ticks in the tempo fit (two beats)
MIN_FIT = 6  # ticks before the fitted tempo replaces the last one
LOST_AFTER = 0.5  # s without a tick while running: the clock is lost
CONFIRM = 4  # ticks in a row off the line by the same whole number of intervals: recounted
RECOUNT_SLACK = 0.35  # intervals: how close to that whole number each must be
MOVE_TOLERANCE = 0.001  # s: a fit closer than this to the clock (now, a beat ahead) leaves it
OUTLIER = 0.3  # intervals (at least OUTLIER_FLOOR s): a tick further off the line is left out
OUTLIER_FLOOR = 0.003

HORIZON = 0.2  # s of clock ticks handed to the scheduler ahead of time
REFILL = 0.1  # s: top up when fewer than this are left
START_DELAY = 0.05  # s from the start of the mode to Start and the first tick
MIN_STEP, MAX_STEP = 0.5, 2.0  # bounds of a sent tick interval, in nominal intervals


def fit_line(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Least-squares ``y = a + b * x``; returns (a, b)."""
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    mx, my = xs.mean(), ys.mean()
    dx = xs - mx
    b = float((dx * (ys - my)).sum() / (dx * dx).sum())
    return float(my - b * mx), b


def robust_line(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """``y = a + b * x`` through tick arrivals, not pulled by a few late ones (a burst after
    this process or the transport was held up): a first line from medians (of the slopes
    between points half the window apart, then of the intercepts), then least squares over
    the points within :data:`OUTLIER` intervals of it."""
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    half = max(1, xs.size // 2)
    b = float(np.median((ys[half:] - ys[:-half]) / (xs[half:] - xs[:-half])))
    a = float(np.median(ys - b * xs))
    near = np.abs(ys - a - b * xs) <= max(OUTLIER * abs(b), OUTLIER_FLOOR)
    if near.sum() >= 2 and np.ptp(xs[near]) > 0:
        return fit_line(xs[near], ys[near])
    return a, b


class MidiClockIn(TempoSource):
    """Follows an external MIDI clock (see the module's description).

    ``same_port``: the clock comes on the player's input port (``--clock-in same``).
    :meth:`feed` is the only method for the input thread; everything else belongs to the
    engine thread."""

    def __init__(self, bpm: float, *, same_port: bool = False, window: int = WINDOW,
                 lost_after: float = LOST_AFTER) -> None:
        self.same_port = same_port
        self.bpm = float(bpm)  # the last tempo (from the clock, else --bpm)
        self.lost_after = lost_after
        self.running = False  # the transport runs (Start/Continue seen, no Stop since)
        self.position = 0  # song position (clock ticks) of the next tick
        self.ticks = 0  # ticks counted in all (received, and lost on the way)
        self.lost = 0  # ticks lost on the way while running (negative: delivered twice)
        self._queue: deque[tuple[str, float, int]] = deque()
        self._tempo: deque[tuple[int, float]] = deque(maxlen=window)  # (count, time)
        self._phase: deque[tuple[int, float]] = deque(maxlen=window)  # (position, time)
        self._last: float | None = None  # arrival of the last tick
        self._fresh = False  # ticks are coming (the last one less than lost_after ago)
        self._warned = False

    # --- input thread ----------------------------------------------------------------------

    def feed(self, message: mido.Message, when: float) -> None:
        """Queue a clock message (``clock``, ``start``, ``stop``, ``continue``,
        ``songpos``) with its arrival time; others are ignored."""
        kind = message.type
        if kind in CLOCK_TYPES:
            self._queue.append((kind, when, message.pos if kind == "songpos" else 0))

    # --- engine thread ---------------------------------------------------------------------

    @property
    def locked(self) -> bool:
        """Tempo and phase come from the clock now (calls do not move it)."""
        return self.running and self._fresh and bool(self._phase)

    def update(self, clock: Clock, now: float) -> bool:
        """Handle the queued messages and move ``clock``; True if it was moved."""
        queue = self._queue
        handled = bool(queue)
        while queue:
            kind, when, pos = queue.popleft()
            if kind == "clock":
                self._tick(when)
            elif kind == "start":
                self.running, self.position = True, 0
                self._phase.clear()
            elif kind == "continue":
                self.running = True
                self._phase.clear()
            elif kind == "stop":
                self.running = False
            else:  # songpos
                self.position = pos * CLOCKS_PER_SIXTEENTH
                self._phase.clear()
        if self._fresh and self._last is not None and now - self._last > self.lost_after:
            self._fresh = False
            self.bpm = clock.bpm  # the tempo jam plays on at
            if self.running and not self._warned:
                self._warned = True
                log.warning("MIDI clock lost: no clock for %.1f s while running; going on "
                            "at the last tempo, %.1f BPM", self.lost_after, self.bpm)
        if not handled:
            return False
        return self._move(clock, now)

    def wakeup(self) -> float | None:
        """When the engine should look again (to notice a lost clock)."""
        if self._fresh and self.running and self._last is not None:
            return self._last + self.lost_after
        return None

    def _tick(self, when: float) -> None:
        if self._last is not None and when - self._last > self.lost_after:
            self._tempo.clear()  # after a pause the tick count says nothing about time
        if not self._fresh and self._warned:
            log.info("MIDI clock back")
            self._warned = False
        self._last, self._fresh = when, True
        self._tempo.append((self.ticks, when))
        self.ticks += 1
        if self.running:
            self._phase.append((self.position, when))
            self.position += 1
        self._recount()

    def _recount(self) -> None:
        """Correct the count for ticks lost (or delivered twice) on the way: the last
        :data:`CONFIRM` ticks all arrive the same whole number of intervals off the line
        through the ticks before them. A burst of late ticks (this process or the transport
        held up) is off by amounts that shrink from tick to tick, a tempo change by amounts
        that grow: neither is counted."""
        tempo = self._tempo
        if len(tempo) < MIN_FIT + CONFIRM:
            return
        entries = list(tempo)
        counts, times = zip(*entries[:-CONFIRM])
        start, interval = robust_line(counts, times)
        if interval <= 0:
            return
        off = [(t - start) / interval - c for c, t in entries[-CONFIRM:]]
        shift = round(off[0])
        if shift == 0 or any(abs(x - shift) > RECOUNT_SLACK for x in off):
            return
        for i in range(len(tempo) - CONFIRM, len(tempo)):
            tempo[i] = (tempo[i][0] + shift, tempo[i][1])
        self.ticks += shift
        phase = self._phase
        if self.running and len(phase) > CONFIRM:  # all of them since the transport started
            for i in range(len(phase) - CONFIRM, len(phase)):
                phase[i] = (phase[i][0] + shift, phase[i][1])
            self.position += shift
            self.lost += shift

    def _move(self, clock: Clock, now: float) -> bool:
        if len(self._tempo) >= MIN_FIT:
            counts, times = zip(*self._tempo)
            _, interval = robust_line(counts, times)
            if interval > 0:
                self.bpm = 60.0 / (interval * PPQN)
        interval = 60.0 / (self.bpm * PPQN)
        if self.locked:
            positions, times = zip(*self._phase)
            offsets = np.asarray(times) - interval * np.asarray(positions)
            near = np.abs(offsets - np.median(offsets)) <= max(OUTLIER * interval, OUTLIER_FLOOR)
            origin = float(offsets[near].mean())
            if clock.anchored and _close(clock, self.bpm, origin, now):
                return False
            clock.set_pulse(Pulse(self.bpm, origin))
            return True
        if not self._fresh or abs(clock.bpm / self.bpm - 1) < MOVE_TOLERANCE / 60 * self.bpm:
            return False
        if clock.anchored:  # stopped, ticks coming: their tempo, the player's phase
            clock.set_tempo(self.bpm, now)
        else:
            clock.bpm = self.bpm
        return True

    # --- the TempoSource hooks (engine thread) ----------------------------------------------

    def call_started(self, clock: Clock, onset: float) -> None:
        if not clock.anchored:  # no running clock yet: the first note is a downbeat
            clock.set_pulse(Pulse(clock.bpm, onset))

    def call_ended(self, clock: Clock, onsets: Sequence[float]) -> bool:
        if self.locked:
            return False
        origin = fit_phase(onsets, clock)  # as --tempo fixed: the call refines the phase
        if origin == clock.origin:
            return False
        clock.set_pulse(Pulse(clock.bpm, origin))
        return True


def _close(clock: Clock, bpm: float, origin: float, now: float) -> bool:
    """Does ``clock`` put the beats of the pulse (``bpm``, ``origin``) within
    :data:`MOVE_TOLERANCE` of where that pulse puts them, now and a beat from now?"""
    tick = 60.0 / bpm / TICKS_PER_BEAT
    return all(abs(clock.seconds((t - origin) / tick) - t) < MOVE_TOLERANCE
               for t in (now, now + 60.0 / bpm))


CLOCK = mido.Message("clock")
START = mido.Message("start")
STOP = mido.Message("stop")


class MidiClockOut:
    """Sends MIDI clock on the engine's :class:`Clock` through the scheduler (see the
    module's description). Engine thread only."""

    def __init__(self, horizon: float = HORIZON, refill: float = REFILL,
                 start_delay: float = START_DELAY) -> None:
        self.horizon, self.refill, self.start_delay = horizon, refill, start_delay
        self.scheduler: Any = None
        self.position = 0  # grid position (clock ticks) of the next tick to schedule
        self._queued: deque[tuple[int, float]] = deque(maxlen=1024)  # (position, deadline)
        self._last: float | None = None  # deadline of the last tick scheduled, not withdrawn
        self._begin = 0.0  # when Start is due
        self._pulse: tuple[float, float | None] | None = None
        self._bpm = 120.0

    @property
    def port(self) -> Any:
        return self.scheduler.clock_port

    def start(self, scheduler: Any, clock: Clock, now: float) -> None:
        """Start the clock: anchor jam's clock if nothing has yet (jam's beat starts now),
        then Start and the first tick on the next downbeat."""
        self.scheduler = scheduler
        if not clock.anchored:
            clock.set_pulse(Pulse(clock.bpm, now + self.start_delay))
        bar = clock.meter.bar_ticks * CLOCKS_PER_TICK
        self.position = math.ceil(clock.ticks_at(now + self.start_delay) * CLOCKS_PER_TICK
                                  / bar - 1e-9) * bar
        self._begin = clock.seconds(self.position / CLOCKS_PER_TICK)
        scheduler.schedule(((self._begin, START),), port=self.port)
        self.update(clock, now)

    def update(self, clock: Clock, now: float) -> float | None:
        """Keep ticks :attr:`horizon` seconds ahead (re-timed if the clock moved); returns
        when to call again."""
        if self.scheduler is None:
            return None
        pulse = (clock.bpm, clock.origin)
        if pulse != self._pulse:
            self._pulse = pulse
            for _ in range(self.scheduler.withdraw(self)):  # the latest ones are not sent
                self.position = self._queued.pop()[0]
            self._last = self._queued[-1][1] if self._queued else None
            if clock.anchored:
                self._bpm = clock.bpm
        step = 60.0 / (self._bpm * PPQN)
        events = []
        last, position = self._last, self.position
        while last is None or last < now + self.horizon:
            if clock.anchored:
                due = clock.seconds(position / CLOCKS_PER_TICK)
            else:  # the engine forgot its pulse (a reset): go on at the last tempo
                due = (self._begin if last is None else last) + step
            if last is None:
                last = max(due, self._begin)
            else:  # never sooner than now: a tick due before now would go at once
                last = min(max(due, last + MIN_STEP * step, now), last + MAX_STEP * step)
            events.append((last, CLOCK))
            self._queued.append((position, last))
            position += 1
        if events:
            self.scheduler.schedule(events, tag=self, port=self.port)
        self._last, self.position = last, position
        return last - self.refill
