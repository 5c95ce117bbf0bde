"""The musical clock and pulse fitting, with a fake time source."""

from __future__ import annotations

import numpy as np
import pytest

from jam.engine.clock import Clock, FixedTempo, FollowTempo, Meter, fit_phase, fit_pulse


def test_ticks_and_seconds_are_inverse_at_the_tempo():
    clock = Clock(120, origin=10.0)
    assert clock.seconds(12) == pytest.approx(10.5)  # one beat at 120 BPM
    assert clock.tick(10.5 + 0.01) == 12  # nearest tick (a tick is 41.7 ms)
    assert clock.tick(10.5 + 0.03) == 13
    assert clock.ticks_at(clock.seconds(37.5)) == pytest.approx(37.5)


def test_next_boundary_is_the_next_beat_or_bar():
    clock = Clock(120, Meter(3, 4), origin=0.0)
    assert clock.next_boundary(0.0, 12) == 0
    assert clock.next_boundary(0.01, 12) == 12
    assert clock.next_boundary(0.01, clock.meter.bar_ticks) == 36  # 3/4: bar of 36 ticks


def test_meter_bar_lengths():
    assert Meter(4, 4).bar_ticks == 48
    assert Meter.parse("6/8").bar_ticks == 36 and Meter.parse("6/8").beat_ticks == 18
    assert Meter.parse("7/8").bar_ticks == 42


def test_set_tempo_keeps_the_position_where_it_changes():
    clock = Clock(120, origin=0.0)
    at = clock.seconds(30)
    clock.set_tempo(60, at)
    assert clock.ticks_at(at) == pytest.approx(30)
    assert clock.seconds(42) - at == pytest.approx(1.0)  # one beat at 60 BPM


def test_fixed_tempo_anchors_on_the_first_note_and_refines_the_phase():
    clock = Clock(120)
    tempo = FixedTempo(120)
    tempo.call_started(clock, 3.0)
    assert clock.origin == 3.0
    tempo.call_started(clock, 7.77)  # later calls do not re-anchor
    assert clock.origin == 3.0
    # the player's notes were all 4 ms late: the grid moves to them, the tempo stays
    assert tempo.call_ended(clock, [3.004 + 0.25 * k for k in range(8)])
    assert clock.origin == pytest.approx(3.004) and clock.bpm == 120


def test_fit_phase_ignores_notes_far_from_the_grid():
    clock = Clock(120, origin=0.0)
    assert fit_phase([0.002, 0.502, 1.002, 1.07], clock) == pytest.approx(0.002)


PATTERN = [0, 1, 1.5, 2, 3, 4, 4.5, 5, 5.5, 6, 7]  # quarters and eighths, in beats


@pytest.mark.parametrize("bpm", [93.0, 100.0, 120.0, 150.0, 180.0])
def test_fit_pulse_finds_tempo_and_phase(bpm):
    rng = np.random.default_rng(int(bpm))
    start = 20.0
    onsets = [start + b * 60 / bpm + rng.uniform(-0.003, 0.003) for b in PATTERN]
    pulse = fit_pulse(onsets, prior_bpm=120)
    assert pulse is not None
    assert pulse.bpm == pytest.approx(bpm, rel=0.002)
    # the beat after the call lands within 3 ms of the player's next beat
    beat = 60 / pulse.bpm
    predicted = pulse.origin + round((start + 8 * 60 / bpm - pulse.origin) / beat) * beat
    assert abs(predicted - (start + 8 * 60 / bpm)) < 0.003


def test_fit_pulse_reads_a_pickup_as_an_upbeat():
    beat = 60 / 93
    onsets = [10 + b * beat for b in (-0.5, 0, 1, 2, 2.5, 3, 4)]
    pulse = fit_pulse(onsets, prior_bpm=120)
    assert pulse.bpm == pytest.approx(93, rel=1e-6)
    assert pulse.origin == pytest.approx(10 - beat)  # the pickup is the "and" of a beat


def test_fit_pulse_prior_decides_between_half_and_double_tempo():
    # even notes at 150 BPM are eighths at 75 just as well: only the prior tells
    beat = 60 / 150
    onsets = [b * beat for b in range(8)]
    assert fit_pulse(onsets, prior_bpm=120).bpm == pytest.approx(150, rel=1e-3)
    assert fit_pulse(onsets, prior_bpm=80).bpm == pytest.approx(75, rel=1e-3)


def test_fit_pulse_does_not_double_the_tempo_for_nothing():
    # quarters at 70 read at 140 would be half notes with every other beat empty
    beat = 60 / 70
    assert fit_pulse([b * beat for b in range(8)], prior_bpm=120).bpm == pytest.approx(70, rel=1e-3)


def test_fit_pulse_takes_a_chord_as_one_onset():
    beat = 60 / 100
    onsets = [b * beat + dt for b in range(8) for dt in (0.0, 0.012, 0.020)]
    assert fit_pulse(onsets, prior_bpm=120).bpm == pytest.approx(100, rel=1e-3)


