"""Controls from the instrument: which knob, pedal, pad or footswitch does what. Pure.

A binding is written ``cc N``, ``note N`` or ``program``, each optionally followed by
``ch C`` (1-16; without it any channel matches): ``cc 74``, ``note 36 ch 10``,
``program ch 1``. :func:`parse_binding` reads it, :meth:`Binding.matches` tests an incoming
message, and :class:`TriggerEdge` turns a CC into presses (a value >= 64 after one < 64).

The actions a binding can name are :data:`CONTINUOUS` (a CC's 0-127 scaled to the range)
and :data:`TRIGGERS` (a note-on, or a CC press).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# action -> (low, high, integer) of its value range, scaled from CC 0-127
CONTINUOUS: dict[str, tuple[float, float, bool]] = {
    "temperature": (0.1, 2.0, False),
    "answer_bars": (1, 8, True),
    "listen_silence": (0.25, 4.0, False),
    "top_p": (0.05, 1.0, False),
    "style": (0.0, 1.0, False),  # 0: the LSTM alone, 1: the memory of your playing alone
}
TRIGGERS = ("end_call", "replay", "reroll", "reset", "panic", "mode", "key_lock", "tap",
            "next_preset", "previous_preset")
ACTIONS = (*CONTINUOUS, *TRIGGERS)
PRESS = 64  # a CC value at or above this is "pressed"

_BINDING_RE = re.compile(r"\s*(cc|note|program)\s*(\d+)?\s*(?:ch(?:annel)?\s*(\d+))?\s*",
                         re.IGNORECASE)


@dataclass(frozen=True)
class Binding:
    """A control: ``kind`` "cc", "note" or "program"; ``number`` the controller or note
    (None for program); ``channel`` 0-15, or None for any channel."""

    kind: str
    number: int | None = None
    channel: int | None = None

    def __str__(self) -> str:
        text = self.kind if self.number is None else f"{self.kind} {self.number}"
        return text if self.channel is None else f"{text} ch {self.channel + 1}"

    def matches(self, message: Any) -> bool:
        """Does this message come from this control (any value, note-ons and -offs)?"""
        kind = message.type
        if self.channel is not None and getattr(message, "channel", None) != self.channel:
            return False
        if self.kind == "cc":
            return kind == "control_change" and message.control == self.number
        if self.kind == "note":
            return kind in ("note_on", "note_off") and message.note == self.number
        return kind == "program_change"


def parse_binding(text: Any) -> Binding:
    """``"cc 74"``, ``"note 36 ch 10"``, ``"program"`` -> Binding; ValueError otherwise."""
    match = _BINDING_RE.fullmatch(text) if isinstance(text, str) else None
    expected = ('expected "cc N", "note N" or "program", optionally followed by "ch C" '
                '(N 0-127, C 1-16)')
    if match is None:
        raise ValueError(expected)
    kind, number, channel = match[1].lower(), match[2], match[3]
    if (kind == "program") != (number is None):
        raise ValueError(expected)
    if number is not None and not 0 <= int(number) <= 127:
        raise ValueError(expected)
    if channel is not None and not 1 <= int(channel) <= 16:
        raise ValueError(expected)
    return Binding(kind, None if number is None else int(number),
                   None if channel is None else int(channel) - 1)


def scaled(action: str, value: int) -> float | int:
    """A CC value 0-127 scaled to the range of a continuous action."""
    low, high, integer = CONTINUOUS[action]
    x = low + (high - low) * max(0, min(127, value)) / 127
    return int(round(x)) if integer else round(x, 3)


class TriggerEdge:
    """Presses of a CC used as a switch: True when the value crosses up to >= 64."""

    def __init__(self) -> None:
        self._down: dict[Binding, bool] = {}

    def press(self, binding: Binding, value: int) -> bool:
        down = value >= PRESS
        was = self._down.get(binding, False)
        self._down[binding] = down
        return down and not was
