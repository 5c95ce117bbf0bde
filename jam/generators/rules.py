"""A model-free responder from music theory: the baseline and the stage fallback.

The answer reuses the call's motif: its pitches as positions on the scale of the key (the
key estimated from the call, restricted to the keys the engine's mask allows), moved by
one seeded transformation (transposed along the scale, inverted around its first note, or
sequenced: its first half repeated a step apart), its rhythm echoed, repeated until the
answer length, and ending with a cadence: the last note becomes the tonic nearest the note
before it and lasts to the end. Every choice comes from the ``rng`` the engine passes, so
a seed gives the same answer.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Sequence

import numpy as np

from jam.generators.base import AnswerSpec, Generator
from jam.music.theory import Key, degree_of, estimate_key, keys_within, nearest_in, pitch_of
from jam.music.tokens import N_PITCHES, TICKS_PER_BEAT, Note, decode, encode, skyline

TRANSFORMS = ("transpose", "invert", "sequence")
TRANSPOSE_STEPS = (1, 2, -1, -2, 4, -3)  # scale steps; 4 = up a fifth, -3 = down a fourth


def _motif(call: Sequence[Note]) -> list[Note]:
    """The call as one voice starting at tick 0."""
    melody = skyline(call)
    first = melody[0].start
    return [n._replace(start=n.start - first) for n in melody]


def transform(motif: Sequence[Note], scale: Sequence[int], kind: str, step: int) -> list[Note]:
    """One transformation of the motif on the scale ladder (see :data:`TRANSFORMS`)."""
    degrees = [degree_of(n.pitch, scale) for n in motif]
    if kind == "transpose":
        return [n._replace(pitch=pitch_of(d + step, scale)) for n, d in zip(motif, degrees)]
    if kind == "invert":
        axis = degrees[0]
        return [n._replace(pitch=pitch_of(2 * axis - d, scale)) for n, d in zip(motif, degrees)]
    if kind == "sequence":
        half = max(1, (len(motif) + 1) // 2)
        period = motif[half].start if half < len(motif) else motif[-1].end
        notes = []
        for rep in range(2):
            for n, d in zip(motif[:half], degrees[:half]):
                notes.append(n._replace(pitch=pitch_of(d + rep * step, scale),
                                        start=n.start + rep * period))
        return notes
    raise ValueError(f"unknown transformation {kind!r}")


def _fit_range(pitch: int, low: int, high: int, allowed: Iterable[int]) -> int:
    while pitch < low and pitch + 12 <= high:
        pitch += 12
    while pitch > high and pitch - 12 >= low:
        pitch -= 12
    return nearest_in(pitch, allowed, low, high)


def plan_answer(call: Sequence[Note], key: Key, scale: Sequence[int], length: int,
                rng: np.random.Generator, low: int = 0, high: int = 127) -> list[Note]:
    """The answer notes from tick 0 to ``length`` ticks (see the module docstring)."""
    allowed = sorted(set(scale))
    if not call:  # nothing to echo: the tonic on each beat
        tonic = _fit_range(60 + key.tonic, low, high, allowed)
        call = [Note(tonic, i * TICKS_PER_BEAT, TICKS_PER_BEAT) for i in range(4)]
    motif = _motif(call)
    span = max(motif[-1].end, TICKS_PER_BEAT)
    period = -(-span // TICKS_PER_BEAT) * TICKS_PER_BEAT  # whole beats
    notes: list[Note] = []
    offset, shift = 0, 0
    while offset < length:
        kind = TRANSFORMS[int(rng.integers(len(TRANSFORMS)))]
        step = int(rng.choice(TRANSPOSE_STEPS))
        for note in transform(motif, scale, kind, step):
            pitch = pitch_of(degree_of(note.pitch, scale) + shift, scale)
            notes.append(note._replace(pitch=pitch, start=note.start + offset))
        offset += period if kind != "sequence" else max(period, notes[-1].end - offset)
        shift += int(rng.choice((1, -1)))  # the next repetition moves a step
    notes = [n for n in notes if n.start < length]
    notes = [n._replace(duration=min(n.duration, length - n.start)) for n in notes]
    notes = [n._replace(pitch=_fit_range(n.pitch, low, high, allowed)) for n in notes]
    last = notes[-1]
    before = notes[-2].pitch if len(notes) > 1 else last.pitch
    tonic = nearest_in(before, [key.tonic], low, high)
    if key.tonic not in allowed:
        tonic = nearest_in(tonic, allowed, low, high)
    notes[-1] = last._replace(pitch=tonic, duration=length - last.start)
    return notes


class RulesGenerator(Generator):
    """:func:`plan_answer` behind the :class:`Generator` interface.

    The call is what was fed since the last answer; the answer's length is
    ``spec.ticks`` (or the call's span in whole beats) and it repeats after that.
    """

    name = "rules"

    def __init__(self) -> None:
        self._call: list[int] = []
        self._answered = False

    def reset(self) -> None:
        self._call, self._answered = [], False

    def feed(self, tokens: Iterable[int]) -> None:
        if self._answered:
            self._call, self._answered = [], False
        self._call.extend(int(t) for t in tokens)

    def continuation(self, spec: AnswerSpec, rng: np.random.Generator) -> Iterator[int]:
        self._answered = True
        return self._answer(decode(self._call), spec, rng)

    @staticmethod
    def _answer(call: list[Note], spec: AnswerSpec, rng: np.random.Generator) -> Iterator[int]:
        mask = spec.mask
        pitches = np.arange(N_PITCHES) if mask is None else np.flatnonzero(mask[:N_PITCHES])
        if pitches.size == 0:
            pitches = np.arange(N_PITCHES)
        allowed = sorted({int(p) % 12 for p in pitches})
        candidates = keys_within(allowed) if len(allowed) < 12 else []
        key = estimate_key(call, candidates or None)
        scale = key.scale if candidates or len(allowed) == 12 else allowed
        low, high = int(pitches.min()), int(pitches.max())
        if spec.ticks:
            length = spec.ticks
        elif call:
            span = call[-1].end - call[0].start
            length = max(TICKS_PER_BEAT, -(-span // TICKS_PER_BEAT) * TICKS_PER_BEAT)
        else:
            length = 4 * TICKS_PER_BEAT
        while True:  # without end: the engine stops pulling
            yield from encode(plan_answer(call, key, scale, length, rng, low, high))
