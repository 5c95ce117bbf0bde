"""Each continuation metric on hand-made phrases whose answers are worked out by hand."""

import math

import numpy as np
import pytest

from jam.evaluation import metrics as m
from jam.music.theory import Key
from jam.music.tokens import Note

C_MAJOR_UP = [Note(p, 6 * i, 6) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72])]
ALL_SCALES = [Key(t, mode).scale for mode in ("major", "minor") for t in range(12)]


def test_pitch_class_histogram_counts_the_octave_twice():
    expected = np.zeros(12)
    expected[[2, 4, 5, 7, 9, 11]] = 1 / 8
    expected[0] = 2 / 8
    assert np.allclose(m.pitch_class_histogram(C_MAJOR_UP), expected)


def test_pitch_class_transitions_of_a_scale():
    matrix = m.pitch_class_transitions(C_MAJOR_UP)
    steps = [(0, 2), (2, 4), (4, 5), (5, 7), (7, 9), (9, 11), (11, 0)]
    expected = np.zeros((12, 12))
    for a, b in steps:
        expected[a, b] = 1 / 7
    assert np.allclose(matrix, expected)


def test_interval_histogram_and_clipping():
    hist = m.interval_histogram(C_MAJOR_UP)
    assert hist[m.MAX_INTERVAL + 2] == pytest.approx(5 / 7)
    assert hist[m.MAX_INTERVAL + 1] == pytest.approx(2 / 7)
    leaps = [Note(40, 0, 6), Note(80, 6, 6), Note(40, 12, 6)]
    hist = m.interval_histogram(leaps)
    assert hist[0] == pytest.approx(0.5) and hist[-1] == pytest.approx(0.5)


def test_range_entropies_and_distinct_pitches():
    assert m.pitch_range(C_MAJOR_UP) == 12
    assert m.distinct_pitches(C_MAJOR_UP) == 8
    assert m.pitch_entropy(C_MAJOR_UP) == pytest.approx(3.0)  # 8 equally likely pitches
    assert m.pitch_class_entropy(C_MAJOR_UP) == pytest.approx(0.5 + 6 * 0.125 * 3)
    repeated = [Note(60, 12 * i, 12) for i in range(4)]
    assert m.pitch_entropy(repeated) == 0 and m.pitch_range(repeated) == 0


def test_length_and_inter_onset_histograms():
    six = list(m.LENGTH_CLASSES).index(6)
    assert m.note_length_histogram(C_MAJOR_UP)[six] == 1.0
    assert m.inter_onset_histogram(C_MAJOR_UP)[six] == 1.0
    # a quarter, a dotted eighth (9) and a 7-tick note (nearest class on a log scale: 6 or 8)
    notes = [Note(60, 0, 12), Note(62, 12, 9), Note(64, 21, 7)]
    hist = m.note_length_histogram(notes)
    classes = list(m.LENGTH_CLASSES)
    assert hist[classes.index(12)] == hist[classes.index(9)] == pytest.approx(1 / 3)
    assert hist[classes.index(8)] == pytest.approx(1 / 3)  # |log 7/8| < |log 7/6|
    # inter-onset times count rests: onsets 0, 12, 36 -> 12 and 24
    gaps = [Note(60, 0, 6), Note(62, 12, 6), Note(64, 36, 6)]
    ioi = m.inter_onset_histogram(gaps)
    assert ioi[classes.index(12)] == ioi[classes.index(24)] == 0.5


def test_in_scale_rate_and_scale_consistency():
    assert m.in_scale_rate(C_MAJOR_UP, Key(0, "major").scale) == 1.0
    assert m.in_scale_rate(C_MAJOR_UP, Key(7, "major").scale) == pytest.approx(7 / 8)  # F
    assert m.scale_consistency(C_MAJOR_UP, ALL_SCALES) == 1.0
    chromatic = [Note(60 + i, 6 * i, 6) for i in range(12)]
    assert m.scale_consistency(chromatic, ALL_SCALES) == pytest.approx(7 / 12)


def test_groove_consistency():
    bar = 48
    same = [Note(60, t, 6) for t in (0, 12, 24, 36, 48, 60, 72, 84)]
    assert m.groove_consistency(same, bar) == 1.0
    # second bar drops two of four onsets: Hamming distance 2 of 48 ticks
    fewer = [Note(60, t, 12) for t in (0, 12, 24, 36, 48, 72)]
    assert m.groove_consistency(fewer, bar) == pytest.approx(1 - 2 / 48)
    assert math.isnan(m.groove_consistency(C_MAJOR_UP, bar))  # one bar only


def test_on_grid_rate():
    notes = [Note(60, t, 1) for t in (0, 3, 4, 5)]
    assert m.on_grid_rate(notes) == 0.75
    assert m.on_grid_rate(notes, origin=1) == 0.5  # 2 (no), 3 and 4 (yes), -1 (no)


def test_call_repetition():
    call = C_MAJOR_UP
    assert m.call_repetition(call, call) == 1.0
    transposed = [n._replace(pitch=n.pitch + 1) for n in call]
    assert m.call_repetition(transposed, call) == 0.0
    half = call[:4] + transposed[4:]  # 6 trigrams, the first two copied
    assert m.call_repetition(half, call) == pytest.approx(2 / 6)
    assert math.isnan(m.call_repetition(call[:2], call))


def test_empty_phrase():
    assert not m.pitch_class_histogram([]).any()
    assert not m.note_length_histogram([]).any()
    assert math.isnan(m.pitch_range([])) and math.isnan(m.on_grid_rate([]))
    assert m.distinct_pitches([]) == 0 and m.pitch_entropy([]) == 0
