"""Benchmark: a flood of MIDI into jam's input, then a call; prints JSON.

A test keyboard sends ``--rate`` messages per second for ``--seconds`` into jam (call mode)
over a private JACK server: note-ons, controllers (CC1, CC74) and the note-offs of those
note-ons, in turns, spread evenly (a batch every millisecond). On the first beat at least
``--after`` seconds after the flood ends (the player keeps the pulse of a warm-up call
played before the flood: with ``--tempo fixed`` jam keeps the session's beat) it plays a
2-bar call at 120 BPM and records jam's answer. Reported:

- messages sent; how many a recorder connected straight to the keyboard got (what JACK
  delivered to a client: the wire); how many jam's input received and how many it lost on
  the way in (its last line: the JACK input's helper counts what it could not pass on),
  and how many an rtmidi queue refused (``MidiInJack: message queue limit reached`` lines
  on jam's stderr, one per message; python-rtmidi itself reports no count); jam's
  malformed-input count;
- jam's private memory (``RssAnon`` + ``RssFile``, kB) after a warm-up call, at its peak
  during the flood (sampled every 0.25 s) and after the call, with the growth;
- the answer to the call: the first note's distance from the call's beat and the worst
  note's distance from its grid (ms; the call's beat comes from the recorder, as in the
  call-and-response tests), jam's late sends and answers cut short;
- every note at the synth ended (stuck notes and lost note-offs, ``stagerig.check_notes``).

    python tools/flood.py --seconds 10 --rate 10000
    python tools/flood.py --seconds 10 --rate 10000 --model rules --sync

Needs jackd (Debian: jackd2).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import subprocess
import threading
import time

import mido

from jackrig import JackServer, JamProcess, Synth, keyboard, wait_for
from stagerig import all_notes_ended, check_notes, cpu_seconds, private_memory

BPM = 120.0
TICKS = 12  # grid ticks per beat (jam's token grid)
# a 2-bar call in C major: (beat, length in beats, pitch), keys released a bit early
PHRASE = [(0, 1, 60), (1, 1, 62), (2, 0.5, 64), (2.5, 0.5, 65), (3, 1, 67), (4, 1, 65),
          (5, 1, 64), (6, 1, 62), (7, 1, 60)]
HELD = 0.9
STOPPING = re.compile(r"sent (\d+) messages, (\d+) late by > [\d.]+ ms, worst ([\d.]+) ms, "
                      r"(\d+) dropped while the output was gone; received (\d+) input "
                      r"messages(?:, lost (\d+) on the way in)?; dropped (\d+) malformed")
CALLS = re.compile(r"(\d+) calls, (\d+) answers, (\d+) barge-ins, (\d+) answers ended early")
QUEUE_FULL = "message queue limit reached"


def at(deadline: float) -> None:
    """Wait until ``deadline`` (sleep, then spin the last 2 ms): a player's timing."""
    while (left := deadline - time.monotonic()) > 0.002:
        time.sleep(left - 0.002)
    while time.monotonic() < deadline:
        pass


def play_call(port, start: float) -> float:
    """Play :data:`PHRASE` from ``start``; returns when its last key went up."""
    beat = 60.0 / BPM
    events = sorted([(start + b * beat, 1, p) for b, _, p in PHRASE]
                    + [(start + (b + d * HELD) * beat, 0, p) for b, d, p in PHRASE])
    for when, is_on, pitch in events:
        at(when)
        port.send(mido.Message("note_on", note=pitch, velocity=90 if is_on else 0))
    return events[-1][0]


