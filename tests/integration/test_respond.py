"""``jam respond``: the engine offline on real MIDI files, as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources

import mido
import pytest

from jam.midi.files import write_midi
from jam.music.theory import Key
from jam.music.tokens import Note

D_MAJOR = Key(2, "major")


def _has_default_model() -> bool:
    return (resources.files("jam.models") / "default.onnx").is_file()


MODELS = ["rules", pytest.param(None, marks=pytest.mark.skipif(
    not _has_default_model(), reason="models/default.onnx is not built yet"))]


def run_jam(args, env, timeout=120):
    return subprocess.run([sys.executable, "-m", "jam", *args], env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=timeout)


@pytest.fixture
def env(tmp_path):
    return {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config-home")}


@pytest.fixture
def call(tmp_path):
    """A 2-bar call in D major at 100 BPM (eighths, quarters, a half note)."""
    pitches = [62, 66, 69, 74, 73, 71, 69, 67, 66, 64, 62]
    starts = [0, 12, 24, 30, 36, 48, 54, 60, 72, 84, 90]
    durations = [12, 12, 6, 6, 12, 6, 6, 12, 12, 6, 6]
    path = tmp_path / "call.mid"
    write_midi(path, [[Note(p, s, d, 70 + i) for i, (p, s, d) in
                       enumerate(zip(pitches, starts, durations))]], 100.0)
    return path


def answer_notes(path, track=-1):
    """(start tick, end tick, pitch) of the notes of one track, pairing on/off."""
    midi = mido.MidiFile(path)
    tick, open_notes, notes = 0, {}, []
    for message in midi.tracks[track]:
        tick += message.time
        if message.type == "note_on" and message.velocity > 0:
            assert message.note not in open_notes
            open_notes[message.note] = tick
        elif message.type in ("note_on", "note_off"):
            notes.append((open_notes.pop(message.note), tick, message.note))
    assert not open_notes, "a note-on without its note-off"
    return midi, sorted(notes)


def model_args(model):
    return ["--model", model] if model else []


@pytest.mark.parametrize("model", MODELS)
def test_same_seed_gives_the_same_bytes(call, tmp_path, env, model):
    outs = [tmp_path / "a.mid", tmp_path / "b.mid"]
    for out in outs:
        result = run_jam(["respond", str(call), "-o", str(out), "--seed", "7",
                          *model_args(model)], env)
        assert result.returncode == 0, result.stderr
    assert outs[0].read_bytes() == outs[1].read_bytes()
    other = tmp_path / "c.mid"
    assert run_jam(["respond", str(call), "-o", str(other), "--seed", "8", "--temperature",
                    "1.5", *model_args(model)], env).returncode == 0
    assert other.is_file()


@pytest.mark.parametrize("model", MODELS)
def test_answer_is_in_the_calls_key_on_the_grid_and_valid(call, tmp_path, env, model):
    out = tmp_path / "out.mid"
    result = run_jam(["respond", str(call), "-o", str(out), "--seed", "3", "--key", "auto",
                      "--answer-bars", "2", *model_args(model)], env)
    assert result.returncode == 0, result.stderr
    assert "D major" in result.stdout
    midi, notes = answer_notes(out)
    assert [t.name for t in midi.tracks[1:]] == ["call", "answer"]
    assert notes
    per_tick = midi.ticks_per_beat // 12
    assert all(start % per_tick == 0 and end % per_tick == 0 for start, end, _ in notes)
    assert all(pitch % 12 in D_MAJOR.scale for _, _, pitch in notes)
    first = notes[0][0]
    assert first % midi.ticks_per_beat == 0  # on a beat
    call_end = 96 * per_tick
    assert call_end < first <= call_end + 2 * midi.ticks_per_beat
    assert max(end for _, end, _ in notes) <= first + 8 * midi.ticks_per_beat
    _, call_notes = answer_notes(out, 1)
    assert len(call_notes) == 11 and call_notes[0][0] == 0


def test_named_key_and_range_mask_the_answer(call, tmp_path, env):
    out = tmp_path / "out.mid"
    result = run_jam(["respond", str(call), "-o", str(out), "--model", "rules", "--key",
                      "Bb major", "--low", "60", "--high", "72"], env)
    assert result.returncode == 0, result.stderr
    _, notes = answer_notes(out)
    assert all(p % 12 in Key(10, "major").scale and 60 <= p <= 72 for _, _, p in notes)


def test_answer_only_and_tempo_follow(call, tmp_path, env):
    out = tmp_path / "answer.mid"
    result = run_jam(["respond", str(call), "-o", str(out), "--model", "rules",
                      "--answer-only", "--tempo", "follow"], env)
    assert result.returncode == 0, result.stderr
    midi = mido.MidiFile(out)
    assert [t.name for t in midi.tracks[1:]] == ["answer"]
    tempo = next(m.tempo for m in midi.tracks[0] if m.type == "set_tempo")
    assert mido.tempo2bpm(tempo) == pytest.approx(100, rel=1e-3)  # fitted to the call


def test_existing_output_is_kept_unless_force(call, tmp_path, env):
    out = tmp_path / "out.mid"
    out.write_bytes(b"precious")
    result = run_jam(["respond", str(call), "-o", str(out), "--model", "rules"], env)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "--force" in result.stderr
    assert out.read_bytes() == b"precious"
    result = run_jam(["respond", str(call), "-o", str(out), "--model", "rules", "--force"], env)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes().startswith(b"MThd")


@pytest.mark.parametrize("content", [b"not a midi file", b"MThd\x00\x00\x00\x06\x00\x01", None])
def test_malformed_or_empty_midi_is_one_line_exit_2(tmp_path, env, content):
    bad = tmp_path / "bad.mid"
    if content is None:  # a valid MIDI file with no notes
        write_midi(bad, [[]], 120.0)
    else:
        bad.write_bytes(content)
    out = tmp_path / "out.mid"
    result = run_jam(["respond", str(bad), "-o", str(out), "--model", "rules"], env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.mid" in lines[0], result.stderr
    assert not out.exists()
