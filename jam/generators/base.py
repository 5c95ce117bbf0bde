"""The one interface every answer generator implements (LSTM, rules, Markov, ...).

A generator is stateful. The engine (live or offline) calls :meth:`Generator.feed` with the
tokens of the call as they arrive (one live event at a time), then pulls the answer from
:meth:`Generator.continuation` token by token, for as long as it wants: the iterator feeds
each token it yields back into the generator, so a stopped answer leaves a consistent state.
Tokens follow :mod:`jam.music.tokens`, and every yielded sequence is grammatical
(``PITCH|REST`` then ``SHIFT``), so :func:`jam.music.tokens.decode` of it is exact.
An answer opens with a note: the first onset token of a continuation is a PITCH (not a
REST), so the answer starts on the tick the engine chose (a beat or a bar).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np

from jam.music import tokens as tk
from jam.music.sampling import SamplerSettings, sample


@dataclass(frozen=True)
class AnswerSpec:
    """What the engine asks for: sampling settings, a constraint mask over the vocabulary
    (see :func:`jam.music.sampling.pitch_mask`; None = no constraint) and, when the engine
    knows it, how many ticks of answer it will take (a generator may plan a cadence; it
    must still yield without end)."""

    sampler: SamplerSettings = SamplerSettings()
    mask: np.ndarray | None = None
    ticks: int | None = None


class Generator(ABC):
    name = "generator"

    @abstractmethod
    def reset(self) -> None:
        """Forget everything fed so far (fresh state, as at the start of a session)."""

    @abstractmethod
    def feed(self, tokens: Iterable[int]) -> None:
        """Condition on tokens (the call, as it is played)."""

    @abstractmethod
    def continuation(self, spec: AnswerSpec, rng: np.random.Generator) -> Iterator[int]:
        """Yield answer tokens one at a time, without end; each is fed back before the next."""

    def reprime(self, tokens: Sequence[int]) -> None:
        """Forget everything, then condition on ``tokens`` (recent history starting at an
        onset). This default is reset + feed; a generator with a faster way overrides it."""
        self.reset()
        self.feed(tokens)


class ProbabilisticGenerator(Generator):
    """A generator that gives a next-token distribution (used for likelihood evaluation)."""

    last_token: int | None = None  # the last token fed (None after reset); kept by subclasses

    @abstractmethod
    def next_logits(self) -> np.ndarray:
        """Log-probabilities (or logits) over the vocabulary for the next token."""

    def continuation(self, spec: AnswerSpec, rng: np.random.Generator) -> Iterator[int]:
        """Sample each token from :meth:`next_logits` under the grammar and ``spec.mask``;
        the first onset token is a PITCH (an answer opens with a note)."""
        opening = True
        while True:
            mask = tk.grammar_mask(self.last_token)
            if spec.mask is not None:
                mask = mask & spec.mask
            if opening and not mask[tk.SHIFT_BASE]:
                mask, opening = mask & tk.PITCH_MASK, False
            token = sample(self.next_logits(), rng, spec.sampler, mask)
            self.feed([token])
            yield token
