"""Two model-free baselines for evaluation: repeat the call, and random notes in its key.

Both remember the tokens fed since :meth:`reset` (the call) and answer from them; the
unigram baseline is :class:`jam.generators.markov.MarkovGenerator` with ``order=0``.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from jam.generators.base import AnswerSpec, Generator
from jam.music import tokens as tk
from jam.music.theory import estimate_key

_FALLBACK = (tk.REST, tk.shift_token(tk.TICKS_PER_BEAT))  # answer to an empty call: silence


class _CallMemory(Generator):
    def __init__(self) -> None:
        self.call: list[int] = []

    def reset(self) -> None:
        self.call = []

    def feed(self, tokens: Iterable[int]) -> None:
        self.call.extend(int(t) for t in tokens)


class RepeatCallGenerator(_CallMemory):
    """Plays the call again, from its first note, over and over (copying, not continuing)."""

    name = "repeat"

    def continuation(self, spec: AnswerSpec, rng: np.random.Generator) -> Iterator[int]:
        tokens = tk.from_onset(self.call)
        if not tokens or not tk.is_shift(tokens[-1]):
            tokens = list(_FALLBACK)
        while True:
            for token in tokens:
                self.feed([token])
                yield token


class RandomInKeyGenerator(_CallMemory):
    """Random pitches of the call's estimated key within the call's pitch range (widened
    upwards to an octave at least), with note lengths drawn from the call's own (uniformly,
    independently)."""

    name = "random-in-key"

    def continuation(self, spec: AnswerSpec, rng: np.random.Generator) -> Iterator[int]:
        notes = tk.decode(self.call)
        if not notes:
            low, high, lengths = 60, 72, [tk.TICKS_PER_BEAT]
        else:
            low, high = min(n.pitch for n in notes), max(n.pitch for n in notes)
            lengths = [min(n.duration, tk.MAX_SHIFT) for n in notes]
        scale = estimate_key(notes).scale
        candidates = [p for p in range(low, max(high, low + 11) + 1) if p % 12 in scale]
        if spec.mask is not None:
            candidates = [p for p in candidates if spec.mask[p]] or candidates
        while True:
            for token in (int(rng.choice(candidates)), tk.shift_token(int(rng.choice(lengths)))):
                self.feed([token])
                yield token
