"""Sampling the next token from logits (pure numpy): temperature, top-p (nucleus), masks.

Masks are boolean arrays over the vocabulary (True = allowed). :func:`pitch_mask` builds the
musical constraints (allowed pitch classes, pitch range) and leaves non-pitch tokens allowed;
combine it with :func:`jam.music.tokens.grammar_mask` with ``&``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from jam.music import tokens as tk


@dataclass(frozen=True)
class SamplerSettings:
    """How to draw from a distribution. The defaults leave the model's own distribution
    unchanged (what likelihood scoring needs); the product's defaults (top-p 0.95) come from
    the options table through :class:`jam.engine.callresponse.EngineSettings`."""

    temperature: float = 1.0  # 0: greedy (argmax)
    top_p: float = 1.0  # keep the smallest set of tokens whose probability reaches top_p

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")


def pitch_mask(
    pitch_classes: Iterable[int] | None = None, low: int = 0, high: int = 127
) -> np.ndarray:
    """Allow pitches in ``low..high`` whose pitch class is in ``pitch_classes`` (None: all)."""
    mask = np.ones(tk.VOCAB_SIZE, dtype=bool)
    pitches = np.arange(tk.N_PITCHES)
    allowed = (pitches >= low) & (pitches <= high)
    if pitch_classes is not None:
        allowed &= np.isin(pitches % 12, list(pitch_classes))
    mask[: tk.N_PITCHES] = allowed
    return mask


def probabilities(
    logits: np.ndarray, settings: SamplerSettings, mask: np.ndarray | None = None
) -> np.ndarray:
    """The distribution :func:`sample` draws from (float64, sums to 1).

    If the mask allows nothing, it is ignored rather than producing an empty distribution.
    """
    logits = np.asarray(logits, dtype=np.float64).reshape(-1)
    if mask is not None and mask.any():
        logits = np.where(mask, logits, -np.inf)
    if settings.temperature == 0:
        probs = np.zeros_like(logits)
        probs[int(np.argmax(logits))] = 1.0
        return probs
    scaled = logits / settings.temperature
    scaled -= scaled.max()
    probs = np.exp(scaled)
    probs /= probs.sum()
    if settings.top_p < 1.0:
        order = np.argsort(probs)[::-1]
        cumulative = np.cumsum(probs[order])
        keep = order[: int(np.searchsorted(cumulative, settings.top_p)) + 1]
        nucleus = np.zeros_like(probs)
        nucleus[keep] = probs[keep]
        probs = nucleus / nucleus.sum()
    return probs


def sample(
    logits: np.ndarray,
    rng: np.random.Generator,
    settings: SamplerSettings = SamplerSettings(),
    mask: np.ndarray | None = None,
) -> int:
    """Draw one token id."""
    probs = probabilities(logits, settings, mask)
    if settings.temperature == 0:
        return int(np.argmax(probs))
    return draw(probs, rng)


def draw(probs: np.ndarray, rng: np.random.Generator) -> int:
    """``rng.choice(probs.size, p=probs)`` without its checks of ``probs`` (a distribution
    made by :func:`probabilities`): the same cumulative sum, the same one uniform draw and
    the same search, so the same token for the same generator state, in a fraction of the
    time (answers pay this for every token)."""
    cdf = probs.cumsum()
    cdf /= cdf[-1]
    return int(cdf.searchsorted(rng.random(), side="right"))
