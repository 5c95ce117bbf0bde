"""Thru mode: forward every input message at once, optionally on another channel."""

from __future__ import annotations

import mido

from jam.engine.runner import Mode


class ThruMode(Mode):
    """Forwards input through the scheduler (deadline = now); ``channel`` is 1-16 or None."""

    name = "thru"

    def __init__(self, channel: int | None = None) -> None:
        self._channel = None if channel is None else channel - 1

    def on_message(self, message: mido.Message, when: float) -> None:
        if self._channel is not None and hasattr(message, "channel"):
            message = message.copy(channel=self._channel)
        self.scheduler.send_at(when, message)
