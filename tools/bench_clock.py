"""Measure the jitter of jam's MIDI clock out over JACK (idle jam); prints JSON.

Starts a private JACK server with the dummy driver, a receiver that stamps each event with
the JACK cycle and frame that delivered it (tools/jackrig.py's test synth), and
``jam --clock-out <receiver>`` with nothing played (virtual ports for its input and output),
for ``--seconds``; then stops jam with SIGTERM. Reported, in milliseconds:

- ``interval_error``: |tick interval - 60 / (bpm * 24)| over consecutive ticks (a gap of
  about two intervals or more is a tick lost on the way when fewer arrived than jam sent:
  left out, and counted in ``ticks_missing``), n/p50/p99/max;
- ``phase_error``: |arrival - the least-squares line through all arrivals|: how far a tick
  is from where a steady clock would put it (each tick counted as the nearest whole number
  of intervals after the first);
- ``mean_interval_ms`` and ``bpm_measured`` (from that line), ``ticks_missing`` and
  ``ticks_repeated`` (events the JACK server lost or delivered twice), ``irregular_cycles``
  (cycles the receiver missed or saw twice: a starved server or receiver, not jam),
  ``start_first``/``stop_last``, and jam's own last line (how late its scheduler thread
  sent anything, against the deadlines).

Then the same for jam's clock out run in this process (``in_process``: its Scheduler and
MidiClockOut, polled every 50 ms as the run loop polls an idle mode), which adds
``send_minus_deadline``: when the scheduler thread sent each tick against its deadline,
jam's own part of the jitter.

rtmidi's JACK output puts every event at the start of the next JACK cycle, so the arrival
times are quantized to the period: at 128 frames and 48 kHz (2.67 ms) the interval error
is mostly that quantization, not jam.

Usage::

    python tools/bench_clock.py [--bpm 120] [--seconds 30] [--period 128] [--sync]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import tempfile
import time

import numpy as np

from benchstats import percentiles  # tools/ is on sys.path when a tool runs
from jackrig import JackServer, JamProcess, Synth


def arrivals(received, bpm: float, sent: int | None) -> dict:
    """Figures of the ticks a receiver got, ``sent`` of them sent (None: unknown)."""
    kinds = [m.type for _, m in received]
    got = np.asarray([t for t, m in received if m.type == "clock"])
    nominal = 60.0 / (bpm * 24)
    if sent == got.size:  # as many as were sent: the k-th is tick k
        repeated = np.zeros(max(got.size - 1, 0), dtype=bool)
        ticks = got
        counted = np.ones(max(got.size - 1, 0))
    else:  # guessed: ~0 intervals apart, delivered twice; ~2 or more, lost between
        repeated = np.diff(got) < 0.25 * nominal
        ticks = got[np.concatenate([[True], ~repeated])]
        gaps = np.diff(ticks) / nominal
        counted = np.where(gaps > 1.6, np.rint(gaps), 1)
    index = np.concatenate([[0.0], np.cumsum(counted)])
    slope, origin = np.polyfit(index, ticks, 1)
    steps = np.diff(ticks)[counted == 1]  # consecutive ticks (none lost between)
    return {
        "ticks_sent": sent, "ticks_received": int(got.size),
        "ticks_repeated": int(repeated.sum()),
        "ticks_missing": int(index[-1]) + 1 - int(ticks.size),
        "start_first": kinds[:1] == ["start"], "stop_last": kinds[-1:] == ["stop"],
        "mean_interval_ms": round(1e3 * float(slope), 4),
        "bpm_measured": round(60.0 / (24 * float(slope)), 3),
        "interval_error": percentiles(np.abs(steps - nominal), "ms"),
        "phase_error": percentiles(np.abs(ticks - (origin + slope * index)), "ms"),
    }


def run_jam(env: dict, receiver: Synth, bpm: float, seconds: float) -> dict:
    """The product: ``jam --clock-out`` idle for ``seconds``."""
    jam = JamProcess(["--api", "jack", "--model", "rules", "--bpm", str(bpm),
                      "--clock-out", receiver.full_name], env)
    jam.wait_ready()
    time.sleep(seconds)  # idle: the measurement runs meanwhile
    jam.process.send_signal(signal.SIGTERM)
    code = jam.wait()
    time.sleep(0.1)  # the receiver passes its events on every 2 ms
    last = next((line for line in reversed(jam.lines) if "stopping" in line), "")
    # (its count of messages sent is taken before the last ticks and Stop: not used)
    return {**arrivals(receiver.received, bpm, None),
            "irregular_cycles": receiver.irregular, "jam_exit": code,
            "jam_scheduler": next((line.split("scheduler: ")[1].split(";")[0]
                                   for line in jam.lines if "scheduler: " in line), ""),
            "jam_last_line": last}


def run_in_process(receiver: Synth, bpm: float, seconds: float) -> dict:
    """jam's clock out in this process (its Scheduler and MidiClockOut, the engine side
    polled as the run loop polls an idle mode, every 50 ms), to time each send against
    its deadline: the scheduler thread's own part of the jitter."""
    import mido

    from jam.engine.clock import Clock
    from jam.engine.midiclock import MidiClockOut
    from jam.engine.runner import MAX_WAIT, SWITCH_INTERVAL
    from jam.engine.scheduler import Scheduler
    from jam.midi.ports import JACK_BACKEND

    sys.setswitchinterval(SWITCH_INTERVAL)
    backend = mido.Backend(JACK_BACKEND, load=True)
    notes = backend.open_output("bench notes", client_name="bench-notes", virtual=True)
    port = backend.open_output(receiver.full_name)
    scheduler = Scheduler(notes, clock_port=port, keep_lateness=1_000_000)
    scheduler.start()
    clock, sender = Clock(bpm), MidiClockOut()
    sender.start(scheduler, clock, time.monotonic())
    end = time.monotonic() + seconds
    while (now := time.monotonic()) < end:
        wake = sender.update(clock, now)
        time.sleep(min(MAX_WAIT, max(0.0, (wake or now + MAX_WAIT) - now)))
    scheduler.close()
    stats = scheduler.stats()  # Start, every tick, Stop
    time.sleep(0.2)
    port.close()
    notes.close()
    return {**arrivals(receiver.received, bpm, stats.sent - 2),
            "irregular_cycles": receiver.irregular, "scheduler": scheduler.realtime,
            "send_minus_deadline": percentiles(np.asarray(stats.lateness), "ms")}


