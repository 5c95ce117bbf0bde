"""The call-and-response state machine driven with plain times (the engine has no time
source: only the times it is given), with the rule-based responder."""

from __future__ import annotations

import numpy as np
import pytest

from jam.engine.callresponse import AnswerNote, CallResponse, EngineSettings, Stop
from jam.engine.clock import Clock, FixedTempo
from jam.generators.rules import RulesGenerator
from jam.music.meter import Meter
from jam.music.theory import Key

BEAT = 0.5  # 120 BPM
CALL = [(0, 1, 67), (1, 1, 69), (2, 0.5, 71), (2.5, 0.5, 72), (3, 1, 74),
        (4, 1, 72), (5, 1, 71), (6, 1, 69), (7, 1, 67)]  # G major, 2 bars


class Driver:
    """Plays events into the engine and wakes it when it asks, as the run loop does."""

    def __init__(self, meter: Meter = Meter(), **settings) -> None:
        self.now = 0.0
        clock = Clock(120, meter)  # it has no time source: only the times it is given
        self.engine = CallResponse(RulesGenerator(), clock, FixedTempo(120),
                                   EngineSettings.defaults(meter=meter, **settings),
                                   np.random.default_rng(0))

    def play(self, start: float, call=CALL) -> list:
        out = []
        events = sorted([(start + b * BEAT, 1, p) for b, _, p in call]
                        + [(start + (b + 0.9 * d) * BEAT, 0, p) for b, d, p in call])
        for when, is_on, pitch in events:
            self.now = when
            out += self.engine.poll(when)
            if is_on:
                out += self.engine.note_on(pitch, 100, when)
            else:
                self.engine.note_off(pitch, when)
        return out

    def run_until(self, until: float) -> list:
        out = []
        while (wake := self.engine.wakeup()) is not None and wake <= until:
            self.now = max(self.now, wake)
            out += self.engine.poll(self.now)
        self.now = until
        return out + self.engine.poll(until)


def answer_notes(events: list) -> list[AnswerNote]:
    notes = [n for n in events if isinstance(n, AnswerNote)]
    assert notes, "the engine gave no answer notes"
    return notes


def test_answer_starts_on_the_next_beat_and_lasts_the_bars_asked():
    drive = Driver(answer_bars=2)
    drive.play(100.0)
    out = drive.run_until(120.0)
    notes = answer_notes(out)
    # last release at beat 7.9, one beat of silence: the call ends at 8.9; answer at beat 9
    assert notes[0].start == 9 * 12 and notes[0].on == pytest.approx(100.0 + 9 * BEAT)
    assert notes[-1].end == 9 * 12 + 2 * 48
    assert all(n.on == pytest.approx(drive.engine.clock.seconds(n.start)) for n in notes)
    assert all(n.pitch % 12 in Key(7, "major").scale for n in notes)
    assert all(n.velocity in (100, 108) for n in notes)
    assert drive.engine.state == "listening" and drive.engine.stats.answers == 1


def test_answer_as_long_as_the_call_and_aligned_to_the_bar():
    drive = Driver(align="bar")
    drive.play(0.0)
    notes = answer_notes(drive.run_until(20.0))
    assert notes[0].start == 12 * 12  # the next bar after beat 8.9
    assert notes[-1].end - notes[0].start == 2 * 48  # a 2-bar call gets a 2-bar answer


def test_notes_are_computed_only_a_lookahead_ahead():
    drive = Driver(answer_bars=4, lookahead=1.0)
    drive.play(0.0)
    drive.now = drive.engine.wakeup()
    first = drive.engine.poll(drive.now)
    assert len(first) == 1  # the first note is handed over alone
    more = answer_notes(drive.engine.poll(drive.now))
    assert max(n.on for n in more) <= drive.now + 2 * BEAT


def test_barge_in_stops_the_answer_and_listens_to_the_new_call():
    drive = Driver(answer_bars=4)
    drive.play(0.0)
    drive.run_until(6.0)
    assert drive.engine.state == "answering"
    out = drive.engine.note_on(60, 90, 6.0)
    assert out == [Stop(1)]
    assert drive.engine.state == "listening" and drive.engine.listener.in_call
    assert drive.engine.stats.barge_ins == 1


def test_barge_in_ignore_lets_the_answer_finish():
    drive = Driver(answer_bars=2, barge_in="ignore")
    drive.play(0.0)
    drive.run_until(6.0)
    assert drive.engine.note_on(60, 90, 6.0) == []
    drive.engine.note_off(60, 6.2)
    assert drive.engine.state == "answering"
    drive.run_until(20.0)
    assert drive.engine.state == "listening" and not drive.engine.listener.in_call


def test_generation_behind_the_deadline_ends_the_answer_instead_of_playing_late():
    drive = Driver(answer_bars=4)
    drive.play(0.0)
    drive.now = drive.engine.wakeup()
    first = drive.engine.poll(drive.now)
    drive.now += 3.0  # the engine thread was stalled for 3 s
    late = drive.engine.poll(drive.now)
    assert first and late == [] and drive.engine.stats.degraded == 1
    drive.run_until(30.0)
    assert drive.engine.state == "listening"


def test_end_call_controller_and_a_second_call():
    drive = Driver(end_call_cc=20, answer_bars=1, listen_silence=8.0)
    drive.play(0.0)
    assert drive.engine.state == "listening"  # 8 beats of silence not reached
    drive.now = 4.2
    notes = drive.engine.control(20, 127, drive.now)
    assert notes and notes[0].start == 9 * 12  # next beat after 4.2 s
    drive.run_until(10.0)
    drive.play(12.0)
    drive.run_until(25.0)
    assert drive.engine.stats.calls == 2 and drive.engine.stats.answers == 2


@pytest.mark.parametrize("meter, beat", [(Meter(6, 8), 18), (Meter(3, 4), 12), (Meter(2, 2), 24)])
def test_the_answer_starts_on_a_beat_of_the_meter_and_lasts_whole_bars(meter, beat):
    drive = Driver(meter, answer_bars=2)
    drive.play(0.0)
    notes = answer_notes(drive.run_until(30.0))
    # the call ends one quarter after the last release at beat 7.9: at tick 106.8
    assert notes[0].start == -(-107 // beat) * beat
    assert max(n.end for n in notes) <= notes[0].start + 2 * meter.bar_ticks
