"""The scheduler's logic with a fake clock and a recording port, and its thread for real."""

import os
import threading
import time

import mido
import pytest

from jam.engine.scheduler import REALTIME_PRIORITY, Scheduler
from recording import FakeClock, RecordingOutput


def on(note, channel=0):
    return mido.Message("note_on", note=note, channel=channel, velocity=90)


def off(note, channel=0):
    return mido.Message("note_off", note=note, channel=channel)


def summary(port):
    return [(m.type, getattr(m, "note", None), getattr(m, "control", None))
            for m in port.messages()]


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def port(clock):
    return RecordingOutput(clock)


def test_sends_due_events_in_deadline_order_and_returns_the_next_deadline(clock, port):
    scheduler = Scheduler(port, clock=clock)
    t = clock.now
    scheduler.send_at(t + 0.3, on(64))
    scheduler.schedule([(t + 0.1, on(60)), (t + 0.2, off(60))])
    scheduler.send_at(t + 0.1, on(62))  # same deadline: after the earlier-given one
    assert scheduler.run_due(t) == pytest.approx(t + 0.1)
    assert port.sent == []
    clock.now = t + 0.2
    assert scheduler.run_due(clock.now) == pytest.approx(t + 0.3)
    assert summary(port) == [("note_on", 60, None), ("note_on", 62, None), ("note_off", 60, None)]
    assert scheduler.tracker.sounding() == [(0, 62)]
    assert scheduler.pending() == 1


def test_lateness_is_counted_against_the_deadline(clock, port):
    scheduler = Scheduler(port, clock=clock, late_after=0.002, keep_lateness=10)
    t = clock.now
    scheduler.schedule([(t, on(60)), (t + 0.001, on(61)), (t + 0.002, on(62))])
    clock.now = t + 0.0035
    scheduler.run_due(clock.now)
    stats = scheduler.stats()
    assert stats.sent == 3
    assert stats.late == 2  # 3.5 and 2.5 ms late; 1.5 ms is within late_after
    assert stats.max_lateness == pytest.approx(0.0035)
    assert stats.lateness == pytest.approx((0.0035, 0.0025, 0.0015))


def test_cancel_drops_pending_events_of_a_tag_and_ends_its_sounding_notes(clock, port):
    scheduler = Scheduler(port, clock=clock)
    t = clock.now
    scheduler.schedule([(t, on(60)), (t, on(67, channel=2)), (t + 1, off(60)), (t + 1, on(72))],
                       tag="answer-1")
    scheduler.send_at(t, on(48))  # the player's note, no tag
    scheduler.send_at(t + 1, off(48))
    scheduler.run_due(t)
    scheduler.cancel("answer-1")
    assert scheduler.pending() == 1  # only the player's note-off is left
    scheduler.run_due(t + 0.5)
    assert summary(port)[3:] == [("note_off", 60, None), ("note_off", 67, None)]
    assert scheduler.tracker.sounding() == [(0, 48)]
    scheduler.run_due(t + 1)
    assert summary(port)[-1] == ("note_off", 48, None)
    assert scheduler.tracker.sounding() == []


def test_a_note_retaken_by_another_tag_is_not_cancelled(clock, port):
    scheduler = Scheduler(port, clock=clock)
    scheduler.send_at(clock.now, on(60), tag="a")
    scheduler.send_at(clock.now, on(60))  # the player strikes the same key
    scheduler.run_due(clock.now)
    scheduler.cancel("a")
    scheduler.run_due(clock.now)
    assert [m.type for m in port.messages()] == ["note_on", "note_on"]


def test_panic_drops_everything_and_silences_used_channels(clock, port):
    scheduler = Scheduler(port, clock=clock)
    t = clock.now
    scheduler.schedule([(t, on(60)), (t, on(40, channel=9)), (t + 1, off(60))], tag=1)
    scheduler.run_due(t)
    scheduler.panic()
    assert scheduler.pending() == 0
    scheduler.run_due(t)
    tail = [(m.type, m.channel, getattr(m, "note", getattr(m, "control", None)))
            for m in port.messages()[2:]]
    assert tail == [("note_off", 0, 60), ("note_off", 9, 40),
                    ("control_change", 0, 64), ("control_change", 0, 123),
                    ("control_change", 0, 120), ("control_change", 9, 64),
                    ("control_change", 9, 123), ("control_change", 9, 120)]
    assert scheduler.tracker.sounding() == [] and scheduler.tracker.used_channels() == []


def test_close_without_a_thread_sends_the_panic(clock, port):
    scheduler = Scheduler(port, clock=clock)
    scheduler.send_at(clock.now, on(60))
    scheduler.send_at(clock.now + 5, off(60))
    scheduler.run_due(clock.now)
    scheduler.close()
    assert summary(port)[1:3] == [("note_off", 60, None), ("control_change", None, 64)]
    assert scheduler.pending() == 0


def fifo_refusal() -> str | None:
    """Why this process may not give a thread SCHED_FIFO (``os.sched_setscheduler``'s error,
    tried on a throw-away thread), or None when it may."""
    outcome = []

    def probe():
        try:
            os.sched_setscheduler(threading.get_native_id(), os.SCHED_FIFO,
                                  os.sched_param(REALTIME_PRIORITY))
        except OSError as err:
            outcome.append(err.strerror)
        else:
            outcome.append(None)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return outcome[0]


