"""Musical time: grid ticks <-> monotonic seconds, the meter, and where the pulse comes from.

A :class:`Clock` is one linear map: ``origin`` is the time (seconds, in the timebase of the
times its owner passes in, live :func:`time.monotonic`) of tick 0, which is also a downbeat, and
``bpm`` the tempo of quarter-note beats. Ticks are :data:`jam.music.tokens.TICKS_PER_BEAT`
per quarter note.

Who sets the pulse is a :class:`TempoSource`, called by the listener at the start and end
of every call:

- :class:`FixedTempo` (``--tempo fixed``): the tempo is ``--bpm``; the first note of the
  session sets the phase (that note is a downbeat), and each call's onsets refine it.
- :class:`FollowTempo` (``--tempo follow``): tempo, beat and downbeat are fitted to the
  onsets of each call in the clock's meter (:func:`fit_pulse`), so the answer continues
  the player's pulse.
- An external MIDI clock (24 PPQN, start/stop/continue) plugs in as another source: it
  moves the clock with :meth:`Clock.set_tempo` from its own messages and ignores calls.
"""

from __future__ import annotations

import functools
import math
import statistics
from abc import ABC
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np

from jam.music.meter import Meter
from jam.music.tokens import TICKS_PER_BEAT


@dataclass(frozen=True)
class Pulse:
    """A tempo and the time of one downbeat (seconds)."""

    bpm: float
    origin: float


class Clock:
    """Grid ticks <-> seconds at one tempo. Not thread-safe: owned by the engine thread."""

    def __init__(self, bpm: float, meter: Meter = Meter(), origin: float | None = None) -> None:
        if bpm <= 0:
            raise ValueError("bpm must be positive")
        self.bpm = float(bpm)
        self.meter = meter
        self.origin = origin  # None: no phase yet (set by the first call)

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
    """Tempo, beat and downbeat fitted to each call in the clock's meter (``--bpm`` is the
    first guess and the prior)."""

    def __init__(self, bpm: float, low_bpm: float = 40.0, high_bpm: float = 240.0) -> None:
        self.prior_bpm = bpm
        self.low_bpm, self.high_bpm = low_bpm, high_bpm

    def call_started(self, clock: Clock, onset: float) -> None:
        # provisional until the call ends: keep the last tempo, the call starts on a beat
        clock.set_pulse(Pulse(clock.bpm, onset))

    def call_ended(self, clock: Clock, onsets: Sequence[float]) -> bool:
        pulse = fit_pulse(onsets, self.prior_bpm, self.low_bpm, self.high_bpm, clock.meter)
        if pulse is None:
            return False
        clock.set_pulse(pulse)
        return True


# --- tempo and phase from onsets ----------------------------------------------------------

STEPS_PER_BEAT = 4  # fit_phase moves the grid to the onsets' nearest sixteenths
FIT_TOLERANCE = 0.030  # seconds: an onset further than this from the grid counts as a miss
CHORD = 0.035  # seconds: onsets closer than this are one event (a chord, a spread chord)
TEMPO_STEP = 1.02  # ratio between neighbouring first guesses of the tick length
NEAR = 0.35  # of a lattice step: events further from a guess's line do not fit it
SAME_TEMPO = 1.002  # grids closer in tempo than this ratio are one
SHORTLIST = 6  # grids scored again over the bar, with the timing of each note
# what a reading costs, per onset (averaged over the call) unless said otherwise; measured
# on calls of real tunes and on the sweep in tests/unit/test_clock.py
TRIPLET_COST = 0.8  # on a triplet of the beat (on the sixteenth grid: nothing)
OFF_GRID_COST = 1.42  # anywhere else on the 12-tick grid
SYNCOPATION = 0.88  # per metrical level a note is held across (Longuet-Higgins & Lee)
EMPTY_BEAT = 0.96  # per beat without an onset, averaged over the beats of the call
TIMING_SD = 0.026  # seconds: a player's spread around the grid (misfit (error / this)^2)
MISFIT_CAP = 4.0  # one stray note costs at most this much misfit
PRIOR_WEIGHT = 0.3  # per octave of tempo away from the prior, for the whole call


class _Metre(NamedTuple):
    """A metrical grid (one bar, or one beat) as tables over its ticks."""

    cost: np.ndarray  # [tick, held]: an onset there held that many ticks (capped at bar + 1)
    on_beat: np.ndarray  # [tick]: a beat starts there
    beat: int  # ticks


