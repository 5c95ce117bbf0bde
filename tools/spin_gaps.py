"""How long can the machine stall a thread that holds its CPU? Prints JSON.

A thread (SCHED_FIFO 50 when permitted, as jam's scheduler) sleeps ``--every`` ms, then
spins ``--spin`` ms reading ``time.monotonic()``, like the scheduler before each note; any
gap between two consecutive reads is time the thread did not run (no GIL involved: it is
the process's only running thread). Reported: gaps over 100/200/500 us, the largest, and
how many bursts had a gap over 200 us.

Usage::

    python tools/spin_gaps.py [--seconds 20] [--spin 1.0] [--every 40]
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time


def bursts(seconds: float, spin: float, every: float) -> dict:
    try:
        os.sched_setscheduler(threading.get_native_id(), os.SCHED_FIFO, os.sched_param(50))
        policy = "SCHED_FIFO priority 50"
    except (AttributeError, OSError) as err:
        policy = f"normal scheduling ({err})"
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
            worst = max(worst, now - last)
            if now - last > 100e-6:
                gaps.append(now - last)
            last = now
        stalled += worst > 200e-6
    us = [g * 1e6 for g in gaps]
    return {"policy": policy, "bursts": count, "spin_ms": spin * 1e3,
            "gaps_over_100us": len(us), "gaps_over_200us": sum(g > 200 for g in us),
            "gaps_over_500us": sum(g > 500 for g in us), "max_gap_us": round(max(us, default=0.0)),
            "bursts_with_gap_over_200us": stalled}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--spin", type=float, default=1.0, help="ms spun per burst")
    parser.add_argument("--every", type=float, default=40.0, help="ms slept between bursts")
    args = parser.parse_args()
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(
        bursts(args.seconds, args.spin / 1e3, args.every / 1e3)))
    thread.start()
    thread.join()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
