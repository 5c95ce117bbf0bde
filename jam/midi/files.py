"""MIDI files <-> notes on the token grid (:data:`jam.music.tokens.TICKS_PER_BEAT`).

Pure file handling with mido (no ports, no rtmidi). Reading keeps every note of every
non-drum channel (the representation reduces chords later); times are in beats, so a file's
tempo changes do not move notes on the grid. Writing is atomic and never overwrites unless
asked, and is deterministic: the same notes give the same bytes.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field

import mido

from jam.errors import JamError
from jam.fileio import atomic_write_bytes
from jam.music.meter import Meter
from jam.music.tokens import TICKS_PER_BEAT, Note

DRUM_CHANNEL = 9  # General MIDI channel 10
FILE_TICKS_PER_BEAT = 480


@dataclass
class Phrase:
    """Notes with the file's first tempo and time signature (120 BPM and 4/4 if absent)."""

    notes: list[Note] = field(default_factory=list)
    bpm: float = 120.0
    meter: Meter = Meter()

    @property
    def beats_per_bar(self) -> int:
        """Whole quarter-note beats per bar (as the dataset records it)."""
        return max(1, round(self.meter.bar_ticks / TICKS_PER_BEAT))


def _grid(tick: int, file_tpb: int) -> int:
    return int(round(tick * TICKS_PER_BEAT / file_tpb))


def read_midi(path: str | os.PathLike) -> Phrase:
    """Notes of a standard MIDI file, quantized to the grid. JamError if unreadable or empty."""
    try:
        midi = mido.MidiFile(path, clip=True)
    except FileNotFoundError:
        raise JamError(f"{path}: no such file; check the path") from None
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as err:
        reason = str(err) or type(err).__name__
        raise JamError(f"{path}: not a readable MIDI file ({reason}); export it again as .mid") from None
    if midi.type == 2:
        raise JamError(f"{path}: MIDI type 2 (independent sequences) is not supported; save as type 0 or 1")
    if midi.ticks_per_beat < 0:  # the header's division counts SMPTE frames, not beats
        raise JamError(f"{path}: its times are in SMPTE frames, not beats; export it with "
                       f"ticks per quarter note (PPQ)")
    tpb = midi.ticks_per_beat or FILE_TICKS_PER_BEAT
    bpm: float | None = None
    meter: Meter | None = None
    notes: list[Note] = []
    for track in midi.tracks:
        tick = 0
        open_notes: dict[tuple[int, int], tuple[int, int]] = {}  # (ch, pitch) -> (start, vel)

        def close(key: tuple[int, int], end: int) -> None:
            start, velocity = open_notes.pop(key)
            a, b = _grid(start, tpb), _grid(end, tpb)
            notes.append(Note(key[1], a, max(1, b - a), velocity))

        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo" and bpm is None:
                if msg.tempo == 0:  # 0 microseconds per beat: no tempo at all
                    raise JamError(f"{path}: not a readable MIDI file (a tempo of 0 "
                                   f"microseconds per beat); export it again as .mid")
                bpm = mido.tempo2bpm(msg.tempo)
            elif msg.type == "time_signature" and meter is None:
                try:
                    meter = Meter(msg.numerator, msg.denominator)
                except ValueError:  # a signature our grid cannot count (e.g. 5/32): 4/4
                    meter = Meter()
            elif msg.type in ("note_on", "note_off") and msg.channel != DRUM_CHANNEL:
                key = (msg.channel, msg.note)
                if key in open_notes:  # a note-off, or a retrigger of a sounding pitch
                    close(key, tick)
                if msg.type == "note_on" and msg.velocity > 0:
                    open_notes[key] = (tick, msg.velocity)
        for key in list(open_notes):
            close(key, tick)
    if not notes:
        raise JamError(f"{path}: no notes found (drums on channel 10 are ignored); give a file with a melody")
    notes.sort(key=lambda n: (n.start, n.pitch))
    return Phrase(notes, round(bpm or 120.0, 3), meter or Meter())


def midi_bytes(
    tracks: list[list[Note]],
    bpm: float,
    meter: Meter = Meter(),
    names: list[str] | None = None,
    channel: int = 0,
) -> bytes:
    """A type-1 MIDI file: a tempo track, then one track per list of notes."""
    scale = FILE_TICKS_PER_BEAT // TICKS_PER_BEAT
    midi = mido.MidiFile(type=1, ticks_per_beat=FILE_TICKS_PER_BEAT)
    conductor = mido.MidiTrack()
    conductor.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    conductor.append(mido.MetaMessage("time_signature", numerator=meter.numerator,
                                      denominator=meter.denominator, time=0))
    midi.tracks.append(conductor)
    for i, notes in enumerate(tracks):
        track = mido.MidiTrack()
        if names and i < len(names):
            track.append(mido.MetaMessage("track_name", name=names[i], time=0))
        events = []  # (tick, order, message): note-offs sort before note-ons at one tick
        for note in notes:
            events.append((note.start * scale, 1, note.pitch, note.velocity))
            events.append((note.end * scale, 0, note.pitch, 0))
        events.sort()
        now = 0
        for tick, is_on, pitch, velocity in events:
            kind = "note_on" if is_on else "note_off"
            track.append(mido.Message(kind, channel=channel, note=pitch, velocity=velocity, time=tick - now))
            now = tick
        midi.tracks.append(track)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def write_midi(
    path: str | os.PathLike,
    tracks: list[list[Note]],
    bpm: float,
    meter: Meter = Meter(),
    names: list[str] | None = None,
    overwrite: bool = False,
) -> None:
    """Write notes as a MIDI file, atomically; refuse to replace a file unless ``overwrite``.
    JamError if it cannot be written (an existing file is then untouched)."""
    data = midi_bytes(tracks, bpm, meter, names)
    try:
        atomic_write_bytes(path, data, overwrite=overwrite)
    except OSError as err:  # a folder that refuses files, a folder in the file's place
        raise JamError(f"cannot write {path}: {err.strerror or err}") from None
