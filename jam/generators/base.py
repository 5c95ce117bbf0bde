"""The one interface every answer generator implements (LSTM, rules, Markov, ...).

A generator is stateful. The engine (live or offline) calls :meth:`Generator.feed` with the
tokens of the call as they arrive (one live event at a time), then pulls the answer from
:meth:`Generator.continuation` token by token, for as long as it wants: the iterator feeds
each token it yields back into the generator, so a stopped answer leaves a consistent state.
Tokens follow :mod:`jam.music.tokens`, and every yielded sequence is grammatical
(``PITCH|REST`` then ``SHIFT``), so :func:`jam.music.tokens.decode` of it is exact.
An answer opens with a note: the first onset token of a continuation is a PITCH (not a
REST), so the answer starts on the tick the engine chose (a beat or a bar). When the spec
names an ``ending``, the answer also ends like a phrase: its last note is one of those pitch
classes (see :meth:`ProbabilisticGenerator.continuation`).
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
    must still yield without end). ``ending``: pitch classes the last note of those
    ``ticks`` must have (the tonic triad of the key), with onsets in the last
    ``ending_ticks`` held to them; None: no ending asked for."""

    sampler: SamplerSettings = SamplerSettings()
    mask: np.ndarray | None = None
    ticks: int | None = None
    ending: frozenset[int] | None = None
    ending_ticks: int = 0


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

    def feed_own(self, tokens: Iterable[int]) -> None:
        """Condition on the generator's own answer tokens (as :meth:`feed`, unless the
        generator learns from the player only)."""
        self.feed(tokens)

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
        the first onset token is a PITCH (an answer opens with a note). With
        ``spec.ending``, onsets in the last ``ending_ticks`` are notes of the ending's
        pitch classes, and a note (or rest) that is not one of them may not last to the
        end: the answer's last note resolves."""
        opening = True
        elapsed, resolved = 0, False  # ticks yielded; the last onset is an ending note
        ending = None
        if spec.ending is not None and spec.ticks is not None:
            ending = tk.PITCH_MASK & np.isin(np.arange(tk.VOCAB_SIZE) % 12, list(spec.ending))
        while True:
            mask = tk.grammar_mask(self.last_token)
            if spec.mask is not None:
                mask = mask & spec.mask
            onset = not mask[tk.SHIFT_BASE]
            if opening and onset:
                mask, opening = mask & tk.PITCH_MASK, False
            if ending is not None and spec.ticks is not None:
                mask = _ending_mask(mask, ending, onset, spec.ticks - elapsed,
                                    spec.ending_ticks, resolved)
            token = sample(self.next_logits(), rng, spec.sampler, mask)
            if tk.is_shift(token):
                elapsed += tk.shift_ticks(token)
            else:
                resolved = ending is not None and bool(ending[token])
            self.feed_own([token])
            yield token


def _ending_mask(mask: np.ndarray, ending: np.ndarray, onset: bool, remaining: int,
                 window: int, resolved: bool) -> np.ndarray:
    """``mask`` narrowed so that the answer ends on an ending note: onsets within the last
    ``window`` ticks are ending notes; after any other onset, no SHIFT reaches the end.
    Unchanged where that would leave nothing allowed, or once the end is passed."""
    if remaining <= 0:
        return mask
    if onset:
        narrowed = mask & ending if remaining <= window else mask
    elif resolved or remaining <= 1:
        return mask
    else:
        narrowed = mask.copy()
        narrowed[tk.SHIFT_BASE + remaining - 1:tk.BOS] = False  # shifts of >= remaining
    return narrowed if narrowed.any() else mask
