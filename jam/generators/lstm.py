"""The LSTM answer generator: an exported jam model (:mod:`jam.model.runtime`) behind the
:class:`~jam.generators.base.Generator` interface.

Every token fed steps the model once (the state follows the call as it is played). The last
``window`` tokens are also kept, so :meth:`LstmGenerator.reprime` can rebuild a fresh state
from ``BOS + window`` in one run (new phrase, tempo change, an answer cut short); the model was
trained on windows that start that way.
"""

from __future__ import annotations

from collections import deque
from typing import Iterable, Sequence

import numpy as np

from jam.generators.base import ProbabilisticGenerator
from jam.model.runtime import Model
from jam.music import tokens as tk


class LstmGenerator(ProbabilisticGenerator):
    name = "lstm"

    def __init__(self, model: Model, window: int | None = None) -> None:
        self.model = model
        self._window: deque[int] = deque(maxlen=window or model.window)
        self.last_token: int | None = None
        self._logits = np.zeros(tk.VOCAB_SIZE, dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        self.model.reset()
        self._window.clear()
        self.last_token = None
        self._logits = self.model.step(tk.BOS)

    def feed(self, tokens: Iterable[int]) -> None:
        tokens = [int(token) for token in tokens]
        if not tokens:
            return
        if len(tokens) == 1:
            self._logits = self.model.step(tokens[0])
        else:  # one run for the two to four tokens of a live event: about half the cost
            self._logits = self.model.prime(tokens)
        self._window.extend(tokens)
        self.last_token = tokens[-1]

    def reprime(self, tokens: Sequence[int] | None = None) -> None:
        """A fresh state from BOS and ``tokens`` (default: the recent tokens), starting at a
        note or rest, in one run."""
        recent = tk.from_onset(list(self._window if tokens is None else tokens)
                               [-self._window.maxlen:])
        self.model.reset()
        self._logits = self.model.prime([tk.BOS, *recent])
        self._window.clear()
        self._window.extend(recent)
        self.last_token = recent[-1] if recent else None

    def next_logits(self) -> np.ndarray:
        return self._logits.copy()
