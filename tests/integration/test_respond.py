"""``jam respond``: the engine offline on real MIDI files, as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from importlib import resources

import mido
import pytest

from jam.config import default_config
from jam.engine.assembly import respond_file
from jam.midi.files import read_midi, write_midi
from jam.music.meter import Meter
from jam.music.theory import Key, estimate_key
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


# --- the sweep: tempos, meters, calls ending on and off the beat --------------------------

SWEEP_TEMPOS = [40.0, 55.5, 90.0, 97.2, 100.0, 133.33, 180.0, 240.0]  # 97.2: 617,284 us/beat
SWEEP_METERS = ["2/4", "3/4", "4/4", "6/8"]


def two_bar_call(meter: Meter, off_beat: bool) -> list[Note]:
    """A call filling exactly two bars (ending on the bar line), or ending an eighth before
    it (off the beat); both are two bars long to a listener."""
    span, step = 2 * meter.bar_ticks, 6 if meter.compound else 12
    starts = list(range(0, span, step))
    pitches = [60, 62, 64, 65, 67, 69, 71, 72]
    notes = [Note(pitches[i % 8], s, step, 80) for i, s in enumerate(starts)]
    if off_beat:
        notes[-1] = notes[-1]._replace(duration=step - 6 if step > 6 else 3)
    return notes


@pytest.mark.parametrize("meter_text", SWEEP_METERS)
@pytest.mark.parametrize("off_beat", [False, True], ids=["on-beat", "off-beat"])
def test_respond_answers_every_tempo_and_meter_on_the_intended_beat(tmp_path, meter_text,
                                                                     off_beat):
    """Every answer has notes, starts on the first beat of the meter at or after one beat
    (quarter) of silence, and lasts the call's two bars; the file says the call's meter."""
    meter = Meter.parse(meter_text)
    config = default_config()
    call = two_bar_call(meter, off_beat)
    last_end = max(n.end for n in call)
    first_beat = -(-(last_end + 12) // meter.beat_ticks) * meter.beat_ticks
    for bpm in SWEEP_TEMPOS:
        path, out = tmp_path / f"call-{bpm}.mid", tmp_path / f"answer-{bpm}.mid"
        write_midi(path, [call], bpm, meter)
        respond_file(replace(config, seed=1), str(path), str(out))
        phrase = read_midi(out)
        assert phrase.meter == meter and phrase.bpm == pytest.approx(bpm, abs=1e-3)
        answer = [n for n in phrase.notes if n.start >= last_end]
        assert answer, f"{bpm} BPM: empty answer"
        assert answer[0].start == first_beat, f"{bpm} BPM: answer starts at tick {answer[0].start}"
        bars_end = first_beat + 2 * meter.bar_ticks
        assert max(n.end for n in answer) <= bars_end, f"{bpm} BPM: answer too long"
        assert max(n.end for n in answer) > bars_end - meter.bar_ticks, f"{bpm} BPM: too short"


def test_a_three_four_call_is_answered_in_three_four(call, tmp_path, env):
    waltz = tmp_path / "waltz.mid"
    write_midi(waltz, [[Note(p, 12 * i, 12) for i, p in enumerate([67, 71, 74, 72, 71, 69])]],
               90.0, Meter(3, 4))
    out = tmp_path / "answer.mid"
    result = run_jam(["respond", str(waltz), "-o", str(out), "--seed", "2"], env)
    assert result.returncode == 0, result.stderr
    assert "in 3/4" in result.stdout
    signatures = [m for m in mido.MidiFile(out).tracks[0] if m.type == "time_signature"]
    assert [(m.numerator, m.denominator) for m in signatures] == [(3, 4)]
    _, notes = answer_notes(out)
    bar = 3 * 480
    start = 2 * bar + 480  # after two bars of call and a beat of silence
    assert notes[0][0] == start
    assert start + bar < max(end for _, end, _ in notes) <= start + 2 * bar  # 2 bars of 3/4
    # --meter overrides the file's meter
    forced = tmp_path / "forced.mid"
    assert run_jam(["respond", str(waltz), "-o", str(forced), "--meter", "4/4"],
                   env).returncode == 0
    signatures = [m for m in mido.MidiFile(forced).tracks[0] if m.type == "time_signature"]
    assert [(m.numerator, m.denominator) for m in signatures] == [(4, 4)]


# --- the player's idiom: the session memory and the key mask that keeps blue notes -------

def pc_histogram(notes) -> list[float]:
    counts = [0] * 12
    for note in notes:
        counts[note.pitch % 12] += 1
    total = sum(counts) or 1
    return [c / total for c in counts]


def answers_by_style(tmp_path, call: list[Note], style: str, seeds: range) -> list[Note]:
    path = tmp_path / "idiom.mid"
    if not path.exists():
        write_midi(path, [call], 120.0)
    notes = []
    for seed in seeds:
        out = tmp_path / f"answer-{style}-{seed}.mid"
        respond_file(replace(default_config(), seed=seed, style=style if style == "auto"
                             else float(style)), str(path), str(out), answer_only=True)
        notes += read_midi(out).notes
    assert notes, f"no answer notes with --style {style}"
    return notes


def test_with_the_memory_answers_sound_more_like_a_whole_tone_player(tmp_path):
    """jam respond on a whole-tone call: the answers' pitch-class histogram (over 6 seeds)
    is measurably closer to the call's with --style 0.5 and auto than with --style 0."""
    pitches = [60, 62, 64, 66, 68, 70, 72, 70, 68, 66, 64, 62] * 2
    call = [Note(p, 6 * i, 6, 80) for i, p in enumerate(pitches)]
    target = pc_histogram(call)

    def distance(style: str) -> float:
        answer = answers_by_style(tmp_path, call, style, range(6))
        return sum(abs(a - b) for a, b in zip(pc_histogram(answer), target))

    plain = distance("0")
    assert distance("0.5") < 0.7 * plain
    assert distance("auto") < plain


def test_a_blues_call_keeps_its_blue_notes_with_key_auto(tmp_path):
    """A C blues call (flat third, flat fifth, flat seventh): with --key auto the answers
    use blue notes, which the estimated major/minor scale alone would mask out."""
    riff = [60, 63, 65, 66, 67, 70, 72, 70, 67, 66, 65, 63]
    call = [Note(p, 12 * i, 12, 80) for i, p in enumerate(riff)]
    answer = answers_by_style(tmp_path, call, "auto", range(4))
    blue = {3, 6, 10} - set(estimate_key(call).scale)
    assert blue, "the test call's blue notes are all in its estimated scale"
    assert {n.pitch % 12 for n in answer} & blue
