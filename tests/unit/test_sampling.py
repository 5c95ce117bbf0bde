"""The sampler: temperature, top-p and masks (jam.music.sampling)."""

from __future__ import annotations

import numpy as np
import pytest

from jam.music import tokens as tk
from jam.music.sampling import SamplerSettings, pitch_mask, probabilities, sample


def logits_for(values: dict[int, float]) -> np.ndarray:
    logits = np.full(tk.VOCAB_SIZE, -30.0)
    for token, value in values.items():
        logits[token] = value
    return logits


def test_temperature_zero_is_greedy():
    logits = logits_for({60: 1.0, 62: 3.0, 64: 2.0})
    rng = np.random.default_rng(0)
    assert {sample(logits, rng, SamplerSettings(temperature=0)) for _ in range(20)} == {62}


def test_temperature_sharpens_and_flattens():
    logits = logits_for({60: 1.0, 62: 2.0})
    cold = probabilities(logits, SamplerSettings(temperature=0.5))
    warm = probabilities(logits, SamplerSettings(temperature=2.0))
    plain = probabilities(logits, SamplerSettings())
    assert plain[62] == pytest.approx(np.exp(2) / (np.exp(1) + np.exp(2)), rel=1e-6)
    assert cold[62] > plain[62] > warm[62] > 0.5


def test_top_p_keeps_the_smallest_set_reaching_the_mass():
    logits = np.log(np.maximum(np.eye(tk.VOCAB_SIZE)[0] * 0, 1e-12))
    logits[[60, 62, 64, 65]] = np.log([0.5, 0.3, 0.15, 0.05])
    probs = probabilities(logits, SamplerSettings(top_p=0.7))
    assert set(np.flatnonzero(probs > 0)) == {60, 62}
    assert probs[60] == pytest.approx(0.5 / 0.8)


def test_masked_tokens_are_never_drawn():
    logits = logits_for({61: 5.0, 60: 1.0, 62: 1.0})
    mask = pitch_mask([0, 2, 4, 5, 7, 9, 11])  # C major: no C#
    rng = np.random.default_rng(1)
    draws = {sample(logits, rng, SamplerSettings(), mask) for _ in range(200)}
    assert 61 not in draws and draws <= {60, 62}


def test_pitch_mask_range_and_non_pitch_tokens():
    mask = pitch_mask(None, low=48, high=72)
    assert not mask[47] and mask[48] and mask[72] and not mask[73]
    assert mask[tk.REST] and mask[tk.BOS] and mask[tk.SHIFT_BASE]


def test_an_empty_mask_is_ignored_rather_than_failing():
    logits = logits_for({60: 2.0})
    mask = np.zeros(tk.VOCAB_SIZE, dtype=bool)
    assert probabilities(logits, SamplerSettings(), mask)[60] > 0.99


def test_same_seed_same_draws():
    logits = np.random.default_rng(5).normal(size=tk.VOCAB_SIZE)
    first = [sample(logits, np.random.default_rng(9), SamplerSettings(top_p=0.9)) for _ in range(3)]
    again = [sample(logits, np.random.default_rng(9), SamplerSettings(top_p=0.9)) for _ in range(3)]
    assert first == again


def test_settings_reject_bad_values():
    with pytest.raises(ValueError):
        SamplerSettings(temperature=-1)
    with pytest.raises(ValueError):
        SamplerSettings(top_p=0)


def test_draw_picks_what_rng_choice_would_from_the_same_state():
    from jam.music.sampling import draw

    for seed in range(50):
        rng = np.random.default_rng(seed)
        probs = rng.dirichlet(np.full(tk.VOCAB_SIZE, 0.3))
        probs[rng.random(tk.VOCAB_SIZE) < 0.5] = 0.0
        probs /= probs.sum()
        a, b = np.random.default_rng(seed + 99), np.random.default_rng(seed + 99)
        assert [int(a.choice(probs.size, p=probs)) for _ in range(20)] == \
            [draw(probs, b) for _ in range(20)]
