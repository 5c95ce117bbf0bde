"""Variable-order Markov model over the token stream (the IDyOM / PPM family), numpy only.

The long-term model (LTM) counts every context of 0..``order`` tokens in the training tunes
(each tune starts with BOS; contexts never cross tunes). A prediction blends all orders
from 0 up to the longest context seen, interpolating each order with the one below it
(interpolated modified Kneser-Ney, Chen & Goodman 1998):

    P_k(x | c) = (n(c, x) - D(n(c, x)) + sum_y D(n(c, y)) * P_{k-1}(x)) / N(c)

with n the raw counts at the highest order and continuation counts (distinct older tokens)
below it, N(c) their sum over x, and D the order's discounts for counts 1, 2 and 3+ from
its counts of counts; order -1 is uniform over the vocabulary.

The optional short-term model (STM) counts the tokens fed since the last
:meth:`MarkovGenerator.reset` (the tune or session so far), blends its orders with PPM's
escape method C, and is combined with the LTM by an entropy-weighted geometric mean
(weights ``H(p) ** -bias``, as in IDyOM): tunes repeat themselves. An ``order=0`` model
without STM is the unigram baseline.

Contexts are stored as 64-bit hashes of their tokens (collisions are astronomically rare at
these sizes) in sorted numpy arrays, so fitting a million tokens takes seconds.
"""

from __future__ import annotations

from collections import deque
from typing import Iterable, Iterator, Sequence

import numpy as np

from jam.generators.base import ProbabilisticGenerator
from jam.music import tokens as tk

_SEED = 0x9E3779B97F4A7C15
_MULT = 0x100000001B3  # odd 64-bit multiplier
_MASK = (1 << 64) - 1


def _extend(h: int, token: int) -> int:
    """Hash of a context grown by one older token (scalar twin of the vectorized fit)."""
    return (h * _MULT + token + 1) & _MASK


def _blend(
    lower: np.ndarray, nexts: np.ndarray, counts: np.ndarray, discounts: np.ndarray | None
) -> np.ndarray:
    """One interpolation step: distribution of a context from its counts and the lower order
    (absolute discounting with ``discounts`` for counts 1, 2, 3+; None: PPM escape C)."""
    total = float(counts.sum())
    if discounts is None:
        types = float(counts.size)
        out = lower * (types / (total + types))
        out[nexts] += counts / (total + types)
        return out
    d = discounts[np.minimum(counts, 3).astype(np.int64) - 1]
    out = lower * (float(d.sum()) / total)
    out[nexts] += (counts - d) / total
    return out


def _modified_discounts(counts: np.ndarray) -> np.ndarray:
    """Chen & Goodman's discounts for counts 1, 2 and 3+ from the counts of counts."""
    n = [float(np.sum(counts == i)) for i in range(1, 5)]
    if min(n) == 0:
        return np.full(3, 0.5)
    y = n[0] / (n[0] + 2 * n[1])
    d = np.array([1 - 2 * y * n[1] / n[0], 2 - 3 * y * n[2] / n[1], 3 - 4 * y * n[3] / n[2]])
    return np.clip(d, 0.05, np.array([0.95, 1.95, 2.95]))


class _StaticCounts:
    """Counts of (context, next token) for each order, in sorted arrays (the LTM).

    The highest order keeps raw counts; lower orders keep Kneser-Ney continuation counts
    (how many distinct older tokens precede the context and next token)."""

    def __init__(self, tunes: Iterable[Sequence[int]], order: int) -> None:
        seqs = [np.asarray([tk.BOS, *tune], dtype=np.int64) for tune in tunes]
        seqs = [s for s in seqs if s.size > 1]
        if not seqs:
            raise ValueError("no training tokens")
        tokens = np.concatenate(seqs)
        pos = np.concatenate([np.arange(s.size) for s in seqs])
        h = np.full(tokens.size, _SEED, dtype=np.uint64)
        self.keys: list[np.ndarray] = []
        self.starts: list[np.ndarray] = []
        self.nexts: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        self.discounts: list[np.ndarray] = []
        for k in range(order + 1):
            if k > 0:
                h = h * np.uint64(_MULT) + self._older(tokens, k).astype(np.uint64) + np.uint64(1)
            use = pos >= max(k, 1)
            if not use.any():
                break
            older = None
            if k < order:  # the token before the context; VOCAB_SIZE where the tune starts
                older = np.where(pos > k, self._older(tokens, k + 1), tk.VOCAB_SIZE)[use]
            self._add_order(h[use], tokens[use], older)

    @staticmethod
    def _older(tokens: np.ndarray, k: int) -> np.ndarray:
        """tokens[i - k] at each i (0 where i < k: those positions are not used)."""
        older = np.zeros(tokens.size, dtype=np.int64)
        older[k:] = tokens[:-k]
        return older

    def _add_order(self, keys: np.ndarray, nexts: np.ndarray, older: np.ndarray | None) -> None:
        if older is not None:  # keep one row per distinct (context, next, older token)
            order = np.lexsort((older, nexts, keys))
            keys, nexts, older = keys[order], nexts[order], older[order]
            new = np.ones(keys.size, dtype=bool)
            new[1:] = (keys[1:] != keys[:-1]) | (nexts[1:] != nexts[:-1]) | (older[1:] != older[:-1])
            keys, nexts = keys[new], nexts[new]
        else:
            order = np.lexsort((nexts, keys))
            keys, nexts = keys[order], nexts[order]
        new_pair = np.ones(keys.size, dtype=bool)
        new_pair[1:] = (keys[1:] != keys[:-1]) | (nexts[1:] != nexts[:-1])
        first = np.flatnonzero(new_pair)
        counts = np.diff(np.append(first, keys.size)).astype(np.float64)
        pair_keys = keys[first]
        new_ctx = np.ones(first.size, dtype=bool)
        new_ctx[1:] = pair_keys[1:] != pair_keys[:-1]
        ctx_first = np.flatnonzero(new_ctx)
        self.keys.append(pair_keys[ctx_first])
        self.starts.append(np.append(ctx_first, first.size))
        self.nexts.append(nexts[first])
        self.counts.append(counts)
        self.discounts.append(_modified_discounts(counts))

    @property
    def order(self) -> int:
        return len(self.keys) - 1

    def lookup(self, k: int, h: int) -> tuple[np.ndarray, np.ndarray] | None:
        keys = self.keys[k]
        i = int(np.searchsorted(keys, np.uint64(h)))
        if i == keys.size or int(keys[i]) != h:
            return None
        a, b = self.starts[k][i], self.starts[k][i + 1]
        return self.nexts[k][a:b], self.counts[k][a:b]


