"""MIDI clock over a real JACK server: jam follows a test clock (on the player's port, or a
port of its own) and answers on that clock's beats and bars; a clock that stops leaves
jam at its last tempo with one warning; jam's own clock out reaches a receiver.

Timing is measured where the music is heard, as in test_call_response: a recorder
(``monitor``) connected to the clock's port stamps each tick's arrival through JACK, and
the test's beat grid is the least-squares line through those arrivals; jam's answer is
stamped by the test synth on the same clock (time.monotonic(), JACK cycle-exact).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import mido
import numpy as np
import pytest

from jackrig import Synth, wait_for
from jackrig import keyboard as open_keyboard

TOLERANCE = 0.010  # s: "on the beat"
BPM = 100.0
BEAT = 60.0 / BPM
STEP = BEAT / 24  # between clock ticks
CALL = [(0, 60), (1, 62), (2, 64), (3, 65)]  # (beat, pitch): one bar of quarter notes
HELD = 0.9
LOST = "MIDI clock lost"


def _at(deadline: float) -> None:
    while (left := deadline - time.monotonic()) > 0.002:
        time.sleep(left - 0.002)
    while time.monotonic() < deadline:
        pass


def play(events) -> None:
    """Send (time, port, message) events at their times, from this one thread."""
    saved = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)  # the recorders' reader threads delay the sends less
    try:
        for when, port, message in sorted(events, key=lambda e: e[0]):
            _at(when)
            port.send(message)
    finally:
        sys.setswitchinterval(saved)


def clock_events(port, start: float, first_beat: float, last_beat: float, with_start=True):
    """Start (optional) just before the tick of ``first_beat``, then ticks to ``last_beat``."""
    events = []
    if with_start:
        events.append((start + first_beat * BEAT - 0.002, port, mido.Message("start")))
    count = int(round((last_beat - first_beat) * 24))
    events += [(start + first_beat * BEAT + k * STEP, port, mido.Message("clock"))
               for k in range(count + 1)]
    return events


def call_events(port, start: float, first_beat: float, late: float = 0.0,
                beat: float = BEAT):
    """The call from beat ``first_beat`` of a grid that starts at ``start``."""
    events = []
    for offset, pitch in CALL:
        on = start + (first_beat + offset) * beat + late
        events.append((on, port, mido.Message("note_on", note=pitch, velocity=90)))
        events.append((on + HELD * beat, port, mido.Message("note_off", note=pitch)))
    return events


@pytest.fixture
def listener(jack_server):
    """``listener(port_name)``: a recorder connected to that JACK output."""
    made = []

    def connect(source: str) -> Synth:
        recorder = Synth("monitor")
        made.append(recorder)
        subprocess.run(["jack_connect", source, recorder.full_name], env=jack_server.env(),
                       check=True, capture_output=True)
        return recorder

    yield connect
    for recorder in made:
        recorder.close()


def tick_grid(received) -> tuple[float, float, int]:
    """(arrival of tick 0, tick interval, ticks missing): the line through the arrivals of
    the ticks after the last Start, each counted as the nearest whole number of nominal
    intervals after the first (an async JACK server short of CPU can lose an event; a lost
    tick must not shift the grid the test measures against)."""
    starts = [i for i, (_, m) in enumerate(received) if m.type == "start"]
    ticks = np.asarray([t for t, m in received[starts[-1] if starts else 0:]
                        if m.type == "clock"])
    assert len(ticks) > 48, f"only {len(ticks)} ticks arrived"
    index = np.rint((ticks - ticks[0]) / STEP)
    slope, origin = np.polyfit(index, ticks, 1)
    missing = int(index[-1]) + 1 - len(ticks)
    if missing:
        gaps = np.diff(ticks) / STEP
        odd = np.flatnonzero((gaps > 1.5) | (gaps < 0.5))
        print("irregular tick gaps (in intervals):",
              [(int(i), np.round(gaps[max(0, i - 2):i + 3], 2).tolist()) for i in odd[:10]])
    return float(origin), float(slope), missing


def sending(process) -> str:
    """How late jam's scheduler sent, from its last line (for failure messages)."""
    line = next((line for line in reversed(process.lines) if "stopping" in line), "")
    return line.partition("all notes off; ")[2].partition(", 0 dropped")[0] or "jam still running"


def answer_notes(synth):
    """(on, off, pitch) of each note received, note-ons paired with note-offs."""
    sounding, notes = {}, []
    for when, m in synth.received:
        if m.type == "note_on" and m.velocity > 0:
            sounding[m.note] = when
        elif m.type in ("note_on", "note_off") and m.note in sounding:
            notes.append((sounding.pop(m.note), when, m.note))
    assert not sounding, f"notes left sounding: {sounding}"
    return sorted(notes)


def on_grid(t: float, origin: float, unit: float) -> float:
    x = (t - origin) / unit
    return abs(x - round(x)) * unit


def check_on_the_clock(notes, origin: float, step: float, bar_beat: int, note: str = "") -> None:
    """The first note on beat ``bar_beat`` of the clock, every note on its 12-tick grid."""
    beat = 24 * step
    assert notes, "no answer"
    first = notes[0][0]
    assert abs(first - (origin + bar_beat * beat)) <= TOLERANCE, (
        f"first note {1e3 * (first - origin - bar_beat * beat):.1f} ms from beat {bar_beat}"
        f" ({note})")
    for on, _, _ in notes:
        assert on_grid(on, origin, 2 * step) <= TOLERANCE, f"a note off the grid ({note})"


@pytest.fixture
def jam(start_jam):
    return lambda *args: start_jam("--seed", "1", "--model", "rules", "--answer-bars", "1",
                                   "--align", "bar", *args)


