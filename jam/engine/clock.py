"""Musical time: grid ticks <-> monotonic seconds, the meter, and where the pulse comes from.

A :class:`Clock` is one linear map: ``origin`` is the time (seconds, same timebase as the
time source, normally :func:`time.monotonic`) of tick 0, which is also a downbeat, and
``bpm`` the tempo of quarter-note beats. Ticks are :data:`jam.music.tokens.TICKS_PER_BEAT`
per quarter note.

Who sets the pulse is a :class:`TempoSource`, called by the listener at the start and end
of every call:

- :class:`FixedTempo` (``--tempo fixed``): the tempo is ``--bpm``; the first note of the
  session sets the phase (that note is a downbeat), and each call's onsets refine it.
- :class:`FollowTempo` (``--tempo follow``): tempo and beat phase are fitted to the onsets
  of each call (:func:`fit_pulse`), so the answer continues the player's pulse.
- An external MIDI clock (24 PPQN, start/stop/continue) plugs in as another source: it
  moves the clock with :meth:`Clock.set_tempo` from its own messages and ignores calls.
"""

from __future__ import annotations

import math
import statistics
import time
from abc import ABC
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from jam.music.tokens import TICKS_PER_BEAT

TimeSource = Callable[[], float]


@dataclass(frozen=True)
class Meter:
    """A time signature; the bar length in grid ticks (quarter-note beats of 12 ticks)."""

    numerator: int = 4
    denominator: int = 4

    @classmethod
    def parse(cls, text: str) -> "Meter":
        """``"6/8"`` -> Meter(6, 8) (the text is validated by :mod:`jam.config`)."""
        num, den = text.split("/")
        return cls(int(num), int(den))

    @property
    def bar_ticks(self) -> int:
        return self.numerator * 4 * TICKS_PER_BEAT // self.denominator

    @property
    def beats_per_bar(self) -> int:
        """Whole quarter-note beats per bar (as :mod:`jam.midi.files` writes it)."""
        return max(1, round(self.numerator * 4 / self.denominator))


@dataclass(frozen=True)
class Pulse:
    """A tempo and the time of one downbeat (seconds)."""

    bpm: float
    origin: float


class Clock:
    """Grid ticks <-> seconds at one tempo. Not thread-safe: owned by the engine thread."""

    def __init__(self, bpm: float, meter: Meter = Meter(), origin: float | None = None,
                 now: TimeSource = time.monotonic) -> None:
        if bpm <= 0:
            raise ValueError("bpm must be positive")
        self.bpm = float(bpm)
        self.meter = meter
        self.origin = origin  # None: no phase yet (set by the first call)
        self.now = now

    @property
    def anchored(self) -> bool:
        return self.origin is not None

    @property
    def beat_seconds(self) -> float:
        return 60.0 / self.bpm

    @property
    def tick_seconds(self) -> float:
        return self.beat_seconds / TICKS_PER_BEAT

    def set_pulse(self, pulse: Pulse) -> None:
        self.bpm, self.origin = float(pulse.bpm), float(pulse.origin)

    def set_tempo(self, bpm: float, at: float) -> None:
        """Change tempo at time ``at`` keeping the musical position there continuous."""
        position = self.ticks_at(at)
        self.bpm = float(bpm)
        self.origin = at - position * self.tick_seconds

    def _origin(self) -> float:
        if self.origin is None:
            raise RuntimeError("the clock has no phase yet")
        return self.origin

    def ticks_at(self, seconds: float) -> float:
        """Exact (fractional) grid position of a time."""
        return (seconds - self._origin()) / self.tick_seconds

    def tick(self, seconds: float) -> int:
        """Nearest grid tick of a time (quantization)."""
        return int(math.floor(self.ticks_at(seconds) + 0.5))

    def seconds(self, tick: float) -> float:
        """Time of a grid position."""
        return self._origin() + tick * self.tick_seconds

    def next_boundary(self, seconds: float, unit: int) -> int:
        """First tick at or after ``seconds`` that is a multiple of ``unit`` ticks."""
        return int(math.ceil(self.ticks_at(seconds) / unit - 1e-9)) * unit


class TempoSource(ABC):
    """Decides the clock's pulse. The listener calls the hooks; both default to no change."""

    def call_started(self, clock: Clock, onset: float) -> None:
        """The first note of a call arrived at ``onset`` (seconds)."""

    def call_ended(self, clock: Clock, onsets: Sequence[float]) -> bool:
        """A call with these onset times ended; True if the pulse was changed."""
        return False


class FixedTempo(TempoSource):
    """``--bpm``; the first note of the session sets the phase, and each call's onsets
    refine it (:func:`fit_phase`: the tempo stays, the grid moves to the player's timing)."""

    def __init__(self, bpm: float) -> None:
        self.bpm = bpm

    def call_started(self, clock: Clock, onset: float) -> None:
        if not clock.anchored:
            clock.set_pulse(Pulse(self.bpm, onset))

    def call_ended(self, clock: Clock, onsets: Sequence[float]) -> bool:
        origin = fit_phase(onsets, clock)
        if origin == clock.origin:
            return False
        clock.set_pulse(Pulse(clock.bpm, origin))
        return True


