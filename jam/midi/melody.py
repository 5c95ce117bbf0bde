"""Melodies from multi-part music, one part at a time (stdlib and mido only).

A file is split into *parts* that are never merged: in a type-1 MIDI file each (track,
channel) pair with notes is a part, in a type-0 file each channel. Within a part, chords and
inner voices are reduced to the top line (:func:`top_line`): the highest note of each onset,
and no note that starts under a higher note of the same part that is still sounding. So a
lower voice that moves while the top voice holds never becomes melody, which merging every
track and keeping the highest note of each onset would do.

Which part is the melody (:func:`choose_melodies`):

- by default one part: the first named like a melody (soprano, melody, lead, vocal, voice,
  right hand, ...; :data:`MELODY_NAMES`), else the highest part by the mean pitch of its top
  line among the parts with at least a quarter as many notes as the busiest one;
- ``part="2"`` (a part number, as listed by :func:`describe_parts`) or ``part="alto"`` (a
  case-insensitive part of its name) chooses it;
- ``all_parts=True`` takes every part that is monophonic enough (at most ``max_polyphony``
  of its notes dropped by the reduction) as its own melody, as Magenta's melody extractor does.

Drums (channel 10, or a part named drums/percussion) are never a melody. A melody needs at
least ``min_notes`` notes and ``min_pitches`` distinct pitches. Every decision comes with a
reason in words, for reports. Music21 scores feed the same chooser with their parts
(``tools/prepare_data.py``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import mido

from jam.errors import JamError
from jam.midi.files import DRUM_CHANNEL, FILE_TICKS_PER_BEAT
from jam.music.meter import Meter
from jam.music.tokens import TICKS_PER_BEAT, Note

MIN_NOTES = 16
MIN_PITCHES = 5
MAX_POLYPHONY = 0.25
LEGATO_TICKS = 3  # a note may start this long (a 16th) before the higher note above it ends
COVER_TICKS = 8 * TICKS_PER_BEAT  # a held note hides the notes under it for 8 beats at most
MINOR_PART = 0.25  # parts with fewer notes than this share of the busiest one are cameos

MELODY_NAMES = re.compile(
    r"\b(soprano|sopran|melod(y|ie|ia)|lead|vocals?|voice|vox|singer|sing|solo|tune|theme|"
    r"right[ _-]?hand|rh|r\.h\.|treble|descant|cantus|canto|superius)\b", re.IGNORECASE)
NOT_MELODY_NAMES = re.compile(r"\b(bass|basso|accomp\w*|chords?|pad|left[ _-]?hand|lh|l\.h\.)\b",
                              re.IGNORECASE)
DRUM_NAMES = re.compile(r"\b(drums?|drum ?kit|percussion)\b", re.IGNORECASE)


def _grid(tick: int, file_tpb: int) -> int:
    return int(round(tick * TICKS_PER_BEAT / file_tpb))


def top_line(notes: list[Note], legato: int = LEGATO_TICKS, cover: int = COVER_TICKS) -> list[Note]:
    """One voice from any notes of one part: the highest note of each onset, except a note
    that starts while a higher note kept before it still sounds for more than ``legato``
    ticks (an inner voice moving under a held melody note), within ``cover`` ticks of that
    note's start (so one stuck or endless note cannot hide a whole part); each kept note is
    cut at the next kept onset."""
    by_onset: dict[int, Note] = {}
    for note in notes:
        if note.duration <= 0:
            continue
        best = by_onset.get(note.start)
        if best is None or (note.pitch, note.duration) > (best.pitch, best.duration):
            by_onset[note.start] = note
    line: list[Note] = []
    ceiling: Note | None = None  # the last kept note, with its own full length
    for start in sorted(by_onset):
        note = by_onset[start]
        if ceiling is not None and ceiling.pitch > note.pitch and \
                min(ceiling.end, ceiling.start + cover) > start + legato:
            continue
        if line and line[-1].end > start:
            line[-1] = line[-1]._replace(duration=start - line[-1].start)
        line.append(note)
        ceiling = note
    return line


@dataclass
class Part:
    """One part of a piece: the notes of one track and channel (MIDI) or one score part."""

    number: int  # 1-based, in file order: what --part INDEX means
    name: str = ""
    notes: list[Note] = field(default_factory=list)
    track: int | None = None
    channel: int | None = None  # 0-15 (MIDI), None for a score part
    program: int | None = None

    @property
    def drums(self) -> bool:
        return self.channel == DRUM_CHANNEL or bool(DRUM_NAMES.search(self.name))

    @property
    def line(self) -> list[Note]:
        if not hasattr(self, "_line"):
            self._line = top_line(self.notes)
        return self._line

    @property
    def mean_pitch(self) -> float:
        line = self.line
        return sum(n.pitch for n in line) / len(line) if line else 0.0

    @property
    def polyphony(self) -> float:
        """Share of the part's notes that the reduction to one line drops (0: monophonic)."""
        return 1.0 - len(self.line) / len(self.notes) if self.notes else 0.0

    def label(self) -> str:
        where = []
        if self.track is not None:
            where.append(f"track {self.track}")
        if self.channel is not None:
            where.append(f"channel {self.channel + 1}")
        name = f" {self.name!r}" if self.name else ""
        return f"part {self.number}{name}" + (f" ({', '.join(where)})" if where else "")

    def report(self) -> dict:
        """What summary files record about a part."""
        return {"part": self.number, "name": self.name, "track": self.track,
                "channel": None if self.channel is None else self.channel + 1,
                "program": self.program, "notes": len(self.notes), "line_notes": len(self.line),
                "mean_pitch": round(self.mean_pitch, 1), "polyphony": round(self.polyphony, 3),
                "drums": self.drums}


