"""The ALSA input path (rtmidi's callback, :class:`jam.midi.ports.CallbackInput`) and the
ALSA specifics of the port layer, on a stand-in for python-rtmidi over an ALSA sequencer
(``tests/fake_rtmidi.py``): this machine has no ``/dev/snd/seq``. The JACK path and the
decoding guard over real JACK ports are in tests/integration/test_malformed_input.py.

What is checked: ``--api auto`` picks ALSA where the sequencer device exists; ports are
found by their ALSA names (``client:port NN:N``) or a part of them; an input asks rtmidi
for sysex and clock but not active sensing, takes events on rtmidi's thread through the
decoding guard (malformed bytes dropped and counted) and, when closed, cancels the
callback before it closes and deletes the port; the virtual port ``jam in``; a port that
refuses to open and a sequencer that cannot be reached are one-line errors; a keyboard
replugged under new ALSA numbers is reopened; and the run loop answers a call over it.
"""

from __future__ import annotations

import logging
import sys
import threading
import time

import mido
import mido.backends.rtmidi as mido_rtmidi  # imported with the real rtmidi, then patched
import pytest

import fake_rtmidi
from jam.config import build_config
from jam.engine import runner
from jam.errors import JamError
from jam.midi import ports
from jam.midi.ports import CallbackInput, RtMidiSystem
from jam.midi.watch import PortWatch, WatchedPort
from stagerig import check_notes


@pytest.fixture
def alsa(monkeypatch, tmp_path):
    """The ALSA sequencer of a fake python-rtmidi, with a keyboard, a pad controller and a
    synth on it; ``/dev/snd/seq`` exists as far as jam can tell."""
    fake = fake_rtmidi.module()
    monkeypatch.setitem(sys.modules, "rtmidi", fake)
    monkeypatch.setattr(mido_rtmidi, "rtmidi", fake)
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    device = tmp_path / "seq"
    device.touch()
    monkeypatch.setattr(ports, "ALSA_SEQUENCER", device)
    seq = fake.sequencer
    seq.keyboard = seq.device("USB Keyboard", "USB Keyboard MIDI 1", "output")
    seq.pads = seq.device("Pad Controller", "Pad Controller MIDI 1", "output")
    seq.synth = seq.device("FLUID Synth (4242)", "Synth input port (4242:0)", "input")
    return seq


def inputs_of(seq) -> list:
    return [p for p in seq.ports if isinstance(p, fake_rtmidi.MidiIn)]


def wait(condition, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.005)
    return True


def test_auto_picks_alsa_where_the_sequencer_exists_and_lists_alsa_names(alsa):
    with RtMidiSystem.connect("auto") as system:
        assert system.api == "alsa"
        assert system.input_names() == [alsa.keyboard.name, alsa.pads.name]
        assert system.output_names() == [alsa.synth.name]
        assert "USB Keyboard:USB Keyboard MIDI 1 20:0" in system.describe()
        listers = list(alsa.ports)
    assert all(("delete",) in lister.calls for lister in listers)  # closed with the system


def test_an_input_found_by_part_of_its_alsa_name_reads_through_rtmidis_callback(alsa):
    received = []
    with RtMidiSystem.connect("alsa") as system:
        port = system.open_input("keyboard", callback=received.append)
    assert isinstance(port, CallbackInput) and port.name == alsa.keyboard.name
    rt = inputs_of(alsa)[-1]
    assert rt.client_name == "jam" and rt.queue_size_limit == ports.QUEUE_LIMIT
    assert rt.calls == [("ignore_types", False, False, True), ("open_port", 0),
                        ("set_callback",)]  # sysex and clock wanted, active sensing not
    try:
        for data in ([0x90, 60, 100], [0xFE], [0xF8], [0xF0, 0x7E, 0x09, 0xF7], [0xF1],
                     [0x80, 60, 0]):
            alsa.keyboard.play(data)  # active sensing is filtered by rtmidi, not jam
        assert wait(lambda: len(received) == 4), received
        assert port.dropped == 0 or wait(lambda: port.dropped == 1)
    finally:
        port.close()
    assert [m.type for m in received] == ["note_on", "clock", "sysex", "note_off"]
    assert (port.received, port.dropped) == (4, 1)  # the F1 without its data byte
    assert rt.calls[-3:] == [("cancel_callback",), ("close_port",), ("delete",)]
    assert alsa.keyboard.play([0x90, 61, 100]) == 0  # nobody listens any more
    port.close()  # twice is harmless
    assert rt.calls.count(("delete",)) == 1


def test_exact_alsa_names_win_and_unclear_parts_are_one_line_errors(alsa):
    with RtMidiSystem.connect("alsa") as system:
        port = system.open_input(alsa.pads.name, callback=lambda m: None)
        port.close()
        assert inputs_of(alsa)[-1].calls[1] == ("open_port", 1)
        with pytest.raises(JamError) as err:
            system.open_input("midi 1", callback=lambda m: None)
        assert "several" in str(err.value) and alsa.keyboard.name in str(err.value)
        with pytest.raises(JamError) as err:
            system.open_output("piano")
        assert str(err.value).startswith("no MIDI output matches --out 'piano'")
        assert alsa.synth.name in str(err.value) and "\n" not in str(err.value)


