"""Decoding of MIDI input (jam/midi/ports.py): every byte sequence an input can deliver is
decoded without raising, malformed parts are dropped and counted, valid messages come out
intact. No MIDI system needed: this is the code every input port feeds its events to."""

import logging

import mido
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jam.midi.ports import LENGTHS, InputDecoder, decode_event

# arbitrary bytes, with the bytes that matter to a MIDI parser drawn more often
any_byte = st.one_of(st.integers(0, 255),
                     st.sampled_from([0x90, 0x80, 0xC0, 0xE0, 0xF0, 0xF1, 0xF2, 0xF4, 0xF6,
                                      0xF7, 0xF8, 0xF9, 0xFE]))
any_bytes = st.lists(any_byte, max_size=300)


@st.composite
def message_bytes(draw):
    """The bytes of one valid MIDI message of any kind (sysex included)."""
    status = draw(st.sampled_from([*LENGTHS, 0xF0]))
    if status == 0xF0:
        return [0xF0, *draw(st.lists(st.integers(0, 127), max_size=300)), 0xF7]
    return [status, *draw(st.lists(st.integers(0, 127), min_size=LENGTHS[status] - 1,
                                   max_size=LENGTHS[status] - 1))]


@settings(max_examples=1000, deadline=None)
@given(any_bytes)
def test_no_byte_sequence_raises_and_every_byte_is_accounted_for(data):
    messages, dropped = decode_event(data)
    assert all(isinstance(m, mido.Message) for m in messages)
    assert all(isinstance(junk, bytes) and junk for junk in dropped)
    # each byte is in a message or dropped (running status adds the implied status bytes)
    assert sum(len(m.bytes()) for m in messages) + sum(map(len, dropped)) >= len(data)
    # what came out is well formed: its bytes decode again to the same, dropping nothing
    again = [byte for m in messages for byte in m.bytes()]
    assert decode_event(again) == (messages, [])


@settings(max_examples=500, deadline=None)
@given(message_bytes())
def test_a_valid_message_decodes_to_itself(data):
    messages, dropped = decode_event(data)
    assert dropped == []
    assert [m.bytes() for m in messages] == [data]


@settings(max_examples=300, deadline=None)
@given(st.lists(message_bytes(), max_size=20))
def test_valid_messages_in_one_event_all_decode(datas):
    messages, dropped = decode_event([byte for data in datas for byte in data])
    assert dropped == []
    assert [m.bytes() for m in messages] == datas


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(message_bytes().map(lambda d: (True, d)),
                          any_bytes.map(lambda d: (False, d))), max_size=30))
def test_a_stream_of_events_never_raises_and_garbage_never_spoils_the_next_event(events):
    received = []
    decoder = InputDecoder(received.append)
    for _, data in events:
        decoder.feed(data)
    expected, dropped = [], 0
    for valid, data in events:
        if valid:
            expected.append(data)
        else:
            messages, junk = decode_event(data)
            expected += [m.bytes() for m in messages]
            dropped += len(junk)
    assert [m.bytes() for m in received] == expected
    assert decoder.dropped == dropped
    assert decoder.received == len(expected)


@pytest.mark.parametrize("data", [
    [0xF1],  # MTC quarter frame without its data byte (mido raises IndexError)
    [0xF2, 0x01],  # song position pointer one byte short (IndexError too)
    [0xE0],  # pitch bend without data (IndexError too)
    [0x90, 0x3C],  # truncated note-on
    [0x3C, 0x40],  # stray data bytes
    [0xF0, 0x01, 0x02],  # sysex without its end
    [0xF7],  # end of sysex without a start
    [0xF4], [0xF5], [0xF9], [0xFD],  # undefined status bytes
    [0x90, 0x3C, 0x80],  # a data byte out of range
])
def test_malformed_events_are_dropped_whole(data):
    assert decode_event(data) == ([], [bytes(data)])


def decoded(data):
    messages, dropped = decode_event(data)
    return [m.bytes() for m in messages], [list(junk) for junk in dropped]


def test_a_sysex_that_rtmidi_glued_to_later_events_gives_them_back():
    # rtmidi's JACK input appends every event to an unterminated sysex until one ends in F7
    assert decoded([0xF0, 1, 2, 0x90, 60, 100, 0xF0, 1, 2, 0xF7]) == (
        [[0x90, 60, 100], [0xF0, 1, 2, 0xF7]], [[0xF0, 1, 2]])
    assert decoded([0xF0, 1, 2, 0xC0, 5, 0xF7]) == ([[0xC0, 5]], [[0xF0, 1, 2], [0xF7]])


def test_running_status_and_real_time_bytes_inside_messages():
    assert decoded([0x90, 60, 100, 62, 0]) == ([[0x90, 60, 100], [0x90, 62, 0]], [])
    assert decoded([0x90, 0xF8, 60, 100]) == ([[0xF8], [0x90, 60, 100]], [])
    assert decoded([0xF0, 1, 0xFE, 2, 0xF7]) == ([[0xFE], [0xF0, 1, 2, 0xF7]], [])
    # a system common message ends running status: the data byte after it is stray
    assert decoded([0xF1, 5, 6]) == ([[0xF1, 5]], [[6]])


def test_note_on_with_velocity_zero_stays_a_note_on():
    [message], _ = decode_event([0x91, 60, 0])
    assert (message.type, message.channel, message.velocity) == ("note_on", 1, 0)


def test_the_decoder_counts_drops_and_logs_each_at_debug_level_only(caplog):
    received = []
    decoder = InputDecoder(received.append, name="kbd")
    with caplog.at_level(logging.INFO, logger="jam.midi.ports"):
        decoder.feed([0xF1])
    assert caplog.records == []
    with caplog.at_level(logging.DEBUG, logger="jam.midi.ports"):
        decoder.feed([0xF2, 1])
        decoder.feed([0x90, 60, 100])
        decoder.feed([0xF0, 1, 0x90, 61, 100, 0xF7])
    assert decoder.dropped == 4
    assert [m.note for m in received] == [60, 61]
    assert decoder.received == 2  # the messages handed on
    assert [r.getMessage() for r in caplog.records] == [
        "input 'kbd': dropped malformed MIDI bytes f2 01",
        "input 'kbd': dropped malformed MIDI bytes f0 01",
        "input 'kbd': dropped malformed MIDI bytes f7"]