def measure(bpm: float, seconds: float, period: int, sync: bool) -> dict:
    server = JackServer(period=period, sync=sync).start()
    os.environ.update(JACK_DEFAULT_SERVER=server.name, JACK_NO_START_SERVER="1")
    config_home = tempfile.TemporaryDirectory()
    result = {
        "bpm": bpm, "seconds": seconds,
        "jack": f"dummy driver, 48000 Hz, {period} frames ({1e3 * period / 48000:.2f} ms), "
                f"{'sync' if sync else 'async'}",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
                   f"Python {platform.python_version()}",
        "load_average_before": round(os.getloadavg()[0], 2),
    }
    try:
        receiver = Synth("clock")
        try:
            env = {**server.env(), "XDG_CONFIG_HOME": config_home.name}
            result["jam"] = run_jam(env, receiver, bpm, seconds)
        finally:
            receiver.close()
        receiver = Synth("clock")
        try:
            result["in_process"] = run_in_process(receiver, bpm, seconds)
        finally:
            receiver.close()
    finally:
        server.stop()
        config_home.cleanup()
    result["load_average_after"] = round(os.getloadavg()[0], 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bpm", type=float, default=120.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--period", type=int, default=128, help="JACK period in frames")
    parser.add_argument("--sync", action="store_true", help="a sync JACK server (-S)")
    args = parser.parse_args()
    json.dump(measure(args.bpm, args.seconds, args.period, args.sync), sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
