"""Watching opened ports in the port lists: gone, back under the same name (or the same
--in/--out text, or other ALSA numbers), reopen failures retried, each change logged once.
The MIDI system is a :class:`MidiSystem` whose listing is a list the test edits (the class's
extension point for I/O); the ports are recording ports."""

from __future__ import annotations

import logging

import pytest

from jam.midi.ports import MidiSystem
from jam.midi.watch import PortWatch, WatchedPort
from recording import FakeClock, RecordingOutput


class ListedSystem(MidiSystem):
    def __init__(self, inputs, outputs):
        super().__init__("jack")
        self.listed = {"input": list(inputs), "output": list(outputs)}
        self.listings = 0

    def _names(self, kind):
        self.listings += 1
        return list(self.listed[kind])


def named(name):
    port = RecordingOutput()
    port.name = name
    return port


class Opener:
    """Opens recording ports by exact name, or fails while ``refuse`` is set."""

    def __init__(self):
        self.opened = []
        self.refuse = False

    def __call__(self, name):
        if self.refuse:
            raise OSError("busy")
        port = named(name)
        self.opened.append(port)
        return port


@pytest.fixture
def clock():
    return FakeClock()


def output_link(port, query, clock, attached):
    opener = Opener()
    link = WatchedPort("output", port, query, opener, attach=attached.append, clock=clock)
    return link, opener


def test_gone_then_back_by_name(clock, caplog):
    caplog.set_level(logging.INFO)
    system = ListedSystem([], ["synth:in"])
    first = named("synth:in")
    attached = []
    link, opener = output_link(first, "synth", clock, attached)
    changes = []
    watch = PortWatch(system, [link], interval=0.5, on_change=lambda p, c: changes.append(c))
    watch.poll(clock.now)
    assert not link.gone and changes == []
    system.listed["output"].clear()  # cable pulled
    clock.now += 0.5
    watch.poll(clock.now)
    assert link.gone and first.closed and attached == [None] and changes == ["gone"]
    clock.now += 0.5
    watch.poll(clock.now)  # still away: nothing new
    assert changes == ["gone"]
    system.listed["output"].append("synth:in")
    clock.now += 0.5
    watch.poll(clock.now)
    assert changes == ["gone", "back"] and link.port is opener.opened[0]
    assert attached == [None, opener.opened[0]] and link.outages == 1
    gone = [r for r in caplog.records if "is gone" in r.getMessage()]
    back = [r for r in caplog.records if "is back after 1.0 s" in r.getMessage()]
    assert len(gone) == 1 and len(back) == 1


def test_looks_at_most_once_per_interval(clock):
    system = ListedSystem([], ["synth:in"])
    link, _ = output_link(named("synth:in"), "synth", clock, [])
    watch = PortWatch(system, [link], interval=0.5)
    for step in range(100):  # 1 s of a main loop turning every 10 ms
        watch.poll(clock.now + step * 0.01)
    assert system.listings == 2


def test_virtual_ports_are_not_watched(clock):
    system = ListedSystem([], [])
    watch = PortWatch(system, [])
    watch.poll(clock.now)
    assert system.listings == 0 and watch.until_next(clock.now) is None


@pytest.mark.parametrize("query, returned", [
    ("Synth", "USB Synth:USB Synth MIDI 1 24:0"),  # the --out text matches it alone
    ("USB Synth:USB Synth MIDI 1 20:0", "USB Synth:USB Synth MIDI 1 24:0"),  # ALSA numbers
])
def test_back_under_another_name(clock, query, returned):
    system = ListedSystem([], ["USB Synth:USB Synth MIDI 1 20:0"])
    link, opener = output_link(named("USB Synth:USB Synth MIDI 1 20:0"), query, clock, [])
    watch = PortWatch(system, [link])
    system.listed["output"] = ["Other:Other 1 30:0"]
    watch.poll(clock.now)
    assert link.gone
    system.listed["output"] = ["Other:Other 1 30:0", returned]
    clock.now += 1
    watch.poll(clock.now)
    assert not link.gone and link.name == returned and opener.opened[0].name == returned


def test_an_ambiguous_return_is_not_guessed(clock):
    system = ListedSystem([], ["synth A"])
    link, opener = output_link(named("synth A"), "synth", clock, [])
    watch = PortWatch(system, [link])
    system.listed["output"] = ["synth B"]
    watch.poll(clock.now)
    system.listed["output"] = ["synth B", "synth C"]
    clock.now += 1
    watch.poll(clock.now)
    assert link.gone and opener.opened == []


def test_a_reopen_that_fails_is_retried_and_logged_once(clock, caplog):
    system = ListedSystem([], ["synth:in"])
    link, opener = output_link(named("synth:in"), "synth", clock, [])
    watch = PortWatch(system, [link])
    system.listed["output"] = []
    watch.poll(clock.now)
    system.listed["output"] = ["synth:in"]
    opener.refuse = True
    for _ in range(3):
        clock.now += 1
        watch.poll(clock.now)
    assert link.gone
    opener.refuse = False
    clock.now += 1
    watch.poll(clock.now)
    assert not link.gone
    refused = [r for r in caplog.records if "does not open yet" in r.getMessage()]
    assert len(refused) == 1


class CountingInput:
    def __init__(self, name, dropped, received=0, lost=0):
        self.name = name
        self.dropped = dropped
        self.received = received
        self.lost = lost
        self.closed = False

    def close(self):
        self.closed = True


def test_an_input_keeps_the_count_of_dropped_input_across_reopens(clock):
    system = ListedSystem(["kbd:out"], [])
    link = WatchedPort("input", CountingInput("kbd:out", 3), "kbd",
                       lambda name: CountingInput(name, 2), clock=clock)
    watch = PortWatch(system, [link])
    system.listed["input"] = []
    watch.poll(clock.now)
    assert link.gone and link.dropped == 3
    system.listed["input"] = ["kbd:out"]
    clock.now += 1
    watch.poll(clock.now)
    assert link.dropped == 5


def test_an_input_keeps_its_received_and_lost_counts_across_reopens(clock):
    system = ListedSystem(["kbd:out"], [])
    link = WatchedPort("input", CountingInput("kbd:out", 0, received=40, lost=2), "kbd",
                       lambda name: CountingInput(name, 0, received=7, lost=1), clock=clock)
    watch = PortWatch(system, [link])
    system.listed["input"] = []
    watch.poll(clock.now)
    assert link.gone and (link.received, link.lost) == (40, 2)
    system.listed["input"] = ["kbd:out"]
    clock.now += 1
    watch.poll(clock.now)
    assert (link.received, link.lost) == (47, 3)
