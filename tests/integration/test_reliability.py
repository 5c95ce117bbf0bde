"""jam attacked the way a stage does, over a real JACK server with jam as a subprocess:
signals in the middle of an answer (SIGINT, SIGTERM, SIGHUP, SIGKILL then ``jam panic``),
streams of random and malformed bytes, a flood of messages, and a soak. The test synth is
the checker: every note-on and note-off it receives is tracked per channel
(``stagerig.check_notes``), and no test ends with a note still sounding there.

Thru-mode SIGINT/SIGTERM with held keys is in test_thru.py, errors inside the run loop in
test_runner.py, pulled cables in test_pulled_cable.py, a fixed list of malformed input in
test_malformed_input.py; these are the call mode's answers under the same attacks.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import mido
import pytest

from jackrig import wait_for
from stagerig import all_notes_ended, check_notes, jack_clients

CALL = [60, 62, 64, 65]  # quarter notes at 120 BPM
BEAT = 0.5


def _at(deadline: float) -> None:
    while (left := deadline - time.monotonic()) > 0.002:
        time.sleep(left - 0.002)
    while time.monotonic() < deadline:
        pass


def play(keyboard, pitches=CALL, start: float | None = None) -> None:
    """Quarter notes at 120 BPM from ``start`` (default: 0.1 s from now), keys held 90 %."""
    start = time.monotonic() + 0.1 if start is None else start
    for i, pitch in enumerate(pitches):
        _at(start + i * BEAT)
        keyboard.send(mido.Message("note_on", note=pitch, velocity=90))
        _at(start + (i + 0.9) * BEAT)
        keyboard.send(mido.Message("note_off", note=pitch, velocity=0))


def is_note_on(message) -> bool:
    return message.type == "note_on" and message.velocity > 0


def sounding_note(synth, timeout: float = 10.0) -> bool:
    """Wait until a note is sounding at ``synth`` (a note-on without its note-off yet)."""
    return wait_for(lambda: bool(check_notes(synth.received).stuck), timeout, interval=0.001)


def final_panic(synth, count: int = 1, timeout: float = 5.0) -> bool:
    """Wait for ``count`` all-sound-off messages (CC120: the last of a shutdown)."""
    return synth.wait_count(count, timeout=timeout,
                            where=lambda m: m.type == "control_change" and m.control == 120)


def no_traceback(jam) -> None:
    assert not [line for line in jam.lines if "Traceback" in line], jam.stderr
    assert not [line for line in jam.lines if "internal error" in line], jam.stderr


@pytest.fixture
def answering_jam(start_jam):
    """jam in call mode with the rule-based responder: two-bar answers (4 s at 120 BPM)."""
    return lambda *extra: start_jam("--model", "rules", "--seed", "1", "--bpm", "120",
                                    "--answer-bars", "2", *extra)


# --- signals in the middle of an answer ----------------------------------------------------


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_signal_mid_answer_ends_every_note_and_exits_0(answering_jam, keyboard, synth,
                                                              stop):
    jam = answering_jam()
    play(keyboard)
    assert sounding_note(synth), jam.stderr  # the answer plays: a note is sounding now
    jam.process.send_signal(stop)
    signalled = time.monotonic()
    assert jam.wait() == 0, jam.stderr
    assert final_panic(synth), synth.received
    at_signal = check_notes(synth.received, until=signalled)
    assert at_signal.stuck, "no note was sounding when the signal was sent"
    report = check_notes(synth.received)
    assert report.clean, report.summary()  # every note got its own note-off
    late = [t - signalled for t, m in synth.received if is_note_on(m) and t > signalled + 0.05]
    assert late == [], late  # nothing new started after the stop
    assert [line for line in jam.lines if f"stopping ({stop.name})" in line], jam.stderr
    no_traceback(jam)


def test_sighup_mid_answer_reloads_and_jam_answers_on_then_stops_clean(
        keyboard, synth, jam_env, tmp_path):
    from jackrig import JamProcess

    config = tmp_path / "jam.yaml"
    ports = f"api: jack\nin: {keyboard.full_name}\nout: {synth.full_name}\nmodel: rules\n"
    config.write_text(ports + "seed: 1\nanswer_bars: 2\n")
    jam = JamProcess(["--config", str(config)], jam_env)
    try:
        jam.wait_ready()
        play(keyboard)
        assert sounding_note(synth), jam.stderr
        config.write_text(ports + "seed: 1\nanswer_bars: 1\n")
        jam.process.send_signal(signal.SIGHUP)
        reloaded = time.monotonic()
        assert wait_for(lambda: any("reload (SIGHUP): applied" in e for e in jam.lines), 5), \
            jam.stderr
        assert jam.process.poll() is None, jam.stderr  # SIGHUP does not stop jam
        assert all_notes_ended(synth), check_notes(synth.received).summary()
        first = check_notes(synth.received)
        assert first.clean and first.note_ons >= 1, first.summary()
        heard = len(synth.received)
        play(keyboard, [67, 65, 64, 62])  # the next call: answered with the new length
        assert synth.wait_count(heard + 1, timeout=10, where=lambda m: True), jam.stderr
        assert all_notes_ended(synth), check_notes(synth.received).summary()
        second = [(t, m) for t, m in synth.received[heard:]]
        ons = [t for t, m in second if is_note_on(m)]
        assert ons, jam.stderr
        ends = [t for t, m in second if m.type in ("note_on", "note_off")]
        assert max(ends) - ons[0] <= 4 * BEAT + 0.1, "the answer after the reload is not 1 bar"
        jam.process.send_signal(signal.SIGTERM)
        assert jam.wait() == 0, jam.stderr
    finally:
        jam.kill()
    assert final_panic(synth), synth.received
    report = check_notes(synth.received)
    assert report.clean, report.summary()
    assert any(t > reloaded for t, m in synth.received if is_note_on(m))
    reloads = [line for line in jam.lines if "reload (SIGHUP)" in line]
    assert len(reloads) == 1, jam.stderr
    assert reloads[0].endswith(f"applied from {config}: answer_bars 2 -> 1"), jam.stderr
    no_traceback(jam)


def jam_gone(env) -> bool:
    """Whether the JACK server answers and no longer lists jam's ports (after a SIGKILL
    the server takes a moment to remove the dead client)."""
    ports = jack_clients(env)
    return ports is not None and not any(p.startswith(("jam:", "jam ports:")) for p in ports)


def test_sigkill_mid_answer_then_jam_panic_leaves_nothing_sounding(answering_jam, keyboard,
                                                                   synth, jam_env):
    jam = answering_jam()
    play(keyboard)
    assert sounding_note(synth), jam.stderr
    jam.process.kill()  # SIGKILL: no cleanup at all
    killed = time.monotonic()
    jam.wait()
    assert wait_for(lambda: jam_gone(jam_env), 15, interval=0.25)
    left = check_notes(synth.received)
    assert left.stuck, "no note was sounding when jam was killed"
    assert all(t <= killed + 0.05 for t, _ in synth.received)  # nothing came from the dead
    panic = subprocess.run([sys.executable, "-m", "jam", "panic", "--api", "jack", "--out",
                            synth.full_name], env=jam_env, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=60)
    assert panic.returncode == 0, panic.stderr
    assert panic.stdout == f"sent all-notes-off on 16 channels to '{synth.full_name}'\n"
    assert final_panic(synth, 16), synth.received
    report = check_notes(synth.received)
    assert report.stuck == [] and report.pedal_down == [], report.summary()
    assert report.lost_note_offs == left.stuck  # the panic ended exactly those