def test_fit_pulse_needs_three_onsets():
    assert fit_pulse([1.0, 1.5]) is None


def test_follow_tempo_moves_the_clock_to_the_call():
    clock = Clock(120)
    tempo = FollowTempo(120)
    onsets = [5 + b * 60 / 93 for b in PATTERN]
    tempo.call_started(clock, onsets[0])
    assert tempo.call_ended(clock, onsets)
    assert clock.bpm == pytest.approx(93, rel=1e-6)
    assert clock.ticks_at(onsets[3]) == pytest.approx(24)  # beat 2 of the call
    assert clock.origin == pytest.approx(5)


# --- tempo follow over a sweep of ordinary calls --------------------------------------------

T3 = 1 / 3
CALLS = {  # onsets in beats, with the meter the player would set
    "quarters": (Meter(4, 4), [0, 1, 2, 3, 4, 5, 6, 7]),
    "dotted": (Meter(4, 4), [0, 1.5, 2, 3, 4, 4.75, 5, 5.75, 6]),
    "eighths": (Meter(4, 4), [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 5, 6]),
    "triplets": (Meter(4, 4), [0, 1, 2, 2 + T3, 2 + 2 * T3, 3, 4, 4 + T3, 4 + 2 * T3, 5, 6]),
    "swing": (Meter(4, 4), [b + s for b in range(6) for s in (0, 2 * T3)] + [6]),
    "syncopation": (Meter(4, 4), [0, 0.5, 1.5, 2, 3, 4, 5, 5.5, 6.5, 7]),
    "waltz": (Meter(3, 4), [0, 2, 3, 6, 7, 8, 9, 11, 12]),
}
SWEEP_BPM = (60, 75, 90, 110, 135, 160, 190)
# Calls that read just as plainly at double or half their tempo, so that only the prior can
# tell (a listener could hear either): at 60 and 75 BPM, where double tempo is nearer the
# default prior of 120, those whose notes doubled are still plain quarters and eighths; at
# 190, where half tempo is nearer, those whose notes halved are still no finer than
# sixteenths. Triplets and swing do not double or halve into a plain rhythm (nor do dotted
# sixteenths halve): those calls must read right at every tempo.
PLAIN_EIGHTHS = ("quarters", "dotted", "eighths", "syncopation", "waltz")
OCTAVE_AMBIGUOUS = {(name, bpm) for name in PLAIN_EIGHTHS for bpm in (60, 75)} | {
    (name, 190) for name in PLAIN_EIGHTHS if name != "dotted"}


def _played(name: str, bpm: float) -> tuple[Meter, list[float]]:
    """The call at ``bpm`` with a player's timing spread (seeded, 5 ms)."""
    meter, beats = CALLS[name]
    rng = np.random.default_rng([sorted(CALLS).index(name), int(bpm)])
    return meter, [10.0 + b * 60 / bpm + rng.normal(0, 0.005) for b in beats]


def _read(name: str, bpm: float, prior: float) -> float:
    """The tempo FollowTempo(prior) sets for the call, as a ratio to the player's."""
    meter, onsets = _played(name, bpm)
    clock = Clock(prior, meter)
    tempo = FollowTempo(prior)
    tempo.call_started(clock, onsets[0])
    tempo.call_ended(clock, onsets)
    return clock.bpm / bpm


def _kind(ratio: float) -> str:
    if abs(ratio - 1) <= 0.02:
        return "exact"
    return "octave" if abs(ratio - 2) <= 0.04 or abs(ratio - 0.5) <= 0.01 else "wrong"


def test_follow_tempo_reads_ordinary_calls_at_the_players_tempo():
    kinds = {(name, bpm): _kind(_read(name, bpm, 120)) for name in CALLS for bpm in SWEEP_BPM}
    wrong = sorted(case for case, kind in kinds.items() if kind == "wrong")
    assert not wrong  # no 3:2, 4:3 or other misreading at all
    octave = {case for case, kind in kinds.items() if kind == "octave"}
    assert octave <= OCTAVE_AMBIGUOUS
    assert sum(kind == "exact" for kind in kinds.values()) >= 0.8 * len(kinds)


@pytest.mark.parametrize("factor", [0.8, 1.2])
def test_follow_tempo_with_a_prior_near_the_players_tempo_reads_every_call(factor):
    ratios = {(name, bpm): _read(name, bpm, factor * bpm) for name in CALLS for bpm in SWEEP_BPM}
    assert {case: round(r, 3) for case, r in ratios.items() if _kind(r) != "exact"} == {}


def test_fit_pulse_puts_the_downbeat_of_a_waltz_on_its_long_notes():
    meter, onsets = _played("waltz", 75)
    beat = 60 / 75
    pickup = onsets[1:]  # from the quarter on beat 3: the dotted half after it is a downbeat
    pulse = fit_pulse(pickup, prior_bpm=120, meter=meter)
    assert pulse.bpm == pytest.approx(75, rel=0.01)
    bars = (pickup[1] - pulse.origin) / (3 * beat)
    assert bars == pytest.approx(round(bars), abs=0.02)

