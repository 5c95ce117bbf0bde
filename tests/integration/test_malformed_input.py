"""Malformed and noisy MIDI input over a real JACK server: both kinds of input port (polled
for JACK, rtmidi's callback for ALSA, CoreMIDI and WinMM) drop and count what is no message,
and jam keeps listening and answers the next call.

The malformed bytes come from a raw python-rtmidi output (mido refuses to send them),
connected straight to the input port; jam's call comes from the test keyboard.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from typing import Callable

import mido
import pytest
import rtmidi

from jam.midi.ports import CallbackInput, PipedInput, PolledInput

MALFORMED = [
    [0xF1],  # MTC quarter frame without its data byte (mido's decoder: IndexError)
    [0xF2, 0x01],  # song position pointer one byte short (IndexError too)
    [0x90, 0x3C],  # truncated note-on
    [0x3C, 0x40],  # stray data bytes
    [0xE0],  # pitch bend without data
    [0xF4],  # undefined system common status
    [0xF9],  # undefined real-time status
    # a sysex that never ends: rtmidi's JACK input appends the following events to it until
    # one ends with F7; jam takes the program change back out and drops the rest (2 runs)
    [0xF0, 0x7E, 0x01], [0xC0, 0x05], [0xF7],
]
DROPPED = 9  # runs of bytes that form no message, one per line above, two for the sysex

# what real gear sends besides notes (all valid, none of it may disturb the call)
NOISE = [
    [0xF0, 0x43, *([0x11] * 4096), 0xF7],  # a 4 kB sysex dump
    [0xC0, 0x07],  # program change
    *([0xB0, 0x01, value % 128] for value in range(300)),  # a mod-wheel controller flood
    [0xFE], [0xF8], [0xFA], [0xFC],  # active sensing, clock, start, stop
]

CALL = [60, 62, 64, 67]  # four quarter notes at 120 BPM


@pytest.fixture
def raw_out(jack_server):
    """``raw_out(client, probe, heard)``: a python-rtmidi JACK output connected to the one
    input port of JACK client ``client``, returned once the connection carries events: it
    sends ``probe`` every 20 ms until ``heard()`` (a loaded JACK server can lose what is
    sent in the first cycles after a connection)."""
    ports = []

    def connect(client: str, probe: list[int], heard: Callable[[], bool]) -> rtmidi.MidiOut:
        port = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="raw")
        ports.append(port)
        names = port.get_ports()
        inputs = [i for i, name in enumerate(names) if name.startswith(f"{client}:")]
        assert len(inputs) == 1, names
        port.open_port(inputs[0])
        deadline = time.monotonic() + 10
        while not heard():
            assert time.monotonic() < deadline, f"nothing sent to {client} arrived"
            port.send_message(probe)
            time.sleep(0.02)
        return port

    yield connect
    for port in ports:
        port.close_port()
        port.delete()


def sleep_until(deadline: float) -> None:
    time.sleep(max(0.0, deadline - time.monotonic()))


def send_all(port: rtmidi.MidiOut, events: list[list[int]], pause: float = 0.002) -> None:
    for event in events:
        port.send_message(event)
        time.sleep(pause)  # a few events per JACK period, as a device would send them


def test_malformed_input_is_dropped_counted_and_the_next_call_is_answered(
        start_jam, raw_out, keyboard, synth):
    jam = start_jam("--model", "rules", "--bpm", "120", "--answer-bars", "1", "--debug")
    raw = raw_out("jam", [0xFD], lambda: any(line.endswith(" fd") for line in jam.lines))
    send_all(raw, MALFORMED)
    send_all(raw, NOISE)
    time.sleep(0.3)
    assert jam.process.poll() is None, jam.stderr

    stop_clock = threading.Event()

    def gear_clock() -> None:  # MIDI clock (24 per beat) and active sensing during the call
        ticks = 0
        while not stop_clock.wait(0.5 / 24):
            raw.send_message([0xF8])
            ticks += 1
            if ticks % 14 == 0:
                raw.send_message([0xFE])

    clock = threading.Thread(target=gear_clock, daemon=True)
    clock.start()
    try:
        start = time.monotonic() + 0.2
        for beat, pitch in enumerate(CALL):
            sleep_until(start + beat * 0.5)
            keyboard.send(mido.Message("note_on", note=pitch, velocity=90))
            sleep_until(start + (beat + 0.9) * 0.5)
            keyboard.send(mido.Message("note_on", note=pitch, velocity=0))  # a note-off
        answered = synth.wait_count(
            2, timeout=10, where=lambda m: m.type == "note_on" and m.velocity > 0)
    finally:
        stop_clock.set()
        clock.join(2)
    assert answered, jam.stderr
    assert jam.process.poll() is None, jam.stderr

    jam.process.send_signal(signal.SIGTERM)
    assert jam.wait() == 0, jam.stderr
    assert "internal error" not in jam.stderr
    logged = [line.split("dropped malformed MIDI bytes ")[1] for line in jam.lines
              if "dropped malformed MIDI bytes" in line]
    probes = logged.count("fd")  # the undefined FD sent until the connection carried it
    assert logged[probes:] == ["f1", "f2 01", "90 3c", "3c 40", "e0", "f4", "f9",
                               "f0 7e 01", "f7"]
    last = [line for line in jam.lines if "stopping (SIGTERM)" in line]
    assert len(last) == 1, jam.stderr
    assert last[0].endswith(f" dropped {DROPPED + probes} malformed input messages"), last[0]


@pytest.mark.parametrize("kind", [PipedInput, PolledInput, CallbackInput])
def test_both_input_ports_decode_through_the_guard(kind, raw_out):
    received = []
    client = f"in-{uuid.uuid4().hex[:6]}"
    port = kind("jack", "in", True, received.append, client_name=client)
    try:
        tune_request = [0xF6]  # the probe: a valid message
        raw = raw_out(client, tune_request, lambda: bool(received))
        send_all(raw, [*MALFORMED, [0x90, 60, 100], [0x90, 60, 0], [0xF8]])
        deadline = time.monotonic() + 10
        while received[-1].type != "clock" and time.monotonic() < deadline:  # the last one
            time.sleep(0.01)
    finally:
        port.close()
    assert [m.bytes() for m in received if m.bytes() != tune_request] == [
        [0xC0, 0x05], [0x90, 60, 100], [0x90, 60, 0], [0xF8]]
    assert port.dropped == DROPPED
