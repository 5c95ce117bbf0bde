"""The call-and-response state machine on a fake clock, with the rule-based responder."""

from __future__ import annotations

import numpy as np
import pytest

from jam.engine.clock import Clock, FixedTempo, Meter
from jam.engine.session import AnswerNote, CallResponse, EngineSettings, Stop
from jam.generators.rules import RulesGenerator
from jam.music.theory import Key

from recording import FakeClock

BEAT = 0.5  # 120 BPM
CALL = [(0, 1, 67), (1, 1, 69), (2, 0.5, 71), (2.5, 0.5, 72), (3, 1, 74),
        (4, 1, 72), (5, 1, 71), (6, 1, 69), (7, 1, 67)]  # G major, 2 bars


def make(time: FakeClock, **settings) -> CallResponse:
    clock = Clock(120, Meter(), None, time)
    return CallResponse(RulesGenerator(), clock, FixedTempo(120),
                        EngineSettings(**settings), np.random.default_rng(0))


def play(engine: CallResponse, time: FakeClock, start: float, call=CALL) -> list:
    out = []
    events = sorted([(start + b * BEAT, 1, p) for b, _, p in call]
                    + [(start + (b + 0.9 * d) * BEAT, 0, p) for b, d, p in call])
    for when, is_on, pitch in events:
        time.now = when
        out += engine.poll(when)
        if is_on:
            out += engine.note_on(pitch, 100, when)
        else:
            engine.note_off(pitch, when)
    return out


def run_until(engine: CallResponse, time: FakeClock, until: float) -> list:
    """Wake the engine when it asks, as the run loop does, up to ``until``."""
    out = []
    while (wake := engine.wakeup()) is not None and wake <= until:
        time.now = max(time.now, wake)
        out += engine.poll(time.now)
    time.now = until
    return out + engine.poll(until)


def test_answer_starts_on_the_next_beat_and_lasts_the_bars_asked():
    time = FakeClock(100.0)
    engine = make(time, answer_bars=2)
    play(engine, time, 100.0)
    out = run_until(engine, time, 120.0)
    notes = [n for n in out if isinstance(n, AnswerNote)]
    # last release at beat 7.9, one beat of silence: the call ends at 8.9; answer at beat 9
    assert notes[0].start == 9 * 12 and notes[0].on == pytest.approx(100.0 + 9 * BEAT)
    assert notes[-1].end == 9 * 12 + 2 * 48
    assert all(n.on == pytest.approx(engine.clock.seconds(n.start)) for n in notes)
    assert all(n.pitch % 12 in Key(7, "major").scale for n in notes)
    assert all(n.velocity in (100, 108) for n in notes)
    assert engine.state == "listening" and engine.stats.answers == 1


def test_answer_as_long_as_the_call_and_aligned_to_the_bar():
    time = FakeClock(0.0)
    engine = make(time, align="bar")
    play(engine, time, 0.0)
    notes = [n for n in run_until(engine, time, 20.0) if isinstance(n, AnswerNote)]
    assert notes[0].start == 12 * 12  # the next bar after beat 8.9
    assert notes[-1].end - notes[0].start == 2 * 48  # a 2-bar call gets a 2-bar answer


def test_notes_are_computed_only_a_lookahead_ahead():
    time = FakeClock(0.0)
    engine = make(time, answer_bars=4, lookahead=1.0)
    play(engine, time, 0.0)
    time.now = engine.wakeup()
    first = engine.poll(time.now)
    assert len(first) == 1  # the first note is handed over alone
    more = engine.poll(time.now)
    assert all(n.on <= time.now + 2 * BEAT for n in more)


def test_barge_in_stops_the_answer_and_listens_to_the_new_call():
    time = FakeClock(0.0)
    engine = make(time, answer_bars=4)
    play(engine, time, 0.0)
    run_until(engine, time, 6.0)
    assert engine.state == "answering"
    out = engine.note_on(60, 90, 6.0)
    assert out == [Stop(1)]
    assert engine.state == "listening" and engine.listener.in_call
    assert engine.stats.barge_ins == 1


def test_barge_in_ignore_lets_the_answer_finish():
    time = FakeClock(0.0)
    engine = make(time, answer_bars=2, barge_in="ignore")
    play(engine, time, 0.0)
    run_until(engine, time, 6.0)
    assert engine.note_on(60, 90, 6.0) == []
    engine.note_off(60, 6.2)
    assert engine.state == "answering"
    run_until(engine, time, 20.0)
    assert engine.state == "listening" and not engine.listener.in_call


def test_generation_behind_the_deadline_ends_the_answer_instead_of_playing_late():
    time = FakeClock(0.0)
    engine = make(time, answer_bars=4)
    play(engine, time, 0.0)
    time.now = engine.wakeup()
    first = engine.poll(time.now)
    time.now += 3.0  # the engine thread was stalled for 3 s
    late = engine.poll(time.now)
    assert first and late == [] and engine.stats.degraded == 1
    run_until(engine, time, 30.0)
    assert engine.state == "listening"


def test_end_call_controller_and_a_second_call():
    time = FakeClock(0.0)
    engine = make(time, end_call_cc=20, answer_bars=1, listen_silence=8.0)
    play(engine, time, 0.0)
    assert engine.state == "listening"  # 8 beats of silence not reached
    time.now = 4.2
    notes = engine.control(20, 127, time.now)
    assert notes and notes[0].start == 9 * 12  # next beat after 4.2 s
    run_until(engine, time, 10.0)
    play(engine, time, 12.0)
    run_until(engine, time, 25.0)
    assert engine.stats.calls == 2 and engine.stats.answers == 2
