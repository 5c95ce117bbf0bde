"""Note tracker and panic sequence, without any MIDI system."""

import mido

from jam.midi.tracker import NoteTracker, panic_sequence, silence_messages


def on(note, channel=0, velocity=100):
    return mido.Message("note_on", note=note, channel=channel, velocity=velocity)


def off(note, channel=0):
    return mido.Message("note_off", note=note, channel=channel)


def test_tracks_note_on_and_off_per_channel():
    tracker = NoteTracker()
    for message in (on(60), on(64), on(60, channel=9), off(64), on(127, channel=15)):
        tracker.update(message)
    assert tracker.sounding() == [(0, 60), (9, 60), (15, 127)]
    assert tracker.is_sounding(9, 60) and not tracker.is_sounding(0, 64)
    assert tracker.used_channels() == [0, 9, 15]


def test_velocity_zero_note_on_is_a_note_off_and_repeats_keep_one_entry():
    tracker = NoteTracker()
    tracker.update(on(60))
    tracker.update(on(60))
    assert tracker.sounding() == [(0, 60)]
    tracker.update(on(60, velocity=0))
    assert tracker.sounding() == []


def test_each_sounding_note_keeps_the_owner_of_its_last_note_on():
    tracker = NoteTracker()
    tracker.update(on(60), "a")
    tracker.update(on(67, channel=2), "a")
    tracker.update(on(64), "b")
    tracker.update(on(48))  # no owner
    tracker.update(on(64), "a")  # retaken: now "a"'s
    tracker.update(on(60, velocity=0), "b")  # any note-off ends it, whoever sends it
    assert tracker.owned_by("a") == [(0, 64), (2, 67)]
    assert tracker.owned_by("b") == []
    assert tracker.owned_by(None) == [(0, 48)]
    assert tracker.sounding() == [(0, 48), (0, 64), (2, 67)]


def test_other_channel_messages_mark_channels_used_system_messages_do_not():
    tracker = NoteTracker()
    tracker.update(mido.Message("control_change", channel=3, control=7, value=90))
    tracker.update(mido.Message("pitchwheel", channel=5, pitch=100))
    tracker.update(mido.Message("clock"))
    tracker.update(mido.Message("sysex", data=[1, 2]))
    assert tracker.used_channels() == [3, 5]
    assert tracker.sounding() == []


def test_panic_sequence_note_offs_first_then_resets_on_used_channels():
    tracker = NoteTracker()
    for message in (on(60, 1), on(67, 1), on(40, 4), mido.Message("program_change", channel=7)):
        tracker.update(message)
    sequence = [(m.type, m.channel, getattr(m, "note", None), getattr(m, "control", None),
                 getattr(m, "value", getattr(m, "velocity", None)))
                for m in panic_sequence(tracker)]
    assert sequence == [
        ("note_off", 1, 60, None, 0), ("note_off", 1, 67, None, 0), ("note_off", 4, 40, None, 0),
        ("control_change", 1, None, 64, 0), ("control_change", 1, None, 123, 0),
        ("control_change", 1, None, 120, 0),
        ("control_change", 4, None, 64, 0), ("control_change", 4, None, 123, 0),
        ("control_change", 4, None, 120, 0),
        ("control_change", 7, None, 64, 0), ("control_change", 7, None, 123, 0),
        ("control_change", 7, None, 120, 0),
    ]


def test_panic_on_a_fresh_tracker_sends_nothing_and_clear_forgets():
    tracker = NoteTracker()
    assert panic_sequence(tracker) == []
    tracker.update(on(60, 2))
    tracker.clear()
    assert panic_sequence(tracker) == [] and tracker.used_channels() == []


def test_silence_messages_for_all_channels():
    messages = list(silence_messages(range(16)))
    assert len(messages) == 48
    assert {m.channel for m in messages} == set(range(16))
    assert [m.control for m in messages[:3]] == [64, 123, 120]
