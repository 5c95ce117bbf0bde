"""The session recorder on fake time with real files: what mido reads back, the tempo map,
names that never replace a file, and failures that only warn."""

from __future__ import annotations

import logging
import shutil
from collections import deque
from datetime import datetime

import mido
import pytest

from jackrig import wait_for
from jam.engine.clock import Clock, Pulse
from jam.engine.recorder import SessionRecorder, TempoMap
from jam.music.meter import Meter

T0 = 7000.0
STAMP = datetime(2026, 11, 26, 19, 55, 1)


class Port:
    """What the recorder needs of the scheduler: the attribute it sets."""

    sent_log = None


def on(note, velocity=90, channel=0):
    return mido.Message("note_on", note=note, velocity=velocity, channel=channel)


def off(note, channel=0):
    return mido.Message("note_off", note=note, channel=channel)


def seconds_of(path):
    """(track name, absolute seconds, message) of every channel message in the file, the
    seconds computed by mido's own reading of the tempo map."""
    midi = mido.MidiFile(path)
    tempos = [(0, 500000)]
    tick = 0
    for message in midi.tracks[0]:
        tick += message.time
        if message.type == "set_tempo":
            tempos.append((tick, message.tempo))
    out = []
    for track in midi.tracks[1:]:
        tick = 0
        for message in track:
            tick += message.time
            if message.is_meta:
                continue
            seconds, last_tick, last_tempo = 0.0, 0, tempos[0][1]
            for at, tempo in tempos:
                if at > tick:
                    break
                seconds += mido.tick2second(at - last_tick, midi.ticks_per_beat, last_tempo)
                last_tick, last_tempo = at, tempo
            seconds += mido.tick2second(tick - last_tick, midi.ticks_per_beat, last_tempo)
            out.append((track.name, seconds, message))
    return out


def started(tmp_path, bpm=120.0, meter=Meter()):
    recorder = SessionRecorder(tmp_path, meter, stamp=STAMP)
    clock = Clock(bpm, meter)
    scheduler = Port()
    assert recorder.start(scheduler, clock, T0)
    assert scheduler.sent_log is recorder.sent
    return recorder, clock


def test_tempo_map_segments_start_on_whole_ticks():
    tempo_map = TempoMap(10.0, 120.0)
    assert tempo_map.tick(10.5) == 480 and tempo_map.tick(9.0) == 0
    assert tempo_map.change(11.0003, 120.0) is None
    tick, tempo = tempo_map.change(11.0003, 60.0)
    assert (tick, tempo) == (961, 1_000_000)
    assert tempo_map.tick(tempo_map.starts[1] + 1.0) == 961 + 480
    assert tempo_map.tick(10.9) == 864  # before the change: the old tempo


def test_a_session_file_holds_both_tracks_and_plays_back_at_the_times_played(tmp_path):
    recorder, clock = started(tmp_path, meter=Meter(3, 4))
    path = tmp_path / "jam-20261126-195501.mid"
    assert recorder.path == path and mido.MidiFile(path).type == 1
    # the player's first note anchors the clock (a downbeat), as --tempo fixed does
    clock.set_pulse(Pulse(120.0, T0 + 1.0))
    recorder.played(on(60), T0 + 1.0)
    recorder.played(mido.Message("clock"), T0 + 1.1)  # not recorded
    recorder.played(off(60), T0 + 1.4)
    recorder.follow(clock, T0 + 1.5)
    recorder.sent.append((on(67, channel=2), T0 + 2.0))
    recorder.sent.append((off(67, channel=2), T0 + 2.5))
    clock.set_tempo(90.0, T0 + 2.6)  # the tempo jam knew changes
    recorder.follow(clock, T0 + 2.6)
    recorder.played(on(62), T0 + 3.0)
    recorder.played(off(62), T0 + 3.333)
    recorder.close(T0 + 4.0)
    midi = mido.MidiFile(path)
    assert midi.type == 1 and midi.ticks_per_beat == 480
    assert [t.name for t in midi.tracks] == ["", "player", "jam"]
    conductor = [m for m in midi.tracks[0] if m.type in ("set_tempo", "time_signature")]
    assert [(m.type, getattr(m, "numerator", None)) for m in conductor] == [
        ("time_signature", 3), ("set_tempo", None), ("set_tempo", None)]
    assert [round(mido.tempo2bpm(m.tempo), 3) for m in conductor[1:]] == [120.0, 90.0]
    events = seconds_of(path)
    # the file starts on the downbeat of the first note: times relative to it
    expected = [("player", 0.0, "note_on", 60), ("player", 0.4, "note_off", 60),
                ("player", 2.0, "note_on", 62), ("player", 2.333, "note_off", 62),
                ("jam", 1.0, "note_on", 67), ("jam", 1.5, "note_off", 67)]
    assert len(events) == len(expected)
    for (name, seconds, message), (want_name, want, kind, note) in zip(events, expected):
        assert (name, message.type, message.note) == (want_name, kind, note)
        assert seconds == pytest.approx(want, abs=0.001)
    assert [m.channel for n, _, m in events if n == "jam"] == [2, 2]


