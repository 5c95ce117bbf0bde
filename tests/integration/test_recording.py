"""Recording over a real JACK server: jam killed in the middle of a call leaves a valid MIDI
file with every note of every finished phrase; a folder that cannot be written is a
warning and the music goes on."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time

import mido
import pytest

from jackrig import Synth, wait_for

BEAT = 0.5  # 120 BPM, jam's default
CALLS = [[60, 62, 64, 65], [67, 65, 64, 62], [72, 71, 69, 67]]
HELD = 0.8
NAME = re.compile(r"jam-\d{8}-\d{6}(-\d+)?\.mid")


def _at(deadline: float) -> None:
    while (left := deadline - time.monotonic()) > 0.002:
        time.sleep(left - 0.002)
    while time.monotonic() < deadline:
        pass


def play(keyboard, pitches, count: int | None = None) -> None:
    """Quarter notes from 0.2 s from now; ``count`` of them (all by default)."""
    start = time.monotonic() + 0.2
    for i, pitch in enumerate(pitches[:count]):
        _at(start + i * BEAT)
        keyboard.send(mido.Message("note_on", note=pitch, velocity=90))
        _at(start + (i + HELD) * BEAT)
        keyboard.send(mido.Message("note_off", note=pitch))


def quiet_after(synth, count: int, seconds: float = 1.0, timeout: float = 10.0) -> bool:
    """Wait until more than ``count`` messages arrived and then none for ``seconds``."""
    def quiet() -> bool:
        got = synth.received
        return len(got) > count and time.monotonic() - got[-1][0] >= seconds
    return wait_for(quiet, timeout, interval=0.02)


def pairs(events):
    """(on time, off time, pitch) per note, note-ons paired with note-offs in order; and
    the pitches left sounding."""
    sounding, notes = {}, []
    for when, message in events:
        if message.type == "note_on" and message.velocity > 0:
            assert message.note not in sounding, f"note {message.note} started twice"
            sounding[message.note] = when
        elif message.type in ("note_on", "note_off") and message.note in sounding:
            notes.append((sounding.pop(message.note), when, message.note))
    return sorted(notes), sounding


def file_notes(path):
    """Track name -> (on, off, pitch) in seconds from the file's start (one tempo)."""
    midi = mido.MidiFile(path)
    assert midi.type == 1 and len(midi.tracks) == 3
    tempos = [m.tempo for m in midi.tracks[0] if m.type == "set_tempo"]
    assert len(tempos) == 1  # --tempo fixed: one tempo
    out = {}
    for track in midi.tracks[1:]:
        tick, events = 0, []
        for message in track:
            tick += message.time
            if not message.is_meta:
                events.append((mido.tick2second(tick, midi.ticks_per_beat, tempos[0]),
                               message))
        notes, sounding = pairs(events)
        assert not sounding, f"track {track.name}: note-ons without note-offs {sounding}"
        out[track.name] = notes
    return out


@pytest.fixture
def monitor(jack_server, keyboard):
    recorder = Synth("monitor")
    subprocess.run(["jack_connect", keyboard.full_name, recorder.full_name],
                   env=jack_server.env(), check=True, capture_output=True)
    yield recorder
    recorder.close()


def jam_clients_gone(env) -> bool:
    """Whether the JACK server answers and lists none of jam's ports (after a SIGKILL it
    is busy removing the dead client for a second or two; the next test needs it back)."""
    listing = subprocess.run(["jack_lsp"], env=env, capture_output=True, text=True)
    return listing.returncode == 0 and not any(
        line.startswith(("jam:", "jam-", "RtMidiOut Client:"))
        for line in listing.stdout.splitlines())


def test_a_killed_session_leaves_every_finished_phrase_in_a_valid_file(
        start_jam, keyboard, synth, monitor, tmp_path, jam_env):
    folder = tmp_path / "takes"
    folder.mkdir()
    process = start_jam("--seed", "1", "--model", "rules", "--answer-bars", "1",
                        "--record", str(folder))
    for pitches in CALLS[:2]:
        heard = len(synth.received)
        play(keyboard, pitches)
        assert quiet_after(synth, heard), process.stderr  # the answer is over
    answers = list(synth.received)
    play(keyboard, CALLS[2], count=2)  # the third call, half played
    process.process.kill()  # SIGKILL: no cleanup, no last write
    process.wait()
    assert wait_for(lambda: jam_clients_gone(jam_env), 15, interval=0.25)
    files = list(folder.iterdir())
    assert len(files) == 1 and NAME.fullmatch(files[0].name), files
    assert f"recording to {files[0]}" in process.stderr
    recorded = file_notes(files[0])
    # the player's track: the two finished calls, every note, in order
    assert [p for _, _, p in recorded["player"]] == CALLS[0] + CALLS[1]
    # jam's track: exactly what the synth received in the two answers
    played, sounding = pairs(answers)
    assert played and not sounding
    assert [p for _, _, p in recorded["jam"]] == [p for _, _, p in played]
    # the times hold: answer onsets after the call's first note, as heard through JACK
    heard_first = next(t for t, m in monitor.received if m.type == "note_on")
    file_first = recorded["player"][0][0]
    for (file_on, _, _), (heard_on, _, _) in zip(recorded["jam"], played):
        assert abs((file_on - file_first) - (heard_on - heard_first)) <= 0.015


def test_a_missing_folder_is_one_warning_and_jam_plays_on(start_jam, keyboard, synth,
                                                         tmp_path):
    missing = tmp_path / "not-mounted"
    process = start_jam("--model", "rules", "--answer-bars", "1", "--record", str(missing))
    play(keyboard, CALLS[0])
    assert quiet_after(synth, 0), process.stderr  # answered
    process.process.send_signal(signal.SIGTERM)
    assert process.wait() == 0, process.stderr
    warnings = [line for line in process.lines if "recording" in line]
    assert warnings == [f"jam: recording off: cannot write a file in {missing} "
                        f"(no such folder)"]
    assert "Traceback" not in process.stderr and not missing.exists()


def test_a_folder_that_goes_away_is_one_warning_and_the_answers_go_on(
        start_jam, keyboard, synth, tmp_path):
    folder = tmp_path / "stick"
    folder.mkdir()
    process = start_jam("--model", "rules", "--answer-bars", "1", "--record", str(folder))
    play(keyboard, CALLS[0])
    assert quiet_after(synth, 0), process.stderr
    shutil.rmtree(folder)  # pulled out
    for pitches in CALLS[1:]:
        heard = len(synth.received)
        play(keyboard, pitches)
        assert quiet_after(synth, heard), process.stderr  # answered all the same
    process.process.send_signal(signal.SIGTERM)
    assert process.wait() == 0, process.stderr
    failures = [line for line in process.lines if "recording: cannot write" in line]
    assert len(failures) == 1, process.stderr
    assert "Traceback" not in process.stderr
