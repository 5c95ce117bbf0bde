"""Pulled cables over a real JACK server: the test synth's or the test keyboard's JACK client
goes away while jam runs (a subprocess) and comes back under the same name. jam keeps
running, says so once each way, drops what it cannot send, reopens the port, sends the
returned synth a panic first and answers the next call; no note is left sounding."""

from __future__ import annotations

import signal
import time

import mido
import pytest

from jackrig import Synth, wait_for
from jackrig import keyboard as open_keyboard

CALL = [60, 62, 64, 65]  # quarter notes at 120 BPM
BEAT = 0.5


def play(port, pitches=CALL) -> None:
    for pitch in pitches:
        port.send(mido.Message("note_on", note=pitch, velocity=90))
        time.sleep(BEAT * 0.9)
        port.send(mido.Message("note_off", note=pitch, velocity=0))
        time.sleep(BEAT * 0.1)


def is_note_on(message) -> bool:
    return message.type == "note_on" and message.velocity > 0


def open_notes(received) -> dict[tuple[int, int], float]:
    """Notes whose last note-on got no note-off afterwards (a stuck note, unless a later
    all-notes-off ends it; the callers look before jam's shutdown panic)."""
    sounding: dict[tuple[int, int], float] = {}
    for when, m in received:
        if is_note_on(m):
            sounding[(m.channel, m.note)] = when
        elif m.type in ("note_on", "note_off"):
            sounding.pop((m.channel, m.note), None)
    return sounding


def quiet(synth, seconds: float = 1.0) -> bool:
    """Wait until the synth got something and then nothing for ``seconds``."""
    return wait_for(lambda: bool(synth.received)
                    and time.monotonic() - synth.received[-1][0] > seconds, 10)


def all_notes_end(synth) -> bool:
    """Wait until no note is sounding at ``synth`` and nothing came for a second (a long
    last note of an answer ends within its 4 s; a stuck one never does)."""
    return wait_for(lambda: open_notes(synth.received) == {}
                    and time.monotonic() - synth.received[-1][0] > 1.0, 10)


def lines_with(jam, text: str) -> list[str]:
    return [line for line in jam.lines if text in line]


@pytest.fixture
def answering_jam(start_jam):
    """jam in call mode with the rule-based responder: two-bar answers (4 s at 120 BPM)."""
    return start_jam("--model", "rules", "--seed", "1", "--bpm", "120", "--answer-bars", "2")


def test_the_synth_goes_mid_answer_and_comes_back(answering_jam, keyboard, synth):
    jam = answering_jam
    play(keyboard)
    assert synth.wait_count(1, timeout=10, where=is_note_on), jam.stderr  # answering
    client, port = synth.full_name.split(":")
    synth.close()  # the synth's JACK client is gone, in the middle of the answer
    assert wait_for(lambda: lines_with(jam, "is gone"), 5), jam.stderr
    returned = Synth(port, client=client)
    try:
        ready = time.monotonic()
        assert returned.wait_count(1, timeout=5), jam.stderr
        first_arrival, first = returned.received[0]
        # the panic comes first: note-offs for what was sounding, then CC64/123/120
        assert first.type == "note_off" or (first.type == "control_change"
                                            and first.control == 64), returned.messages()
        assert returned.wait_count(1, timeout=2, where=lambda m: m.type == "control_change"
                                   and m.control == 123), (
            f"recorder's irregular cycles {returned.irregular}", returned.received, jam.stderr)
        print(f"returned synth ready -> first message (the panic) {first_arrival - ready:.3f} s")
        # quiet once the first answer is over, then a new call is answered on it
        assert quiet(returned)
        before = len(returned.received)
        play(keyboard)
        assert returned.wait_count(before + 1, timeout=10, where=lambda m: True)
        assert wait_for(lambda: any(is_note_on(m) for _, m in returned.received[before:]),
                        10), jam.stderr
        assert all_notes_end(returned), returned.received  # none stuck
        jam.process.send_signal(signal.SIGTERM)
        assert jam.wait() == 0, jam.stderr
        assert returned.wait_count(1, timeout=5, where=lambda m: m.type == "control_change"
                                   and m.control == 120)
    finally:
        returned.close()
    changes = [line for line in jam.lines if "is gone" in line or "is back" in line]
    assert len(changes) == 2, jam.stderr  # gone once, back once
    assert "output" in changes[0] and "is gone" in changes[0] and "is back" in changes[1]
    assert not lines_with(jam, "Traceback") and not lines_with(jam, "error"), jam.stderr
    stopping = lines_with(jam, "stopping (SIGTERM)")
    assert len(stopping) == 1 and ", 0 dropped while" not in stopping[0], stopping


def test_the_keyboard_goes_and_comes_back(answering_jam, keyboard, synth):
    jam = answering_jam
    client, port = keyboard.full_name.split(":")
    keyboard.close()  # the keyboard's JACK client is gone
    assert wait_for(lambda: lines_with(jam, "is gone"), 5), jam.stderr
    returned = open_keyboard(port, client=client)
    try:
        assert wait_for(lambda: lines_with(jam, "is back"), 5), jam.stderr
        play(returned)
        assert synth.wait_count(1, timeout=10, where=is_note_on), jam.stderr
        assert all_notes_end(synth), synth.received
        jam.process.send_signal(signal.SIGTERM)
        assert jam.wait() == 0, jam.stderr
    finally:
        returned.close()
    changes = [line for line in jam.lines if "is gone" in line or "is back" in line]
    assert len(changes) == 2, jam.stderr  # gone once, back once
    assert "input" in changes[0] and "is gone" in changes[0] and "is back" in changes[1]
    assert not lines_with(jam, "Traceback"), jam.stderr
