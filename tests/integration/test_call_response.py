"""Call and response over a real JACK server: a test keyboard plays a phrase into ``jam``
(a subprocess), a test synth records the answer with arrival times.

The call's pulse is taken where the musician hears it: a second recorder (``monitor``) is
connected to the keyboard, so call and answer are both timed on arrival through JACK, the
same way: each recorder stamps an event with the JACK cycle that delivered it, in a
process of its own (``jackrig.Synth``), so no Python thread's polling or GIL wait of this
process is in the figures. The reference beat is the call's nominal rhythm fitted to the
monitor's arrival times (mean offset).

The timing tests print one line each (``timing ...``: the first note's distance from the
beat, every note's signed distance from the grid, in ms; shown with ``pytest -rP`` and on
failure); docs/performance.md has the command and the figures of 20 runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from importlib import resources

import mido
import pytest

from jackrig import Synth, wait_for

TOLERANCE = 0.010  # s: the acceptance bound for "on the beat" and "on the grid"
TICKS = 12  # grid ticks per beat

# a 2-bar phrase in C major: (beat, length in beats, pitch), keys released a bit early
PHRASE = [(0, 1, 60), (1, 1, 62), (2, 0.5, 64), (2.5, 0.5, 65), (3, 1, 67), (4, 1, 65),
          (5, 1, 64), (6, 1, 62), (7, 1, 60)]
HELD = 0.9  # fraction of each note's length the key is down


def _has_default_model() -> bool:
    path = resources.files("jam.models") / "default.onnx"
    return path.is_file()


MODELS = ["rules", pytest.param(None, id="default", marks=pytest.mark.skipif(
    not _has_default_model(), reason="models/default.onnx is not built yet"))]


def _at(deadline: float) -> None:
    """Wait until ``deadline`` (sleep, then spin the last 2 ms): the player's timing."""
    while (left := deadline - time.monotonic()) > 0.002:
        time.sleep(left - 0.002)
    while time.monotonic() < deadline:
        pass


def play(keyboard, phrase, bpm: float, start: float) -> None:
    """Play ``phrase`` from ``start`` (monotonic seconds)."""
    beat = 60.0 / bpm
    events = sorted([(start + b * beat, 1, p) for b, _, p in phrase]
                    + [(start + (b + d * HELD) * beat, 0, p) for b, d, p in phrase])
    for when, is_on, pitch in events:
        _at(when)
        kind = "note_on" if is_on else "note_off"
        keyboard.send(mido.Message(kind, note=pitch, velocity=90 if is_on else 0))


@pytest.fixture
def monitor(jack_server, keyboard):
    """A recorder connected to the test keyboard: the call as it arrives through JACK."""
    recorder = Synth("monitor")
    subprocess.run(["jack_connect", keyboard.full_name, recorder.full_name],
                   env=jack_server.env(), check=True, capture_output=True)
    yield recorder
    recorder.close()


def call_beat_zero(monitor, bpm: float, phrase=PHRASE) -> float:
    """Arrival time of the call's beat 0: the mean of its note-ons' arrivals minus their
    nominal offsets in the phrase."""
    assert monitor.wait_count(len(phrase), timeout=5,
                              where=lambda m: m.type == "note_on" and m.velocity > 0)
    ons = [t for t, m in monitor.received if m.type == "note_on" and m.velocity > 0]
    assert len(ons) == len(phrase), f"the monitor heard {len(ons)} notes of {len(phrase)}"
    beat = 60.0 / bpm
    return sum(t - b * beat for t, (b, _, _) in zip(ons, phrase)) / len(phrase)


def off_grid(t: float, origin: float, unit: float) -> float:
    """Distance (s) of ``t`` from the nearest multiple of ``unit`` after ``origin``."""
    return abs(grid_error(t, origin, unit))


def grid_error(t: float, origin: float, unit: float) -> float:
    """``t`` minus the nearest multiple of ``unit`` after ``origin`` (s; > 0: late)."""
    x = (t - origin) / unit
    return (x - round(x)) * unit


def notes_of(received):
    """(on time, off time, pitch) of each note, pairing note-ons with note-offs in order."""
    open_notes, notes = {}, []
    for when, m in received:
        if m.type == "note_on" and m.velocity > 0:
            assert m.note not in open_notes, f"note {m.note} started twice"
            open_notes[m.note] = when
        elif m.type in ("note_on", "note_off") and m.note in open_notes:
            notes.append((open_notes.pop(m.note), when, m.note))
    return sorted(notes), open_notes


@pytest.fixture
def jam(start_jam):
    """``jam(*args)``: jam in call mode between the test keyboard and synth, seeded."""
    return lambda *args: start_jam("--seed", "1", *args)


def quiet_for(synth, seconds: float, timeout: float) -> bool:
    """Wait until something was received and then nothing for ``seconds``."""
    def quiet() -> bool:
        got = list(synth.received)
        return bool(got) and time.monotonic() - got[-1][0] >= seconds
    return wait_for(quiet, timeout, interval=0.05)


def answer_to(jam_process, keyboard, synth, monitor, bpm: float, bars: int,
              phrase=PHRASE) -> float:
    """Play the phrase, wait for the whole answer, stop jam; the call's beat 0."""
    play(keyboard, phrase, bpm, time.monotonic() + 0.3)
    assert quiet_for(synth, 1.5, timeout=8 + bars * 4 * 60 / bpm), jam_process.stderr
    jam_process.process.send_signal(signal.SIGTERM)
    assert jam_process.wait() == 0, jam_process.stderr
    return call_beat_zero(monitor, bpm, phrase)


