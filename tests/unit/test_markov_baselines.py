"""The variable-order Markov model, the unigram / repeat / random-in-key baselines, and the
likelihood and call/answer helpers that evaluate them."""

import math

import numpy as np
import pytest

from jam.evaluation import continuation as cont
from jam.evaluation.likelihood import corpus_likelihood, tune_likelihood
from jam.generators.base import AnswerSpec, ProbabilisticGenerator
from jam.generators.baselines import RandomInKeyGenerator, RepeatCallGenerator
from jam.generators.markov import MarkovGenerator
from jam.music import tokens as tk
from jam.music.sampling import SamplerSettings, pitch_mask
from jam.music.theory import estimate_key
from jam.music.tokens import Note

S6, S12 = tk.shift_token(6), tk.shift_token(12)


def melody(pitches, shift=S6):
    return [t for p in pitches for t in (p, shift)]


class Uniform(ProbabilisticGenerator):
    """Equal logits everywhere: its information content is known in closed form."""

    def reset(self):
        self.last_token = None

    def feed(self, tokens):
        for t in tokens:
            self.last_token = int(t)

    def next_logits(self):
        return np.zeros(tk.VOCAB_SIZE)


def test_likelihood_of_a_uniform_model_is_log_of_the_grammar_choices():
    tune = [60, S12, tk.REST, S6, 62, S12]
    result = tune_likelihood(Uniform(), tune).summary()
    # onsets choose among 128 pitches + REST, shifts among MAX_SHIFT lengths
    assert result["bits_per_note"] == pytest.approx((3 * math.log2(129) + 3 * math.log2(96)) / 2)
    assert result["pitch_bits_per_note"] == pytest.approx(7.0)  # log2 128 per note
    assert result["notes"] == 2 and result["tokens"] == 6


def test_unigram_is_order_zero_with_known_probabilities():
    model = MarkovGenerator(order=0).fit([[60, S12]])
    p = model.probabilities()
    # counts 1 and 1, discount 0.5: (1 - 0.5) / 2 + (2 * 0.5 / 2) / VOCAB_SIZE
    assert p[60] == pytest.approx(0.25 + 0.5 / tk.VOCAB_SIZE)
    assert p[61] == pytest.approx(0.5 / tk.VOCAB_SIZE)
    assert p.sum() == pytest.approx(1.0)


def test_markov_distributions_are_normalized_and_higher_orders_learn_a_tune():
    rng = np.random.default_rng(0)
    tune = melody(rng.integers(60, 72, 60).tolist())
    bits = []
    for order in (1, 4, 8):
        model = MarkovGenerator(order=order).fit([tune] * 3)
        model.reset()
        for token in tune[:20]:
            assert model.probabilities().sum() == pytest.approx(1.0)
            model.feed([token])
        bits.append(corpus_likelihood(model, [tune]).summary()["bits_per_note"])
    assert bits[0] > bits[1] > bits[2] and bits[2] < 0.1


def test_short_term_model_learns_a_repeated_unseen_tune():
    rng = np.random.default_rng(1)
    training = [melody(rng.integers(55, 80, 40).tolist()) for _ in range(20)]
    motif = melody(rng.integers(55, 80, 12).tolist())
    tune = motif * 6
    plain = MarkovGenerator(order=6).fit(training)
    with_stm = MarkovGenerator(order=6, short_term=True).fit(training)
    a = corpus_likelihood(plain, [tune]).summary()["bits_per_note"]
    b = corpus_likelihood(with_stm, [tune]).summary()["bits_per_note"]
    assert b < a / 2


def test_markov_continuation_is_grammatical_and_seeded():
    model = MarkovGenerator(order=4).fit([melody([60, 62, 64, 65, 67] * 4)])
    spec = AnswerSpec(SamplerSettings(temperature=1.0), pitch_mask(low=60, high=67))

    def draw(seed):
        model.reset()
        model.feed(melody([60, 62]))
        stream = model.continuation(spec, np.random.default_rng(seed))
        return [next(stream) for _ in range(40)]

    first = draw(3)
    assert first == draw(3)
    previous = S6
    for token in first:
        assert tk.grammar_mask(previous)[token]
        assert not tk.is_pitch(token) or 60 <= token <= 67
        previous = token


def test_repeat_call_copies_the_call_from_its_first_onset():
    gen = RepeatCallGenerator()
    call = melody([60, 64, 67]) + [tk.REST, S12]
    gen.feed(call)
    stream = gen.continuation(AnswerSpec(), np.random.default_rng(0))
    assert [next(stream) for _ in range(2 * len(call))] == call + call
    gen.reset()
    stream = gen.continuation(AnswerSpec(), np.random.default_rng(0))
    assert [next(stream) for _ in range(2)] == [tk.REST, S12]  # nothing to repeat: silence


def test_random_in_key_stays_in_the_calls_key_range_and_lengths():
    call_notes = [Note(p, 12 * i, 12 if i % 2 else 6) for i, p in enumerate([62, 64, 66, 67, 69, 71, 73, 74])]
    gen = RandomInKeyGenerator()
    gen.feed(tk.encode(call_notes))
    scale = set(estimate_key(call_notes).scale)
    stream = gen.continuation(AnswerSpec(), np.random.default_rng(0))
    answer = tk.decode([next(stream) for _ in range(200)])
    assert {n.pitch % 12 for n in answer} <= scale
    assert all(62 <= n.pitch <= 74 for n in answer)
    assert {n.duration for n in answer} <= {6, 12}
    assert len({n.pitch for n in answer}) > 4


def test_example_cuts_call_and_continuation_at_bar_lines():
    tune = melody([60, 62, 64, 65, 67, 69, 71, 72] * 2, S12)[:-1] + [tk.shift_token(6), tk.REST, S6]
    ex = cont.make_example("t", "test", tune, beats_per_bar=4, call_bars=2, answer_bars=2)
    assert [n.pitch for n in ex.call] == [60, 62, 64, 65, 67, 69, 71, 72]
    assert tk.duration_ticks(ex.call_tokens) == 96
    assert [n.pitch for n in ex.continuation] == [60, 62, 64, 65, 67, 69, 71, 72]
    assert ex.continuation[-1] == Note(72, 84, 6)  # the rest after it is not a note
    assert cont.make_example("t", "test", tune, 4, call_bars=2, answer_bars=3) is None


def test_answer_of_repeat_call_equals_the_call():
    tune = melody([60, 64, 67, 72, 71, 67, 64, 62] * 2, S12)
    ex = cont.make_example("t", "test", tune, beats_per_bar=4)
    answer = cont.answer(RepeatCallGenerator(), ex, AnswerSpec(), np.random.default_rng(0))
    assert answer == ex.call