def test_the_virtual_input_jam_in_takes_what_another_program_sends(alsa):
    received = []
    with RtMidiSystem.connect("alsa") as system:
        port = system.open_input(None, callback=received.append)
        listed = [n for n in system.input_names() if "jam in" in n]
    try:
        rt = inputs_of(alsa)[-1]
        assert ("open_virtual_port", "jam in") in rt.calls and rt.client_name == "jam"
        program = fake_rtmidi.module(alsa).MidiOut(name="Sequencer app")
        names = program.get_ports()
        program.open_port(names.index(f"jam:jam in {rt.number}:0"))
        program.send_message([0x91, 64, 90])
        assert wait(lambda: received), received
    finally:
        port.close()
    assert received[0].channel == 1 and received[0].note == 64
    assert listed == []  # jam's own input is not a port it could read from


def test_a_port_that_refuses_to_open_is_one_line_and_the_rtmidi_object_is_freed(alsa):
    alsa.refuse_open = True
    with RtMidiSystem.connect("alsa") as system, pytest.raises(JamError) as err:
        system.open_input("keyboard", callback=lambda m: None)
    text = str(err.value)
    assert text.startswith(f"cannot open MIDI input '{alsa.keyboard.name}'")
    assert "subscription" in text and "'jam ports'" in text and "\n" not in text
    assert inputs_of(alsa)[-1].calls[-1] == ("delete",)


def test_no_alsa_sequencer_client_is_one_line_with_a_hint(alsa):
    alsa.fail_next_client = fake_rtmidi.RtMidiError("MidiInAlsa::initialize: error creating "
                                                    "ALSA sequencer client object.")
    with pytest.raises(JamError) as err:
        RtMidiSystem.connect("alsa")
    text = str(err.value)
    assert text.startswith("cannot use the alsa MIDI API (MidiInAlsa::initialize")
    assert "snd-seq" in text and "\n" not in text


def test_a_keyboard_replugged_under_new_alsa_numbers_is_reopened(alsa):
    received = []
    with RtMidiSystem.connect("alsa") as system:
        def reopen(name):
            return system.open_input(name, callback=received.append)

        link = WatchedPort("input", reopen(alsa.keyboard.name), alsa.keyboard.name, reopen)
        watch = PortWatch(system, [link], interval=0.0)
        first = inputs_of(alsa)[-1]
        alsa.keyboard.unplug()
        watch.poll(1.0)
        assert link.gone and first.calls[-3:] == [("cancel_callback",), ("close_port",),
                                                  ("delete",)]
        old_name = alsa.keyboard.name
        alsa.keyboard.plug_in()  # another USB socket: another client number
        assert alsa.keyboard.name != old_name
        watch.poll(2.0)
        assert not link.gone and link.name == alsa.keyboard.name
        alsa.keyboard.play([0x90, 60, 100])
        assert wait(lambda: received), "the reopened port hears nothing"
        link.port.close()
    assert link.outages == 1 and received[0].note == 60


class StoppedByTheTest(runner.RunControl):
    """The run loop's control; the test stops it (``current.stop``) when it has heard
    enough, and a 20 s watchdog stops it if the test never does."""

    current: StoppedByTheTest | None = None

    def __init__(self) -> None:
        super().__init__()
        StoppedByTheTest.current = self
        self._watchdog = threading.Timer(20.0, lambda: self.finish("watchdog"))
        self._watchdog.daemon = True
        self._watchdog.start()

    def finish(self, reason: str) -> None:
        self.stop(reason)
        self.wake()

    def close(self) -> None:
        self._watchdog.cancel()
        super().close()


def test_the_run_loop_answers_a_call_over_alsa_and_stops_clean(alsa, monkeypatch, tmp_path,
                                                               caplog):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setattr(runner, "RunControl", StoppedByTheTest)
    config = build_config({"api": "auto", "in": "keyboard", "out": "fluid", "mode": "call",
                           "model": "rules", "seed": 1, "answer_bars": 1})
    from jam.engine.live import CallMode

    mode = CallMode.from_config(config)
    synth = alsa.synth
    played = {}

    def player() -> None:
        assert wait(lambda: alsa.listeners(alsa.keyboard), 10)
        start = time.monotonic() + 0.1
        for i, pitch in enumerate([60, 62, 64, 65]):
            time.sleep(max(0.0, start + 0.5 * i - time.monotonic()))
            alsa.keyboard.play([0x90, pitch, 90])
            alsa.keyboard.play([0xFE])  # active sensing between the notes
            time.sleep(max(0.0, start + 0.5 * i + 0.45 - time.monotonic()))
            alsa.keyboard.play([0x80, pitch, 0])
        played["end"] = time.monotonic()
        wait(lambda: any(t > played["end"] and d[0] & 0xF0 == 0x90 for t, d in synth.got), 5)
        wait(lambda: time.monotonic() - synth.got[-1][0] > 0.8 if synth.got else False, 5)
        StoppedByTheTest.current.finish("the test")

    thread = threading.Thread(target=player, daemon=True)
    thread.start()
    with caplog.at_level(logging.INFO, logger="jam"):
        assert runner.run(config, mode) == 0
    thread.join(5)
    received = [(t, mido.Message.from_bytes(d)) for t, d in synth.got]
    answer = [m for t, m in received if t > played["end"] and m.type == "note_on"
              and m.velocity > 0]
    assert answer, received
    report = check_notes(received)
    assert report.clean, report.summary()
    assert [m.control for _, m in received[-3:]] == [64, 123, 120]  # the shutdown's panic
    stopping = [r.getMessage() for r in caplog.records if "stopping (the test)" in r.getMessage()]
    assert len(stopping) == 1, [r.getMessage() for r in caplog.records]
    assert stopping[0].endswith("received 8 input messages, lost 0 on the way in; dropped 0 "
                                "malformed input messages")
    reader = next(p for p in inputs_of(alsa) if ("set_callback",) in p.calls)
    assert reader.calls[-3:] == [("cancel_callback",), ("close_port",), ("delete",)]