def test_clock_on_the_input_port_puts_the_answer_on_its_bar_not_the_calls(
        jam, keyboard, synth, listener):
    process = jam("--clock-in", "same")
    monitor = listener(keyboard.full_name)
    start = time.monotonic() + 0.3
    # the call starts on beat 2 of bar 2 and 20 ms behind the clock (a follower of the
    # call would answer 20 ms late; 20 ms is not half a 50 ms grid tick, so the call is
    # quantized the same way each run): jam keeps the clock
    play(clock_events(keyboard, start, 0, 17) + call_events(keyboard, start, 5, late=0.020))
    assert synth.wait_count(1, timeout=3), process.stderr
    process.process.send_signal(signal.SIGTERM)
    assert process.wait() == 0, process.stderr
    origin, step, missing = tick_grid(monitor.received)
    assert step == pytest.approx(STEP, rel=0.002)
    lost = (f"{missing} ticks lost on the way to the monitor, {monitor.irregular} irregular "
            f"cycles; {sending(process)}")
    # the call ends at beat 8.9 + a beat of silence: the next bar line of the clock is 12
    check_on_the_clock(answer_notes(synth), origin, step, 12, lost)
    assert "MIDI clock" not in process.stderr  # neither lost nor anything else


def test_clock_on_its_own_port_then_lost_answers_go_on_at_its_last_tempo(
        jam, keyboard, synth, listener, jack_server):
    clock_port = open_keyboard("clock")
    try:
        process = jam("--clock-in", clock_port.full_name, "--bpm", "120")
        monitor = listener(clock_port.full_name)
        start = time.monotonic() + 0.3
        play(clock_events(clock_port, start, 0, 17)
             + call_events(keyboard, start, 5, late=0.020))
        assert synth.wait_count(2, timeout=3), process.stderr  # it ended at beat 16
        first_answer = answer_notes(synth)
        origin, step, missing = tick_grid(monitor.received)
        irregular = monitor.irregular
        # the ticks stopped at beat 17 (no Stop message): one warning within a second
        assert wait_for(lambda: LOST in process.stderr, 2), process.stderr
        play(call_events(keyboard, start, 19))  # on the old grid, ends at 22.9 + 1 beat
        _at(start + 28.5 * BEAT)  # the second answer is due on beats 24-28
        process.process.send_signal(signal.SIGTERM)
        assert process.wait() == 0, process.stderr
    finally:
        clock_port.close()
    lost = (f"{missing} ticks lost to the monitor, {irregular} irregular cycles; "
            f"{sending(process)}")
    check_on_the_clock(first_answer, origin, step, 12, lost)
    notes = answer_notes(synth)[len(first_answer):]
    check_on_the_clock(notes, origin, step, 24, lost)
    # a bar of the clock's 100 BPM (2.4 s), not --bpm 120 (2.0 s): the cadence ends it
    assert abs(max(off for _, off, _ in notes) - notes[0][0] - 4 * BEAT) <= TOLERANCE
    assert process.stderr.count(LOST) == 1
    said = next(line for line in process.lines if LOST in line)
    assert float(said.rsplit(", ", 1)[1].split()[0]) == pytest.approx(BPM, rel=0.005), said


def test_clock_out_sends_start_ticks_at_the_tempo_and_stop_and_answers_on_them(
        jam, keyboard, synth, listener, jack_server):
    receiver = Synth("clock-in")
    try:
        process = jam("--clock-out", receiver.full_name, "--bpm", str(BPM))
        assert receiver.wait_count(60, timeout=5), process.stderr
        origin, step, missing = tick_grid(receiver.received)
        # play a call on bar 2 of the clock as it arrives (a drummer following it)
        beats_now = (time.monotonic() - origin) / (24 * step)
        bar = 4 * (int(beats_now) // 4 + 1)
        play(call_events(keyboard, origin, bar, beat=24 * step))
        _at(origin + (bar + 12.5) * 24 * step)  # the answer is due on beats bar+8 to bar+12
        process.process.send_signal(signal.SIGTERM)
        assert process.wait() == 0, process.stderr
        received, irregular = receiver.received, receiver.irregular
    finally:
        receiver.close()
    kinds = [m.type for _, m in received]
    assert kinds[0] == "start" and kinds[-1] == "stop" and kinds.count("start") == 1
    assert set(kinds[1:-1]) == {"clock"}
    origin, step, missing = tick_grid(received)
    lost = (f"{missing} ticks lost on the way, {irregular} irregular JACK cycles; "
            f"{sending(process)}")
    assert step == pytest.approx(STEP, rel=0.01), lost  # the mean interval
    assert missing <= 0.01 * len(kinds), lost
    # the call ends at beat bar + 3.9, then a beat of silence: the answer on bar + 8
    check_on_the_clock(answer_notes(synth), origin, step, bar + 8, lost)


def test_clock_in_and_out_together_is_a_one_line_error(jam_env, keyboard, synth):
    result = subprocess.run(
        [sys.executable, "-m", "jam", "--api", "jack", "--in", keyboard.full_name, "--out",
         synth.full_name, "--model", "rules", "--clock-in", "same", "--clock-out",
         synth.full_name], env=jam_env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--clock-in and --clock-out" in lines[0], result.stderr


def test_a_clock_port_that_does_not_exist_is_a_one_line_error(jam_env, keyboard, synth):
    result = subprocess.run(
        [sys.executable, "-m", "jam", "--api", "jack", "--in", keyboard.full_name, "--out",
         synth.full_name, "--model", "rules", "--clock-in", "no such clock"],
        env=jam_env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("jam: no MIDI input matches --clock-in 'no such clock'")
    assert "Traceback" not in result.stderr
