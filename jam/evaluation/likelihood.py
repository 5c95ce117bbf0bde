"""Held-out likelihood of any :class:`~jam.generators.base.ProbabilisticGenerator`, in bits.

Each tune is scored from a fresh state (:meth:`reset`, i.e. right after BOS), token by
token: the generator's next-token distribution is renormalized over the tokens the grammar
allows at that point (:func:`jam.music.tokens.grammar_mask`, as the sampler does), and the
true token is fed before the next prediction.

- **bits per note**: all tokens of the tune (pitches, rests, shifts) / number of notes;
- **pitch-only bits per note**: for each note, the probability of its PITCH token
  renormalized over the 128 pitch tokens (rests excluded), given everything before it
  (pitches and rhythm) / number of notes. This is the figure comparable with IDyOM's
  pitch prediction, except that our context also holds the rhythm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from jam.generators.base import ProbabilisticGenerator
from jam.music import tokens as tk
from jam.music.sampling import SamplerSettings, probabilities

_PLAIN = SamplerSettings()  # temperature 1, no nucleus: the model's own distribution


def information(logits: np.ndarray, mask: np.ndarray, token: int) -> float:
    """-log2 P(token), the distribution renormalized over the tokens where ``mask`` is True."""
    return -float(np.log2(probabilities(logits, _PLAIN, mask)[token]))


@dataclass
class Likelihood:
    """Summed information content of one or more tunes."""

    bits: float = 0.0
    pitch_bits: float = 0.0
    notes: int = 0
    tokens: int = 0
    tunes: int = 0

    def __iadd__(self, other: "Likelihood") -> "Likelihood":
        self.bits += other.bits
        self.pitch_bits += other.pitch_bits
        self.notes += other.notes
        self.tokens += other.tokens
        self.tunes += other.tunes
        return self

    def summary(self) -> dict[str, float]:
        notes = max(self.notes, 1)
        return {
            "bits_per_note": self.bits / notes,
            "pitch_bits_per_note": self.pitch_bits / notes,
            "bits_per_token": self.bits / max(self.tokens, 1),
            "notes": self.notes,
            "tokens": self.tokens,
            "tunes": self.tunes,
        }


_ANY = np.ones(tk.VOCAB_SIZE, dtype=bool)


def tune_likelihood(
    generator: ProbabilisticGenerator, tokens: Sequence[int], grammar: bool = True
) -> Likelihood:
    """Information content of one tune (tokens without BOS) under ``generator``; with
    ``grammar=False`` nothing is renormalized over the grammar (for sequences that do not
    follow it, e.g. pitch tokens alone)."""
    generator.reset()
    result = Likelihood(tunes=1)
    previous: int | None = None
    for token in tokens:
        token = int(token)
        logits = generator.next_logits()
        result.bits += information(logits, tk.grammar_mask(previous) if grammar else _ANY, token)
        if tk.is_pitch(token):
            result.pitch_bits += information(logits, tk.PITCH_MASK, token)
            result.notes += 1
        result.tokens += 1
        generator.feed([token])
        previous = token
    return result


def corpus_likelihood(
    generator: ProbabilisticGenerator,
    tunes: Iterable[Sequence[int]],
    grammar: bool = True,
) -> Likelihood:
    """Pooled likelihood of many tunes (bits summed over tunes, divided by all their notes)."""
    total = Likelihood()
    for tokens in tunes:
        total += tune_likelihood(generator, tokens, grammar)
    return total
