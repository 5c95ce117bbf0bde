"""The session memory (the short-term model): its sparse distribution is the reference
blend of every order, and its size stays bounded over sessions of any length."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from jam.generators.markov import SessionMemory, _distribution
from jam.music import tokens as tk

# streams over a few tokens repeat contexts, as players do; over many they rarely do
STREAMS = st.lists(st.integers(0, tk.VOCAB_SIZE - 1), min_size=0, max_size=300)
ALPHABETS = st.sampled_from([4, 12, tk.VOCAB_SIZE])


@settings(max_examples=150, deadline=None)
@given(stream=STREAMS, alphabet=ALPHABETS, order=st.integers(0, 12),
       learn_last=st.booleans())
def test_the_sparse_distribution_is_the_blend_of_every_order(stream, alphabet, order,
                                                             learn_last):
    tokens = [t % alphabet for t in stream]
    memory = SessionMemory(order=order)
    memory.feed(tokens[:-5])
    memory.feed(tokens[-5:], learn=learn_last)  # a context not learned, as answers move on
    p = memory.probabilities()
    reference = _distribution(memory.counts, memory.history, order)
    np.testing.assert_allclose(p, reference, rtol=1e-12, atol=1e-15)
    assert abs(p.sum() - 1.0) < 1e-12


def test_a_long_session_stays_within_the_limit_and_keeps_the_low_orders():
    rng = np.random.default_rng(7)
    limit = 2000
    bounded, unbounded = SessionMemory(limit=limit), SessionMemory(limit=10**9)
    sizes = []
    for _ in range(60):  # 60 phrases of 100 tokens over 24 tokens: thousands of contexts
        phrase = rng.integers(0, 24, size=100).tolist()
        bounded.feed(phrase)
        unbounded.feed(phrase)
        sizes.append(len(bounded.counts.table))
    assert len(unbounded.counts.table) > 4 * limit  # the sweep did reach past the limit
    assert max(sizes) <= limit
    assert bounded.learned == unbounded.learned == 6000
    low = {key: row for key, row in unbounded.counts.table.items() if key[0] <= 1}
    assert {key: bounded.counts.table[key] for key in low} == low
    # a memory saved and loaded (a profile) forgets in the same order as the original
    loaded = SessionMemory(limit=limit)
    loaded.load_arrays(bounded.to_arrays())
    bounded.restart()
    for _ in range(10):
        phrase = rng.integers(0, 24, size=100).tolist()
        bounded.feed(phrase)
        loaded.feed(phrase)
    assert loaded.counts.table == bounded.counts.table
    assert len(loaded.counts.table) <= limit


def test_what_was_played_last_is_remembered_after_forgetting():
    rng = np.random.default_rng(3)
    memory = SessionMemory(limit=1000)
    memory.feed(rng.integers(0, tk.VOCAB_SIZE, size=3000).tolist())  # past the limit
    s6, s12 = tk.shift_token(6), tk.shift_token(12)
    motif = [60, s6, 64, s6, 67, s6, 72, s12]
    memory.feed(motif * 3)
    memory.restart()
    memory.feed(motif[:-1], learn=False)
    assert int(np.argmax(memory.probabilities())) == motif[-1]
