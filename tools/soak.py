"""Soak: a scripted player plays calls into jam (call mode) over JACK for ``--seconds`` and
pauses for the answers; prints JSON.

The player plays calls of one bar at ``--notes-per-second`` (20: a note every 50 ms, held
35 ms, pitches wandering over two octaves of C major, velocities varying), each on a beat
of its own steady pulse; it listens for jam's one-bar answer and starts the next call on
the first beat a bar and a beat after the answer's first note; every
``--barge-every``-th answer it starts one beat after that note instead (a barge-in: jam
cuts the answer). A call with no answer within three beats and a second is listed. A test synth
(``jackrig.Synth``) records what jam sends. At the end jam gets SIGTERM. Reported:

- calls played, answers heard at the synth (note-ons after a call's end and before the
  next call's start), barge-ins; jam's own counts (calls, answers, barge-ins, answers
  ended early, late sends) from its last lines;
- notes: note-ons the player sent, input messages jam received (its last line), messages
  jam sent and the synth received (equal unless JACK lost some), answer note-ons;
- lost note-offs and stuck notes at the synth (``stagerig.check_notes``; both must be 0),
  and the messages lost between jam and the synth (jam's count before the shutdown minus
  what arrived: JACK's losses, not jam's);
- jam's private memory (``RssAnon`` + ``RssFile``, kB, ``/proc/PID/status``) after the
  warm-up (the first ``--warm-up`` seconds) and at the end, the growth, and samples every
  ``--sample`` seconds; jam's CPU use (user + system, % of one core).

    python tools/soak.py --seconds 600                 # the 10-minute soak
    python tools/soak.py --seconds 60 --model rules --sync

Needs jackd (Debian: jackd2). :func:`soak` is what ``tests/integration/test_reliability.py``
runs (60 s in CI).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import time

import mido

from flood import stop_figures  # tools/ is on sys.path when a tool runs
from jackrig import JackServer, JamProcess, Synth, keyboard, wait_for
from stagerig import check_notes, cpu_seconds, private_memory

BPM = 120.0
BEAT = 60.0 / BPM
BAR = 4 * BEAT
HOLD = 0.035  # s a key is down (of the 50 ms between notes at 20 per second)
SCALE = [0, 2, 4, 5, 7, 9, 11]


def at(deadline: float) -> None:
    """Wait until ``deadline`` (sleep, then spin the last 2 ms)."""
    while (left := deadline - time.monotonic()) > 0.002:
        time.sleep(left - 0.002)
    while time.monotonic() < deadline:
        pass


def first_note_after(synth, after: float, timeout: float) -> float | None:
    """Arrival time of the first note-on at ``synth`` after ``after`` (None: none came
    within ``timeout`` seconds of it)."""
    def first() -> float | None:
        return next((t for t, m in synth.received
                     if t > after and m.type == "note_on" and m.velocity > 0), None)
    wait_for(lambda: first() is not None, max(0.0, after + timeout - time.monotonic()),
             interval=0.002)
    return first()


def on_pulse(pulse: float, earliest: float) -> float:
    """The first beat of the pulse that starts at ``pulse`` at or after ``earliest``."""
    return pulse + math.ceil((earliest - pulse) / BEAT - 1e-9) * BEAT


class Player:
    """The scripted player: calls of one bar at ``rate`` notes per second."""

    def __init__(self, port, rate: float, seed: int) -> None:
        self.port = port
        self.rate = rate
        self.rng = random.Random(seed)
        self.degree = 7  # C4 in scale degrees from C3
        self.notes = 0  # note-ons sent
        self.messages = 0  # messages sent

    def call(self, start: float) -> float:
        """One bar of notes from ``start``; returns when the last key went up."""
        step = 1.0 / self.rate
        count = int(round(BAR * self.rate))
        end = start
        for i in range(count):
            self.degree = min(max(self.degree + self.rng.choice((-2, -1, -1, 1, 1, 2)), 0), 14)
            pitch = 48 + 12 * (self.degree // 7) + SCALE[self.degree % 7]
            on = start + i * step
            at(on)
            self.port.send(mido.Message("note_on", note=pitch,
                                        velocity=self.rng.randint(50, 110)))
            end = on + HOLD
            at(end)
            self.port.send(mido.Message("note_off", note=pitch, velocity=0))
            self.notes += 1
            self.messages += 2
        return end


def soak(jam: JamProcess, player_port, synth, seconds: float, rate: float = 20.0,
         warm_up: float = 10.0, sample: float = 10.0, barge_every: int = 4,
         seed: int = 1) -> dict:
    """Play calls into ``jam`` (running between ``player_port`` and ``synth``) for
    ``seconds``, stop jam with SIGTERM and measure (see the module's description)."""
    pid = jam.process.pid
    player = Player(player_port, rate, seed)
    began = time.monotonic()
    start = began + 0.2
    calls, barge_ins = [], 0
    memory: list[dict] = []
    after_warm_up = None
    next_sample = began + sample
    pulse = start  # the player keeps this pulse: every call starts on one of its beats
    unanswered: list[int] = []
    barging = False  # the next call barges into an answer
    while start + BAR < began + seconds:
        end = player.call(start)
        calls.append((start, end))
        barge_ins += barging
        # the player listens for the answer (due on the next beat after a beat of silence)
        heard = first_note_after(synth, end, timeout=3 * BEAT + 1.0)
        if heard is None:
            unanswered.append(len(calls))
            heard = end + BEAT
        barging = len(calls) % barge_every == 0
        if barging:
            start = on_pulse(pulse, heard + BEAT)  # barge in a beat into the answer
        else:
            start = on_pulse(pulse, heard + BAR + BEAT)  # after the answer and a rest
        now = time.monotonic()
        if after_warm_up is None and now - began >= warm_up:
            after_warm_up = private_memory(pid)
            after_warm_up["at_s"] = round(now - began, 1)
        if now >= next_sample:
            memory.append({"at_s": round(now - began, 1), **private_memory(pid)})
            next_sample += sample
    at(start)  # the last answer plays out
    wait_for(lambda: time.monotonic() - synth.received[-1][0] > 1.0 if synth.received
             else False, 10)
    end_memory = private_memory(pid)
    if after_warm_up is None:
        after_warm_up = dict(end_memory, at_s=round(time.monotonic() - began, 1))
    cpu = cpu_seconds(pid) / (time.monotonic() - began)  # jam started just before
    stopped = time.monotonic()
    jam.process.send_signal(signal.SIGTERM)
    code = jam.wait(30)
    wait_for(lambda: any(m.type == "control_change" and m.control == 120
                         for m in synth.messages()), 5)
    received = synth.received
    answered = 0
    for i, (_, call_end) in enumerate(calls):
        until = calls[i + 1][0] if i + 1 < len(calls) else float("inf")
        if any(call_end < t < until and m.type == "note_on" and m.velocity > 0
               for t, m in received):
            answered += 1
    notes = check_notes(received)
    figures = stop_figures(jam)
    result = {
        "seconds": round(time.monotonic() - began, 1), "exit_code": code,
        "calls": len(calls), "answers_heard": answered, "barge_ins_played": barge_ins,
        "calls_without_an_answer": unanswered,
        "notes_sent": player.notes, "messages_sent": player.messages,
        "jam": figures,
        "synth_received_messages": len(received),
        "answer_notes_received": notes.note_ons,
        "lost_note_offs": len(notes.lost_note_offs), "stuck_notes": len(notes.stuck),
        "notes_at_the_synth": notes.summary(),
        "memory_kb": {"after_warm_up": after_warm_up, "end": end_memory,
                      "growth_private_kb": end_memory["private_kb"]
                      - after_warm_up["private_kb"],
                      "growth_rss_anon_kb": end_memory["rss_anon_kb"]
                      - after_warm_up["rss_anon_kb"],
                      "samples": memory},
        "irregular_cycles_at_the_synth": synth.irregular,
        "jam_cpu_percent": round(cpu * 100, 1),
    }
    if "sent" in figures:  # its count stops before the shutdown's panic
        before_stop = sum(1 for t, _ in received if t < stopped)
        result["lost_between_jam_and_the_synth"] = figures["sent"] - before_stop
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to play")
    parser.add_argument("--notes-per-second", type=float, default=20.0)
    parser.add_argument("--warm-up", type=float, default=10.0,
                        help="seconds before the first memory figure")
    parser.add_argument("--sample", type=float, default=10.0,
                        help="seconds between memory samples")
    parser.add_argument("--barge-every", type=int, default=4,
                        help="barge into every Nth answer")
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
        synth = Synth()
        opened.append(synth)
        env = {**server.env(), "XDG_CONFIG_HOME": "/nonexistent"}
        model = ["--model", args.model] if args.model else []
        jam = JamProcess(["--api", "jack", "--in", player.full_name, "--out",
                          synth.full_name, "--seed", "1", "--answer-bars", "1", *model], env)
        jam.wait_ready(60)
        result = {"jack": {"period": args.period, "rate": 48000, "sync": args.sync},
                  "model": args.model or "default",
                  "notes_per_second": args.notes_per_second}
        result.update(soak(jam, player, synth, args.seconds, args.notes_per_second,
                           args.warm_up, args.sample, args.barge_every))
        print(json.dumps(result, indent=2))
    finally:
        if jam is not None:
            jam.kill()
        for port in reversed(opened):
            port.close()
        server.stop()


if __name__ == "__main__":
    main()