def test_notes_still_sounding_end_at_the_end_of_the_file(tmp_path):
    recorder, clock = started(tmp_path)
    clock.set_pulse(Pulse(120.0, T0))
    recorder.played(on(60), T0)
    recorder.sent.append((on(72), T0 + 0.5))
    recorder.follow(clock, T0 + 0.6)
    recorder.boundary(T0 + 0.6)
    assert recorder.poll(T0 + 0.62) == pytest.approx(T0 + 0.65)  # not yet: settling
    assert recorder.poll(T0 + 0.66) is None  # handed to the writer
    assert wait_for(lambda: recorder.writes == 2, 5)
    events = seconds_of(recorder.path)
    assert [(n, m.type, m.note) for n, _, m in events] == [
        ("player", "note_on", 60), ("player", "note_off", 60),
        ("jam", "note_on", 72), ("jam", "note_off", 72)]
    assert [round(s, 3) for _, s, _ in events] == [0.0, 0.66, 0.5, 0.66]
    recorder.close(T0 + 1.0)


def test_an_existing_file_is_never_replaced(tmp_path):
    taken = tmp_path / "jam-20261126-195501.mid"
    taken.write_bytes(b"someone's file")
    (tmp_path / "jam-20261126-195501-2.mid").write_bytes(b"another")
    recorder, _ = started(tmp_path)
    assert recorder.path == tmp_path / "jam-20261126-195501-3.mid"
    recorder.close(T0 + 1)
    assert taken.read_bytes() == b"someone's file"
    assert (tmp_path / "jam-20261126-195501-2.mid").read_bytes() == b"another"
    second = SessionRecorder(tmp_path, Meter(), stamp=STAMP)
    assert second.start(Port(), Clock(120.0), T0)
    assert second.path == tmp_path / "jam-20261126-195501-4.mid"
    second.close(T0 + 1)


@pytest.mark.parametrize("where", ["missing", "a file"])
def test_a_folder_that_cannot_be_written_is_one_warning_and_no_recording(tmp_path, caplog,
                                                                         where):
    folder = tmp_path / "nowhere"
    if where == "a file":
        folder.write_bytes(b"")
    recorder = SessionRecorder(folder, Meter(), stamp=STAMP)
    scheduler = Port()
    with caplog.at_level(logging.WARNING, logger="jam.engine.recorder"):
        assert recorder.start(scheduler, Clock(120.0), T0) is False
        recorder.boundary(T0 + 1)
        recorder.follow(Clock(120.0), T0 + 1)
        assert recorder.poll(T0 + 2) is None
        recorder.close(T0 + 3)
    assert [r.getMessage() for r in caplog.records] == [
        f"recording off: cannot write a file in {folder} "
        f"({'no such folder' if where == 'missing' else 'not a folder'})"]
    assert scheduler.sent_log is None and not recorder.active


def test_a_write_that_fails_warns_once_and_the_next_boundary_tries_again(tmp_path, caplog):
    folder = tmp_path / "stick"
    folder.mkdir()
    recorder, clock = started(folder)
    clock.set_pulse(Pulse(120.0, T0))
    shutil.rmtree(folder)  # the stick is pulled
    with caplog.at_level(logging.INFO, logger="jam.engine.recorder"):
        for k in range(3):
            recorder.played(on(60 + k), T0 + k)
            recorder.played(off(60 + k), T0 + k + 0.5)
            recorder.follow(clock, T0 + k + 0.6)
            recorder.boundary(T0 + k + 0.6)
            recorder.poll(T0 + k + 0.7)
            assert wait_for(lambda: recorder._pending is None, 5)
        assert wait_for(lambda: recorder.failed, 5)
        folder.mkdir()  # back
        recorder.boundary(T0 + 4)
        recorder.poll(T0 + 4.1)
        assert wait_for(lambda: not recorder.failed, 5)
        recorder.close(T0 + 5)
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    warnings = [text for level, text in lines if level == "WARNING"]
    assert len(warnings) == 1 and "cannot write" in warnings[0]
    assert ("INFO", f"recording: {recorder.path} written again") in lines
    notes = [m.note for _, _, m in seconds_of(recorder.path) if m.type == "note_on"]
    assert notes == [60, 61, 62]  # nothing played while it failed is lost


def test_scheduler_log_is_a_deque_the_recorder_drains(tmp_path):
    recorder, _ = started(tmp_path)
    assert isinstance(recorder.sent, deque) and not recorder.sent
    recorder.close(T0 + 1)
