"""MIDI file reading and writing on the token grid, with real files on disk."""

import mido
import pytest

from jam.errors import JamError
from jam.fileio import atomic_write_bytes
from jam.midi.files import midi_bytes, read_midi, write_midi
from jam.music.meter import Meter
from jam.music.tokens import Note

PHRASE = [Note(60, 0, 12, 90), Note(60, 12, 6, 70), Note(64, 18, 30, 100), Note(67, 48, 3, 50)]


def test_written_notes_read_back_exactly(tmp_path):
    path = tmp_path / "call.mid"
    write_midi(path, [PHRASE], bpm=93, meter=Meter(3, 4), names=["call"])
    phrase = read_midi(path)
    assert phrase.notes == PHRASE
    assert phrase.bpm == pytest.approx(93, abs=0.01)
    assert phrase.meter == Meter(3, 4) and phrase.beats_per_bar == 3


def test_writing_is_deterministic():
    assert midi_bytes([PHRASE], 120, names=["a"]) == midi_bytes([PHRASE], 120, names=["a"])


def test_an_existing_file_is_never_overwritten_unless_asked(tmp_path):
    path = tmp_path / "mine.mid"
    path.write_bytes(b"user data")
    with pytest.raises(JamError, match="already exists"):
        write_midi(path, [PHRASE], 120)
    assert path.read_bytes() == b"user data"
    write_midi(path, [PHRASE], 120, overwrite=True)
    assert read_midi(path).notes == PHRASE
    assert [p.name for p in tmp_path.iterdir()] == ["mine.mid"]  # no temp files left


def test_written_files_get_the_usual_permissions(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        path = atomic_write_bytes(tmp_path / "x.mid", b"data")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(JamError, match="does not exist"):
        atomic_write_bytes(tmp_path / "nope" / "x.mid", b"")


def test_quantizes_off_grid_times_and_ignores_drums(tmp_path):
    midi = mido.MidiFile(ticks_per_beat=96)
    track = mido.MidiTrack()
    track += [
        mido.Message("note_on", note=62, velocity=64, time=7),  # 7/96 beat -> tick 1
        mido.Message("note_on", channel=9, note=36, velocity=100, time=0),
        mido.Message("note_on", note=62, velocity=0, time=41),  # note-on velocity 0 = off
        mido.Message("note_off", channel=9, note=36, time=0),
    ]
    midi.tracks.append(track)
    path = tmp_path / "odd.mid"
    midi.save(path)
    assert read_midi(path).notes == [Note(62, 1, 5, 64)]


@pytest.mark.parametrize(
    "content, message",
    [(b"MThd\x00\x00\x00\x06garbage", "not a readable MIDI file"), (None, "no notes")],
)
def test_malformed_or_empty_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.mid"
    if content is None:
        mido.MidiFile().save(path)
    else:
        path.write_bytes(content)
    with pytest.raises(JamError, match=message) as err:
        read_midi(path)
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(JamError, match="no such file"):
        read_midi(tmp_path / "missing.mid")


@pytest.mark.parametrize("meter", [Meter(2, 4), Meter(3, 4), Meter(6, 8), Meter(7, 8), Meter(2, 2)])
def test_the_time_signature_round_trips(tmp_path, meter):
    path = tmp_path / f"m{meter.numerator}-{meter.denominator}.mid"
    write_midi(path, [PHRASE], bpm=100, meter=meter)
    assert read_midi(path).meter == meter
