"""Keys and key estimation (jam.music.theory) and the rule-based responder."""

from __future__ import annotations

import numpy as np
import pytest

from jam.generators.base import AnswerSpec
from jam.generators.rules import RulesGenerator, plan_answer, transform
from jam.music import tokens as tk
from jam.music.sampling import pitch_mask
from jam.music.theory import (
    Key,
    degree_of,
    estimate_key,
    key_scores,
    keys_within,
    nearest_in,
    parse_key,
    pitch_of,
)
from jam.music.tokens import Note

C_MAJOR = Key(0, "major")


def melody(pitches, length=12):
    return [Note(p, i * length, length) for i, p in enumerate(pitches)]


@pytest.mark.parametrize("text,key", [("F# minor", Key(6, "minor")), ("Bb major", Key(10, "major")),
                                      ("c", Key(0, "major")), ("Am", Key(9, "minor")),
                                      ("eb min", Key(3, "minor"))])
def test_parse_key(text, key):
    assert parse_key(text) == key


def test_parse_key_rejects_nonsense():
    with pytest.raises(ValueError):
        parse_key("H major")


def test_scales_and_names():
    assert Key(7, "major").scale == (7, 9, 11, 0, 2, 4, 6)
    assert Key(9, "minor").name == "A minor" and set(Key(9, "minor").scale) == set(C_MAJOR.scale)


def test_estimate_key_of_clear_melodies():
    d_major = melody([62, 66, 69, 74, 73, 71, 69, 66, 64, 62], 12)
    assert estimate_key(d_major) == Key(2, "major")
    a_minor = melody([69, 72, 76, 69, 71, 72, 74, 76, 77, 76, 74, 72, 71, 69, 68, 69])
    assert estimate_key(a_minor) == Key(9, "minor")
    assert estimate_key([]) == C_MAJOR


def test_estimated_key_holds_the_notes_of_a_short_call():
    # correlation alone picks B minor here, whose scale has C# and would mask the call's C
    rhythm = [(0, 12), (12, 6), (18, 6), (24, 12), (36, 12), (48, 12), (60, 6), (66, 6), (72, 24)]
    call = [Note(p, s, d) for p, (s, d) in zip([67, 69, 71, 72, 71, 69, 67, 69, 71], rhythm)]
    assert key_scores(call)[Key(11, "minor")] == max(key_scores(call).values())
    key = estimate_key(call)
    assert {n.pitch % 12 for n in call} <= set(key.scale)


def test_a_short_chromatic_passing_note_does_not_decide_the_key():
    in_c = melody([60, 62, 64, 65, 67, 69, 71, 72] * 3 + [66])  # one F# among 25 notes
    assert estimate_key(in_c) in (C_MAJOR, Key(9, "minor"))


def test_estimate_key_among_candidates():
    assert estimate_key(melody([60, 64, 67, 72]), [Key(9, "minor"), Key(7, "major")]) in (
        Key(9, "minor"), Key(7, "major"))
    assert keys_within(C_MAJOR.scale) == [C_MAJOR, Key(9, "minor")]


def test_scale_degrees_round_trip_and_snap():
    scale = C_MAJOR.scale
    for pitch in (60, 62, 64, 65, 67, 69, 71, 72):
        assert pitch_of(degree_of(pitch, scale), scale) == pitch
    assert pitch_of(degree_of(61, scale), scale) == 60  # C# -> C
    assert pitch_of(degree_of(60, scale) + 2, scale) == 64  # a third up
    assert nearest_in(61, [0, 7], 0, 127) == 60
    assert nearest_in(100, [0], 40, 80) == 72


def test_transformations_on_the_scale():
    motif = melody([60, 62, 64])
    assert [n.pitch for n in transform(motif, C_MAJOR.scale, "transpose", 1)] == [62, 64, 65]
    assert [n.pitch for n in transform(motif, C_MAJOR.scale, "invert", 0)] == [60, 59, 57]
    seq = transform(melody([60, 62, 64, 65]), C_MAJOR.scale, "sequence", 1)
    assert [(n.pitch, n.start) for n in seq] == [(60, 0), (62, 12), (62, 24), (64, 36)]


def test_plan_fills_the_length_in_scale_and_range_and_ends_on_the_tonic():
    call = melody([62, 64, 66, 67, 69, 71, 73, 74])  # D major, 8 beats
    key = Key(2, "major")
    for seed in range(10):
        plan = plan_answer(call, key, key.scale, 96, np.random.default_rng(seed), 60, 80)
        assert plan[0].start == 0 and plan[-1].end == 96
        assert all(n.pitch % 12 in key.scale and 60 <= n.pitch <= 80 for n in plan)
        assert plan[-1].pitch % 12 == 2
        assert all(a.end <= b.start for a, b in zip(plan, plan[1:]))


def test_rhythm_is_echoed():
    call = [Note(60, 0, 6), Note(62, 6, 6), Note(64, 12, 12), Note(65, 24, 24)]
    for kind in ("transpose", "invert"):
        moved = transform(call, C_MAJOR.scale, kind, 2)
        assert [(n.start, n.duration) for n in moved] == [(0, 6), (6, 6), (12, 12), (24, 24)]


def test_generator_answers_the_fed_call_with_a_seed():
    def answer(seed):
        gen = RulesGenerator()
        gen.feed(tk.encode(melody([67, 69, 71, 72, 74, 72, 71, 69])))  # G major
        spec = AnswerSpec(mask=pitch_mask(Key(7, "major").scale, 48, 84), ticks=96)
        it = gen.continuation(spec, np.random.default_rng(seed))
        return [next(it) for _ in range(40)]

    first = answer(4)
    assert first == answer(4)
    assert tk.is_pitch(first[0])
    notes = tk.decode(first)
    assert all(n.pitch % 12 in Key(7, "major").scale for n in notes)
    assert tk.duration_ticks(first) >= 96  # at least the planned answer; then it goes on
    cadence = [n for n in notes if n.end == 96]
    assert cadence and cadence[0].pitch % 12 == 7


def test_generator_answers_only_the_latest_call():
    second = tk.encode(melody([70, 72, 74]))
    gen = RulesGenerator()
    gen.feed(tk.encode(melody([60, 62])))
    next(gen.continuation(AnswerSpec(ticks=24), np.random.default_rng(0)))
    gen.feed(second)
    fresh = RulesGenerator()
    fresh.feed(second)
    a = gen.continuation(AnswerSpec(ticks=36), np.random.default_rng(2))
    b = fresh.continuation(AnswerSpec(ticks=36), np.random.default_rng(2))
    assert [next(a) for _ in range(12)] == [next(b) for _ in range(12)]
