"""The parts of the benchmark that need a JACK server (jackd with the dummy driver): the thru
path of ``jam --mode thru``, the answer timing of the live stack, and the jam process
itself (cold start, memory, idle CPU). Each starts a private server (tools/jackrig.py)
and stops it; the load generator is ``stress-ng --cpu N``, started and stopped by pid.

Why private servers, and which kind: timing is measured on a sync server (``-S``) with a
64-frame period (1.33 ms at 48 kHz) and long-lived clients, because on a sync server a
client that exits stalls the server for seconds (the jam processes of the cold-start runs
exit quickly: they get an async server of their own).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np

from benchparts.engine import random_call
from benchparts.machine import load
from benchstats import percentiles
from jackrig import JackServer, JamProcess, NotifySocket, Synth, keyboard, wait_for
from stagerig import children, cpu_seconds

RATE = 48000


def _use_server(server: JackServer) -> dict[str, str | None]:
    """Point this process's JACK clients (ports opened in-process) at ``server``; returns
    what :func:`_restore_environment` puts back."""
    saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    os.environ.update(JACK_DEFAULT_SERVER=server.name, JACK_NO_START_SERVER="1")
    return saved


def _restore_environment(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def period_ms(period: int) -> float:
    return 1e3 * period / RATE


def server_line(server: JackServer) -> str:
    """The server's command line, its private name left out."""
    return " ".join("NAME" if part == server.name else part for part in server.command)


# --- load, process figures ---------------------------------------------------------------


