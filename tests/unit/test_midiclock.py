"""MIDI clock in (a TempoSource fed clock messages on fake time) and out (ticks through the
scheduler's logic to a recording port), and the scheduler's clock port and sent log."""

from __future__ import annotations

import logging
from collections import deque

import mido
import numpy as np
import pytest

from jam.engine.clock import Clock, Pulse
from jam.engine.midiclock import PPQN, MidiClockIn, MidiClockOut, fit_line
from jam.engine.scheduler import Scheduler
from jam.music.meter import Meter
from recording import FakeClock, RecordingOutput

BPM = 100.0
STEP = 60.0 / (BPM * PPQN)  # 25 ms between ticks
T0 = 5000.0


def clock_messages(kind: str, **fields) -> mido.Message:
    return mido.Message(kind, **fields)


def send_ticks(source: MidiClockIn, clock: Clock, first: float, count: int,
               step: float = STEP, jitter: float = 0.0, seed: int = 0) -> float:
    """Feed ``count`` ticks from ``first`` (each polled at once); returns the last time."""
    rng = np.random.default_rng(seed)
    when = first
    for k in range(count):
        when = first + k * step + (rng.uniform(0, jitter) if jitter else 0.0)
        source.feed(mido.Message("clock"), when)
        source.update(clock, when + 0.0005)
    return when


def test_fit_line_recovers_a_line():
    a, b = fit_line([0, 1, 2, 3], [1.0, 1.5, 2.0, 2.5])
    assert a == pytest.approx(1.0) and b == pytest.approx(0.5)


def test_start_and_ticks_give_the_tempo_and_the_downbeat_despite_jitter():
    source, clock = MidiClockIn(120.0), Clock(120.0)
    source.feed(mido.Message("start"), T0 - 0.001)
    # 2.67 ms of arrival jitter (a JACK period), always late
    send_ticks(source, clock, T0, 4 * PPQN, jitter=0.00267)
    assert source.locked
    assert clock.bpm == pytest.approx(BPM, rel=0.003)
    for beat in range(4, 7):  # the coming beats (bar 2 of 4/4), at the mean arrival
        assert clock.seconds(12 * beat) == pytest.approx(T0 + 0.6 * beat + 0.00133, abs=0.003)
    assert clock.tick(T0 + 4 * 0.6 + 0.002) == 48


def test_the_clock_moves_only_when_the_fit_drifts_a_millisecond_away():
    source, clock = MidiClockIn(BPM), Clock(BPM)
    source.feed(mido.Message("start"), T0 - 0.001)
    rng = np.random.default_rng(3)
    moves = 0
    for k in range(8 * PPQN):
        when = T0 + k * STEP + rng.uniform(0, 0.00267)
        source.feed(mido.Message("clock"), when)
        moves += source.update(clock, when + 0.0005)
        if k > 2 * PPQN:  # settled: the clock is never more than that (and jitter) off
            assert abs(clock.seconds(k * 12 / 24 + 12) - (T0 + (k + 24) * STEP + 0.00133)) < 0.003
    assert moves < PPQN  # far fewer than the 192 ticks


def test_song_position_and_continue_place_the_bar():
    source, clock = MidiClockIn(BPM), Clock(BPM)
    source.feed(mido.Message("songpos", pos=16), T0 - 0.01)  # 16 sixteenths: bar 2
    source.feed(mido.Message("continue"), T0 - 0.005)
    send_ticks(source, clock, T0, 30)
    assert clock.seconds(48) == pytest.approx(T0, abs=1e-6)  # the first tick is bar 2
    source.feed(mido.Message("stop"), T0 + 1.0)
    source.update(clock, T0 + 1.0)
    assert not source.locked and source.position == 96 + 30


def feed_running(source, clock, arrivals):
    """Start, then ticks arriving at ``arrivals`` (each polled at once)."""
    source.feed(mido.Message("start"), T0 - 0.001)
    for when in arrivals:
        source.feed(mido.Message("clock"), when)
        source.update(clock, when + 0.0005)


def test_ticks_lost_on_the_way_do_not_shift_the_bar():
    source, clock = MidiClockIn(BPM), Clock(BPM)
    feed_running(source, clock, [T0 + k * STEP + (0.002 if k % 2 else 0.0)
                                 for k in range(4 * PPQN) if k not in (30, 31, 70)])
    assert source.lost == 3 and source.position == 4 * PPQN
    assert clock.seconds(48) == pytest.approx(T0 + 4 * 0.6 + 0.001, abs=0.002)
    assert clock.bpm == pytest.approx(BPM, rel=0.003)


def test_a_tick_delivered_twice_does_not_shift_the_bar():
    source, clock = MidiClockIn(BPM), Clock(BPM)
    arrivals = [T0 + k * STEP for k in range(4 * PPQN)]
    feed_running(source, clock, sorted(arrivals + [arrivals[50] + 0.0001]))
    assert source.lost == -1 and source.position == 4 * PPQN
    assert clock.seconds(48) == pytest.approx(T0 + 4 * 0.6, abs=0.001)