def flood_messages(count: int = 480) -> list[mido.Message]:
    """A cycle of note-on, CC1, note-off (of that note), CC74."""
    out = []
    for i in range(count // 4):
        pitch = 36 + (i * 7) % 61
        out += [mido.Message("note_on", note=pitch, velocity=40 + i % 80),
                mido.Message("control_change", control=1, value=i % 128),
                mido.Message("note_off", note=pitch, velocity=0),
                mido.Message("control_change", control=74, value=(3 * i) % 128)]
    return out


def send_flood(port, seconds: float, rate: float) -> dict:
    """``rate`` messages per second for ``seconds`` from ``port``, a batch each ms."""
    messages = flood_messages()
    per_ms = rate / 1000.0
    start = time.monotonic() + 0.01
    sent, behind = 0, 0.0
    for tick in range(int(round(seconds * 1000))):
        due = start + tick / 1000.0
        now = time.monotonic()
        if now < due:
            time.sleep(due - now)
        else:
            behind = max(behind, now - due)
        target = int((tick + 1) * per_ms)
        while sent < target:
            port.send(messages[sent % len(messages)])
            sent += 1
    end = time.monotonic()
    return {"sent": sent, "seconds": round(end - start, 3),
            "rate_per_s": round(sent / (end - start)), "sender_behind_max_ms":
            round(behind * 1e3, 2), "start": start, "end": end}


class MemoryWatch:
    """Samples a process's private memory every ``interval`` seconds in a thread; keeps
    the peak."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid = pid
        self.peak: dict[str, int] = private_memory(pid)
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._halt.wait(interval):
            try:
                now = private_memory(self.pid)
            except (OSError, KeyError):
                return
            if now["private_kb"] > self.peak["private_kb"]:
                self.peak = now

    def stop(self) -> dict[str, int]:
        self._halt.set()
        self._thread.join(2)
        return self.peak


def grid_error(t: float, origin: float, unit: float) -> float:
    """``t`` minus the nearest multiple of ``unit`` after ``origin`` (s; > 0: late)."""
    x = (t - origin) / unit
    return (x - round(x)) * unit


def answer_timing(monitor, synth, call_start: float, call_end: float) -> dict:
    """Where the answer to the call (played from ``call_start``) landed: the call's beat 0
    from the monitor's arrivals (mean offset of its note-ons from the phrase's beats),
    the first answer note's distance from a beat and every note's from the grid."""
    beat = 60.0 / BPM
    ons = [t for t, m in monitor.received
           if t >= call_start - 0.05 and m.type == "note_on" and m.velocity > 0]
    if len(ons) < len(PHRASE):
        return {"error": f"the monitor heard {len(ons)} of the call's {len(PHRASE)} notes"}
    ons = ons[:len(PHRASE)]
    beat_zero = sum(t - b * beat for t, (b, _, _) in zip(ons, PHRASE)) / len(PHRASE)
    answer = [t for t, m in synth.received
              if t > call_end + 0.05 and m.type == "note_on" and m.velocity > 0]
    if not answer:
        return {"error": "no answer to the call after the flood"}
    errors = [grid_error(t, beat_zero, beat / TICKS) for t in answer]
    return {"answer_notes": len(answer),
            "first_note_beats_after_call_start": round((answer[0] - beat_zero) / beat, 3),
            "first_note_off_beat_ms": round(abs(grid_error(answer[0], beat_zero, beat)) * 1e3, 2),
            "worst_note_off_grid_ms": round(max(abs(e) for e in errors) * 1e3, 2),
            "call_to_answer_s": round(answer[0] - call_end, 3)}


def flood_then_call(jam: JamProcess, player, synth, monitor, seconds: float, rate: float,
                    after: float = 1.0) -> dict:
    """With ``jam`` running between ``player`` and ``synth`` (``monitor`` connected to the
    player), warm up with a call, flood, call again ``after`` s later; measure. Leaves jam
    running; the synth has received the whole answer when this returns (or it timed out,
    which the result says)."""
    pid = jam.process.pid
    pulse = time.monotonic() + 0.3  # the player's beat 0; the player keeps this pulse
    warm_end = play_call(player, pulse)
    warmed = wait_for(lambda: any(t > warm_end and m.type == "note_on" and m.velocity > 0
                                  for t, m in synth.received), 10) \
        and all_notes_ended(synth, quiet=1.0, timeout=15)
    before = private_memory(pid)
    watch = MemoryWatch(pid)
    cpu = cpu_seconds(pid)
    flood = send_flood(player, seconds, rate)
    cpu = (cpu_seconds(pid) - cpu) / flood["seconds"]
    beat = 60.0 / BPM
    call_start = pulse + math.ceil((flood["end"] + after - pulse) / beat) * beat
    at(call_start - 0.05)
    peak = watch.stop()
    call_end = play_call(player, call_start)
    answered = wait_for(lambda: any(t > call_end and m.type == "note_on" and m.velocity > 0
                                    for t, m in synth.received), 10) \
        and all_notes_ended(synth, quiet=1.5, timeout=20)
    after_call = private_memory(pid)
    wire = sum(1 for t, _ in monitor.received if flood["start"] - 0.1 <= t <= call_start)
    result = {"flood": {k: v for k, v in flood.items() if k not in ("start", "end")},
              "arrived_at_a_recorder_on_the_keyboard": wire,
              "jam_cpu_percent_during_flood": round(cpu * 100, 1),
              "memory_kb": {"after_warm_up": before, "peak_during_flood": peak,
                            "after_the_call": after_call,
                            "growth_private_kb": after_call["private_kb"]
                            - before["private_kb"]},
              "answer": answer_timing(monitor, synth, call_start, call_end),
              "warm_up_answered": warmed, "answer_ended": answered,
              "rtmidi_queue_full_lines": sum(QUEUE_FULL in line for line in jam.lines)}
    return result


def stop_figures(jam: JamProcess) -> dict:
    """jam's counters from its last lines (after it stopped)."""
    figures: dict = {}
    for line in jam.lines:
        if (found := STOPPING.search(line)) is not None:
            sent, late, worst, gone, received, lost, malformed = found.groups()
            figures.update(sent=int(sent), late_sends=int(late), worst_send_ms=float(worst),
                           dropped_output_gone=int(gone), input_received=int(received),
                           input_lost=int(lost or 0), malformed_input=int(malformed))
        if (found := CALLS.search(line)) is not None:
            calls, answers, barge_ins, early = map(int, found.groups())
            figures.update(calls=calls, answers=answers, barge_ins=barge_ins,
                           answers_ended_early=early)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the flood")
    parser.add_argument("--rate", type=float, default=10000.0, help="messages per second")
    parser.add_argument("--after", type=float, default=1.0,
                        help="seconds from the flood's end to the call")
    parser.add_argument("--model", default=None, help="jam's --model (default: shipped)")
    parser.add_argument("--period", type=int, default=128, help="JACK period in frames")
    parser.add_argument("--sync", action="store_true", help="synchronous JACK server (-S)")
    args = parser.parse_args()

    server = JackServer(period=args.period, sync=args.sync).start()
    os.environ.update(JACK_DEFAULT_SERVER=server.name, JACK_NO_START_SERVER="1")
    jam = None
    opened: list = []
    try:
        player = keyboard()
        opened.append(player)
        synth, monitor = Synth(), Synth("monitor")
        opened += [synth, monitor]
        subprocess.run(["jack_connect", player.full_name, monitor.full_name],
                       env=server.env(), check=True)
        env = {**server.env(), "XDG_CONFIG_HOME": "/nonexistent"}
        model = ["--model", args.model] if args.model else []
        jam = JamProcess(["--api", "jack", "--in", player.full_name, "--out",
                          synth.full_name, "--seed", "1", "--answer-bars", "2", *model], env)
        jam.wait_ready(60)
        result = {"jack": {"period": args.period, "rate": 48000, "sync": args.sync},
                  "model": args.model or "default"}
        result.update(flood_then_call(jam, player, synth, monitor, args.seconds, args.rate,
                                      args.after))
        jam.process.send_signal(signal.SIGTERM)
        result["exit_code"] = jam.wait(30)
        wait_for(lambda: any(m.type == "control_change" and m.control == 120
                             for m in synth.messages()), 5)
        result["jam"] = stop_figures(jam)
        flood_sent = result["flood"]["sent"]
        if "input_received" in result["jam"]:
            # the calls' notes are input too: 2 x 9 note-ons and note-offs; what jam did not
            # receive was lost by JACK, or counted as lost or refused on jam's side
            result["jam"]["flood_missing_at_jam"] = (flood_sent + 4 * len(PHRASE)
                                                     - result["jam"]["input_received"])
        result["notes_at_the_synth"] = check_notes(synth.received).summary()
        result["jam_scheduler"] = next((line.split("scheduler: ")[1].split(";")[0]
                                        for line in jam.lines if "scheduler: " in line), "")
        print(json.dumps(result, indent=2))
    finally:
        if jam is not None:
            jam.kill()
        for port in reversed(opened):
            port.close()
        server.stop()


if __name__ == "__main__":
    main()
