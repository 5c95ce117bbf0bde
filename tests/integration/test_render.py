"""`jam render`: a session to WAV through FluidSynth (checked with the standard library's
wave module and numpy) and to a piano roll PNG; one-line errors when something is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import wave

import mido
import numpy as np
import pytest

from jam.midi.files import write_midi
from jam.music.tokens import Note
from jam.render import SOUNDFONT


def run_jam(args, env=None):
    return subprocess.run([sys.executable, "-m", "jam", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300, env=env)


@pytest.fixture
def session(tmp_path):
    if shutil.which("fluidsynth") is None or not os.path.isfile(SOUNDFONT):
        reason = "fluidsynth and fluid-soundfont-gm are not installed"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    path = tmp_path / "session.mid"
    call = [Note(60 + i, 12 * i, 12, 90) for i in range(8)]
    answer = [Note(67 - i, 108 + 12 * i, 12, 90) for i in range(8)]
    write_midi(path, [call, answer], 120.0, names=["player", "jam"])
    return path


def test_render_writes_a_non_silent_wav_of_the_sessions_length_and_a_png(session, tmp_path):
    wav, png = tmp_path / "session.wav", tmp_path / "session.png"
    done = run_jam(["render", str(session), "-o", str(wav), "--png", str(png)])
    assert done.returncode == 0, done.stderr
    length = mido.MidiFile(session).length  # seconds: 17 beats at 120 BPM
    with wave.open(str(wav)) as audio:
        frames = audio.readframes(audio.getnframes())
        seconds = audio.getnframes() / audio.getframerate()
        width, channels = audio.getsampwidth(), audio.getnchannels()
    assert width == 2
    samples = np.frombuffer(frames, dtype=np.int16).reshape(-1, channels)
    assert length <= seconds <= length + 3.0  # FluidSynth adds the release tail
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    assert rms > 100  # not silence
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = run_jam(["render", str(session), "-o", str(wav)])
    assert again.returncode == 2 and "already exists" in again.stderr  # never overwrites


def test_a_missing_fluidsynth_is_one_line_naming_the_packages(session, tmp_path):
    env = {**os.environ, "PATH": str(tmp_path / "empty")}  # python by its full path
    done = run_jam(["render", str(session), "-o", str(tmp_path / "x.wav")], env)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "apt-get install fluidsynth" in done.stderr


@pytest.mark.parametrize("args, words", [
    ([], "needs -o"),
    (["-o", "x.wav", "--soundfont", "/nonexistent.sf2"], "no such soundfont"),
])
def test_render_misuse_is_one_line(session, tmp_path, args, words):
    done = run_jam(["render", str(session), *[str(tmp_path / a) if a == "x.wav" else a
                                               for a in args]])
    assert done.returncode == 2 and words in done.stderr and done.stderr.count("\n") == 1
