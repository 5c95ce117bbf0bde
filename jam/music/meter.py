"""The meter (time signature) on the token grid: bar and beat lengths in ticks.

One parser for every place a meter is written as text (the ``meter`` option, ``--meter``)
and one type for every place it is used (the engine, MIDI files). Ticks are
:data:`jam.music.tokens.TICKS_PER_BEAT` per quarter note, whatever the denominator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from jam.music.tokens import TICKS_PER_BEAT

DENOMINATORS = (1, 2, 4, 8, 16)
MAX_NUMERATOR = 32
_METER_RE = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Meter:
    """A time signature, e.g. ``Meter(6, 8)``."""

    numerator: int = 4
    denominator: int = 4

    def __post_init__(self) -> None:
        if not 1 <= self.numerator <= MAX_NUMERATOR or self.denominator not in DENOMINATORS:
            raise ValueError('expected a time signature such as "4/4", "3/4" or "6/8"')

    @classmethod
    def parse(cls, text: str) -> Meter:
        """``"6/8"`` -> Meter(6, 8); ValueError (saying what is expected) otherwise."""
        match = _METER_RE.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError('expected a time signature such as "4/4", "3/4" or "6/8"')
        return cls(int(match[1]), int(match[2]))

    def __str__(self) -> str:
        return f"{self.numerator}/{self.denominator}"

    @property
    def compound(self) -> bool:
        """6/8, 9/8, 12/8...: beats of three eighths."""
        return self.denominator >= 8 and self.numerator % 3 == 0 and self.numerator > 3

    @property
    def bar_ticks(self) -> int:
        return self.numerator * 4 * TICKS_PER_BEAT // self.denominator

    @property
    def beat_ticks(self) -> int:
        """The counted beat: a dotted quarter in compound meters, else the denominator's
        note value (a half in 2/2, a quarter in 3/4, an eighth in 7/8)."""
        unit = 4 * TICKS_PER_BEAT // self.denominator
        return 3 * unit if self.compound else unit