class FollowTempo(TempoSource):
    """Tempo and phase fitted to each call (``--bpm`` is the first guess and the prior)."""

    def __init__(self, bpm: float, low_bpm: float = 40.0, high_bpm: float = 240.0) -> None:
        self.prior_bpm = bpm
        self.low_bpm, self.high_bpm = low_bpm, high_bpm

    def call_started(self, clock: Clock, onset: float) -> None:
        # provisional until the call ends: keep the last tempo, the call starts on a beat
        clock.set_pulse(Pulse(clock.bpm, onset))

    def call_ended(self, clock: Clock, onsets: Sequence[float]) -> bool:
        pulse = fit_pulse(onsets, self.prior_bpm, self.low_bpm, self.high_bpm)
        if pulse is None:
            return False
        clock.set_pulse(pulse)
        return True


# --- tempo and phase from onsets ----------------------------------------------------------

STEPS_PER_BEAT = 4  # onsets are fitted to sixteenth notes (triplets are not assumed)
FIT_TOLERANCE = 0.030  # seconds: an onset further than this from the grid counts as a miss
PRIOR_WEIGHT = 0.2  # cost per octave^2 away from the prior tempo (breaks x2 / x0.5 ties)
ODD_WEIGHT = 0.2  # cost per onset on an odd sixteenth (prefers x1 over x3/2 readings)


def _grid_cost(x: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Per step grid: mean squared distance of the onsets ``x`` to it (capped, in
    tolerances^2) plus a penalty for onsets on odd sixteenths (simpler readings win)."""
    pos = x[None, :] / steps[:, None]
    index = np.round(pos)
    resid = np.abs(pos - index) * steps[:, None]
    misfit = (np.minimum(resid, FIT_TOLERANCE) ** 2).mean(axis=1) / FIT_TOLERANCE**2
    odd = ((index % 2 == 1) & (resid < FIT_TOLERANCE)).mean(axis=1)
    return misfit + ODD_WEIGHT * odd


def fit_pulse(onsets: Sequence[float], prior_bpm: float = 120.0, low_bpm: float = 40.0,
              high_bpm: float = 240.0) -> Pulse | None:
    """The pulse (tempo and the time of a beat) that puts these onsets on a sixteenth grid.

    Candidate tempos come from the span between the first and each of the last onsets
    divided by whole numbers of sixteenths, plus a fine log-spaced sweep; each is scored by
    how close all onsets fall to its grid, how many land on odd sixteenths (so straight
    eighths are not read as dotted ones at 3/2 the tempo), and a log-tempo prior around
    ``prior_bpm``
    (which decides between tempos that fit equally, such as x2 and x0.5). The winner is
    refined by least squares over the onsets' grid positions. The beat phase is the one
    that puts most onsets on beats (the first onset when tied). None for < 3 onsets.
    """
    times = np.asarray(sorted(onsets), dtype=np.float64)
    if times.size < 3 or times[-1] - times[0] <= 0:
        return None
    x = times - times[0]
    step_lo = 60.0 / high_bpm / STEPS_PER_BEAT
    step_hi = 60.0 / low_bpm / STEPS_PER_BEAT
    candidates = [np.geomspace(step_lo, step_hi, 400)]
    for span in x[-3:]:
        if span > 0:
            counts = np.arange(max(1, math.floor(span / step_hi)), math.ceil(span / step_lo) + 1)
            candidates.append(span / counts)
    steps = np.concatenate(candidates)
    steps = steps[(steps >= step_lo) & (steps <= step_hi)]
    bpms = 60.0 / (steps * STEPS_PER_BEAT)
    cost = _grid_cost(x, steps) + PRIOR_WEIGHT * np.log2(bpms / prior_bpm) ** 2
    step = float(steps[int(np.argmin(cost))])
    # least squares: time = start + step * k over the onsets' grid indices k, then again
    # over the onsets close to that line (a note delayed by a busy machine drops out)
    k = np.round(x / step)
    start = times[0]
    for tolerance in (FIT_TOLERANCE, FIT_TOLERANCE, FIT_TOLERANCE / 2):
        inliers = np.abs(times - start - k * step) <= tolerance
        ks, ts = k[inliers], times[inliers]
        if ks.size >= 2 and ks.max() > ks.min():  # ordinary least squares, closed form
            kc = ks - ks.mean()
            step = float((kc * (ts - ts.mean())).sum() / (kc * kc).sum())
            start = float(ts.mean() - step * ks.mean())
            k = np.round((times - start) / step)
    phases = [np.count_nonzero((k + o) % STEPS_PER_BEAT == 0) for o in range(STEPS_PER_BEAT)]
    offset = int(np.argmax(phases))  # argmax keeps the first of ties: offset 0
    beat_index = k[0] - (k[0] + offset) % STEPS_PER_BEAT  # the beat at or before the call
    first_beat = start + beat_index * step
    return Pulse(60.0 / (step * STEPS_PER_BEAT), float(first_beat))


def fit_phase(onsets: Sequence[float], clock: Clock) -> float:
    """The clock's origin moved by the median offset of the onsets from their nearest
    sixteenth (onsets further than :data:`FIT_TOLERANCE` from it are ignored): one early or
    late note (or one delayed by a busy machine) does not set the grid for the answer, the
    call as a whole does."""
    assert clock.origin is not None
    step = clock.beat_seconds / STEPS_PER_BEAT
    x = (np.asarray(onsets, dtype=np.float64) - clock.origin) / step
    resid = (x - np.round(x)) * step
    near = resid[np.abs(resid) <= FIT_TOLERANCE]
    return clock.origin + statistics.median(near.tolist()) if near.size else clock.origin