@functools.lru_cache(maxsize=16)
def _metre(bar: int, beat: int, compound: bool) -> _Metre:
    """The grid of a bar of ``bar`` ticks with beats of ``beat`` ticks (``bar == beat``: one
    beat). Each tick has a strength, the number of levels -- sixteenth, eighth, beat, half
    bar, bar -- that start there (a triplet of a simple beat counts as an eighth, -1 is off
    both grids). An onset on the sixteenth grid costs nothing, on a triplet
    :data:`TRIPLET_COST` (a call in triplets or swing still reads as one: the other
    readings cost more), elsewhere :data:`OFF_GRID_COST`; a note held across a stronger
    tick than its own is a syncopation (Longuet-Higgins & Lee) and costs per level of
    difference. That is what a reading off by 3:2 pays: it turns the player's beats into
    off-beats held across its beats."""
    periods = [bar] + ([bar // 2] if bar % (2 * beat) == 0 and bar > 2 * beat else [])
    periods += [beat] if beat < bar else []
    sub = beat // 3 if compound else beat // 2
    while sub >= 3 and periods[-1] % sub == 0:
        periods.append(sub)
        sub //= 2
    ticks = np.arange(bar)
    strength = np.full(bar, -1)
    for rank, period in enumerate(reversed(periods)):
        strength[ticks % period == 0] = rank
    cost = np.where(strength >= 0, 0.0, OFF_GRID_COST)
    if not compound and beat % TICKS_PER_BEAT == 0:  # a beat of a quarter or more
        triplet = (ticks % (beat // 3) == 0) & (ticks % beat != 0)
        strength[triplet] = len(periods) - 2 - periods.index(beat)  # as an eighth
        cost[triplet] = TRIPLET_COST
    inside = np.full((bar, bar + 2), -1)  # strongest tick strictly inside (tick, tick + held)
    for held in range(2, bar + 2):
        inside[:, held] = np.maximum(inside[:, held - 1], strength[(ticks + held - 1) % bar])
    syncopation = np.maximum(inside - strength[:, None], 0)
    return _Metre(cost[:, None] + SYNCOPATION * syncopation, ticks % beat == 0, beat)


def _events(onsets: Sequence[float]) -> np.ndarray:
    """Sorted onset times, the notes of a chord (within :data:`CHORD`) one event at its
    first note."""
    times = np.sort(np.asarray(onsets, dtype=np.float64))
    return times[np.concatenate([[True], np.diff(times) > CHORD])] if times.size else times


def _least_squares(ticks: np.ndarray, times: np.ndarray, weights: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``ticks``: the tick length and start of the weighted least-squares line
    time = start + length * tick (closed form)."""
    total = weights.sum(axis=1)
    mean_k = (weights * ticks).sum(axis=1) / total
    mean_t = (weights * times).sum(axis=1) / total
    centred = ticks - mean_k[:, None]
    spread = np.maximum((weights * centred * centred).sum(axis=1), 1e-12)
    length = (weights * centred * (times - mean_t[:, None])).sum(axis=1) / spread
    return length, mean_t - length * mean_k


class _Grids(NamedTuple):
    """Candidate grids of 12 ticks a beat through a call's events, one per row."""

    length: np.ndarray  # seconds per tick
    start: np.ndarray  # time of tick 0
    ticks: np.ndarray  # each event's exact (fractional) tick
    step: np.ndarray  # ticks of the lattice the events were rounded to

    def rounded(self) -> np.ndarray:
        """Each event's tick, rounded to the grid's lattice."""
        return (self.step * np.rint(self.ticks / self.step)).astype(np.int64)


@functools.lru_cache(maxsize=4)
def _guesses(low_bpm: float, high_bpm: float) -> np.ndarray:
    """First guesses of the tick length: log-spaced over the tempo range."""
    shortest, longest = 60.0 / high_bpm / TICKS_PER_BEAT, 60.0 / low_bpm / TICKS_PER_BEAT
    count = int(math.log(longest / shortest) / math.log(TEMPO_STEP)) + 2
    return np.geomspace(shortest, longest, count)


def _lattices(times: np.ndarray, length: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per tick length: the coarsest lattice the events fit -- sixteenths (3 ticks),
    triplet eighths (4) or single ticks (1), whichever their phases on it agree on best
    (the circular mean resultant, ties to the coarser) -- where it starts (the mean's
    angle) and how well they agree (0 to 1)."""
    angle = (2 * math.pi / TICKS_PER_BEAT) * (times - times[0]) / length[:, None]
    beat = np.cos(angle) + 1j * np.sin(angle)
    triplet = beat * beat * beat  # phase on a triplet eighth
    sixteenth = triplet * beat
    tick = sixteenth * sixteenth * sixteenth
    mean = np.stack([sixteenth.mean(axis=1), triplet.mean(axis=1), tick.mean(axis=1)])
    which = np.argmax(np.abs(mean), axis=0)
    best = mean[which, np.arange(length.size)]
    step = np.array([3.0, 4.0, 1.0])[which]
    return step, times[0] + np.angle(best) / (2 * math.pi) * step * length, np.abs(best)


def _fit_lines(times: np.ndarray, length: np.ndarray, start: np.ndarray, step: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Each line (tick length, start) moved to the least-squares line through the events
    rounded to it on their lattice, leaving out events further than :data:`NEAR` of a
    step from it."""
    exact = (times - start[:, None]) / (step * length)[:, None]
    near = np.abs(exact - np.rint(exact)) <= NEAR
    near[near.sum(axis=1) < 2] = True
    return _least_squares(step[:, None] * np.rint(exact), times, near.astype(np.float64))


def _distinct(length: np.ndarray, fit: np.ndarray, shortest: float, longest: float
              ) -> np.ndarray:
    """Indices of the best-fitting grid of each tempo (within :data:`SAME_TEMPO`) whose
    tick length is in range (a degenerate fit's is not)."""
    order = np.argsort(-fit, kind="stable")
    order = order[(length[order] >= shortest) & (length[order] <= longest)]
    tempo = np.rint(np.log(length[order]) / math.log(SAME_TEMPO))
    return order[np.unique(tempo, return_index=True)[1]]


def _grids(times: np.ndarray, low_bpm: float, high_bpm: float) -> _Grids:
    """Candidate grids through the events, one from each first guess of the tick length.

    The events are rounded not to single ticks (at 190 BPM a tick is 26 ms: a player's
    spread alone crosses half of it) but to the coarsest lattice they fit
    (:func:`_lattices`), so a call in straight sixteenths and one in triplets are each
    rounded robustly; each event is rounded on its own (rounding the intervals between
    events would add two errors up). Least squares then fits the line through them.
    Guesses that end on the same tempo are one grid."""
    guesses = _guesses(low_bpm, high_bpm)
    step, start, fit = _lattices(times, guesses)
    length, start = _fit_lines(times, guesses, start, step)
    keep = _distinct(length, fit, guesses[0] / TEMPO_STEP, guesses[-1] * TEMPO_STEP)
    length, start = length[keep], start[keep]
    return _Grids(length, start, (times - start[:, None]) / length[:, None], step[keep][:, None])


def _misfit(error: np.ndarray) -> np.ndarray:
    """The cost of onsets this far (seconds) from their grid positions: squared in
    :data:`TIMING_SD`, capped (one stray note costs as much as any other stray note)."""
    return np.minimum((error / TIMING_SD) ** 2, MISFIT_CAP)


def _beat_costs(ticks: np.ndarray, held: np.ndarray, metre: _Metre) -> np.ndarray:
    """Per grid (a row of whole event ticks) and beat phase (ticks from a beat to tick 0):
    the mean cost of the events on :func:`_metre`'s one-beat grid and of the empty beats.

    Cheap enough for every grid: the events are counted per (tick in the beat, held) and
    the counts multiplied by the cost of each such cell at each phase."""
    beat, width = metre.cost.shape
    grids, events = ticks.shape
    cell = (ticks % beat) * width + np.minimum(held, width - 1)
    counts = np.bincount((cell + np.arange(grids)[:, None] * beat * width).ravel(),
                         minlength=grids * beat * width).reshape(grids, beat * width)
    phase = np.arange(beat)
    shifted = metre.cost[(phase[:, None] + phase) % beat].transpose(0, 2, 1)  # tick, held, phase
    cost = counts @ shifted.reshape(beat * width, beat) / events
    at = counts.reshape(grids, beat, width).sum(axis=2)  # events per tick of the beat
    filled = at[:, (-phase) % beat]  # (two events on one beat would count twice: capped)
    beats = (ticks[:, -1:] + phase) // beat - (ticks[:, :1] + phase + beat - 1) // beat + 1
    return cost + EMPTY_BEAT * (1 - np.minimum(filled, beats) / np.maximum(beats, 1))


def _bar_costs(grids: _Grids, held: np.ndarray, metre: _Metre, phases: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per grid and each of its bar phases (ticks from a downbeat to tick 0): the mean cost
    of the events on :func:`_metre`'s bar, each event on the neighbouring lattice point
    (below or above) that costs less with its timing misfit, and of the empty beats.
    Returns the least cost per grid, its phase and the events' ticks."""
    bar, width = metre.cost.shape
    ticks, step = grids.ticks, grids.step
    below = step * np.floor(ticks / step)
    options = np.stack([below, below + step])  # option, grid, event
    misfit = _misfit((ticks - options) * grids.length[:, None])
    position = (options.astype(np.int64)[..., None] + phases[:, None, :]) % bar  # ..., phase
    cell = position * width + np.minimum(held, width - 1)[..., None]
    each = misfit[..., None] + metre.cost.ravel()[cell]
    upper = each[1] < each[0]
    events = ticks.shape[1]
    cost = np.where(upper, each[1], each[0]).sum(axis=1) / events
    filled = np.where(upper, metre.on_beat[position[1]], metre.on_beat[position[0]]).sum(axis=1)
    chosen = (below[..., None] + step[..., None] * upper).astype(np.int64)  # grid, event, phase
    first, last = chosen[:, 0] + phases, chosen[:, -1] + phases
    beats = last // metre.beat - (first + metre.beat - 1) // metre.beat + 1
    cost += EMPTY_BEAT * (1 - np.minimum(filled, beats) / np.maximum(beats, 1))
    best = np.argmin(cost, axis=1)
    rows = np.arange(cost.shape[0])
    return cost[rows, best], phases[rows, best], chosen[rows, :, best]


class _Readings(NamedTuple):
    """The shortlisted readings of a call, one per row."""

    cost: np.ndarray
    length: np.ndarray  # seconds per tick
    start: np.ndarray  # time of tick 0
    phase: np.ndarray  # ticks from a downbeat to tick 0
    ticks: np.ndarray  # each event's tick


def _readings(times: np.ndarray, prior_bpm: float, low_bpm: float, high_bpm: float,
              meter: Meter) -> _Readings | None:
    """Every grid scored over one beat (its events rounded to its lattice), with its
    timing misfit and the prior; the best :data:`SHORTLIST` again over the bar, at their
    two best beat phases, each event on the better of its two neighbouring lattice
    points."""
    grids = _grids(times, low_bpm, high_bpm)
    if not grids.length.size:
        return None
    nearest = grids.rounded()
    held = np.diff(nearest, axis=1, append=nearest[:, -1:])  # the last note: not known
    misfit = _misfit((grids.ticks - nearest) * grids.length[:, None]).mean(axis=1)
    bpm = 60.0 / (grids.length * TICKS_PER_BEAT)
    prior = PRIOR_WEIGHT * np.abs(np.log2(bpm / prior_bpm))
    beat, bar = meter.beat_ticks, meter.bar_ticks
    by_beat = _beat_costs(nearest, held, _metre(beat, beat, meter.compound))
    short = np.argsort(prior + misfit + by_beat.min(axis=1))[:SHORTLIST]
    beat_phases = np.argsort(by_beat[short], axis=1)[:, :2]
    downbeats = beat * np.arange(max(1, bar // beat))
    phases = (beat_phases[:, :, None] + downbeats).reshape(short.size, -1)
    shortlisted = _Grids(*(field[short] for field in grids))
    by_bar, phase, chosen = _bar_costs(shortlisted, held[short],
                                       _metre(bar, beat, meter.compound), phases)
    return _Readings(prior[short] + by_bar, shortlisted.length, shortlisted.start, phase, chosen)


def fit_pulse(onsets: Sequence[float], prior_bpm: float = 120.0, low_bpm: float = 40.0,
              high_bpm: float = 240.0, meter: Meter = Meter()) -> Pulse | None:
    """The pulse -- tempo, and the time of a downbeat -- a listener would hear in these
    onsets (seconds), in ``meter``.

    Every grid of 12 ticks a beat that the onsets fit (:func:`_grids`: straight sixteenths
    and triplets both lie on it) is a reading of the call, and a reading costs what a
    listener would find odd in it (:func:`_metre`): onsets off the sixteenth grid
    (triplets a little, other ticks more), notes held across a stronger beat of the bar
    than their own (syncopations: a long note crosses the strongest), beats without an
    onset, and the timing misfit. A reading off by 3:2 -- quarters at 90 BPM heard at 135,
    a waltz at 75 heard at 112.5 -- turns the player's beats into syncopated off-beats or
    triplets, and loses to the player's own. What the rhythm leaves open, such as even
    notes that are quarters or eighths at half the tempo, the log-tempo prior around
    ``prior_bpm`` settles. The downbeat is where the bar has the fewest syncopations (of
    equals, the one at the call's start or just before); tempo and downbeat come from
    least squares over the winning reading's ticks. Note lengths count as the intervals
    between onsets (a note lasts, to the ear, until the next one); the notes of a chord
    count once (:data:`CHORD`). None for fewer than three events."""
    times = _events(onsets)
    if times.size < 3:
        return None
    readings = _readings(times, prior_bpm, low_bpm, high_bpm, meter)
    if readings is None:
        return None
    best = int(np.argmin(readings.cost))
    ticks = readings.ticks[best][None, :]
    near = np.abs(times - readings.start[best] - readings.length[best] * ticks) <= FIT_TOLERANCE
    near[near.sum(axis=1) < 2] = True
    length, start = (float(v[0]) for v in _least_squares(ticks, times, near.astype(np.float64)))
    return Pulse(60.0 / (length * TICKS_PER_BEAT), start - float(readings.phase[best]) * length)


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
