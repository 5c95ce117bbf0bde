"""The shipped default model behind the generator interface (onnxruntime only, no torch)."""

import numpy as np
import pytest

from jam.errors import JamError
from jam.generators.base import AnswerSpec
from jam.generators.lstm import LstmGenerator
from jam.model.runtime import default_model_path, load_model
from jam.music import tokens as tk
from jam.music.sampling import SamplerSettings, pitch_mask

CALL = [tk.Note(62, 0, 6), tk.Note(64, 6, 6), tk.Note(66, 12, 12), tk.Note(69, 24, 12), tk.Note(67, 36, 24)]


@pytest.fixture(scope="module")
def model():
    return load_model(default_model_path(), device="cpu")


def answer(generator, spec, seed, n=80):
    generator.reset()
    generator.feed(tk.encode(CALL))
    stream = generator.continuation(spec, np.random.default_rng(seed))
    return [next(stream) for _ in range(n)]


def test_default_model_is_installed_and_describes_itself(model):
    assert model.metadata["jam.representation"] == tk.REPRESENTATION
    assert model.metadata["jam.data.sources"]
    assert default_model_path().stat().st_size <= 10_000_000


def test_answers_are_grammatical_seeded_and_respect_the_mask(model):
    generator = LstmGenerator(model)
    spec = AnswerSpec(SamplerSettings(temperature=0.9, top_p=0.95), pitch_mask([2, 4, 6, 7, 9, 11, 1], 55, 80))
    tokens = answer(generator, spec, seed=3)
    assert tokens == answer(generator, spec, seed=3)
    previous = None
    for token in tokens:
        assert tk.grammar_mask(previous)[token]
        previous = token
    notes = tk.decode(tokens)
    assert len(notes) == 40
    assert all(55 <= n.pitch <= 80 and n.pitch % 12 in {2, 4, 6, 7, 9, 11, 1} for n in notes)


def test_model_prefers_the_key_of_the_call(model):
    """A D-major call: the trained model puts most pitch mass on D-major pitch classes."""
    generator = LstmGenerator(model)
    generator.feed(tk.encode(CALL))
    logits = generator.next_logits()[: tk.N_PITCHES].astype(np.float64)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    in_key = sum(probs[p] for p in range(tk.N_PITCHES) if p % 12 in {2, 4, 6, 7, 9, 11, 1})
    assert in_key > 0.8


def test_reprime_matches_stepping(model):
    generator = LstmGenerator(model)
    generator.feed(tk.encode(CALL))
    stepped = generator.next_logits()
    generator.reprime()
    assert np.abs(generator.next_logits() - stepped).max() < 1e-4


def test_missing_model_file_is_a_one_line_error(tmp_path):
    with pytest.raises(JamError) as err:
        load_model(tmp_path / "none.onnx")
    assert "\n" not in str(err.value) and "--model" in str(err.value)
