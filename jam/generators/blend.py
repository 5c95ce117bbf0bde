"""The LSTM blended with a memory of the session: what the player has played so far.

Folk tunes and players repeat themselves; an LSTM trained on a corpus does not learn the
piece it is hearing. :class:`BlendGenerator` keeps a short-term variable-order model
(:class:`~jam.generators.markov.SessionMemory`, PPM-C, contexts up to 12 tokens) that
learns every token of the player's calls as it arrives, and combines its next-token
distribution with the LSTM's by a weighted geometric mean:

- ``style`` = W in 0..1: weights 1 - W (LSTM) and W (memory); 0 is the LSTM alone, 1 the
  memory alone;
- ``style`` = "auto": weights (1 - W0) H(p)^-b and W0 H(q)^-b with H the relative entropy
  of each distribution (IDyOM's rule for combining its long- and short-term models, with a
  prior weight): the more certain model counts more. :data:`AUTO_PRIOR` and
  :data:`AUTO_BIAS` were chosen on the validation split (docs/evaluation.md).

Learning costs ``order + 1`` dictionary updates per token (listening stays cheap); a
prediction reads the memory's contexts (a few hundred microseconds), which only answers
pay. The memory learns jam's own answers too only with ``learn_answers``.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from jam.generators.base import ProbabilisticGenerator
from jam.generators.markov import SessionMemory, combine, entropy_weight

AUTO_PRIOR = 0.15  # W0: the memory's share before entropies are weighed
AUTO_BIAS = 0.15  # b: how much more a more certain distribution counts


class BlendGenerator(ProbabilisticGenerator):
    """A probabilistic generator (the LSTM) and a :class:`SessionMemory`, combined."""

    name = "blend"

    def __init__(self, base: ProbabilisticGenerator, memory: SessionMemory | None = None,
                 style: float | str = "auto", learn_answers: bool = False,
                 keep_memory: bool = False) -> None:
        self.base = base
        self.memory = memory if memory is not None else SessionMemory()
        self.style = style
        self.learn_answers = learn_answers
        self.keep_memory = keep_memory  # reset() keeps what was learned (a profile)
        self.last_token: int | None = None

    @property
    def style(self) -> float | str:
        return self._style

    @style.setter
    def style(self, value: float | str) -> None:
        if value != "auto" and not (isinstance(value, (int, float)) and 0 <= value <= 1):
            raise ValueError('style must be "auto" or a number from 0 to 1')
        self._style = value if value == "auto" else float(value)

    def reset(self) -> None:
        self.base.reset()
        if self.keep_memory:
            self.memory.restart()
        else:
            self.memory.reset()
        self.last_token = None

    def feed(self, tokens: Iterable[int]) -> None:
        self._feed([int(t) for t in tokens], learn=True)

    def feed_own(self, tokens: Iterable[int]) -> None:
        self._feed([int(t) for t in tokens], learn=self.learn_answers)

    def _feed(self, tokens: list[int], learn: bool) -> None:
        if tokens:
            self.base.feed(tokens)
            self.memory.feed(tokens, learn=learn)
            self.last_token = tokens[-1]

    def reprime(self, tokens: Sequence[int]) -> None:
        """A fresh LSTM state from ``tokens``; the memory keeps what it learned and only
        takes ``tokens`` as its context."""
        self.base.reprime(tokens)
        self.memory.restart()
        self.memory.feed(tokens, learn=False)
        self.last_token = self.base.last_token

    def probabilities(self) -> np.ndarray:
        logits = np.asarray(self.base.next_logits(), dtype=np.float64)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        style = self._style
        if style == 0:
            return p
        q = self.memory.probabilities()
        if style == 1:
            return q
        if style == "auto":
            wp = (1 - AUTO_PRIOR) * entropy_weight(p, AUTO_BIAS)
            wq = AUTO_PRIOR * entropy_weight(q, AUTO_BIAS)
        else:
            wp, wq = 1.0 - style, style
        return combine(p, q, wp, wq)

    def next_logits(self) -> np.ndarray:
        return np.log(self.probabilities())
