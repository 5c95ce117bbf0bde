"""Benchmark: latency of `jam --mode thru` over a private JACK server, as JSON.

A test keyboard plays notes at a fixed interval; a test synth connected through jam and a
second one connected directly to the keyboard record arrival times. Reported: latency
(arrival - send) percentiles for both paths, what jam added, lost or extra messages,
jam's own scheduler line, and jam's CPU use while idle. Needs jackd (Debian: jackd2).

    python tools/bench_thru.py --notes 1000 --period 64 --sync
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import mido

from benchstats import percentiles  # tools/ is on sys.path when a tool runs
from jackrig import JackServer, JamProcess, Synth, keyboard, wait_for


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=0.005, help="seconds between notes")
    parser.add_argument("--period", type=int, default=64, help="JACK period in frames")
    parser.add_argument("--sync", action="store_true", help="synchronous JACK server (-S)")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds of idle CPU sampling")
    args = parser.parse_args()

    server = JackServer(period=args.period, sync=args.sync).start()
    os.environ.update(JACK_DEFAULT_SERVER=server.name, JACK_NO_START_SERVER="1")
    jam = None
    try:
        player, via_jam, direct = keyboard(), Synth(), Synth()
        subprocess.run(["jack_connect", player.full_name, direct.full_name], env=server.env(),
                       check=True)
        env = {**server.env(), "XDG_CONFIG_HOME": "/nonexistent"}
        jam = JamProcess(["--api", "jack", "--in", player.full_name, "--out",
                          via_jam.full_name, "--mode", "thru"], env)
        jam.wait_ready()
        idle_start = cpu_seconds(jam.process.pid)
        time.sleep(args.idle)
        idle_cpu = (cpu_seconds(jam.process.pid) - idle_start) / args.idle

        sent: list[float] = []
        start = time.monotonic() + 0.1
        for i in range(args.notes):
            on = mido.Message("note_on", note=40 + i % 48, velocity=1 + i % 127)
            due = start + i * args.interval
            while time.monotonic() < due:
                time.sleep(min(0.001, max(0.0, due - time.monotonic())))
            sent.append(time.monotonic())
            player.send(on)
        for synth in (via_jam, direct):
            wait_for(lambda s=synth: len(s.received) >= args.notes, 10)
        time.sleep(0.2)
        jam.process.send_signal(signal.SIGTERM)
        jam.wait()

        result = {"jack": {"period": args.period, "rate": 48000, "sync": args.sync},
                  "notes": args.notes, "interval_s": args.interval}
        for label, synth in (("direct", direct), ("jam", via_jam)):
            times = [t for t, m in synth.received if m.type == "note_on"]
            result[f"received_{label}"] = len(times)
            if len(times) >= args.notes:
                result[f"latency_ms_{label}"] = percentiles(
                    [t - s for t, s in zip(times, sent)], "ms")
        if len(via_jam.received) >= args.notes and len(direct.received) >= args.notes:
            jam_times = [t for t, m in via_jam.received if m.type == "note_on"]
            direct_times = [t for t, m in direct.received if m.type == "note_on"]
            result["added_by_jam_ms"] = percentiles(
                [a - b for a, b in zip(jam_times, direct_times)], "ms")
        result["jam_idle_cpu_percent"] = round(idle_cpu * 100, 2)
        result["jam_stop_line"] = next((line for line in jam.lines if "stopping" in line), "")
        result["jam_scheduler"] = next((line.split("scheduler: ")[1].split(";")[0]
                                        for line in jam.lines if "scheduler: " in line), "")
        print(json.dumps(result, indent=2))
        for port in (player, via_jam, direct):
            port.close()
    finally:
        if jam is not None:
            jam.kill()
        server.stop()


if __name__ == "__main__":
    main()
