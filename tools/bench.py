"""Benchmark the call-and-response engine; prints JSON (a measurement, not a test).

Three measurements:

- ``listen``: time the engine takes for each incoming event while a call is played
  (quantize, encode, one generator step per token), on a virtual clock; microseconds,
  wall clock and the thread's CPU time (the difference is other processes' load).
- ``response``: from the moment a call is found to be over to the first answer note
  computed (tempo settling, key estimation, mask, first tokens sampled); microseconds,
  for ``--tempo fixed`` and ``follow``.
- ``timing`` (needs a running JACK server, ``--jack``): the live stack (the engine on this
  thread, the scheduler thread, a JACK output port) answers calls; a receiver in a
  separate process records arrival times. Reported: the scheduler's send time minus the
  deadline, and arrival minus deadline (the JACK period adds its latency there),
  microseconds, p50/p99/max. Measure on a sync server with a small period,
  ``jackd -n NAME -S --no-realtime -d dummy -r 48000 -p 64``, with long-lived clients
  (a client that exits quickly stalls a sync server for seconds; docs/performance.md).

Usage::

    python tools/bench.py [--model PATH|rules] [--calls 200] [--jack --answers 30]
    python tools/bench.py receive NAME      # (internal) the receiver process
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time

import numpy as np

from benchstats import percentiles  # tools/ is on sys.path when a tool runs
from jam.engine.assembly import make_generator, make_tempo
from jam.engine.callresponse import CallResponse, EngineSettings
from jam.engine.clock import Clock, FixedTempo
from jam.engine.live import CallMode
from jam.engine.scheduler import Scheduler
from jam.midi.ports import JACK_BACKEND


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
    """The engine with the shipped defaults (and ``settings``), at 120 BPM."""
    clock = Clock(120.0)
    return CallResponse(make_generator(model, "cpu"), clock, make_tempo(tempo, 120.0),
                        EngineSettings.defaults(**settings), np.random.default_rng(0))


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
    return {"note_on_wall": percentiles(wall_on[50:]), "note_on_cpu": percentiles(cpu_on[50:]),
            "all_events_wall": percentiles(wall_all[100:])}


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
    return {"wall": percentiles(wall[10:]), "cpu": percentiles(cpu[10:])}


# --- live timing over JACK --------------------------------------------------------------


def receive(name: str) -> None:
    """Receiver process: record (monotonic arrival, message bytes) until stdin closes."""
    import mido

    got: list[tuple[float, list[int]]] = []
    lock = threading.Lock()

    def record(message) -> None:
        now = time.monotonic()
        with lock:
            got.append((now, message.bytes()))

    port = mido.Backend(JACK_BACKEND, load=True).open_input("in", client_name=name,
                                                            callback=record)
    print("ready", flush=True)
    sys.stdin.read()
    port.close()
    with lock:
        json.dump(got, sys.stdout)


class DeadlineLog(Scheduler):
    """The scheduler, noting each note message's deadline per (status, pitch) in order."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.deadlines: dict[tuple[int, int], list[float]] = {}

    def schedule(self, events, tag=None) -> None:
        events = list(events)
        for deadline, message in events:
            status = 0x90 if message.type == "note_on" and message.velocity else 0x80
            self.deadlines.setdefault((status, message.note), []).append(deadline)
        super().schedule(events, tag)


def bench_timing(model: str | None, answers: int, bpm: float) -> dict:
    import mido

    name = f"jam-bench-rx-{os.getpid()}"
    receiver = subprocess.Popen([sys.executable, __file__, "receive", name],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert receiver.stdout is not None and receiver.stdin is not None
    if receiver.stdout.readline().strip() != "ready":
        raise SystemExit("the receiver did not start (is a JACK server running?)")
    output = mido.Backend(JACK_BACKEND, load=True).open_output(f"{name}:in")  # connect
    scheduler = DeadlineLog(output, keep_lateness=100_000)
    scheduler.start()
    eng = CallResponse(make_generator(model, "cpu"), Clock(bpm), FixedTempo(bpm),
                       EngineSettings.defaults(answer_bars=2), np.random.default_rng(3))
    mode = CallMode(eng, channel=0)
    mode.start(scheduler)
    rng = np.random.default_rng(4)
    try:
        for _ in range(answers):
            # a call that has just been played (event times in the recent past)
            start = time.monotonic() - 4 * 60.0 / bpm - 0.01
            for when, pitch, velocity in random_call(rng, 4, bpm, start):
                kind = "note_on" if velocity else "note_off"
                mode.on_message(mido.Message(kind, note=pitch, velocity=velocity), when)
            mode.poll(time.monotonic())
            while eng.answer is not None or eng.listener.in_call:
                delay = mode.poll(time.monotonic())
                time.sleep(min(max(delay or 0.05, 0.0), 0.05))
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        stats = scheduler.stats()
        scheduler.close()
        output.close()
        receiver.stdin.close()
        arrivals = json.loads(receiver.stdout.read() or "[]")
        receiver.wait(10)
    # pair arrivals with deadlines per (status, pitch) in order
    deadlines = scheduler.deadlines
    seen: dict[tuple[int, int], int] = {}
    errors = []
    for when, data in arrivals:
        status = data[0] & 0xF0
        if status == 0x90 and data[2] == 0:
            status = 0x80
        key = (status, data[1])
        i = seen.get(key, 0)
        if key in deadlines and i < len(deadlines[key]):
            errors.append(when - deadlines[key][i])
            seen[key] = i + 1
    return {"bpm": bpm, "answers": answers, "scheduler": scheduler.realtime,
            "send_minus_deadline": percentiles(list(stats.lateness)),
            "arrival_minus_deadline": percentiles(errors),
            "late_over_1ms": stats.late, "answers_ended_early": eng.stats.degraded}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "receive":
        receive(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="ONNX model or 'rules' (default: the shipped model)")
    parser.add_argument("--events", type=int, default=3000, help="listening events")
    parser.add_argument("--calls", type=int, default=200, help="calls for the response time")
    parser.add_argument("--jack", action="store_true", help="also measure timing over JACK")
    parser.add_argument("--answers", type=int, default=30, help="answers for the JACK timing")
    parser.add_argument("--bpm", type=float, default=160.0, help="tempo of the JACK timing")
    args = parser.parse_args()
    result = {
        "model": args.model or "default",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "listen": bench_listen(args.model, args.events),
        "response_fixed": bench_response(args.model, "fixed", args.calls),
        "response_follow": bench_response(args.model, "follow", args.calls),
    }
    if args.jack:
        result["timing"] = bench_timing(args.model, args.answers, args.bpm)
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
