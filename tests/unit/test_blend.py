"""The LSTM blended with the session memory, answers that end on the tonic triad, and the
key mask that keeps the player's own notes: with the shipped model (onnxruntime)."""

from __future__ import annotations

import numpy as np
import pytest

from jam.engine.callresponse import allowed_classes
from jam.evaluation.likelihood import corpus_likelihood
from jam.evaluation.metrics import pitch_class_histogram
from jam.generators.base import AnswerSpec
from jam.generators.blend import BlendGenerator
from jam.generators.lstm import LstmGenerator
from jam.generators.markov import SessionMemory
from jam.model.runtime import default_model_path, load_model
from jam.music import tokens as tk
from jam.music.sampling import SamplerSettings, pitch_mask
from jam.music.theory import Key

C_MAJOR = Key(0, "major")
# a whole-tone idiom the shipped model (folk tunes and chorales) rarely plays
WHOLE_TONE = [60, 62, 64, 66, 68, 70, 72, 70, 68, 66, 64, 62]


@pytest.fixture(scope="module")
def model():
    return load_model(default_model_path(), device="cpu")


def whole_tone_call(repeats: int = 3) -> list[tk.Note]:
    pitches = WHOLE_TONE * repeats
    return [tk.Note(p, 6 * i, 6) for i, p in enumerate(pitches)]


def answer_notes(generator, call, spec, seed) -> list[tk.Note]:
    generator.reset()
    generator.feed(tk.encode(call))
    stream = generator.continuation(spec, np.random.default_rng(seed))
    tokens, ticks = [], 0
    while ticks < spec.ticks:
        token = next(stream)
        tokens.append(token)
        ticks += tk.shift_ticks(token)
    return [n for n in tk.decode(tokens) if n.start < spec.ticks]


def test_style_zero_is_the_lstm_and_one_is_the_memory(model):
    lstm = LstmGenerator(model)
    tokens = tk.encode(whole_tone_call())
    for style, expected in ((0, "lstm"), (1, "memory")):
        blend = BlendGenerator(LstmGenerator(model), style=style)
        blend.reset()
        blend.feed(tokens)
        if expected == "lstm":
            lstm.reset()
            lstm.feed(tokens)
            p = np.exp(lstm.next_logits() - lstm.next_logits().max())
            np.testing.assert_allclose(blend.probabilities(), p / p.sum(), rtol=1e-6)
        else:
            memory = SessionMemory()
            memory.feed(tokens)
            np.testing.assert_allclose(blend.probabilities(), memory.probabilities())


def test_the_memory_lowers_the_information_of_a_repeated_tune(model):
    tune = tk.encode(whole_tone_call(4))
    lstm = corpus_likelihood(LstmGenerator(model), [tune]).summary()
    blend = corpus_likelihood(BlendGenerator(LstmGenerator(model)), [tune]).summary()
    assert blend["bits_per_note"] < 0.8 * lstm["bits_per_note"]


def test_the_memory_learns_the_player_not_its_own_answers_unless_asked(model):
    for learn_answers, grows in ((False, False), (True, True)):
        blend = BlendGenerator(LstmGenerator(model), learn_answers=learn_answers)
        blend.reset()
        blend.feed(tk.encode(whole_tone_call(1)))
        learned = blend.memory.learned
        stream = blend.continuation(AnswerSpec(SamplerSettings(), None, 48),
                                    np.random.default_rng(0))
        for _ in range(10):
            next(stream)
        assert (blend.memory.learned > learned) == grows


def test_a_blended_answer_sounds_more_like_the_player_than_the_lstm_alone(model):
    """Pitch-class histogram distance to the player's call, over seeds: the memory pulls
    the answers toward the whole-tone idiom."""
    call = whole_tone_call()
    target = pitch_class_histogram(call)
    spec = AnswerSpec(SamplerSettings(1.0, 0.95), pitch_mask(None, 36, 96), 96)

    def distance(style) -> float:
        generator = BlendGenerator(LstmGenerator(model), style=style)
        notes = [n for seed in range(8) for n in answer_notes(generator, call, spec, seed)]
        assert notes
        return float(np.abs(pitch_class_histogram(notes) - target).sum())

    plain, half, auto = distance(0), distance(0.5), distance("auto")
    print(f"pitch-class histogram distance to the call: style 0 {plain:.2f}, "
          f"0.5 {half:.2f}, auto {auto:.2f}")
    assert half < 0.7 * plain
    assert auto < plain


@pytest.mark.parametrize("seed", range(12))
def test_answers_end_on_the_tonic_triad(model, seed):
    call = [tk.Note(p, 12 * i, 12) for i, p in enumerate([60, 64, 67, 65, 64, 62, 59, 62])]
    spec = AnswerSpec(SamplerSettings(1.0, 0.95), pitch_mask(C_MAJOR.scale, 36, 96), 96,
                      frozenset(C_MAJOR.triad), 12)
    notes = answer_notes(LstmGenerator(model), call, spec, seed)
    assert notes
    assert notes[-1].pitch % 12 in C_MAJOR.triad
    assert max(n.start for n in notes) < 96


def test_the_auto_key_mask_keeps_the_players_blue_notes():
    blues = frozenset({0, 3, 5, 6, 7, 10})  # C Eb F F# G Bb
    allowed = allowed_classes("auto", C_MAJOR, blues)
    assert allowed is not None and blues <= allowed and set(C_MAJOR.scale) <= allowed
    assert allowed_classes("C major", C_MAJOR, blues) == frozenset(C_MAJOR.scale)
    assert allowed_classes(None, None, blues) is None
