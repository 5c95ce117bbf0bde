"""Test doubles for things that are not ours: a clock and a MIDI output port (mido-style)."""

from __future__ import annotations

import time
from typing import Callable

import mido


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class RecordingOutput(mido.ports.BaseOutput):
    """A mido output port that records (clock time, message) instead of sending."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.sent: list[tuple[float, mido.Message]] = []
        super().__init__("recording")

    def _send(self, message: mido.Message) -> None:
        self.sent.append((self.clock(), message))

    def messages(self) -> list[mido.Message]:
        return [m for _, m in self.sent]