@pytest.mark.parametrize("held", [0.03, 0.06, 0.2])
def test_ticks_read_late_in_a_burst_are_not_taken_for_lost_ones(held):
    """The input thread held up for ``held`` s: the ticks of that time arrive together."""
    source, clock = MidiClockIn(BPM), Clock(BPM)
    stall = T0 + 40 * STEP
    arrivals = [max(T0 + k * STEP, stall + held + 0.0001 * k) if T0 + k * STEP >= stall
                else T0 + k * STEP for k in range(4 * PPQN)]
    feed_running(source, clock, arrivals)
    assert source.lost == 0 and source.position == 4 * PPQN
    assert clock.seconds(48) == pytest.approx(T0 + 4 * 0.6, abs=0.002)


def test_calls_do_not_move_a_locked_clock():
    source, clock = MidiClockIn(120.0), Clock(120.0)
    source.feed(mido.Message("start"), T0)
    last = send_ticks(source, clock, T0, 60)
    before = (clock.bpm, clock.origin)
    source.call_started(clock, last + 0.01)
    onsets = [last + 0.02 + 0.6 * i for i in range(4)]  # 20 ms behind the clock's beats
    assert source.call_ended(clock, onsets) is False
    assert (clock.bpm, clock.origin) == before


def test_a_lost_clock_warns_once_and_goes_on_at_the_last_tempo(caplog):
    source, clock = MidiClockIn(120.0), Clock(120.0)
    source.feed(mido.Message("start"), T0)
    last = send_ticks(source, clock, T0, 60)
    pulse = (clock.bpm, clock.origin)
    assert source.wakeup() == pytest.approx(last + 0.5)
    with caplog.at_level(logging.WARNING, logger="jam.engine.midiclock"):
        source.update(clock, last + 0.4)
        assert not caplog.records
        for later in (0.6, 0.8, 3.0):
            source.update(clock, last + later)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "100.0 BPM" in warnings[0].getMessage()
    assert not source.locked and (clock.bpm, clock.origin) == pulse
    # from now on the player's calls refine the phase, as with --tempo fixed
    onsets = [last + 3 + 0.6 * i + 0.012 for i in range(4)]
    grid = [clock.seconds(clock.tick(t)) for t in onsets]
    assert source.call_ended(clock, onsets) is True
    assert clock.bpm == pytest.approx(BPM, rel=0.003)
    assert clock.seconds(clock.tick(onsets[0])) == pytest.approx(onsets[0], abs=0.002)
    assert grid[0] != pytest.approx(onsets[0], abs=0.005)


def test_a_stopped_transport_gives_the_tempo_and_the_player_the_beat():
    source, clock = MidiClockIn(120.0), Clock(120.0)
    last = send_ticks(source, clock, T0, 30)  # clock without Start
    assert not source.locked and not clock.anchored
    assert clock.bpm == pytest.approx(BPM, rel=0.001)
    source.call_started(clock, last + 1.0)
    assert clock.origin == last + 1.0 and clock.bpm == pytest.approx(BPM, rel=0.001)


def test_before_any_clock_the_first_note_is_a_downbeat_at_the_given_bpm():
    source, clock = MidiClockIn(96.0), Clock(96.0)
    source.update(clock, T0)
    source.call_started(clock, T0 + 0.3)
    assert (clock.bpm, clock.origin) == (96.0, T0 + 0.3)


def test_a_pause_in_the_ticks_does_not_read_as_a_slow_tempo():
    source, clock = MidiClockIn(120.0), Clock(120.0)
    last = send_ticks(source, clock, T0, 30)
    send_ticks(source, clock, last + 2.0, 10)
    assert clock.bpm == pytest.approx(BPM, rel=0.001)


# --- clock out ----------------------------------------------------------------------------


class Rig:
    """The engine thread's calls and the scheduler's passes on fake time."""

    def __init__(self, bpm: float = 120.0, meter: Meter = Meter()) -> None:
        self.time = FakeClock(T0)
        self.out = RecordingOutput(self.time)
        self.clock_port = RecordingOutput(self.time)
        self.scheduler = Scheduler(self.out, clock=self.time, clock_port=self.clock_port)
        self.clock = Clock(bpm, meter)
        self.sender = MidiClockOut()
        self.sender.start(self.scheduler, self.clock, self.time.now)

    def run(self, until: float, poll: float = 0.01) -> None:
        """Poll the sender every ``poll`` s and send what is due at its exact deadline."""
        next_poll = self.time.now
        while self.time.now < until:
            if self.time.now >= next_poll:
                self.sender.update(self.clock, self.time.now)
                next_poll = self.time.now + poll
            due = self.scheduler.run_due(self.time.now)
            self.time.now = min(x for x in (due, next_poll, until) if x is not None)

    def ticks(self) -> list[float]:
        return [t for t, m in self.clock_port.sent if m.type == "clock"]