@dataclass
class Melody:
    """A melody taken from one part, and why that part."""

    notes: list[Note]
    part: Part
    reason: str


@dataclass
class PartsFile:
    """The parts of a MIDI file with its first tempo and time signature."""

    parts: list[Part]
    bpm: float = 120.0
    meter: Meter = Meter()
    midi_type: int = 1

    @property
    def beats_per_bar(self) -> int:
        return max(1, round(self.meter.bar_ticks / TICKS_PER_BEAT))


def read_parts(path: str | os.PathLike) -> PartsFile:
    """The parts of a standard MIDI file (drum parts included, marked), notes on the grid.
    JamError (one line) if the file is unreadable or has no notes."""
    try:
        midi = mido.MidiFile(path, clip=True)
    except FileNotFoundError:
        raise JamError(f"{path}: no such file; check the path") from None
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as err:
        reason = str(err) or type(err).__name__
        raise JamError(f"{path}: not a readable MIDI file ({reason}); export it again as .mid") from None
    if midi.type == 2:
        raise JamError(f"{path}: MIDI type 2 (independent sequences) is not supported; save as type 0 or 1")
    tpb = midi.ticks_per_beat or FILE_TICKS_PER_BEAT
    bpm: float | None = None
    meter: Meter | None = None
    parts: list[Part] = []
    for track_no, track in enumerate(midi.tracks):
        tick = 0
        prefix: int | None = None  # a channel_prefix meta event: the names after it are that channel's
        track_name = ""
        channel_names: dict[int, str] = {}
        programs: dict[int, int] = {}
        notes: dict[int, list[Note]] = {}
        open_notes: dict[tuple[int, int], tuple[int, int]] = {}  # (ch, pitch) -> (start, vel)

        def close(key: tuple[int, int], end: int) -> None:
            start, velocity = open_notes.pop(key)
            a, b = _grid(start, tpb), _grid(end, tpb)
            notes.setdefault(key[0], []).append(Note(key[1], a, max(1, b - a), velocity))

        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo" and bpm is None:
                bpm = mido.tempo2bpm(msg.tempo)
            elif msg.type == "time_signature" and meter is None:
                try:
                    meter = Meter(msg.numerator, msg.denominator)
                except ValueError:  # a signature our grid cannot count (e.g. 5/32): 4/4
                    meter = Meter()
            elif msg.type == "channel_prefix":
                prefix = msg.channel
            elif msg.type in ("track_name", "instrument_name"):
                name = msg.name.strip()
                if prefix is not None:
                    channel_names.setdefault(prefix, name)
                elif msg.type == "track_name" and not track_name:
                    track_name = name
                elif not track_name:
                    track_name = name
            elif msg.type == "program_change":
                programs.setdefault(msg.channel, msg.program)
            elif msg.type in ("note_on", "note_off"):
                key = (msg.channel, msg.note)
                if key in open_notes:  # a note-off, or a retrigger of a sounding pitch
                    close(key, tick)
                if msg.type == "note_on" and msg.velocity > 0:
                    open_notes[key] = (tick, msg.velocity)
        for key in list(open_notes):
            close(key, tick)
        # A type-0 file's one track name is the song's title, not a part name; in a type-1
        # file it names the part (with the channel added when the track uses several).
        for channel in sorted(notes):
            name = channel_names.get(channel, "")
            if not name and midi.type == 1:
                name = track_name if len(notes) == 1 or not track_name else f"{track_name} ch{channel + 1}"
            if not name and midi.type == 0 and len(notes) == 1:
                name = track_name
            parts.append(Part(len(parts) + 1, name, sorted(notes[channel], key=lambda n: (n.start, n.pitch)),
                              track=track_no, channel=channel, program=programs.get(channel)))
    if not parts:
        raise JamError(f"{path}: no notes found; give a file with a melody")
    return PartsFile(parts, round(bpm or 120.0, 3), meter or Meter(), midi.type)


