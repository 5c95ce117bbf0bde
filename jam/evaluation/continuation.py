"""Call/continuation examples from held-out tunes, answers from any generator, and the
features the set comparison uses (pure; the generators are the only state).

A tune's first ``call_bars`` bars (counted from its first note: the dataset keeps no
anacrusis offset) are the call; the next ``answer_bars`` bars are the true continuation. An
answer is sampled after feeding the call, for as many ticks as the true continuation lasts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from jam.evaluation import metrics as m
from jam.generators.base import AnswerSpec, Generator
from jam.music import tokens as tk
from jam.music.tokens import Note

TOKENS_PER_TICK_LIMIT = 2  # an answer may use at most this many tokens per tick it covers


def window(notes: Sequence[Note], start: int, end: int) -> list[Note]:
    """Notes starting in ``[start, end)``, moved to start at 0 and cut at ``end``."""
    return [
        n._replace(start=n.start - start, duration=min(n.duration, end - n.start))
        for n in notes
        if start <= n.start < end
    ]


def tokens_until(notes: Sequence[Note], end: int) -> list[int]:
    """Tokens of a phrase that starts at tick 0, with a trailing rest up to ``end``."""
    encoder = tk.Encoder()
    tokens: list[int] = []
    for note in tk.skyline(notes):
        tokens += encoder.note_on(note.pitch, note.start)
        encoder.note_off(note.pitch, note.end)
    return tokens + encoder.finish(end)


@dataclass
class Example:
    """One held-out tune cut into a call and its true continuation."""

    id: str
    source: str
    beats_per_bar: int
    call: list[Note]
    call_tokens: list[int]
    continuation: list[Note]
    answer_ticks: int


def make_example(
    tune_id: str,
    source: str,
    tokens: Sequence[int],
    beats_per_bar: int,
    call_bars: int = 2,
    answer_bars: int = 2,
    min_notes: int = 3,
) -> Example | None:
    """Cut a tune; None if it is too short or either part has fewer than ``min_notes``."""
    notes = tk.decode(tokens)
    call_ticks = tk.bars_to_ticks(call_bars, beats_per_bar)
    answer_ticks = tk.bars_to_ticks(answer_bars, beats_per_bar)
    if tk.duration_ticks(tokens) < call_ticks + answer_ticks:
        return None
    call = window(notes, 0, call_ticks)
    continuation = window(notes, call_ticks, call_ticks + answer_ticks)
    if len(call) < min_notes or len(continuation) < min_notes:
        return None
    return Example(tune_id, source, beats_per_bar, call, tokens_until(call, call_ticks),
                   continuation, answer_ticks)


def answer(
    generator: Generator,
    example: Example,
    spec: AnswerSpec,
    rng: np.random.Generator,
) -> list[Note]:
    """The generator's answer to the example's call: fresh state, the call fed, then
    tokens until the answer covers the continuation's length (cut there)."""
    generator.reset()
    generator.feed(example.call_tokens)
    out: list[int] = []
    covered = 0
    for token in generator.continuation(spec, rng):
        out.append(token)
        covered += tk.shift_ticks(token)
        if covered >= example.answer_ticks or len(out) >= TOKENS_PER_TICK_LIMIT * example.answer_ticks:
            break
    return window(tk.decode(out), 0, example.answer_ticks)


@dataclass(frozen=True)
class Context:
    """What a melody's features are measured against."""

    call: Sequence[Note]
    key_pitch_classes: frozenset[int]
    scales: tuple[frozenset[int], ...]
    bar_ticks: int


def features(notes: Sequence[Note], context: Context) -> dict[str, np.ndarray | float]:
    """Every continuation metric of one melody (vectors flattened)."""
    return {
        "pitch_class_histogram": m.pitch_class_histogram(notes),
        "pitch_class_transitions": m.pitch_class_transitions(notes).reshape(-1),
        "interval_histogram": m.interval_histogram(notes),
        "note_length_histogram": m.note_length_histogram(notes),
        "inter_onset_histogram": m.inter_onset_histogram(notes),
        "pitch_range": m.pitch_range(notes),
        "pitch_entropy": m.pitch_entropy(notes),
        "pitch_class_entropy": m.pitch_class_entropy(notes),
        "distinct_pitches": float(m.distinct_pitches(notes)),
        "note_count": float(len(notes)),
        "key_consistency": m.in_scale_rate(notes, context.key_pitch_classes),
        "scale_consistency": m.scale_consistency(notes, context.scales),
        "groove_consistency": m.groove_consistency(notes, context.bar_ticks),
        "on_grid_rate": m.on_grid_rate(notes),
        "call_repetition": m.call_repetition(notes, context.call),
    }
