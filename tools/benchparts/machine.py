"""What a benchmark figure needs beside it: the machine, the versions, the load average,
and how long the machine itself stalls a thread that holds its CPU (``spin``)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load() -> list[float]:
    """The 1-, 5- and 15-minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _first_line(command: list[str]) -> str | None:
    if shutil.which(command[0]) is None:
        return None
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else None


def describe() -> dict:
    """CPU, cores, virtualisation, kernel, Python and package versions, the commit."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                if line.startswith("model name")), platform.processor() or platform.machine())
    commit = _first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = _first_line(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    return {
        "cpu": cpu, "cpus": os.cpu_count(),
        "virtual_machine": " hypervisor " in f" {cpuinfo.replace(chr(10), ' ')} ",
        "kernel": platform.release(), "python": platform.python_version(),
        "packages": {name: _version(name) for name in (
            "numpy", "onnxruntime", "onnxruntime-gpu", "torch", "mido", "python-rtmidi",
            "JACK-Client", "notochord")},
        "jackd": _first_line(["jackd", "--version"]),
        "stress_ng": _first_line(["stress-ng", "--version"]),
        "commit": commit and commit + (" (working tree changed)" if dirty else ""),
    }


def spin_gaps(seconds: float, spin: float = 0.001, every: float = 0.040) -> dict:
    """A thread (SCHED_FIFO 50 when permitted, like jam's scheduler) sleeps ``every`` s,
    then spins ``spin`` s reading ``time.monotonic()``; a gap between two consecutive reads
    is time the thread did not run (it is the process's only busy thread: no GIL wait).
    Gaps over 100/200/500 us, the largest, and the bursts with a gap over 200 us."""
    result: dict = {}

    def run() -> None:
        try:
            os.sched_setscheduler(threading.get_native_id(), os.SCHED_FIFO, os.sched_param(50))
            policy = "SCHED_FIFO priority 50"
        except (AttributeError, OSError) as err:
            policy = f"normal scheduling ({getattr(err, 'strerror', None) or err})"
        gaps: list[float] = []
        stalled = count = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(every)
            count += 1
            last = time.monotonic()
            stop, worst = last + spin, 0.0
            while last < stop:
                now = time.monotonic()
                if now - last > 100e-6:
                    gaps.append(now - last)
                worst = max(worst, now - last)
                last = now
            stalled += worst > 200e-6
        us = [g * 1e6 for g in gaps]
        result.update({
            "policy": policy, "bursts": count, "spin_ms": spin * 1e3, "every_ms": every * 1e3,
            "gaps_over_100us": len(us), "gaps_over_200us": sum(g > 200 for g in us),
            "gaps_over_500us": sum(g > 500 for g in us),
            "max_gap_us": round(max(us, default=0.0)),
            "bursts_with_gap_over_200us": stalled})

    thread = threading.Thread(target=run, name="bench-spin")
    thread.start()
    thread.join()
    return result