class _SessionCounts:
    """The same counts, learned incrementally from the tokens of the current tune (the STM)."""

    def __init__(self) -> None:
        self.table: dict[tuple[int, int], dict[int, int]] = {}

    def lookup(self, k: int, h: int) -> tuple[np.ndarray, np.ndarray] | None:
        row = self.table.get((k, h))
        if not row:
            return None
        return np.fromiter(row.keys(), dtype=np.int64), np.fromiter(row.values(), dtype=np.float64)


def _context_hashes(history: Sequence[int], order: int) -> Iterator[tuple[int, int]]:
    """(k, hash of the last k tokens of ``history``) for k = 0..min(order, len(history))."""
    h = _SEED
    yield 0, h
    for k in range(1, min(order, len(history)) + 1):
        h = _extend(h, history[-k])
        yield k, h


def _distribution(counts: _StaticCounts | _SessionCounts, history: Sequence[int],
                  order: int) -> np.ndarray:
    """Next-token distribution after ``history``: orders 0.. blended from uniform up."""
    p = np.full(tk.VOCAB_SIZE, 1.0 / tk.VOCAB_SIZE)
    for k, h in _context_hashes(history, order):
        found = counts.lookup(k, h)
        if found is None:
            break  # no longer context can have been seen either
        discounts = counts.discounts[k] if isinstance(counts, _StaticCounts) else None
        p = _blend(p, found[0], found[1], discounts)
    return p


def entropy_weight(p: np.ndarray, bias: float) -> float:
    """IDyOM's weight of a distribution in a combination: its relative entropy ** -bias
    (bias 0: equal weights; higher: the more certain model counts more)."""
    nz = p[p > 0]
    relative = float(-(nz * np.log2(nz)).sum()) / np.log2(p.size)
    return max(relative, 1e-6) ** -bias


def combine(p: np.ndarray, q: np.ndarray, wp: float, wq: float) -> np.ndarray:
    """Weighted geometric mean of two distributions, renormalized."""
    log_mix = (wp * np.log(p) + wq * np.log(q)) / (wp + wq)
    mix = np.exp(log_mix - log_mix.max())
    return mix / mix.sum()


CONTEXT_LIMIT = 8192  # contexts a SessionMemory keeps (about 400 bytes each)


