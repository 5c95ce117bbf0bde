"""The call-and-response engine on a virtual clock, so only computing time counts:
``listen`` (each incoming event while a call is played: quantize, encode, the generator's
step for the event's tokens) and ``response`` (the call found to be over -> the first
answer note computed: tempo settling, key estimation, mask, the first tokens sampled),
for ``--tempo fixed`` and ``follow``. Microseconds, wall clock and the thread's CPU time
(the difference is other processes' load). The generator is the product's default: the
shipped model blended with the session memory (``style`` auto)."""

from __future__ import annotations

import gc
import time

import numpy as np

from benchstats import percentiles
from jam.config import default_config
from jam.engine.assembly import make_generator, make_tempo, warm_up
from jam.engine.callresponse import CallResponse, EngineSettings
from jam.engine.clock import Clock


def random_call(rng: np.random.Generator, beats: int = 8, bpm: float = 120.0,
                start: float = 0.0) -> list[tuple[float, int, int]]:
    """(time, pitch, velocity or 0) events: a random walk in eighths and quarters."""
    events, beat, pitch = [], 0.0, 67
    spb = 60.0 / bpm
    while beat < beats:
        length = float(rng.choice([0.5, 1.0]))
        pitch = int(np.clip(pitch + rng.integers(-3, 4), 55, 80))
        events.append((start + beat * spb, pitch, int(rng.integers(60, 110))))
        events.append((start + (beat + 0.9 * length) * spb, pitch, 0))
        beat += length
    return events


def engine(model: str | None, tempo: str, **settings) -> CallResponse:
    """The engine with the shipped defaults (and ``settings``), at 120 BPM, warmed up as
    jam warms it up before its ports open."""
    style = default_config().style
    generator = make_generator(model, "cpu", style)
    warm_up(generator, EngineSettings.defaults(), tempo == "follow")
    settings = EngineSettings.defaults(**settings)
    return CallResponse(generator, Clock(120.0), make_tempo(tempo, 120.0), settings,
                        np.random.default_rng(0))


def bench_listen(model: str | None, events: int) -> dict:
    """Per-event cost of listening (virtual clock; one never-ending call)."""
    eng = engine(model, "fixed", listen_silence=1e9, max_call=None)
    rng = np.random.default_rng(1)
    wall_on, cpu_on, wall_all = [], [], []
    t = 0.0
    while len(wall_all) < events:
        for when, pitch, velocity in random_call(rng, 8, 120.0, t):
            began, began_cpu = time.perf_counter(), time.thread_time()
            if velocity:
                eng.note_on(pitch, velocity, when)
            else:
                eng.note_off(pitch, when)
            wall, cpu = time.perf_counter() - began, time.thread_time() - began_cpu
            wall_all.append(wall)
            if velocity:
                wall_on.append(wall)
                cpu_on.append(cpu)
        t += 4.0
        gc.collect(0)
    skip = min(50, len(wall_on) // 4)
    return {"generator": type(eng.generator).__name__,
            "note_on_wall": percentiles(wall_on[skip:]),
            "note_on_cpu": percentiles(cpu_on[skip:]),
            "all_events_wall": percentiles(wall_all[2 * skip:])}


def bench_response(model: str | None, tempo: str, calls: int) -> dict:
    """Call end -> first answer note computed, over many 2-bar calls (virtual clock)."""
    eng = engine(model, tempo, answer_bars=1)
    rng = np.random.default_rng(2)
    t = 0.0
    wall, cpu = [], []
    for _ in range(calls):
        events = random_call(rng, 8, 120.0, t)
        for when, pitch, velocity in events:
            if velocity:
                eng.note_on(pitch, velocity, when)
            else:
                eng.note_off(pitch, when)
        now = events[-1][0] + 0.5
        began, began_cpu = time.perf_counter(), time.thread_time()
        first = eng.end_call(now, "bench")  # returns with the first answer note
        wall.append(time.perf_counter() - began)
        cpu.append(time.thread_time() - began_cpu)
        assert first, "no answer note"
        while eng.answer is not None:  # play the answer out on the virtual clock
            now = max(now, eng.wakeup() or now)
            eng.poll(now)
        t = now + 30.0  # a pause: the next call is a new phrase
        gc.collect(0)
    skip = min(10, calls // 4)
    return {"wall": percentiles(wall[skip:]), "cpu": percentiles(cpu[skip:])}


def section(model: str | None, events: int, calls: int) -> dict:
    """Listening and response with Python's garbage collector as jam runs it: what exists
    after start-up frozen, automatic collection off (jam's scheduler thread collects
    between deadlines, not the engine thread); here the youngest generation is collected
    after each call, outside the timed parts."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        return {"listen": bench_listen(model, events),
                "response_fixed": bench_response(model, "fixed", calls),
                "response_follow": bench_response(model, "follow", calls),
                "garbage_collector": "off while timed (as in jam)"}
    finally:
        gc.enable()
        gc.unfreeze()