def check_answer(synth, monitor, stderr: str, beat_zero: float, bpm: float,
                 bars: int) -> list:
    """The acceptance checks common to fixed and follow tempo; prints the timing line;
    returns the notes."""
    notes, unfinished = notes_of(synth.received)
    assert notes and not unfinished, stderr
    beat = 60.0 / bpm
    first = notes[0][0]
    on_beat = off_grid(first, beat_zero, beat)
    errors = [grid_error(on, beat_zero, beat / TICKS) for on, _, _ in notes]
    worst = max(abs(e) for e in errors)
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split("::")[-1].split(" ")[0]
    print(f"timing {test}: first note {on_beat * 1e3:.2f} ms off the beat, worst "
          f"{worst * 1e3:.2f} ms off the grid; notes (ms): "
          + " ".join(f"{e * 1e3:+.2f}" for e in errors)
          + f"; irregular cycles with input {synth.irregular}/{monitor.irregular}")
    assert first > beat_zero + 8 * beat, stderr  # after the 2-bar call and its silence
    assert on_beat <= TOLERANCE, f"first note not on a beat; {stderr}"
    assert worst <= TOLERANCE, f"a note off the grid; {stderr}"  # says if jam sent late
    assert max(off for _, off, _ in notes) <= first + bars * 4 * beat + TOLERANCE, stderr
    return notes


@pytest.mark.parametrize("model", MODELS)
def test_answer_at_120_bpm_starts_on_the_beat_stays_on_the_grid_and_ends(
        jam, keyboard, synth, monitor, model):
    bars = 2
    process = jam("--answer-bars", str(bars), *(["--model", model] if model else []))
    beat_zero = answer_to(process, keyboard, synth, monitor, 120.0, bars)
    notes = check_answer(synth, monitor, process.stderr, beat_zero, 120.0, bars)
    if model == "rules":  # it ends with a cadence note that lasts to the end
        assert max(off for _, off, _ in notes) >= notes[0][0] + bars * 2.0 - TOLERANCE


@pytest.mark.parametrize("model", MODELS)
def test_tempo_follow_answers_a_call_at_93_bpm_in_its_pulse(jam, keyboard, synth, monitor,
                                                           model):
    bars = 2
    process = jam("--tempo", "follow", "--answer-bars", str(bars),
                  *(["--model", model] if model else []))
    beat_zero = answer_to(process, keyboard, synth, monitor, 93.0, bars)
    notes = check_answer(synth, monitor, process.stderr, beat_zero, 93.0, bars)
    if model == "rules":  # its cadence lasts to the end: 2 bars of the player's tempo
        end = max(off for _, off, _ in notes)
        assert abs(end - notes[0][0] - bars * 4 * 60 / 93) <= TOLERANCE


def test_tempo_follow_reads_plain_quarters_at_90_bpm_without_a_tempo_given(
        jam, keyboard, synth, monitor):
    """Eight quarter notes at 90 BPM, no --bpm (the first guess stays 120): the answer is
    on the player's beat and grid at 90, not at 135 (a 3:2 misreading)."""
    quarters = [(b, 1, p) for b, p in enumerate([60, 62, 64, 65, 67, 65, 64, 62])]
    process = jam("--tempo", "follow", "--answer-bars", "1", "--model", "rules")
    beat_zero = answer_to(process, keyboard, synth, monitor, 90.0, 1, quarters)
    check_answer(synth, monitor, process.stderr, beat_zero, 90.0, 1)


def test_barge_in_stops_the_answer_with_note_offs(jam, keyboard, synth):
    process = jam("--model", "rules", "--answer-bars", "4")
    play(keyboard, PHRASE, 120.0, time.monotonic() + 0.3)
    assert synth.wait_count(1, timeout=6), process.stderr
    first = synth.received[0][0]

    def onset_after_1_s() -> float | None:  # a note of the answer starting 1 s into it
        return next((t for t, m in synth.received
                     if t > first + 1.0 and m.type == "note_on" and m.velocity > 0), None)

    assert wait_for(lambda: onset_after_1_s() is not None, 5), process.stderr
    _at(onset_after_1_s() + 0.02)  # barge in while that note sounds
    barge = time.monotonic()
    keyboard.send(mido.Message("note_on", note=72, velocity=90))
    _at(barge + 1.5)  # the 4-bar answer would still be playing
    process.process.send_signal(signal.SIGTERM)
    assert process.wait() == 0, process.stderr
    assert ", 1 barge-ins," in process.stderr  # jam saw it (its last line counts them)
    received = [(t, m) for t, m in synth.received if m.type in ("note_on", "note_off")]
    late_ons = [t - barge for t, m in received
                if t > barge + TOLERANCE and m.type == "note_on" and m.velocity > 0]
    assert late_ons == []  # nothing new after the barge-in
    notes, unfinished = notes_of(received)
    assert not unfinished
    sounding = [off - barge for on, off, _ in notes if on < barge < off]
    assert len(sounding) >= 1, notes  # the note it barged into, at least
    assert max(sounding) <= 0.05, sounding  # cut at once, not at note end