@contextlib.contextmanager
def stress(cpus: int | None) -> Iterator[dict]:
    """``stress-ng --cpu cpus`` while the block runs (None or 0: nothing). Yields what was
    started: ``{"stress": "stress-ng --cpu 2"}``, or the reason it was not."""
    if not cpus:
        yield {"stress": None}
        return
    if shutil.which("stress-ng") is None:
        yield {"stress": None, "stress_skipped": "stress-ng is not installed"}
        return
    command = ["stress-ng", "--cpu", str(cpus), "--quiet"]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(1.0)  # its workers are up and busy
    try:
        yield {"stress": " ".join(command[:3])}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # its own session: it and its workers
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def family_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds of a process and of each of its children (by pid)."""
    out = {"main": cpu_seconds(pid)}
    for child in children(pid):
        try:
            out[str(child)] = cpu_seconds(child)
        except FileNotFoundError:
            pass
    return out


def memory(pid: int) -> dict:
    """Resident memory of a process in MB: ``private`` (its own: RssAnon + RssFile, minus
    any JACK shared memory counted there) and ``jack_shm`` (the /dev/shm/jack* mappings it
    has resident: the server's shared memory, the same pages for every client), with the
    kernel's RssAnon/RssFile/RssShmem and Pss for reference."""
    status = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
            status[key] = int(value.split()[0])  # kB
    jack = jack_in_file = pss = 0
    path, shared = "", False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if not head:
            continue
        if not head[0].endswith(":"):  # a mapping's header line: range perms offset dev inode [path]
            path = head[5] if len(head) > 5 else ""
            shared = path.startswith("/dev/shm/jack")
        elif head[0] == "Rss:" and shared:
            jack += int(head[1])
        elif head[0] == "Pss:":
            pss += int(head[1])
    # /dev/shm is tmpfs: the kernel counts its pages as RssShmem, not RssFile; if a kernel
    # counted them as file pages they would be taken out of ``private`` here
    if jack > status.get("RssShmem", 0):
        jack_in_file = jack - status.get("RssShmem", 0)
    private = status.get("RssAnon", 0) + status.get("RssFile", 0) - jack_in_file
    mb = 1 / 1024
    return {"private_mb": round(private * mb, 1), "jack_shm_mb": round(jack * mb, 1),
            "rss_mb": round(status.get("VmRSS", 0) * mb, 1),
            "rss_anon_mb": round(status.get("RssAnon", 0) * mb, 1),
            "rss_file_mb": round(status.get("RssFile", 0) * mb, 1),
            "rss_shmem_mb": round(status.get("RssShmem", 0) * mb, 1),
            "pss_mb": round(pss * mb, 1)}


FLOOR = """
import sys, time, rtmidi
port = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="bench-floor")
port.open_virtual_port("out")
print("ready", flush=True)
sys.stdin.read()
"""


def process_section(runs: int, idle_seconds: float, model: str | None = None) -> dict:
    """Cold start (``python -m jam`` started -> READY=1 on our socket: the ports open, the
    model loaded and warmed up) over ``runs`` starts, on an async server with a 64-frame
    period; then, for the last one, memory 2 s later and CPU use while idle for
    ``idle_seconds`` (nothing played; utime + stime of all its threads). Both include jam's
    child processes (the JACK input's helper): ``private_mb`` and ``percent_of_one_core``
    are the sums, ``jam_process_*`` jam's own. A process holding one idle python-rtmidi
    JACK port and nothing else is started first and runs throughout, as a synth or a MIDI
    bridge would be there before jam: JACK wakes the first client of its graph every cycle
    at a cost several times that of the clients after it (2-2.5 % of a core against
    0.3-0.5 % each, 64 frames, this machine), and its CPU use over the same seconds is
    ``first_jack_client_percent``. jam's own clients (its output and its input helper's)
    come after it."""
    server = JackServer(period=64, sync=False).start()
    config_home = tempfile.TemporaryDirectory(prefix="jam-bench-config-")
    result: dict = {"jack": server_line(server), "runs": runs, "load_before": load()}
    starts, ready = [], None
    floor = subprocess.Popen([sys.executable, "-c", FLOOR], env=server.env(),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert floor.stdout is not None and floor.stdin is not None
        floor_ready = floor.stdout.readline().strip() == "ready"
        begin = time.monotonic()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        result["python_startup_ms"] = round((time.monotonic() - begin) * 1e3, 1)
        args = ["--api", "jack"] + ([] if model is None else ["--model", model])
        for run in range(runs):
            notify = NotifySocket()
            env = {**server.env(), "XDG_CONFIG_HOME": config_home.name,
                   "NOTIFY_SOCKET": notify.path}
            begin = time.monotonic()
            jam = JamProcess(args, env)
            at = notify.times("READY=1")[0] if notify.wait_for("READY=1", timeout=30.0) else None
            notify.close()
            if at is None:
                jam.kill()
                raise RuntimeError(f"jam sent no READY=1 within 30 s: {jam.stderr[-500:]}")
            starts.append(at - begin)
            if run < runs - 1:
                jam.process.send_signal(signal.SIGTERM)
                jam.wait()
            else:
                ready = jam
        result["cold_start_ms"] = percentiles(starts, "ms")
        result["cold_start_ms"]["runs_ms"] = [round(s * 1e3) for s in starts]
        assert ready is not None
        time.sleep(2.0)  # the first STATUS= sent, anything lazy done
        pid = ready.process.pid
        helpers = children(pid)
        main = memory(pid)
        parts = [memory(child) for child in helpers]
        result["memory_after_ready"] = {
            **main, "private_mb": round(main["private_mb"] + sum(p["private_mb"] for p in parts), 1),
            "jam_process_private_mb": main["private_mb"], "helper_processes": parts}
        before, began = family_cpu_seconds(pid), time.monotonic()
        floor_before = cpu_seconds(floor.pid) if floor_ready else 0.0
        time.sleep(idle_seconds)
        after, spent = family_cpu_seconds(pid), time.monotonic() - began
        floor_used = cpu_seconds(floor.pid) - floor_before if floor_ready else None
        used = sum(after[k] - before.get(k, after[k]) for k in after)
        result["idle_cpu"] = {
            "seconds": round(spent, 1), "cpu_seconds": round(used, 3),
            "percent_of_one_core": round(100 * used / spent, 2),
            "jam_process_percent": round(100 * (after["main"] - before["main"]) / spent, 2),
            "threads": len(os.listdir(f"/proc/{pid}/task")),
            "helper_processes": len(helpers),
            # the same seconds, the process holding one idle python-rtmidi JACK port that
            # was started first: what the first client of JACK's graph costs
            "first_jack_client_percent": None if floor_used is None
            else round(100 * floor_used / spent, 2)}
        ready.process.send_signal(signal.SIGTERM)
        result["exit"] = ready.wait()
    finally:
        if ready is not None:
            ready.kill()
        if floor.stdin is not None:
            floor.stdin.close()
        try:
            floor.wait(10)
        except subprocess.TimeoutExpired:
            floor.kill()
        server.stop()
        config_home.cleanup()
    result["load_after"] = load()
    return result


# --- the thru path -----------------------------------------------------------------------


def _play(player, notes: int, interval: float, first: int) -> list[float]:
    """Note-ons ``interval`` s apart on the test keyboard; their send times."""
    import mido

    sent: list[float] = []
    start = time.monotonic() + 0.1
    for i in range(notes):
        n = first + i
        message = mido.Message("note_on", note=30 + n % 70, velocity=1 + n % 127)
        due = start + i * interval
        while (left := due - time.monotonic()) > 0:
            time.sleep(min(0.001, left))
        sent.append(time.monotonic())
        player.send(message)
    return sent


def _thru_batch(player, via_jam: Synth, direct: Synth, notes: int, interval: float,
                done: int, period: float) -> dict:
    sent = _play(player, notes, interval, done)
    for synth in (via_jam, direct):
        wait_for(lambda s=synth: len(s.received) >= done + notes, 10)
    time.sleep(0.1)
    out: dict = {"notes": notes, "interval_ms": interval * 1e3}
    arrivals = {}
    for label, synth in (("direct", direct), ("jam", via_jam)):
        times = [t for t, m in synth.received if m.type == "note_on"][done:done + notes]
        out[f"received_{label}"] = len(times)
        arrivals[label] = times
        if len(times) == notes:
            out[f"latency_ms_{label}"] = percentiles([t - s for t, s in zip(times, sent)], "ms")
    if len(arrivals["jam"]) == len(arrivals["direct"]) == notes:
        added = [a - b for a, b in zip(arrivals["jam"], arrivals["direct"])]
        out["added_by_jam_ms"] = percentiles(added, "ms")
        out["added_over_period_plus_1ms"] = int(sum(a > period + 1e-3 for a in added))
    return out


def thru_section(notes: int, interval: float, stress_cpus: int | None,
                 idle_seconds: float = 0.0) -> dict:
    """``jam --mode thru`` between a test keyboard and a test synth, and a second synth
    wired straight to the keyboard, on a sync server with a 64-frame period: ``notes``
    note-ons ``interval`` s apart, idle and (``stress_cpus``) under ``stress-ng``.
    Latency = arrival (the JACK cycle that delivered it, tools/jackrig.py) - send;
    ``added_by_jam`` = arrival through jam - arrival direct, note by note."""
    server = JackServer(period=64, sync=True).start()
    saved = _use_server(server)
    config_home = tempfile.TemporaryDirectory(prefix="jam-bench-config-")
    period = period_ms(64) / 1e3
    result: dict = {"jack": server_line(server)}
    jam = None
    ports: list = []
    try:
        player, via_jam, direct = keyboard(), Synth(), Synth()
        ports = [player, via_jam, direct]
        subprocess.run(["jack_connect", player.full_name, direct.full_name],
                       env=server.env(), check=True)
        env = {**server.env(), "XDG_CONFIG_HOME": config_home.name}
        jam = JamProcess(["--api", "jack", "--in", player.full_name, "--out",
                          via_jam.full_name, "--mode", "thru"], env)
        jam.wait_ready()
        if idle_seconds:
            before = cpu_seconds(jam.process.pid)
            time.sleep(idle_seconds)
            result["jam_idle_cpu_percent"] = round(
                100 * (cpu_seconds(jam.process.pid) - before) / idle_seconds, 2)
        done = 0
        for label, cpus in (("idle", None), ("stress", stress_cpus)):
            if label == "stress" and not cpus:
                continue
            with stress(cpus) as started:
                row = {**started, "load_before": load()}
                row.update(_thru_batch(player, via_jam, direct, notes, interval, done, period))
                row["load_after"] = load()
            done += notes
            result[label] = row
        jam.process.send_signal(signal.SIGTERM)
        result["jam_exit"] = jam.wait()
        result["jam_scheduler"] = next((line.split("scheduler: ")[1].split(";")[0]
                                        for line in jam.lines if "scheduler: " in line), "")
        result["jam_stop_line"] = next((line for line in jam.lines if "stopping" in line), "")
        result["irregular_cycles"] = {"jam": via_jam.irregular, "direct": direct.irregular}
    finally:
        if jam is not None:
            jam.kill()
        for port in ports:
            port.close()
        server.stop()
        config_home.cleanup()
        _restore_environment(saved)
    return result


# --- answer timing of the live stack ------------------------------------------------------


def _note_key(data) -> tuple[int, int] | None:
    """(0x90 or 0x80, pitch) of a note message (bytes or a mido message); None otherwise."""
    if not isinstance(data, (bytes, bytearray, list, tuple)):
        data = data.bytes()
    status = data[0] & 0xF0
    if status not in (0x80, 0x90):
        return None
    return (0x90 if status == 0x90 and data[2] else 0x80, data[1])


def _answers(mode, engine, scheduler, rng, answers: int, bpm: float) -> None:
    """``answers`` calls, each one just played (its events stamped in the recent past, fed
    to the mode at once), then the answer played out in real time by the mode's polls."""
    import mido

    for _ in range(answers):
        start = time.monotonic() - 4 * 60.0 / bpm - 0.01
        for when, pitch, velocity in random_call(rng, 4, bpm, start):
            kind = "note_on" if velocity else "note_off"
            mode.on_message(mido.Message(kind, note=pitch, velocity=velocity), when)
        mode.poll(time.monotonic())
        while engine.answer is not None or engine.listener.in_call:
            delay = mode.poll(time.monotonic())
            time.sleep(min(max(delay or 0.05, 0.0), 0.05))
        end = time.monotonic() + 0.2
        while scheduler.pending() and time.monotonic() < end + 5:
            time.sleep(0.01)
        time.sleep(0.2)


def _errors(arrivals, deadlines: dict[tuple[int, int], list[float]]) -> tuple[list, int]:
    """Arrival - deadline per note message (paired per status and pitch, in order), and how
    many deadlines got no arrival."""
    seen: dict[tuple[int, int], int] = {}
    errors = []
    for when, message in arrivals:
        key = _note_key(message)
        if key is None:
            continue
        i = seen.get(key, 0)
        if key in deadlines and i < len(deadlines[key]):
            errors.append(when - deadlines[key][i])
            seen[key] = i + 1
    expected = sum(len(v) for v in deadlines.values())
    return errors, expected - len(errors)


def _send_cost(output, bursts: int = 200, size: int = 20) -> dict:
    """The sending thread's own work per message, without competition: a burst of
    ``size`` messages all due now, sent by one :meth:`Scheduler.run_due` (no thread, no
    spin), timed per burst; for answer notes as jam schedules them (their bytes) and as
    mido messages. Microseconds per message."""
    import mido

    from jam.engine.scheduler import Scheduler

    scheduler = Scheduler(output, realtime=False)
    out = {}
    for label, make in (("bytes", lambda i: (0x90, 40 + i, 64)),
                        ("mido_message", lambda i: mido.Message("note_on", note=40 + i,
                                                                velocity=64))):
        per = []
        for _ in range(bursts):
            now = time.monotonic()
            scheduler.schedule([(now, make(i)) for i in range(size)])
            began = time.perf_counter()
            scheduler.run_due(now + 1.0)
            per.append((time.perf_counter() - began) / size)
            scheduler.schedule([(now, (0x80, 40 + i, 0)) for i in range(size)])
            scheduler.run_due(now + 1.0)
            time.sleep(0.002)
        out[label] = percentiles(per)
    return out


def timing_section(answers: int, bpm: float, stress_cpus: int | None,
                   model: str | None = None) -> dict:
    """The live stack in this process, as jam runs it: the call mode built from the default
    configuration (the shipped model blended with the session memory, warmed up), jam's
    scheduler thread (real-time priority where permitted, collecting the garbage between
    notes) sending to a JACK output opened by jam's own port code, the GIL switch interval
    jam sets. It answers ``answers`` 1-bar
    calls (2-bar answers at ``bpm``), idle and under ``stress-ng``. A test synth in a
    process of its own stamps arrivals with the JACK cycle that delivered them.

    Per note message: ``send_minus_deadline`` (the scheduler's send time - the deadline),
    ``arrival_minus_grid`` (arrival - the grid time the note belongs to: its deadline, as
    ``output_latency`` is 0), ``late_sends_over_1ms``, ``arrivals_late`` (later than one
    period + 1 ms after the grid), ``lost`` and ``answers_ended_early`` (a note computed
    too late: the answer stops there)."""
    from jam.config import default_config
    from jam.engine.live import CallMode
    from jam.engine.runner import SWITCH_INTERVAL
    from jam.engine.scheduler import Scheduler
    from jam.midi.ports import RtMidiSystem, close_output

    class DeadlineLog(Scheduler):
        """The scheduler, noting each note message's deadline per (status, pitch)."""

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.deadlines: dict[tuple[int, int], list[float]] = {}

        def schedule(self, events, tag=None, port=None) -> None:
            events = list(events)
            if port is None:
                for deadline, message in events:
                    key = _note_key(message)
                    if key is not None:
                        self.deadlines.setdefault(key, []).append(deadline)
            super().schedule(events, tag, port)

    server = JackServer(period=64, sync=True).start()
    saved = _use_server(server)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    period = period_ms(64) / 1e3
    result: dict = {"jack": server_line(server), "bpm": bpm, "answers_per_run": answers, "call_bars": 1, "answer_bars": 2}
    synth = system = output = None
    try:
        synth = Synth("answers")
        system = RtMidiSystem.connect("jack")
        output = system.open_output(synth.full_name)
        config = replace(default_config(), model=model, bpm=bpm, answer_bars=2, seed=0)
        mode = CallMode.from_config(config)
        result["generator"] = type(mode.engine.generator).__name__
        result["send_cost"] = _send_cost(output)
        time.sleep(0.3)  # those notes have arrived before the answers are counted
        rng = np.random.default_rng(4)
        for label, cpus in (("idle", None), ("stress", stress_cpus)):
            if label == "stress" and not cpus:
                continue
            scheduler = DeadlineLog(output, keep_lateness=1_000_000, collect_garbage=True)
            scheduler.start()
            mode.start(scheduler)
            before = len(synth.received)
            degraded = mode.engine.stats.degraded
            with stress(cpus) as started:
                row = {**started, "load_before": load(), "scheduler": scheduler.realtime}
                _answers(mode, mode.engine, scheduler, rng, answers, bpm)
                row["load_after"] = load()
            stats = scheduler.stats()
            scheduler.close(panic=False)
            time.sleep(0.1)
            errors, lost = _errors(synth.received[before:], scheduler.deadlines)
            row.update({
                "notes_sent": stats.sent,
                "send_minus_deadline": percentiles(list(stats.lateness)),
                "arrival_minus_grid": percentiles(errors or [0.0]),
                "late_sends_over_1ms": stats.late,
                "arrivals_late": int(sum(e > period + 1e-3 for e in errors)),
                "lost": lost,
                "answers_ended_early": mode.engine.stats.degraded - degraded,
            })
            result[label] = row
        result["irregular_cycles"] = synth.irregular
        result["synth_policy"] = synth.policy
    finally:
        sys.setswitchinterval(switch)
        if output is not None:
            close_output(output)
        if system is not None:
            system.close()
        if synth is not None:
            synth.close()
        server.stop()
        _restore_environment(saved)
    return result




# --- how JACK input is read -------------------------------------------------------------


def _compare(sent: list[list[int]], got: list[list[int]]) -> dict:
    seen: set[tuple[int, ...]] = set()
    repeated = 0
    for message in got:
        key = tuple(message)
        repeated += key in seen
        seen.add(key)
    wanted = {tuple(m) for m in sent}
    return {"received": len(got), "repeated": repeated, "missing": len(wanted - seen),
            "exact": got == sent}


def input_section(messages: int, runs: int, stress_cpus: int | None,
                  period: int = 64) -> dict:
    """Three ways of reading a JACK input, each in a receiving process of its own
    (tools/benchparts/receiver.py) with a thread that runs Python all the time (as jam's
    engine and scheduler threads do at times): a python-rtmidi callback in that process
    that only appends the event and wakes a reading thread (``callback``), a thread polling
    rtmidi's queue (``polled``, jam's input before) and jam's helper process (``piped``).
    A test keyboard sends ``messages`` distinct note-ons (10 every 2 ms) on an async JACK
    server (``period`` frames, where a late client gets stale or missing events), idle and
    under ``stress-ng``; per run: received, repeated, missing, exact (all, in order)."""
    import mido

    receiver = Path(__file__).with_name("receiver.py")
    server = JackServer(period=period, sync=False).start()
    result: dict = {"jack": server_line(server), "messages": messages, "runs": runs,
                    "busy_thread": True}
    player = None
    saved = _use_server(server)
    try:
        player = keyboard()
        sent = [mido.Message("note_on", note=i % 128, velocity=1 + (i // 128) % 127).bytes()
                for i in range(messages)]
        for label, cpus in (("idle", None), ("stress", stress_cpus)):
            if label == "stress" and not cpus:
                continue
            rows: dict = {}
            with stress(cpus) as started:
                rows.update(started, load_before=load())
                for kind in ("callback", "polled", "piped"):
                    rows[kind] = []
                    for _ in range(runs):
                        process = subprocess.Popen(
                            [sys.executable, str(receiver), kind, player.full_name, "1"],
                            env=server.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
                        assert process.stdout is not None and process.stdin is not None
                        if process.stdout.readline().strip() != "ready":
                            raise RuntimeError(f"the {kind} receiver did not start")
                        time.sleep(0.3)
                        for i, message in enumerate(sent):
                            player.send(mido.Message.from_bytes(message))
                            if i % 10 == 9:
                                time.sleep(0.002)
                        time.sleep(0.5)
                        process.stdin.close()
                        got = json.loads(process.stdout.read() or "[]")
                        process.wait(10)
                        rows[kind].append(_compare(sent, got))
                rows["load_after"] = load()
            result[label] = rows
    finally:
        if player is not None:
            player.close()
        server.stop()
        _restore_environment(saved)
    return result


if __name__ == "__main__":  # a quick look at one part: python -m benchparts.jack process
    part = sys.argv[1] if len(sys.argv) > 1 else "process"
    figures = {"process": lambda: process_section(2, 5.0),
               "thru": lambda: thru_section(300, 0.005, 2),
               "timing": lambda: timing_section(4, 160.0, 2),
               "input": lambda: input_section(500, 1, 2)}[part]()
    json.dump(figures, sys.stdout, indent=2)
    print()