class SessionMemory:
    """The short-term model (STM): counts of every context of 0..``order`` tokens among the
    tokens fed since :meth:`reset` (the tune or the session so far), blended with PPM's
    escape method C. Learning a token costs ``order + 1`` dictionary updates.

    Memory is bounded for sessions of hours: past ``limit`` contexts, the ones first seen
    longest ago are forgotten, one for each new one, so no event pays for a clean-up
    (contexts of two tokens or more; the counts of orders 0 and 1 are few and always
    kept). A context played again is learned again."""

    def __init__(self, order: int = 12, limit: int = CONTEXT_LIMIT) -> None:
        self.order = order
        self.limit = limit
        self.reset()

    def reset(self) -> None:
        """Forget everything learned, and the context."""
        self.counts = _SessionCounts()
        self._first_seen: deque[tuple[int, int]] = deque()  # contexts of order >= 2
        self.history: list[int] = [tk.BOS]

    def restart(self) -> None:
        """A new context (a new tune or phrase) that keeps what was learned."""
        self.history = [tk.BOS]

    @property
    def learned(self) -> int:
        """How many tokens the memory has learned (contexts of order 0 counted)."""
        row = self.counts.table.get((0, _SEED))
        return sum(row.values()) if row else 0

    def feed(self, tokens: Iterable[int], learn: bool = True) -> None:
        """Move the context on by ``tokens``; ``learn`` also counts them (in every context
        :func:`_context_hashes` gives; inlined here: listening pays this per event)."""
        history, table, first_seen = self.history, self.counts.table, self._first_seen
        for token in tokens:
            token = int(token)
            if learn:
                h = _SEED
                for k in range(min(self.order, len(history)) + 1):
                    if k:
                        h = (h * _MULT + history[-k] + 1) & _MASK
                    row = table.get((k, h))
                    if row is None:
                        row = table[(k, h)] = {}
                        if k >= 2:
                            first_seen.append((k, h))
                    row[token] = row.get(token, 0) + 1
            history.append(token)
        if len(self.history) > 4 * self.order + 4:  # only the last `order` tokens are read
            del self.history[: -self.order - 1]
        while len(table) > self.limit and first_seen:
            del table[first_seen.popleft()]

    def probabilities(self) -> np.ndarray:
        """:func:`_distribution` with escape C, computed sparsely: each order k blends as
        p_k = a_k p_(k-1) + b_k (a_k = types / (total + types), b_k the counts over the
        same), so p = (a_K ... a_0) uniform + the sum of each b_k scaled by the a's above
        it: a few dictionary sums instead of numpy work on the whole vocabulary per order
        (answers pay this for every token)."""
        table, history = self.counts.table, self.history
        rows = []
        h = _SEED
        row = table.get((0, h))
        deepest = min(self.order, len(history))
        k = 0
        while row:
            rows.append(row)
            if k == deepest:
                break
            k += 1
            h = _extend(h, history[-k])
            row = table.get((k, h))
        scale = 1.0
        mass: dict[int, float] = {}
        for row in reversed(rows):
            types = len(row)
            denominator = sum(row.values()) + types
            weight = scale / denominator
            for token, n in row.items():
                mass[token] = mass.get(token, 0.0) + weight * n
            scale *= types / denominator
        p = np.full(tk.VOCAB_SIZE, scale / tk.VOCAB_SIZE)
        if mass:
            p[np.fromiter(mass.keys(), dtype=np.int64, count=len(mass))] += np.fromiter(
                mass.values(), dtype=np.float64, count=len(mass))
        return p

    def to_arrays(self) -> dict[str, np.ndarray]:
        """What was learned, as plain arrays (one row per context and next token)."""
        rows = [(k, h, token, n) for (k, h), row in self.counts.table.items()
                for token, n in row.items()]
        table = np.array(rows, dtype=np.uint64).reshape(-1, 4)
        return {"order": np.array([self.order]), "rows": table}

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Learned counts from :meth:`to_arrays` (the context restarts); ValueError if
        they do not fit this memory."""
        rows = np.asarray(arrays["rows"])
        if int(np.asarray(arrays["order"]).reshape(-1)[0]) != self.order or rows.ndim != 2 \
                or rows.shape[1] != 4 or (rows.size and int(rows[:, 2].max()) >= tk.VOCAB_SIZE):
            raise ValueError("not a session memory of this order and vocabulary")
        self.reset()
        table = self.counts.table
        for k, h, token, n in rows.tolist():
            table.setdefault((int(k), int(h)), {})[int(token)] = int(n)
        self._first_seen.extend(key for key in table if key[0] >= 2)  # in the saved order


class MarkovGenerator(ProbabilisticGenerator):
    """Variable-order interpolated Markov model; call :meth:`fit` before use."""

    name = "markov"

    def __init__(
        self,
        order: int = 12,
        short_term: bool = False,
        stm_order: int | None = None,
        bias: float = 0.0,
    ) -> None:
        if order < 0:
            raise ValueError("order must be >= 0")
        self.order = order
        self.short_term = short_term
        self.stm_order = order if stm_order is None else stm_order
        self.bias = bias
        self._ltm: _StaticCounts | None = None
        self._stm = SessionMemory(self.stm_order)
        self._history: list[int] = [tk.BOS]

    def fit(self, tunes: Iterable[Sequence[int]]) -> "MarkovGenerator":
        """Count all contexts in ``tunes`` (token lists without BOS)."""
        self._ltm = _StaticCounts(tunes, self.order)
        self.reset()
        return self

    def reset(self) -> None:
        self._stm.reset()
        self._history = [tk.BOS]
        self.last_token = None

    def feed(self, tokens: Iterable[int]) -> None:
        tokens = [int(token) for token in tokens]
        if self.short_term:
            self._stm.feed(tokens)
        self._history += tokens
        if tokens:
            self.last_token = tokens[-1]

    def probabilities(self) -> np.ndarray:
        """The model's next-token distribution (float64, sums to 1)."""
        if self._ltm is None:
            raise RuntimeError("MarkovGenerator.fit must be called first")
        p = _distribution(self._ltm, self._history, self._ltm.order)
        if not self.short_term or len(self._history) < 2:
            return p
        q = self._stm.probabilities()
        return combine(p, q, entropy_weight(p, self.bias), entropy_weight(q, self.bias))

    def next_logits(self) -> np.ndarray:
        return np.log(self.probabilities())