def describe_parts(parts: list[Part]) -> str:
    """One line per part, for listings and error messages."""
    return "; ".join(f"{p.label()}: {len(p.notes)} notes, mean pitch {p.mean_pitch:.1f}"
                     + (", drums" if p.drums else "") for p in parts)


def _usable(melody: list[Note], min_notes: int, min_pitches: int) -> str | None:
    """Why a line is too short or too plain to keep, or None."""
    if len(melody) < min_notes:
        return f"only {len(melody)} notes (fewer than {min_notes})"
    pitches = len({n.pitch for n in melody})
    if pitches < min_pitches:
        return f"only {pitches} distinct pitches (fewer than {min_pitches})"
    return None


def select_part(parts: list[Part], query: str) -> tuple[Part | None, str]:
    """The part ``query`` names: a part number, or a case-insensitive (part of a) name."""
    query = query.strip()
    if query.isdigit():
        number = int(query)
        found = [p for p in parts if p.number == number]
        return (found[0], f"--part {number}") if found else (None, f"no part {number}")
    wanted = query.lower()
    found = [p for p in parts if p.name.lower() == wanted] or \
            [p for p in parts if wanted in p.name.lower()]
    if not found:
        return None, f"no part named like {query!r}"
    best = max(found, key=lambda p: p.mean_pitch)
    return best, f"--part {query!r} matches {best.name!r}"


def choose_melodies(parts: list[Part], part: str | None = None, all_parts: bool = False,
                    min_notes: int = MIN_NOTES, min_pitches: int = MIN_PITCHES,
                    max_polyphony: float = MAX_POLYPHONY) -> tuple[list[Melody], str]:
    """The melodies to take from a piece's parts, and a reason when none is taken (or a note
    on the parts left out with ``all_parts``). See the module docstring for the rules."""
    pitched = [p for p in parts if p.notes and not p.drums]
    if part is not None:
        chosen, why = select_part(parts, part)
        if chosen is None:
            return [], f"{why} (parts: {describe_parts(parts)})"
        if chosen.drums:
            return [], f"{chosen.label()} is drums; choose another --part"
        problem = _usable(chosen.line, min_notes, min_pitches)
        if problem:
            return [], f"{chosen.label()}: {problem}"
        return [Melody(chosen.line, chosen, why)], ""
    if not pitched:
        return [], "no notes outside the drum parts"
    if all_parts:
        taken, left = [], []
        for p in pitched:
            problem = _usable(p.line, min_notes, min_pitches)
            if problem is None and p.polyphony > max_polyphony:
                problem = (f"polyphonic: {p.polyphony:.0%} of its notes are chord or inner-voice "
                           f"notes (more than {max_polyphony:.0%})")
            if problem:
                left.append(f"{p.label()}: {problem}")
            else:
                taken.append(Melody(p.line, p, "--all-parts"))
        return taken, "; ".join(left) if left else ""
    named = [p for p in pitched if MELODY_NAMES.search(p.name) and not NOT_MELODY_NAMES.search(p.name)
             and _usable(p.line, min_notes, min_pitches) is None]
    if named:
        best = max(named, key=lambda p: p.mean_pitch)
        return [Melody(best.line, best, f"named like a melody ({best.name!r})")], ""
    busiest = max(len(p.line) for p in pitched)
    candidates = [p for p in pitched if len(p.line) >= MINOR_PART * busiest]
    best = max(candidates, key=lambda p: p.mean_pitch)
    if len(pitched) == 1:
        why = "the only part"
    else:
        why = (f"highest mean pitch ({best.mean_pitch:.1f}) of {len(candidates)} parts"
               + (f" ({len(pitched) - len(candidates)} short part"
                  f"{'s' if len(pitched) - len(candidates) > 1 else ''} left out)"
                  if len(candidates) < len(pitched) else ""))
    problem = _usable(best.line, min_notes, min_pitches)
    if problem:
        return [], f"{best.label()} ({why}): {problem}"
    return [Melody(best.line, best, why)], ""

