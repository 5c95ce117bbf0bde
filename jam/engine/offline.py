"""``jam respond``: the live engine (:class:`~jam.engine.session.CallResponse`) on a virtual
clock, for a call read from a MIDI file.

The file's notes are played into the engine at their times (file tempo, or ``--bpm``),
all of it as one call: the call ends ``listen_silence`` beats after its last note. The
engine then answers as live (with no compute lead: the answer may start on the beat where
the silence ends), waking at the times it asks for; virtual time never
runs late, so with a seed the result is the same every time. ``--tempo follow`` fits the
pulse to the call's onsets as live and re-quantizes the call with it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from jam.engine.clock import Clock, FixedTempo, FollowTempo, TempoSource
from jam.engine.session import AnswerNote, CallResponse, EngineSettings, make_generator
from jam.generators.base import Generator
from jam.midi.files import Phrase, read_midi, write_midi
from jam.music.tokens import Note


class VirtualTime:
    """A time source that moves only when the driver sets it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Response:
    call: list[Note]  # the call's notes on the engine's grid (all voices)
    answer: list[Note]
    bpm: float
    key: str | None  # the key the answer was masked to


def respond(phrase: Phrase, generator: Generator, settings: EngineSettings,
            bpm: float | None = None, follow: bool = False,
            rng: np.random.Generator | None = None) -> Response:
    """Answer ``phrase``. ``bpm`` overrides the file's tempo (the prior with ``follow``)."""
    tempo_bpm = bpm or phrase.bpm
    time = VirtualTime()
    tick_seconds = 60.0 / tempo_bpm / 12
    tempo: TempoSource
    if follow:
        clock, tempo = Clock(tempo_bpm, settings.meter, None, time), FollowTempo(tempo_bpm)
    else:  # the file's grid is the pulse: tick 0 of the file is a downbeat
        clock, tempo = Clock(tempo_bpm, settings.meter, 0.0, time), FixedTempo(tempo_bpm)
    # the whole file is one call: no silence or length inside it ends the call; virtual
    # time costs nothing, so the answer may start right where the silence ends
    engine = CallResponse(generator, clock, tempo,
                          replace(settings, listen_silence=float("inf"), max_call=None,
                                  barge_in="ignore", lead=0.0, margin=0.0), rng)
    events = sorted([(n.start, 1, n.pitch, n.velocity) for n in phrase.notes]
                    + [(n.end, 0, n.pitch, 0) for n in phrase.notes])
    for tick, is_on, pitch, velocity in events:
        time.now = tick * tick_seconds
        if is_on:
            engine.note_on(pitch, velocity, time.now)
        else:
            engine.note_off(pitch, time.now)
    time.now += settings.listen_silence * clock.beat_seconds
    notes: list[AnswerNote] = [n for n in engine.end_call(time.now, "end of file")
                               if isinstance(n, AnswerNote)]
    while engine.answer is not None:
        wake = engine.wakeup()
        assert wake is not None
        time.now = max(time.now, wake)
        notes += [n for n in engine.poll(time.now) if isinstance(n, AnswerNote)]
    call = [n._replace(start=clock.tick(n.start * tick_seconds),
                       duration=max(1, clock.tick(n.end * tick_seconds)
                                    - clock.tick(n.start * tick_seconds)))
            for n in phrase.notes]
    answer = [Note(n.pitch, n.start, n.end - n.start, n.velocity) for n in notes]
    key = engine.last_key
    return Response(call, answer, clock.bpm, key.name if key else None)


def respond_file(config: Any, call_path: str, out_path: str, bpm: float | None = None,
                 answer_only: bool = False, overwrite: bool = False) -> str:
    """``jam respond``: read the call, answer it, write the MIDI file; a one-line summary.
    ``bpm`` None keeps the file's tempo. Errors are :class:`~jam.errors.JamError`."""
    phrase = read_midi(call_path)
    settings = EngineSettings.from_config(config)
    result = respond(phrase, make_generator(config.model, config.device), settings, bpm,
                     config.tempo == "follow", np.random.default_rng(config.seed))
    bpm_out = round(result.bpm, 3)
    tracks, names = [result.call, result.answer], ["call", "answer"]
    if answer_only:
        tracks, names = tracks[1:], names[1:]
    write_midi(out_path, tracks, bpm_out, settings.meter.beats_per_bar, names=names,
               overwrite=overwrite)
    key = f" in {result.key}" if result.key else ""
    return (f"{out_path}: answer of {len(result.answer)} notes{key} at {bpm_out:g} BPM "
            f"after a call of {len(result.call)} notes")
