"""Melody extraction by part (jam.midi.melody) on real MIDI files written with mido: a
four-part chorale-like piece where the soprano holds while the alto moves, as type 1 (named
tracks) and type 0 (one track, a channel per voice, no names), with drums and a tempo change
(tests/chorale.py)."""

from __future__ import annotations

import mido
import pytest

from chorale import (
    ALTO,
    BASS,
    BEAT,
    DRUMS,
    FILE_TPB,
    SOPRANO,
    VOICES,
    chorale_type0,
    chorale_type1,
    events,
    track_of,
)
from jam.midi.files import read_midi
from jam.midi.melody import choose_melodies, read_parts, top_line
from jam.music.tokens import Note, skyline


@pytest.fixture(params=["type1", "type0"])
def chorale(request, tmp_path):
    make = chorale_type1 if request.param == "type1" else chorale_type0
    return make(tmp_path / f"chorale-{request.param}.mid")


def test_the_old_merge_would_leak_the_alto_into_the_melody(chorale):
    merged = skyline(read_midi(chorale).notes)  # what prepare_data did before: all parts merged
    assert merged != SOPRANO and {n.pitch for n in merged} & {n.pitch for n in ALTO} - {n.pitch for n in SOPRANO}


def test_the_melody_is_the_soprano_note_for_note(chorale):
    midi = read_parts(chorale)
    assert midi.midi_type == (0 if "type0" in chorale.name else 1)
    melodies, why = choose_melodies(midi.parts)
    assert len(melodies) == 1, why
    assert melodies[0].notes == SOPRANO
    assert melodies[0].part.channel == 0
    expected = "named like a melody" if "type1" in chorale.name else "highest mean pitch"
    assert melodies[0].reason.startswith(expected)


def test_all_parts_gives_the_four_voices_and_never_the_drums(chorale):
    midi = read_parts(chorale)
    assert [p.channel for p in midi.parts if p.drums] == [9]
    melodies, _ = choose_melodies(midi.parts, all_parts=True)
    assert [m.notes for m in melodies] == list(VOICES.values())
    assert all(m.part.channel != 9 for m in melodies)
    drum_pitches = {n.pitch for n in DRUMS}
    for m in melodies:
        assert not {n.pitch for n in m.notes} & drum_pitches - {n.pitch for n in m.part.notes}


@pytest.mark.parametrize("query, voice", [("2", "Alto"), ("tenor", "Tenor"), ("BASS", "Bass")])
def test_part_by_number_or_name(tmp_path, query, voice):
    midi = read_parts(chorale_type1(tmp_path / "c.mid"))
    melodies, why = choose_melodies(midi.parts, part=query, min_pitches=3)
    assert len(melodies) == 1, why
    assert melodies[0].notes == VOICES[voice]


def test_part_that_does_not_exist_or_is_drums_says_so(tmp_path):
    midi = read_parts(chorale_type1(tmp_path / "c.mid"))
    melodies, why = choose_melodies(midi.parts, part="flute")
    assert melodies == [] and "no part named like 'flute'" in why and "'Soprano'" in why
    melodies, why = choose_melodies(midi.parts, part="5")
    assert melodies == [] and "is drums" in why


def test_drums_alone_are_no_melody(tmp_path):
    midi = mido.MidiFile(type=1, ticks_per_beat=FILE_TPB)
    midi.tracks.append(track_of(events(DRUMS, 9)))
    midi.save(tmp_path / "drums.mid")
    melodies, why = choose_melodies(read_parts(tmp_path / "drums.mid").parts)
    assert melodies == [] and "drum" in why


def test_one_piano_track_keeps_the_held_top_note_over_a_moving_inner_voice(tmp_path):
    """One track, one channel (a piano): the top line, not the inner voice under a held note."""
    midi = mido.MidiFile(type=1, ticks_per_beat=FILE_TPB)
    inner = [n._replace(pitch=n.pitch - 5) for n in ALTO]  # one channel: no pitch shared with the top
    midi.tracks.append(track_of(events(SOPRANO + inner + BASS, 0), "Piano"))
    midi.save(tmp_path / "piano.mid")
    parts = read_parts(tmp_path / "piano.mid").parts
    assert len(parts) == 1 and parts[0].polyphony > 0.5
    melodies, _ = choose_melodies(parts)
    assert melodies[0].notes == SOPRANO
    assert choose_melodies(parts, all_parts=True)[0] == []  # too polyphonic to be a tune


def test_top_line_keeps_legato_and_chords():
    legato = [Note(72, 0, 14), Note(71, 12, 12)]  # the lower note starts 2 ticks before the end
    assert top_line(legato) == [Note(72, 0, 12), Note(71, 12, 12)]
    chord = [Note(60, 0, 12), Note(64, 0, 12), Note(67, 0, 12), Note(65, 12, 12)]
    assert top_line(chord) == [Note(67, 0, 12), Note(65, 12, 12)]


def test_short_or_plain_parts_are_left_out_with_a_reason(tmp_path):
    midi = mido.MidiFile(type=1, ticks_per_beat=FILE_TPB)
    midi.tracks.append(track_of(events([Note(60 + i % 2, i * BEAT, BEAT) for i in range(40)], 0), "Melody"))
    midi.save(tmp_path / "plain.mid")
    melodies, why = choose_melodies(read_parts(tmp_path / "plain.mid").parts)
    assert melodies == [] and "only 2 distinct pitches (fewer than 5)" in why
