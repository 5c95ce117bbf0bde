"""Hearing and seeing a session: a MIDI file rendered to WAV with FluidSynth and a General
MIDI soundfont, and drawn as a piano roll (the player's notes and jam's in two colours,
phrase boundaries marked).

FluidSynth runs as a program (Debian: ``fluidsynth`` and ``fluid-soundfont-gm``); the piano
roll needs matplotlib (the ``render`` extra). Both write atomically and never replace a
file unless asked.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import mido

from jam.errors import JamError
from jam.fileio import atomic_write_bytes

SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
SAMPLE_RATE = 44100
PACKAGES = "apt-get install fluidsynth fluid-soundfont-gm"
JAM_TRACKS = ("jam", "answer")  # track names of jam's notes (recordings, jam respond)


def fluidsynth_for(soundfont: str | os.PathLike) -> str:
    """The fluidsynth program, once it and ``soundfont`` are known to exist (JamError)."""
    fluidsynth = shutil.which("fluidsynth")
    if fluidsynth is None:
        raise JamError(f"fluidsynth is not installed; {PACKAGES}")
    if not Path(soundfont).is_file():
        raise JamError(f"{soundfont}: no such soundfont; {PACKAGES}, or pass --soundfont")
    return fluidsynth


def render_wav(midi_path: str | os.PathLike, wav_path: str | os.PathLike,
               soundfont: str | os.PathLike = SOUNDFONT, overwrite: bool = False,
               rate: int = SAMPLE_RATE) -> Path:
    """``midi_path`` rendered to a WAV file by FluidSynth; JamError (one line) when
    FluidSynth or the soundfont is missing or the rendering fails."""
    fluidsynth = fluidsynth_for(soundfont)
    if not Path(midi_path).is_file():
        raise JamError(f"{midi_path}: no such file; check the path")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        command = [fluidsynth, "-ni", "-q", "-F", str(out), "-r", str(rate), "-g", "0.8",
                   str(soundfont), str(midi_path)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                              stdin=subprocess.DEVNULL)
        if done.returncode != 0 or not out.is_file():
            detail = " ".join((done.stderr or done.stdout).split())[:200] or "no output"
            raise JamError(f"fluidsynth could not render {midi_path} ({detail}); check that "
                           f"it is a MIDI file with notes")
        return atomic_write_bytes(wav_path, out.read_bytes(), overwrite=overwrite)


def _tracks(midi: mido.MidiFile) -> list[tuple[str, list[tuple[float, float, int]]]]:
    """(track name, notes as (start s, end s, pitch)) of each track with notes."""
    tempo, out = 500000, []
    tempo_map = [(0, tempo)]  # (tick, tempo) from every track's set_tempo
    for track in midi.tracks:
        tick = 0
        for message in track:
            tick += message.time
            if message.type == "set_tempo":
                tempo_map.append((tick, message.tempo))
    tempo_map.sort()

    def seconds(tick: int) -> float:
        total, last_tick, current = 0.0, 0, tempo_map[0][1]
        for at, value in tempo_map:
            if at > tick:
                break
            total += mido.tick2second(at - last_tick, midi.ticks_per_beat, current)
            last_tick, current = at, value
        return total + mido.tick2second(tick - last_tick, midi.ticks_per_beat, current)

    for index, track in enumerate(midi.tracks):
        name, tick, sounding, notes = f"track {index}", 0, {}, []
        for message in track:
            tick += message.time
            if message.type == "track_name":
                name = message.name
            elif message.type == "note_on" and message.velocity > 0:
                sounding[(message.channel, message.note)] = tick
            elif message.type in ("note_on", "note_off"):
                start = sounding.pop((message.channel, message.note), None)
                if start is not None:
                    notes.append((seconds(start), seconds(tick), message.note))
        if notes:
            out.append((name, notes))
    return out


def render_png(midi_path: str | os.PathLike, png_path: str | os.PathLike,
               overwrite: bool = False) -> Path:
    """A piano roll of ``midi_path``: jam's notes (tracks named "jam" or "answer") in one
    colour, everything else (the player) in another, a dashed line where each of jam's
    phrases begins."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise JamError("the piano roll needs matplotlib: pip install 'jam[render]'") from None
    try:
        midi = mido.MidiFile(midi_path)
    except (OSError, EOFError, ValueError, KeyError, IndexError) as err:
        raise JamError(f"{midi_path}: not a readable MIDI file ({err})") from None
    tracks = _tracks(midi)
    if not tracks:
        raise JamError(f"{midi_path}: no notes to draw")
    figure, axes = plt.subplots(figsize=(12, 4), dpi=100)
    jam_starts: list[float] = []
    for name, notes in tracks:
        ours = name.strip().lower() in JAM_TRACKS
        colour = "tab:orange" if ours else "tab:blue"
        for start, end, pitch in notes:
            axes.add_patch(plt.Rectangle((start, pitch - 0.4), end - start, 0.8, color=colour))
        if ours:
            jam_starts += _phrase_starts([start for start, _, _ in notes])
        axes.plot([], [], color=colour, linewidth=6, label="jam" if ours else name)
    for start in jam_starts:
        axes.axvline(start, color="grey", linestyle="--", linewidth=0.8)
    pitches = [p for _, notes in tracks for _, _, p in notes]
    end = max(e for _, notes in tracks for _, e, _ in notes)
    axes.set_xlim(0, end)
    axes.set_ylim(min(pitches) - 2, max(pitches) + 2)
    axes.set_xlabel("seconds")
    axes.set_ylabel("MIDI note")
    axes.legend(loc="upper right")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return atomic_write_bytes(png_path, buffer.getvalue(), overwrite=overwrite)


def _phrase_starts(onsets: list[float], gap: float = 1.0) -> list[float]:
    """Onsets that follow a silence of at least ``gap`` seconds (and the first)."""
    onsets = sorted(onsets)
    return [t for i, t in enumerate(onsets) if i == 0 or t - onsets[i - 1] >= gap]
