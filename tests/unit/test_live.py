"""The live mode (CallMode) driven by a fake clock: input messages with their times in, the
scheduler (its logic, without its thread) sends to a recording port at the deadlines."""

from __future__ import annotations

import mido
import numpy as np

from jam.engine.callresponse import CallResponse, EngineSettings
from jam.engine.clock import Clock, FixedTempo
from jam.engine.live import CallMode
from jam.engine.scheduler import Scheduler
from jam.generators.rules import RulesGenerator
from recording import FakeClock, RecordingOutput

BEAT = 0.5  # 120 BPM


def drive(mode: CallMode, scheduler: Scheduler, clock: FakeClock, until: float) -> None:
    """The run loop's work on fake time: poll when the mode asks, send what is due."""
    while clock.now < until:
        delay = mode.poll(clock.now)
        next_send = scheduler.run_due(clock.now)
        steps = [until, clock.now + 0.05]
        if delay is not None:
            steps.append(clock.now + max(delay, 1e-4))
        if next_send is not None:
            steps.append(next_send)
        clock.now = min(steps)


def test_a_call_is_answered_on_the_beat_of_fake_time_with_every_note_ended():
    clock = FakeClock(1e6)  # far from time.monotonic(): only the given times count
    port = RecordingOutput(clock)
    scheduler = Scheduler(port, clock=clock)
    engine = CallResponse(RulesGenerator(), Clock(120), FixedTempo(120),
                          EngineSettings.defaults(answer_bars=1), np.random.default_rng(0))
    mode = CallMode(engine, channel=3)
    mode.start(scheduler)
    start = clock.now
    for beat, pitch in enumerate([60, 62, 64, 65, 67, 65, 64, 62]):
        t = start + beat * BEAT
        mode.on_message(mido.Message("note_on", note=pitch, velocity=90), t)
        mode.on_message(mido.Message("note_off", note=pitch), t + 0.8 * BEAT)
    clock.now = start + 8 * BEAT
    drive(mode, scheduler, clock, start + 20 * BEAT)

    ons = [(t, m) for t, m in port.sent if m.type == "note_on" and m.velocity > 0]
    offs = [m for _, m in port.sent if m.type == "note_off"]
    assert ons, "no answer was sent"
    assert {m.channel for _, m in port.sent} == {3}
    # the call's last note ends at beat 7.8; one beat of silence; the answer from beat 9
    assert abs(ons[0][0] - (start + 9 * BEAT)) < 1e-6
    for t, _ in ons:  # every onset on the 12-tick grid of fake time, inside the one bar
        ticks = (t - start) / (BEAT / 12)
        assert abs(ticks - round(ticks)) < 1e-6 and 9 * 12 <= round(ticks) < 13 * 12
    assert sorted(m.note for m in offs) == sorted(m.note for _, m in ons)
    assert engine.state == "listening" and engine.stats.answers == 1
