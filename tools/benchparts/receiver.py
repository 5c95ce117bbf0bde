"""A receiving process for the ``input`` section (run as a script): it opens a JACK input
the way given, records every message, and prints them as JSON when its stdin closes.

    python receiver.py KIND PORT BUSY

KIND: ``callback`` (python-rtmidi's callback in this process, doing no more than append
the event and wake a reading thread through a pipe: the cheapest callback there is),
``polled`` (jam's former input: a thread polling rtmidi's queue) or ``piped`` (jam's
input: a helper process owns the port). BUSY ``1``: a thread runs Python all the time
meanwhile, as jam's engine does while it computes an answer and its scheduler while it
spins to a deadline.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from jam.engine.runner import SWITCH_INTERVAL  # noqa: E402
from jam.midi.ports import PipedInput, PolledInput, RtMidiInput  # noqa: E402


class CallbackWakeInput(RtMidiInput):
    """The callback appends the event and writes a byte to a pipe; a thread blocked on the
    pipe decodes (the design that avoids polling inside jam's own process)."""

    def _start(self) -> None:
        self._events: collections.deque = collections.deque()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._halt = False
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()
        self._rt.set_callback(self._on_event)

    def _on_event(self, event, _data) -> None:
        self._events.append(event[0])
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass

    def _drain(self) -> None:
        feed, events = self._decoder.feed, self._events
        while os.read(self._wake_r, 4096) and not self._halt:
            while events:
                feed(events.popleft())

    def _stop(self) -> None:
        self._rt.cancel_callback()
        self._halt = True
        os.write(self._wake_w, b"\0")
        self._thread.join(1.0)


KINDS = {"callback": CallbackWakeInput, "polled": PolledInput, "piped": PipedInput}


def main() -> None:
    kind, port, busy = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    sys.setswitchinterval(SWITCH_INTERVAL)  # as jam sets it
    got: list[list[int]] = []
    reader = KINDS[kind]("jack", port, False, lambda m: got.append(m.bytes()),
                         client_name=f"bench-rx-{kind}")
    running = [True]

    def spin() -> None:
        x = 0
        while running[0]:
            for i in range(200):
                x += i * i

    if busy:
        threading.Thread(target=spin, daemon=True).start()
    print("ready", flush=True)
    sys.stdin.read()
    running[0] = False
    time.sleep(0.2)
    reader.close()
    json.dump(got, sys.stdout)


if __name__ == "__main__":
    main()
