"""A four-part chorale-like piece as real MIDI files, for the melody-extraction tests: the
soprano holds half notes while the alto moves in eighths between them (so "the highest note
of each onset" across parts takes alto notes), with a drum track and a tempo change; as a
type-1 file (named tracks) and as a type-0 file (one track, a channel per voice, no names)."""

from __future__ import annotations

import mido

from jam.music.tokens import Note

BEAT = 12  # grid ticks per quarter
FILE_TPB = 480

# Eight bars of 4/4. The soprano holds half notes and the alto moves in eighths below it, so
# "the highest note of each onset" across parts takes an alto note at every onset where the
# soprano holds. Every voice has 16 notes or more and 5 distinct pitches or more.
SOPRANO = [Note(p, i * 2 * BEAT, 2 * BEAT) for i, p in enumerate(
    [72, 74, 76, 74, 72, 71, 72, 79, 77, 76, 74, 72, 71, 69, 71, 72])]
ALTO = [Note(p, i * BEAT // 2, BEAT // 2) for i, p in enumerate(
    ([67, 69, 71, 69] * 2 + [64, 65, 67, 65] * 2) * 4)]
TENOR = [Note(p, i * BEAT, BEAT) for i, p in enumerate([60, 62, 64, 62, 60, 59, 57, 59] * 4)]
BASS = [Note(p, i * 2 * BEAT, 2 * BEAT) for i, p in enumerate([48, 43, 45, 41, 43, 48, 41, 40] * 2)]
VOICES = {"Soprano": SOPRANO, "Alto": ALTO, "Tenor": TENOR, "Bass": BASS}
DRUMS = [Note(p, i * BEAT, BEAT // 2) for i, p in enumerate([36, 42, 38, 81] * 8)]  # 81: triangle


def events(notes: list[Note], channel: int) -> list[tuple[int, int, mido.Message]]:
    scale = FILE_TPB // BEAT
    out = []
    for n in notes:
        out.append((n.start * scale, 1, mido.Message("note_on", channel=channel, note=n.pitch, velocity=n.velocity)))
        out.append((n.end * scale, 0, mido.Message("note_off", channel=channel, note=n.pitch)))
    return out


def track_of(items, name: str | None = None) -> mido.MidiTrack:
    track = mido.MidiTrack()
    if name:
        track.append(mido.MetaMessage("track_name", name=name, time=0))
    now = 0
    for tick, _, msg in sorted(items, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=tick - now))
        now = tick
    return track


def conductor() -> mido.MidiTrack:
    tempo = [(0, 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(80))),
             (0, 0, mido.MetaMessage("time_signature", numerator=4, denominator=4)),
             (16 * FILE_TPB, 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(60)))]  # a tempo change
    return track_of(tempo, "Chorale")


def chorale_type1(path, drums: bool = True):
    midi = mido.MidiFile(type=1, ticks_per_beat=FILE_TPB)
    midi.tracks.append(conductor())
    for channel, (name, notes) in enumerate(VOICES.items()):
        midi.tracks.append(track_of(events(notes, channel), name))
    if drums:
        midi.tracks.append(track_of(events(DRUMS, 9), "Drums"))
    midi.save(path)
    return path


def chorale_type0(path):
    chorale_type1(path)
    merged = mido.MidiFile(type=0, ticks_per_beat=FILE_TPB)
    # one track; drop every name so that nothing but the channels tells the voices apart
    merged.tracks.append(mido.MidiTrack(m for m in mido.merge_tracks(mido.MidiFile(path).tracks)
                                        if m.type != "track_name" or m.time))
    merged.save(path)
    return path
