"""The scheduler when its port goes away: drops are counted and never stop it, a dropped
message leaves the note tracker alone, a new port first gets the panic; and its health
check for the watchdog (heartbeat, stuck send)."""

from __future__ import annotations

import threading
import time

import mido

from jam.engine.scheduler import Scheduler
from recording import FakeClock, RecordingOutput


def on(note, channel=0):
    return mido.Message("note_on", note=note, velocity=90, channel=channel)


def off(note, channel=0):
    return mido.Message("note_off", note=note, velocity=0, channel=channel)


def kinds(messages):
    return [(m.type, getattr(m, "note", getattr(m, "control", None))) for m in messages]


def test_without_a_port_everything_is_dropped_and_counted_then_the_new_port_gets_the_panic():
    clock = FakeClock()
    old, new = RecordingOutput(clock), RecordingOutput(clock)
    scheduler = Scheduler(old, clock=clock)
    scheduler.schedule([(clock.now, on(60)), (clock.now + 1, off(60)),
                        (clock.now + 1, on(64)), (clock.now + 3, off(64))], tag="answer")
    scheduler.run_due(clock.now)
    scheduler.replace_port(None)  # the synth's cable is pulled
    clock.now += 1
    scheduler.run_due(clock.now)  # off(60) and on(64) go nowhere
    assert scheduler.stats().dropped == 2
    assert scheduler.tracker.sounding() == [(0, 60)]  # the synth still holds 60
    scheduler.replace_port(new)  # it is back
    scheduler.run_due(clock.now)
    assert kinds(new.messages()) == [("note_off", 60), ("control_change", 64),
                                     ("control_change", 123), ("control_change", 120)]
    clock.now += 2
    scheduler.run_due(clock.now)  # the rest of the answer goes to the new port
    assert kinds(new.messages()[4:]) == [("note_off", 64)]
    assert kinds(old.messages()) == [("note_on", 60)]
    stats = scheduler.stats()
    assert (stats.sent, stats.dropped) == (6, 2)


class FailingOutput(RecordingOutput):
    """A port whose device went away: every send raises, as rtmidi or mido would."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = True

    def _send(self, message):
        if self.failing:
            raise OSError("device vanished")
        super()._send(message)


def test_a_send_that_raises_is_dropped_and_the_thread_goes_on(caplog):
    port = FailingOutput()
    errors = []
    scheduler = Scheduler(port, on_error=errors.append, realtime=False)
    scheduler.start()
    try:
        now = time.monotonic()
        scheduler.schedule([(now, on(60)), (now, on(62))])
        deadline = time.monotonic() + 5
        while scheduler.stats().dropped < 2 and time.monotonic() < deadline:
            time.sleep(0.002)
        port.failing = False
        scheduler.send_now(on(64))
        while not port.sent and time.monotonic() < deadline:
            time.sleep(0.002)
    finally:
        scheduler.close()
    assert errors == []
    assert scheduler.stats().dropped == 2
    assert kinds(port.messages()) == [("note_on", 64), ("note_off", 64),
                                      ("control_change", 64), ("control_change", 123),
                                      ("control_change", 120)]
    failures = [r for r in caplog.records if "send failed" in r.getMessage()]
    assert len(failures) == 1  # logged once, not per message


class BlockingOutput(RecordingOutput):
    """A port whose send hangs until released (a hung device)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def _send(self, message):
        self.entered.set()
        self.release.wait()
        super()._send(message)


def test_healthy_while_idle_or_sending_briefly_not_while_a_send_hangs():
    port = BlockingOutput()
    scheduler = Scheduler(port, realtime=False)
    assert not scheduler.healthy()  # no thread yet
    scheduler.start()
    try:
        time.sleep(0.05)
        # idle with nothing due for longer than the bound: healthy
        assert scheduler.healthy(time.monotonic() + 10, stuck_after=1.0)
        scheduler.send_now(on(60))
        assert port.entered.wait(5)
        now = time.monotonic()
        assert scheduler.healthy(now, stuck_after=1.0)  # a send just began
        assert not scheduler.healthy(now + 1.5, stuck_after=1.0)  # still in it 1.5 s on
        port.release.set()
    finally:
        port.release.set()
        scheduler.close()
    assert not scheduler.healthy()  # the thread has ended

