"""The musical clock and pulse fitting, with a fake time source."""

from __future__ import annotations

import numpy as np
import pytest

from jam.engine.clock import Clock, FixedTempo, FollowTempo, Meter, fit_phase, fit_pulse

from recording import FakeClock


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
    assert Meter.parse("6/8").bar_ticks == 36 and Meter.parse("6/8").beats_per_bar == 3
    assert Meter.parse("7/8").bar_ticks == 42


def test_set_tempo_keeps_the_position_where_it_changes():
    clock = Clock(120, origin=0.0)
    at = clock.seconds(30)
    clock.set_tempo(60, at)
    assert clock.ticks_at(at) == pytest.approx(30)
    assert clock.seconds(42) - at == pytest.approx(1.0)  # one beat at 60 BPM


def test_fake_time_source_is_what_now_reads():
    fake = FakeClock(5.0)
    clock = Clock(100, now=fake)
    assert clock.now() == 5.0
    fake.now = 6.0
    assert clock.now() == 6.0


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
    beat = 60 / 70
    onsets = [b * beat for b in PATTERN]
    assert fit_pulse(onsets, prior_bpm=120).bpm == pytest.approx(140, rel=1e-6)
    assert fit_pulse(onsets, prior_bpm=70).bpm == pytest.approx(70, rel=1e-6)


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
