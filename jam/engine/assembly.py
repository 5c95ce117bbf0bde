"""Building the engine's parts from a :class:`~jam.config.Config`: the generator, the tempo
source, the warm-up, and ``jam respond`` (a call file in, a call-and-answer file out).

Shared by the live mode (:mod:`jam.engine.live`), the CLI and the tools, so that every one
of them runs the product's engine with the product's defaults.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from jam.config import OPTIONS_BY_KEY, Config
from jam.engine.callresponse import EngineSettings
from jam.engine.clock import FixedTempo, FollowTempo, TempoSource
from jam.engine.offline import respond
from jam.errors import JamError
from jam.generators.base import Generator
from jam.midi.files import read_midi, write_midi
from jam.music.meter import Meter
from jam.music.tokens import Note


def make_generator(model: str | None, device: str = "auto",
                   style: float | str = 0.0) -> Generator:
    """``--model``: None = the shipped LSTM, "rules" = the rule-based responder, else a
    path to an exported ONNX model; a model is blended with a memory of the session
    unless ``style`` (``--style``) is 0."""
    if model is not None and model.lower() == "rules":
        from jam.generators.rules import RulesGenerator

        return RulesGenerator()
    from jam.generators.lstm import LstmGenerator
    from jam.model.runtime import load_model

    lstm = LstmGenerator(load_model(model, device))
    if style == 0:
        return lstm
    from jam.generators.blend import BlendGenerator

    return BlendGenerator(lstm, style=style)


def make_tempo(tempo: str, bpm: float) -> TempoSource:
    """``--tempo fixed|follow`` with ``--bpm`` (follow: the first guess)."""
    return FollowTempo(bpm) if tempo == "follow" else FixedTempo(bpm)


def warm_up(generator: Generator, settings: EngineSettings, follow: bool) -> None:
    """Answer a 4-note call offline once, so one-time costs (lazy imports, the first
    onnxruntime runs) are paid before the first real call, not between its end and the
    answer's first note. The engine built afterwards resets the generator."""
    call = [Note(60 + 2 * i, 12 * i, 10) for i in range(4)]
    respond(call, 120.0, generator, replace(settings, answer_bars=1), follow=follow,
            rng=np.random.default_rng(0))


def respond_file(config: Config, call_path: str, out_path: str, bpm: float | None = None,
                 meter: str | None = None, answer_only: bool = False,
                 overwrite: bool = False) -> str:
    """``jam respond``: read the call, answer it, write the MIDI file; a one-line summary.
    ``bpm`` and ``meter`` None keep the file's own (its first tempo and time signature).
    Errors are :class:`~jam.errors.JamError`."""
    phrase = read_midi(call_path)
    if bpm is None:  # the file's tempo: one jam can play at, as --bpm would be
        try:
            OPTIONS_BY_KEY["bpm"].check(phrase.bpm)
        except ValueError as err:
            raise JamError(f"{call_path}: its tempo, {phrase.bpm:g} BPM, is not one jam plays "
                           f"({err}); give one with --bpm") from None
    chosen = phrase.meter if meter is None else Meter.parse(meter)
    settings = replace(EngineSettings.from_config(config), meter=chosen)
    result = respond(phrase.notes, bpm or phrase.bpm,
                     make_generator(config.model, config.device, config.style), settings,
                     config.tempo == "follow", np.random.default_rng(config.seed))
    bpm_out = round(result.bpm, 3)
    tracks, names = [result.call, result.answer], ["call", "answer"]
    if answer_only:
        tracks, names = tracks[1:], names[1:]
    write_midi(out_path, tracks, bpm_out, chosen, names=names, overwrite=overwrite)
    key = f" in {result.key}" if result.key else ""
    return (f"{out_path}: answer of {len(result.answer)} notes{key} at {bpm_out:g} BPM in "
            f"{chosen} after a call of {len(result.call)} notes")
