"""Phrase-end detection, live quantization into the generator, and re-priming."""

from __future__ import annotations

import pytest

from jam.engine.clock import Clock, FixedTempo, FollowTempo
from jam.engine.listener import Listener, PhraseDetector, cut, window
from jam.generators.base import Generator
from jam.music import tokens as tk

BEAT = 0.5  # 120 BPM


def detector(**kw):
    return PhraseDetector(**{"silence_beats": 1.0, **kw})


def test_silence_after_the_last_release_ends_the_call():
    clock = Clock(120, origin=0.0)
    d = detector()
    d.note_on(60, 0.0, 0)
    d.note_on(64, 0.2, 5)
    d.note_off(60, 0.4)
    assert d.due(clock) is None  # a key is still held
    d.note_off(64, 0.45)
    assert d.due(clock) == (pytest.approx(0.45 + BEAT), "silence")
    d.note_on(65, 0.6, 14)  # playing again cancels it
    assert d.due(clock) is None


def test_sustain_pedal_holds_the_call_and_its_release_ends_it():
    clock = Clock(120, origin=0.0)
    d = detector()
    d.note_on(60, 0.0, 0)
    assert d.control(64, 127, 0.1) is None
    d.note_off(60, 0.2)
    assert d.due(clock) is None  # the pedal keeps it sounding
    assert d.control(64, 0, 1.5) == "pedal"


def test_pedal_release_with_a_key_held_does_not_end_the_call():
    d = detector()
    d.note_on(60, 0.0, 0)
    d.control(64, 127, 0.1)
    assert d.control(64, 0, 0.3) is None


def test_end_call_controller_ends_only_a_started_call():
    d = detector(end_call_cc=20)
    assert d.control(20, 127, 0.0) is None
    d.note_on(60, 0.1, 2)
    assert d.control(20, 10, 0.2) is None  # released position
    assert d.control(20, 127, 0.3) == "cc"


def test_max_call_bars_end_a_call_that_goes_on():
    clock = Clock(120, origin=0.0)
    d = detector(max_call_ticks=2 * 48)
    d.note_on(60, 0.0, 0)
    assert d.due(clock) == (pytest.approx(4.0), "max_call")  # 2 bars of 4/4 at 120 BPM


def test_silence_is_measured_in_beats_of_the_clock():
    clock = Clock(60, origin=0.0)
    d = detector(silence_beats=2.0)
    d.note_on(60, 0.0, 0)
    d.note_off(60, 1.0)
    assert d.due(clock)[0] == pytest.approx(3.0)


class Recorder(Generator):
    """Records what it is fed (a real Generator subclass, not a mock of ours)."""

    def __init__(self):
        self.fed, self.resets = [], 0

    def reset(self):
        self.fed, self.resets = [], self.resets + 1

    def feed(self, tokens):
        self.fed += list(tokens)

    def continuation(self, spec, rng):
        raise NotImplementedError


def test_each_note_on_is_fed_at_once_quantized_to_the_grid():
    gen = Recorder()
    clock = Clock(120)
    listener = Listener(gen, clock, FixedTempo(120))
    listener.note_on(60, 80, 1.0)
    assert gen.fed == [60]
    listener.note_off(60, 1.24)
    listener.note_on(62, 80, 1.26)  # half a beat later (+10 ms): tick 6
    assert gen.fed == [60, tk.shift_token(6), 62]
    listener.note_off(62, 1.49)
    listener.settle_tempo()
    call = listener.end_call(24)
    assert [(n.pitch, n.start, n.duration) for n in call.notes] == [(60, 0, 6), (62, 6, 6)]
    assert call.velocity == 80 and call.start == 0 and call.end == 12


def test_short_gaps_are_legato_and_long_ones_rests():
    gen = Recorder()
    listener = Listener(gen, Clock(120), FixedTempo(120))
    listener.note_on(60, 80, 0.0)
    listener.note_off(60, 0.1)  # released after 2 ticks, next note at 12: gap 10 > 6
    listener.note_on(62, 80, 0.5)
    assert gen.fed == [60, tk.shift_token(2), tk.REST, tk.shift_token(10), 62]
    listener.note_off(62, 0.95)  # released 1 tick early: legato
    listener.note_on(64, 80, 1.0)
    assert gen.fed[-2:] == [tk.shift_token(12), 64]


def test_a_new_call_after_a_long_silence_is_reprimed_with_one_rest():
    gen = Recorder()
    listener = Listener(gen, Clock(120), FixedTempo(120))
    listener.note_on(60, 80, 0.0)
    listener.note_off(60, 0.4)
    listener.settle_tempo()
    listener.end_call(24)
    resets = gen.resets
    listener.note_on(62, 80, 60.0)  # a minute later
    assert gen.resets == resets + 1
    assert gen.fed == [60, tk.shift_token(10), tk.REST, tk.shift_token(14),
                       tk.REST, tk.shift_token(tk.MAX_SHIFT), 62]


def test_follow_tempo_requantizes_the_call_and_reprimes():
    gen = Recorder()
    clock = Clock(120)
    listener = Listener(gen, clock, FollowTempo(120))
    beat = 60 / 90  # the player is at 90 BPM; the provisional grid is 120
    for i, b in enumerate([0, 1, 1.5, 2, 3]):
        listener.note_on(60 + i, 80, 5 + b * beat)
        listener.note_off(60 + i, 5 + (b + 0.4) * beat)
    fed_live = list(gen.fed)
    assert listener.settle_tempo()
    assert clock.bpm == pytest.approx(90)
    call = listener.end_call(48)
    assert [n.start for n in call.notes] == [0, 12, 18, 24, 36]
    assert call.requantized and gen.fed != fed_live


def test_window_starts_at_an_onset_and_cut_keeps_grammar():
    history = [60, tk.shift_token(12), tk.REST, tk.shift_token(6), 62, tk.shift_token(12)]
    assert window(history, 5) == [tk.REST, tk.shift_token(6), 62, tk.shift_token(12)]
    assert cut(history, 15) == [60, tk.shift_token(12), tk.REST, tk.shift_token(3)]
    assert cut(history, 0) == []


def test_history_stays_bounded_over_a_long_session():
    gen = Recorder()
    listener = Listener(gen, Clock(120), FixedTempo(120))
    t = 0.0
    for call in range(100):
        for i in range(8):
            listener.note_on(60 + i, 80, t)
            listener.note_off(60 + i, t + 0.2)
            t += 0.25
        listener.settle_tempo()
        listener.end_call(listener.clock.next_boundary(t + 0.5, 12))
        t += 1.0
    assert len(listener.history) <= 4 * 64 + 64
