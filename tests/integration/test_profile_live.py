"""Profiles over a real JACK server: jam learns a call, saves the memory at exit, reads it
back next time; a corrupt profile is set aside with a warning and jam still plays."""

from __future__ import annotations

import signal
import time

import mido

from jackrig import wait_for

BEAT = 0.5  # 120 BPM


def play(keyboard) -> None:
    start = time.monotonic() + 0.2
    for beat, pitch in enumerate([60, 62, 64, 66, 68, 70, 72, 70]):
        while time.monotonic() < start + beat * BEAT:
            time.sleep(0.001)
        keyboard.send(mido.Message("note_on", note=pitch, velocity=90))
        time.sleep(0.8 * BEAT)
        keyboard.send(mido.Message("note_off", note=pitch))


def answered(synth, before: int) -> bool:
    return wait_for(lambda: sum(1 for _, m in synth.received if m.type == "note_on"
                                and m.velocity > 0) > before, 10.0)


def test_the_profile_is_saved_at_exit_and_read_next_time(start_jam, keyboard, synth, jam_env,
                                                          tmp_path):
    jam_env["XDG_DATA_HOME"] = str(tmp_path / "data")
    profile = tmp_path / "data" / "jam" / "profiles" / "alice.npz"
    jam = start_jam("--profile", "alice", "--bpm", "120", "--seed", "1")
    play(keyboard)
    assert answered(synth, 0), jam.stderr
    jam.process.send_signal(signal.SIGTERM)
    assert jam.wait() == 0, jam.stderr
    assert profile.is_file() and "profile alice saved" in jam.stderr
    again = start_jam("--profile", "alice", "--bpm", "120", "--debug")
    again.process.send_signal(signal.SIGTERM)
    assert again.wait() == 0, again.stderr
    assert "profile alice: " in again.stderr and "tokens learned before" in again.stderr


def test_a_corrupt_profile_is_set_aside_and_jam_plays(start_jam, keyboard, synth, jam_env,
                                                      tmp_path):
    jam_env["XDG_DATA_HOME"] = str(tmp_path / "data")
    profile = tmp_path / "data" / "jam" / "profiles" / "bob.npz"
    profile.parent.mkdir(parents=True)
    profile.write_bytes(b"this is not a profile")
    jam = start_jam("--profile", "bob", "--bpm", "120", "--seed", "1")
    play(keyboard)
    assert answered(synth, 0), jam.stderr
    jam.process.send_signal(signal.SIGTERM)
    assert jam.wait() == 0, jam.stderr
    assert jam.stderr.count("profile") >= 1 and "could not be read" in jam.stderr
    assert list(profile.parent.glob("bob.npz.unreadable-*"))
