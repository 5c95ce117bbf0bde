"""The note checker of the reliability tests (tools/stagerig.py): stuck notes and lost
note-offs in what a synth received, per channel."""

import mido

from stagerig import check_notes


def on(note, channel=0, velocity=90):
    return mido.Message("note_on", note=note, channel=channel, velocity=velocity)


def off(note, channel=0, as_note_on=False):
    if as_note_on:
        return mido.Message("note_on", note=note, channel=channel, velocity=0)
    return mido.Message("note_off", note=note, channel=channel)


def cc(control, value=0, channel=0):
    return mido.Message("control_change", control=control, value=value, channel=channel)


def timed(*messages):
    return [(float(i), m) for i, m in enumerate(messages)]


def test_every_note_ended_by_its_note_off_is_clean():
    report = check_notes(timed(on(60), on(64), off(60), off(64, as_note_on=True)))
    assert report.clean and (report.note_ons, report.note_offs) == (2, 2)


def test_a_note_without_note_off_is_stuck_and_its_note_off_lost():
    report = check_notes(timed(on(60), on(62), off(62)))
    assert [(s.channel, s.note, s.on) for s in report.stuck] == [(0, 60, 0.0)]
    assert report.lost_note_offs == report.stuck and not report.clean


def test_channels_are_separate():
    report = check_notes(timed(on(60, channel=0), off(60, channel=1)))
    assert [(s.channel, s.note) for s in report.stuck] == [(0, 60)]
    assert report.stray_offs == 1


def test_all_notes_off_ends_the_channels_notes_but_their_note_offs_are_lost():
    report = check_notes(timed(on(60), on(61, channel=3), cc(123), cc(120, channel=3)))
    assert report.stuck == []
    assert [(s.channel, s.note) for s in report.lost_note_offs] == [(0, 60), (3, 61)]
    report = check_notes(timed(on(60, channel=2), cc(123, channel=5)))  # another channel
    assert [(s.channel, s.note) for s in report.stuck] == [(2, 60)]


def test_jams_shutdown_order_is_clean():
    # note-offs first, then sustain off, all notes off, all sound off
    report = check_notes(timed(on(60), cc(64, 127), off(60), cc(64), cc(123), cc(120)))
    assert report.clean


def test_a_pedal_left_down_is_reported():
    report = check_notes(timed(cc(64, 127, channel=4), on(60), off(60)))
    assert report.pedal_down == [4] and not report.clean


def test_a_retriggered_note_needs_one_note_off_and_until_cuts_the_view():
    received = timed(on(60), on(60), off(60))
    report = check_notes(received)
    assert report.clean and report.retriggers == 1
    assert [s.note for s in check_notes(received, until=1.5).stuck] == [60]
