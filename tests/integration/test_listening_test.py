"""tools/listening_test.py end to end, headless: real engine answers, real FluidSynth renders,
scripted keyboard input, a stop and a resume, the CSV and the summary."""

import csv
import importlib.util
import json
import math
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from jam.midi.files import read_midi, write_midi
from jam.music.tokens import Note

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "listening_test.py"

pytestmark = pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not Path("/usr/share/sounds/sf2/FluidR3_GM.sf2").is_file(),
    reason="needs apt packages fluidsynth and fluid-soundfont-gm (installed by .ci/run)")


def load_tool():
    spec = importlib.util.spec_from_file_location("listening_test", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_exact_binomial_p_value():
    p_value = load_tool().binomial_p_value
    assert p_value(9, 10) == pytest.approx(2 * (1 + 10) / 1024)
    assert p_value(1, 10) == p_value(9, 10)
    assert p_value(5, 10) == 1.0 and p_value(0, 0) == 1.0
    assert p_value(0, 5) == pytest.approx(2 / 32)


def run_tool(args, keys):
    return subprocess.run([sys.executable, str(TOOL), *args], input=keys, capture_output=True,
                          text=True, timeout=300, cwd=ROOT)


def test_blind_ab_test_renders_shuffles_records_resumes_and_summarizes(tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()
    motifs = [[60, 62, 64, 65, 67, 65, 64, 62], [67, 69, 71, 72, 74, 72, 71, 69],
              [57, 60, 64, 62, 60, 59, 57, 59], [62, 66, 69, 66, 64, 62, 61, 62],
              [65, 67, 69, 70, 72, 70, 69, 67], [64, 67, 71, 69, 67, 66, 64, 63]]
    for i, motif in enumerate(motifs):
        write_midi(calls / f"call{i}.mid", [[Note(p, 12 * j, 12) for j, p in enumerate(motif)]], bpm=120)
    out = tmp_path / "out"
    args = ["--a", "repeat", "--b", "rules", "--calls", str(calls), "--out", str(out), "--seed", "3"]

    first = run_tool(args, "1\nx\n2\nq\n")  # a typo is asked again; q stops
    assert first.returncode == 0, first.stderr
    assert "type 1, 2, s, r or q" in first.stdout
    second = run_tool(args, "s\n1\n2\n1\n")
    assert second.returncode == 0, second.stderr
    third = run_tool(args, "")  # nothing left to ask
    assert third.returncode == 0, third.stderr

    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [int(r["trial"]) for r in rows] == list(range(len(motifs)))
    assert [r["choice"] for r in rows] == ["1", "2", "s", "1", "2", "1"]
    orders = {(r["file_1"], r["file_2"]) for r in rows}
    assert orders == {("repeat", "rules"), ("rules", "repeat")}  # both orders were drawn

    for row in rows:
        trial = int(row["trial"])
        call_pitches = None
        for slot in (1, 2):
            with wave.open(str(out / f"trial{trial:03d}-{slot}.wav")) as wav:
                frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
            assert wav.getnframes() > wav.getframerate() and np.abs(frames).max() > 1000
            # the file labelled "repeat" answers with the call's own pitches
            phrase = read_midi(out / f"trial{trial:03d}-{slot}.mid")
            call_end = 8 * 12
            call = [n.pitch for n in phrase.notes if n.start < call_end]
            answer = [n.pitch for n in phrase.notes if n.start >= call_end]
            call_pitches = call
            copied = answer[: len(call)] == call
            assert copied == (row[f"file_{slot}"] == "repeat")
        expected = "" if row["choice"] == "s" else row[f"file_{row['choice']}"]
        assert row["preferred"] == expected and call_pitches

    summary = json.loads((out / "summary.json").read_text())
    wins = sum(r["preferred"] == "repeat" for r in rows)
    decided = sum(r["preferred"] != "" for r in rows)
    assert (summary["a_preferred"], summary["decided"], summary["skipped"]) == (wins, decided, 1)
    brute = sum(math.comb(decided, i) for i in range(decided + 1)
                if math.comb(decided, i) <= math.comb(decided, wins)) / 2**decided
    assert summary["p_value_two_sided"] == pytest.approx(brute)

    other = run_tool(["--a", "repeat", "--b", "random-in-key", "--calls", str(calls), "--out", str(out)], "")
    assert other.returncode == 2 and "other settings" in other.stderr