def scheduler_policy() -> int:
    thread = next(t for t in threading.enumerate() if t.name == "jam-scheduler")
    return os.sched_getscheduler(thread.native_id)


@pytest.mark.skipif(not hasattr(os, "sched_setscheduler"), reason="no SCHED_FIFO here")
def test_the_thread_says_whether_it_got_sched_fifo_and_why_not():
    refusal = fifo_refusal()
    scheduler = Scheduler(RecordingOutput())
    scheduler.start()
    try:
        if refusal is None:
            assert scheduler.realtime == f"SCHED_FIFO priority {REALTIME_PRIORITY}"
            assert scheduler_policy() == os.SCHED_FIFO
        else:
            assert scheduler.realtime == f"normal scheduling (SCHED_FIFO refused: {refusal})"
            assert scheduler_policy() == os.SCHED_OTHER
    finally:
        scheduler.close()


def test_the_thread_stays_normal_when_real_time_is_not_requested():
    scheduler = Scheduler(RecordingOutput(), realtime=False)
    scheduler.start()
    try:
        assert scheduler.realtime == "normal scheduling (real-time not requested)"
        if hasattr(os, "sched_getscheduler"):
            assert scheduler_policy() == os.SCHED_OTHER
    finally:
        scheduler.close()


def test_thread_sends_at_deadlines_cancels_and_panics_on_close():
    port = RecordingOutput()
    scheduler = Scheduler(port, late_after=0.005)
    scheduler.start()
    try:
        t0 = time.monotonic() + 0.02
        deadlines = [t0 + i * 0.003 for i in range(20)]
        scheduler.schedule([(d, on(40 + i)) for i, d in enumerate(deadlines)], tag="a")
        scheduler.send_at(t0 + 10, off(40), tag="a")
        scheduler.send_at(deadlines[-1] + 0.001, mido.Message("clock"))
        deadline = time.monotonic() + 5
        while len(port.sent) < 21 and time.monotonic() < deadline:
            time.sleep(0.005)
        sent_times = [t for t, _ in port.sent[:20]]
        assert all(t >= d for t, d in zip(sent_times, deadlines))  # never early
        assert [m.note for m in port.messages()[:20]] == list(range(40, 60))
        scheduler.cancel("a")
        while len(port.sent) < 41 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert sorted(m.note for m in port.messages()[21:41]) == list(range(40, 60))
        assert all(m.type == "note_off" for m in port.messages()[21:41])
        assert scheduler.pending() == 0
    finally:
        scheduler.close()
    assert [m.control for m in port.messages()[41:]] == [64, 123, 120]
    assert scheduler.stats().sent == 44


def test_an_error_in_the_thread_is_reported_to_the_owner():
    broken = threading.Event()

    def clock():  # fails on the thread's next turn once broken
        if broken.is_set() and threading.current_thread().name == "jam-scheduler":
            raise RuntimeError("clock broke")
        return time.monotonic()

    errors = []
    reported = threading.Event()
    scheduler = Scheduler(RecordingOutput(), clock=clock,
                          on_error=lambda e: (errors.append(e), reported.set()))
    scheduler.start()
    broken.set()
    scheduler.send_now(on(60))
    assert reported.wait(5)
    assert "clock broke" in str(errors[0])


class RawRt:
    """python-rtmidi's MidiOut as far as the scheduler uses it."""

    def __init__(self):
        self.sent = []

    def send_message(self, data):
        self.sent.append(tuple(data))


class RtmidiBackendPort:
    """A port of mido's rtmidi backend: the scheduler sends through its ``_rt``."""

    __module__ = "mido.backends.rtmidi"

    def __init__(self):
        self._rt = RawRt()

    def send(self, message):  # pragma: no cover - must not be used
        raise AssertionError("mido's send was used")


def test_a_rtmidi_port_gets_the_bytes_and_the_tracker_follows_them(clock):
    port = RtmidiBackendPort()
    scheduler = Scheduler(port, clock=clock)
    scheduler.sent_log = []
    t = clock.now
    scheduler.schedule([(t, (0x92, 60, 90)), (t, on(64)), (t + 1, (0x82, 60, 0))], tag="a")
    scheduler.run_due(t)
    assert port._rt.sent == [(0x92, 60, 90), (0x90, 64, 90)]
    assert scheduler.tracker.sounding() == [(0, 64), (2, 60)]
    assert scheduler.tracker.owned_by("a") == [(0, 64), (2, 60)]
    assert [(m.type, m.channel, m.note) for m, _ in scheduler.sent_log] == [
        ("note_on", 2, 60), ("note_on", 0, 64)]
    scheduler.cancel("a")  # the pending note-off goes; both notes end now
    scheduler.run_due(t)
    assert sorted(port._rt.sent[2:]) == [(0x80, 64, 0), (0x82, 60, 0)]
    assert scheduler.tracker.sounding() == []


def test_bytes_reach_a_plain_port_as_mido_messages(clock, port):
    scheduler = Scheduler(port, clock=clock)
    scheduler.send_at(clock.now, (0x91, 62, 70))
    scheduler.run_due(clock.now)
    assert port.messages() == [mido.Message("note_on", channel=1, note=62, velocity=70)]
