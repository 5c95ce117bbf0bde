"""``jam doctor``: is this machine ready to play? One report, one line per check, then what to
fix, one line each.

Checks: the config file in use; the MIDI system (which API, a hint when there is none); the
ports, and whether ``--in``/``--out`` match one; the model (loaded as the main job loads it,
then a few hundred steps timed: p50/p99); the timer (the monotonic clock's resolution and
how far a 1 ms timed wait overshoots, as the scheduler's waits do); real-time scheduling
(SCHED_FIFO tried on a short-lived thread, and RLIMIT_RTPRIO); the cache folder onnxruntime
writes to.

A *blocking* problem (no MIDI system, a port that does not match, a model that does not
load) means jam cannot play: :func:`run` raises :class:`JamError` naming it (exit 2). Other
findings (slow steps, coarse timers, no real-time scheduling) are things to fix for tighter
timing; they do not stop jam (exit 0).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from jam.config import Config, default_config_path
from jam.errors import JamError

MODEL_STEPS = 300
TIMER_SAMPLES = 200
TIMED_WAIT = 0.001  # s: the wait whose overshoot is measured
SPIN = 0.001  # s the scheduler spins before a deadline: a larger overshoot makes notes late
SLOW_STEP = 1e-3  # s: a model step slower than this (p99) can end answers early


@dataclass(frozen=True)
class Finding:
    """One line of the report. ``fix`` (when not empty) is what to do; ``blocking`` means
    jam cannot play until it is done."""

    topic: str
    text: str
    fix: str = ""
    blocking: bool = False


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank) of ``values`` (not empty)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def check_config(config: Config) -> Finding:
    if config.source is not None:
        return Finding("config", f"{config.source}")
    return Finding("config", f"no config file (defaults and the command line; "
                             f"{default_config_path()} is read when it exists)")


def check_midi(config: Config) -> tuple[list[Finding], Any]:
    """The MIDI system and its ports; returns the findings and the system (None: none)."""
    from jam.midi.ports import RtMidiSystem, match_port

    try:
        system = RtMidiSystem.connect(config.api)
    except JamError as err:
        return [Finding("MIDI", f"no usable MIDI system (--api {config.api})", str(err),
                        blocking=True)], None
    findings = [Finding("MIDI", f"{system.api} API works")]
    for kind, flag, query, names in (("input", "--in", config.in_, system.input_names()),
                                     ("output", "--out", config.out, system.output_names())):
        listed = ", ".join(repr(n) for n in names) if names else "none"
        findings.append(Finding(f"{kind}s", f"{len(names)}: {listed}"))
        if query is None:
            if system.supports_virtual:
                findings.append(Finding(flag, f"not set: jam opens the virtual {kind} "
                                              f"'jam {'in' if kind == 'input' else 'out'}'"))
            else:
                findings.append(Finding(flag, "not set", f"the {system.api} API has no "
                                        f"virtual ports: set {flag} to one of the {kind}s",
                                        blocking=True))
            continue
        try:
            name = match_port(query, names, kind)
        except JamError as err:
            findings.append(Finding(flag, f"'{query}' matches no single {kind}", str(err),
                                    blocking=True))
        else:
            findings.append(Finding(flag, f"'{query}' -> '{name}'"))
    return findings, system


def check_model(config: Config, steps: int = MODEL_STEPS) -> Finding:
    if config.model is not None and config.model.lower() == "rules":
        return Finding("model", "rules: the rule-based responder, no model to load")
    from jam.model.runtime import load_model
    from jam.music import tokens as tk

    try:
        model = load_model(config.model, config.device)
    except JamError as err:
        return Finding("model", "does not load", str(err), blocking=True)
    times = []
    for i in range(30 + steps):
        start = time.perf_counter_ns()
        model.step(i % tk.BOS)
        if i >= 30:
            times.append((time.perf_counter_ns() - start) * 1e-9)
    p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
    text = (f"{Path(model.path).name} on {model.device}: step p50 {p50 * 1e6:.0f} us, "
            f"p99 {p99 * 1e6:.0f} us ({steps} steps)")
    if p99 > SLOW_STEP:
        return Finding("model", text, f"model steps are slow (p99 {p99 * 1e6:.0f} us): "
                       f"answers may end early; free the CPU, try another --device, or "
                       f"--model rules")
    return Finding("model", text)


def check_timer(samples: int = TIMER_SAMPLES) -> list[Finding]:
    info = time.get_clock_info("monotonic")
    findings = [Finding("clock", f"monotonic: {info.implementation}, resolution "
                                 f"{info.resolution * 1e9:g} ns")]
    if info.resolution > 1e-6:
        findings[0] = Finding("clock", findings[0].text, "the monotonic clock is coarser than "
                              "1 us: note times will be rounded; use a system with "
                              "high-resolution timers")
    event = threading.Event()
    overshoot = []
    for _ in range(samples):
        start = time.monotonic()
        event.wait(TIMED_WAIT)
        overshoot.append(time.monotonic() - start - TIMED_WAIT)
    p50, p99 = percentile(overshoot, 0.5), percentile(overshoot, 0.99)
    text = (f"a {TIMED_WAIT * 1e3:g} ms timed wait overshoots by p50 {p50 * 1e6:.0f} us, "
            f"p99 {p99 * 1e6:.0f} us ({samples} waits)")
    if p99 > SPIN:
        findings.append(Finding("timer", text, f"waits overshoot by more than the scheduler's "
                                f"{SPIN * 1e3:g} ms spin: some notes will be late; grant "
                                f"real-time scheduling, free the CPU or use a low-latency "
                                f"kernel"))
    else:
        findings.append(Finding("timer", text))
    return findings


def _rtprio_limit(allowed: bool, priority: int) -> str:
    try:
        import resource
    except ImportError:
        return "RLIMIT_RTPRIO: not on this system"
    soft, hard = resource.getrlimit(resource.RLIMIT_RTPRIO)
    shown = ["unlimited" if v == resource.RLIM_INFINITY else str(v) for v in (soft, hard)]
    text = f"RLIMIT_RTPRIO {shown[0]} (hard {shown[1]})"
    if allowed and soft != resource.RLIM_INFINITY and soft < priority:
        text += ": allowed by privilege (root or CAP_SYS_NICE), not by the limit"
    return text


def check_realtime() -> Finding:
    """Try SCHED_FIFO at the scheduler's priority on a short-lived thread."""
    from jam.engine.scheduler import REALTIME_PRIORITY

    if not hasattr(os, "sched_setscheduler"):
        return Finding("real-time", "SCHED_FIFO does not exist on this system (timing relies "
                       "on normal scheduling)")
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            os.sched_setscheduler(threading.get_native_id(), os.SCHED_FIFO,
                                  os.sched_param(REALTIME_PRIORITY))
        except OSError as err:
            outcome.append(err.strerror or str(err))
        else:
            outcome.append(None)

    thread = threading.Thread(target=probe, name="jam-doctor-rt")
    thread.start()
    thread.join()
    allowed = bool(outcome) and outcome[0] is None
    limit = _rtprio_limit(allowed, REALTIME_PRIORITY)
    if allowed:
        return Finding("real-time", f"SCHED_FIFO priority {REALTIME_PRIORITY} allowed; {limit}")
    return Finding("real-time", f"SCHED_FIFO priority {REALTIME_PRIORITY} refused "
                   f"({outcome[0] if outcome else 'unknown'}); {limit}",
                   f"grant real-time scheduling for tighter timing: 'ulimit -r "
                   f"{REALTIME_PRIORITY}', membership of the audio group with an rtprio "
                   f"limit (/etc/security/limits.d), or LimitRTPRIO={REALTIME_PRIORITY} in "
                   f"a systemd unit")


