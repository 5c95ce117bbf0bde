"""The pure logic of controls from the instrument: messages -> actions, tap tempo, echoes."""

from __future__ import annotations

import mido
import numpy as np
import pytest

from jam.engine.controls import (
    PRESET,
    Action,
    ControlMap,
    EchoFilter,
    TapTempo,
    bindings,
    tap_tempo,
)
from jam.midi.controls import Binding

CONTROLS = {"temperature": "cc 74", "end_call": "note 36 ch 10", "reroll": "cc 80",
            "replay": "cc 80", "next_preset": "program ch 16"}


def cc(control, value, channel=0):
    return mido.Message("control_change", control=control, value=value, channel=channel)


def note(pitch, velocity=100, channel=0):
    return mido.Message("note_on", note=pitch, velocity=velocity, channel=channel)


def test_a_knob_gives_its_scaled_value_and_is_consumed():
    controls = ControlMap(CONTROLS)
    assert controls.handle(cc(74, 0)) == [Action("temperature", 0.1, "cc 74")]
    assert controls.handle(cc(74, 127)) == [Action("temperature", 2.0, "cc 74")]
    assert controls.handle(cc(75, 127)) is None  # not a control: the music's


def test_a_pad_triggers_on_its_note_on_only_and_its_note_off_is_consumed():
    controls = ControlMap(CONTROLS)
    assert controls.handle(note(36, channel=9)) == [Action("end_call", None, "note 36")]
    assert controls.handle(mido.Message("note_off", note=36, channel=9)) == []
    assert controls.handle(note(36, velocity=0, channel=9)) == []
    assert controls.handle(note(36, channel=0)) is None  # the keyboard's C2 stays music


def test_a_switch_cc_triggers_every_action_bound_to_it_once_per_press():
    controls = ControlMap(CONTROLS)
    pressed = controls.handle(cc(80, 127))
    assert sorted(a.name for a in pressed) == ["replay", "reroll"]
    assert controls.handle(cc(80, 127)) == []  # still down: no new press, consumed
    assert controls.handle(cc(80, 0)) == []
    assert len(controls.handle(cc(80, 100))) == 2


def test_program_changes_select_presets_unless_bound_to_next_or_previous():
    controls = ControlMap(CONTROLS)
    assert controls.handle(mido.Message("program_change", program=3)) == \
        [Action(PRESET, 3, "program 3")]
    assert controls.handle(mido.Message("program_change", program=3, channel=15)) == \
        [Action("next_preset", None, "program ch 16")]
    assert ControlMap({}).handle(mido.Message("program_change", program=0)) == \
        [Action(PRESET, 0, "program 0")]


def test_other_messages_are_never_controls():
    controls = ControlMap(CONTROLS)
    assert controls.handle(mido.Message("pitchwheel", pitch=100)) is None
    assert controls.handle(mido.Message("clock")) is None


def test_end_call_cc_is_an_alias_of_binding_end_call_to_that_cc():
    assert bindings({}, 20) == [(Binding("cc", 20), "end_call")]
    assert bindings({"end_call": "cc 20"}, 20) == [(Binding("cc", 20), "end_call")]
    both = ControlMap({"end_call": "note 36"}, 20)
    assert both.handle(cc(20, 127)) == [Action("end_call", None, "cc 20")]
    assert both.handle(note(36)) == [Action("end_call", None, "note 36")]


def test_tap_tempo_is_the_line_through_the_taps_counted_in_median_intervals():
    tapped = tap_tempo([10.0, 10.5, 11.0, 11.5, 12.0])
    assert tapped.bpm == pytest.approx(120.0) and tapped.origin == pytest.approx(10.0)
    skipped = tap_tempo([10.0, 10.5, 11.5, 12.0])  # the tap at 11.0 missed: still 120
    assert skipped.bpm == pytest.approx(120.0) and skipped.origin == pytest.approx(10.0)
    late = tap_tempo([10.0, 10.5, 11.0, 11.56, 12.0])  # one tap 60 ms late
    assert late.bpm == pytest.approx(120.0, rel=0.01)
    assert tap_tempo([1.0]) is None


def test_taps_give_a_tempo_from_the_fourth_on_and_a_long_gap_starts_over():
    taps = TapTempo()
    assert [taps.tap(t) for t in (0.0, 0.6, 1.2)] == [None, None, None]
    assert taps.tap(1.8).bpm == pytest.approx(100.0)
    assert taps.tap(10.0) is None  # more than 2 s later: a new run
    assert taps.tap(10.01) is None  # a bounce of the switch: ignored
    for t in (10.5, 11.0):
        assert taps.tap(t) is None
    assert taps.tap(11.5).bpm == pytest.approx(120.0)


@pytest.mark.parametrize("bpm", [60, 75, 93, 120, 150, 175, 200])
def test_four_taps_jittered_by_2_ms_are_within_1_percent_from_60_to_200_bpm(bpm):
    """+-2 ms: a JACK period of 128 frames (2.67 ms) of arrival jitter, or USB MIDI's
    1 ms polling on both ends (the worst seen here: 0.5 % at 200 BPM)."""
    rng = np.random.default_rng(bpm)
    beat = 60.0 / bpm
    worst = 0.0
    for _ in range(500):
        taps = TapTempo()
        result = None
        for i in range(4):  # a tap anywhere within +-2 ms of its beat
            result = taps.tap(100.0 + i * beat + rng.uniform(-0.002, 0.002))
        worst = max(worst, abs(result.bpm / bpm - 1))
    assert worst <= 0.01, f"{bpm} BPM: worst error {worst:.2%}"


def test_an_echo_is_the_same_pitch_within_the_window_and_its_note_off_goes_with_it():
    echo = EchoFilter(0.030)
    echo.sent(1.000, 60, tag=1)
    echo.sent(1.000, 64, channel=9, tag="metronome")
    assert not echo.is_echo(0.999, 60, 0)  # before it was sent: the player
    assert echo.is_echo(1.010, 60, 0)
    assert not echo.is_echo(1.012, 60, 0)  # one echo per note sent
    assert not echo.is_echo(1.010, 64, 0)  # a click comes back on its channel only
    assert echo.is_echo(1.010, 64, 9)
    assert echo.is_echo_off(60) and not echo.is_echo_off(60)
    echo.sent(2.000, 62)
    assert not echo.is_echo(2.031, 62, 0)  # too late: the player
    assert echo.echoes == 2


def test_cancelled_notes_have_no_echo_and_a_zero_window_is_off():
    echo = EchoFilter(0.030)
    echo.sent(5.0, 60, tag=1)
    echo.sent(5.0, 62, tag=2)
    echo.unsend(4.0, tag=1)
    assert not echo.is_echo(5.01, 60, 0)
    assert echo.is_echo(5.01, 62, 0)
    off = EchoFilter(0)
    off.sent(1.0, 60)
    assert not off.is_echo(1.001, 60, 0)


def test_what_was_sent_is_forgotten_when_no_note_comes_in_for_a_long_time():
    echo = EchoFilter(0.030)
    for i in range(10_000):  # a metronome clicking for over an hour with nobody playing
        echo.sent(i * 0.5, 76, channel=9, tag="metronome")
    assert len(echo) <= 256
    assert echo.is_echo(4999.51, 76, 9)