def test_clock_out_sends_start_then_24_ticks_a_beat_on_jams_grid():
    rig = Rig(120.0)
    rig.run(T0 + 2.0)
    sent = rig.clock_port.sent
    assert sent[0][1].type == "start" and sent[1][1].type == "clock"
    assert sent[0][0] == sent[1][0] == pytest.approx(T0 + 0.05)  # jam's beat starts there
    ticks = rig.ticks()
    assert len(ticks) == pytest.approx(1.95 / (60 / 120 / 24), abs=1)
    assert np.diff(ticks) == pytest.approx(60 / 120 / 24)
    for k, t in enumerate(ticks):  # tick k on grid position k / 2
        assert t == pytest.approx(rig.clock.seconds(k / 2))
    assert rig.out.sent == []  # nothing on the notes' port


def test_clock_out_follows_a_tempo_change_without_losing_or_repeating_a_tick():
    rig = Rig(120.0)
    rig.run(T0 + 1.0)
    change = T0 + 1.003
    rig.time.now = change
    rig.clock.set_tempo(150.0, change)  # the engine's clock moves (--tempo follow)
    rig.run(T0 + 3.0)
    ticks = rig.ticks()
    for k, t in enumerate(ticks):  # still one tick per grid position, on the new map
        if t > change:
            assert t == pytest.approx(rig.clock.seconds(k / 2))
    steps = np.diff(ticks)
    assert steps[-1] == pytest.approx(60 / 150 / 24)
    assert steps.min() > 0.5 * 60 / 150 / 24


def test_a_jump_of_the_phase_is_absorbed_within_half_to_twice_the_interval():
    rig = Rig(120.0)
    rig.run(T0 + 1.0)
    rig.clock.set_pulse(Pulse(120.0, rig.clock.origin - 0.2))  # 0.4 beat ahead: catch up
    rig.run(T0 + 2.0)
    rig.clock.set_pulse(Pulse(120.0, rig.clock.origin + 0.3))  # then behind: slow down
    rig.run(T0 + 4.0)
    step = 60 / 120 / 24
    steps = np.diff(rig.ticks())
    assert steps.min() >= 0.5 * step - 1e-9 and steps.max() <= 2 * step + 1e-9
    assert rig.ticks()[-1] == pytest.approx(rig.clock.seconds((len(rig.ticks()) - 1) / 2))


def test_the_clock_starts_on_a_downbeat_of_an_anchored_clock():
    time = FakeClock(T0)
    scheduler = Scheduler(RecordingOutput(time), clock=time, clock_port=RecordingOutput(time))
    clock = Clock(120.0, Meter(3, 4), origin=T0 - 0.7)  # mid-bar now
    MidiClockOut().start(scheduler, clock, T0)
    time.now = scheduler.run_due(T0)  # the first deadline
    scheduler.run_due(time.now)
    first = scheduler.clock_port.sent[0][0]
    assert first == pytest.approx(T0 - 0.7 + 1.5)  # the next bar of 3/4 at 120 BPM


def test_panic_keeps_the_clock_going_and_close_sends_stop():
    rig = Rig(120.0)
    rig.scheduler.send_at(T0, mido.Message("note_on", note=60, velocity=80))
    rig.run(T0 + 0.5)
    rig.scheduler.panic()
    rig.run(T0 + 1.0)
    assert rig.ticks()[-1] > T0 + 0.9
    rig.scheduler.close()
    assert rig.clock_port.sent[-1][1].type == "stop"
    assert [m.type for m in rig.clock_port.messages()].count("stop") == 1
    assert "stop" not in [m.type for m in rig.out.messages()]


def test_close_sends_no_stop_when_no_clock_went_out():
    time = FakeClock(T0)
    clock_port = RecordingOutput(time)
    Scheduler(RecordingOutput(time), clock=time, clock_port=clock_port).close()
    assert clock_port.sent == []


def test_withdraw_and_the_sent_log():
    time = FakeClock(T0)
    out = RecordingOutput(time)
    scheduler = Scheduler(out, clock=time, clock_port=RecordingOutput(time))
    scheduler.sent_log = deque()
    note = mido.Message("note_on", note=60, velocity=80)
    scheduler.schedule([(T0, note), (T0 + 1, note)], tag="a")
    scheduler.schedule([(T0, mido.Message("clock"))], tag="c", port=scheduler.clock_port)
    time.now = T0 + 0.001
    scheduler.run_due(time.now)
    assert scheduler.withdraw("a") == 1 and scheduler.withdraw("a") == 0
    assert scheduler.pending() == 0
    assert list(scheduler.sent_log) == [(note, T0 + 0.001)]  # the notes' port only