def check_cache() -> Finding:
    """onnxruntime may write under the cache folder; a service needs it writable."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = Path(base)
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and os.access(existing, os.W_OK | os.X_OK):
        return Finding("cache", f"{folder} writable")
    return Finding("cache", f"{folder} not writable", "make the cache folder writable, or set "
                   "HOME / XDG_CACHE_HOME to a writable folder (the systemd unit sets both)")


def report(findings: list[Finding], out: TextIO) -> list[Finding]:
    """Print the findings and the fixes; return the blocking ones."""
    width = max(len(f.topic) for f in findings)
    for finding in findings:
        mark = "BLOCKS" if finding.blocking else ("fix" if finding.fix else "ok")
        out.write(f"{mark:6}  {finding.topic:<{width}}  {finding.text}\n")
    fixes = [f for f in findings if f.fix]
    out.write("\n")
    if fixes:
        out.write("to fix:\n")
        for finding in fixes:
            first = " ".join(finding.fix.split())
            out.write(f"  - {finding.topic}: {first}\n")
    else:
        out.write("nothing to fix\n")
    blocking = [f for f in findings if f.blocking]
    out.write("nothing blocks playing\n" if not blocking
              else f"{len(blocking)} problem{'s' if len(blocking) > 1 else ''} "
                   f"block{'' if len(blocking) > 1 else 's'} playing\n")
    out.flush()
    return blocking


def run(config: Config, out: TextIO | None = None) -> int:
    """``jam doctor``: the report on ``out`` (stdout); 0 when nothing blocks playing, else
    JamError naming what does (the CLI exits 2)."""
    out = sys.stdout if out is None else out
    out.write(f"jam doctor (--api {config.api})\n")
    findings = [check_config(config)]
    midi, system = check_midi(config)
    findings += midi
    if system is not None:
        system.close()
    findings.append(check_model(config))
    findings += check_timer()
    findings.append(check_realtime())
    findings.append(check_cache())
    blocking = report(findings, out)
    if blocking:
        raise JamError("doctor: cannot play: " + "; ".join(
            f"{f.topic}: {f.text}" for f in blocking) + " (what to fix is listed above)")
    return 0
