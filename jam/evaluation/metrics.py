"""Musical features of one melody (a list of :class:`jam.music.tokens.Note`), pure numpy.

Notes are taken in onset order and are monophonic (as :func:`jam.music.tokens.decode` gives
them). Histograms are normalized to sum to 1 (all zeros for a phrase with nothing to count);
scalar features of an empty phrase are NaN where no value makes sense.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from jam.music.tokens import Note

MAX_INTERVAL = 12  # interval histogram bins: -12..+12 semitones, larger leaps clipped
# Note-length classes in ticks (12 per beat): 16th triplet .. two whole notes
LENGTH_CLASSES = np.array([2, 3, 4, 6, 8, 9, 12, 16, 18, 24, 36, 48, 72, 96])
ON_GRID_STEPS = (3, 4)  # onsets on the sixteenth-note or eighth-triplet grid count as on-grid


def _normalized(counts: np.ndarray) -> np.ndarray:
    counts = counts.astype(np.float64)
    total = counts.sum()
    return counts / total if total > 0 else counts


def _entropy_bits(p: np.ndarray) -> float:
    nz = p[p > 0]
    return float(-(nz * np.log2(nz)).sum())


def pitches(notes: Sequence[Note]) -> np.ndarray:
    return np.array([n.pitch for n in notes], dtype=np.int64)


def pitch_class_histogram(notes: Sequence[Note]) -> np.ndarray:
    """Share of notes in each pitch class C..B, shape (12,)."""
    return _normalized(np.bincount(pitches(notes) % 12, minlength=12))


def pitch_class_transitions(notes: Sequence[Note]) -> np.ndarray:
    """Share of consecutive note pairs going from pitch class i to j, shape (12, 12)."""
    pc = pitches(notes) % 12
    matrix = np.zeros((12, 12))
    np.add.at(matrix, (pc[:-1], pc[1:]), 1)
    return _normalized(matrix)


def intervals(notes: Sequence[Note]) -> np.ndarray:
    return np.diff(pitches(notes))


def interval_histogram(notes: Sequence[Note]) -> np.ndarray:
    """Share of melodic intervals -12..+12 semitones (wider leaps clipped), shape (25,)."""
    steps = np.clip(intervals(notes), -MAX_INTERVAL, MAX_INTERVAL) + MAX_INTERVAL
    return _normalized(np.bincount(steps, minlength=2 * MAX_INTERVAL + 1))


def pitch_range(notes: Sequence[Note]) -> float:
    """Highest minus lowest pitch in semitones (NaN for no notes)."""
    p = pitches(notes)
    return float(p.max() - p.min()) if p.size else float("nan")


def pitch_entropy(notes: Sequence[Note]) -> float:
    """Shannon entropy of the pitch distribution, bits."""
    return _entropy_bits(_normalized(np.bincount(pitches(notes), minlength=128)))


def pitch_class_entropy(notes: Sequence[Note]) -> float:
    """Shannon entropy of the pitch-class distribution, bits (0..log2 12)."""
    return _entropy_bits(pitch_class_histogram(notes))


def distinct_pitches(notes: Sequence[Note]) -> int:
    return int(np.unique(pitches(notes)).size)


def _length_class_histogram(lengths: np.ndarray) -> np.ndarray:
    if lengths.size == 0:
        return np.zeros(LENGTH_CLASSES.size)
    distance = np.abs(np.log(lengths[:, None] / LENGTH_CLASSES[None, :]))
    return _normalized(np.bincount(distance.argmin(axis=1), minlength=LENGTH_CLASSES.size))


def note_length_histogram(notes: Sequence[Note]) -> np.ndarray:
    """Share of notes in each class of :data:`LENGTH_CLASSES` (nearest on a log scale)."""
    return _length_class_histogram(np.array([n.duration for n in notes], dtype=np.float64))


def inter_onset_intervals(notes: Sequence[Note]) -> np.ndarray:
    return np.diff(np.array([n.start for n in notes], dtype=np.int64))


def inter_onset_histogram(notes: Sequence[Note]) -> np.ndarray:
    """Share of onset-to-onset times in each class of :data:`LENGTH_CLASSES`."""
    ioi = inter_onset_intervals(notes).astype(np.float64)
    return _length_class_histogram(ioi[ioi > 0])


def in_scale_rate(notes: Sequence[Note], pitch_classes: Iterable[int]) -> float:
    """Share of notes whose pitch class is in ``pitch_classes`` (NaN for no notes)."""
    p = pitches(notes)
    if p.size == 0:
        return float("nan")
    return float(np.isin(p % 12, list(pitch_classes)).mean())


def scale_consistency(notes: Sequence[Note], scales: Iterable[Iterable[int]]) -> float:
    """Share of notes in the best-fitting of ``scales`` (Mogren 2016; NaN for no notes)."""
    return max(in_scale_rate(notes, scale) for scale in scales)


def onset_grid(notes: Sequence[Note], bar_ticks: int, origin: int = 0) -> np.ndarray:
    """One row per bar from ``origin``: 1 where a note starts on that tick of the bar."""
    starts = np.array([n.start - origin for n in notes], dtype=np.int64)
    starts = starts[starts >= 0]
    if starts.size == 0:
        return np.zeros((0, bar_ticks))
    grid = np.zeros((int(starts.max()) // bar_ticks + 1, bar_ticks))
    grid[starts // bar_ticks, starts % bar_ticks] = 1
    return grid


def groove_consistency(notes: Sequence[Note], bar_ticks: int, origin: int = 0) -> float:
    """1 - mean Hamming distance between onset patterns of adjacent bars, as a share of the
    bar's ticks (Wu & Yang 2020). NaN for fewer than two bars."""
    grid = onset_grid(notes, bar_ticks, origin)
    if grid.shape[0] < 2:
        return float("nan")
    return float(1.0 - np.abs(np.diff(grid, axis=0)).sum(axis=1).mean() / bar_ticks)


def on_grid_rate(notes: Sequence[Note], origin: int = 0) -> float:
    """Share of onsets (from ``origin``) on the sixteenth or eighth-triplet grid."""
    starts = np.array([n.start - origin for n in notes], dtype=np.int64)
    if starts.size == 0:
        return float("nan")
    on = np.zeros(starts.size, dtype=bool)
    for step in ON_GRID_STEPS:
        on |= starts % step == 0
    return float(on.mean())


def _ngrams(notes: Sequence[Note], n: int) -> list[tuple]:
    items = [(note.pitch, note.duration) for note in notes]
    return [tuple(items[i : i + n]) for i in range(len(items) - n + 1)]


def call_repetition(answer: Sequence[Note], call: Sequence[Note], n: int = 3) -> float:
    """Share of the answer's n-note (pitch, length) sequences that also occur in the call:
    1 for a copy, 0 for new material (NaN if the answer has fewer than n notes)."""
    grams = _ngrams(answer, n)
    if not grams:
        return float("nan")
    seen = set(_ngrams(call, n))
    return float(np.mean([g in seen for g in grams]))
