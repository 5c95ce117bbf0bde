"""Property tests of the shared representation (jam/music/tokens.py) with hypothesis."""

from hypothesis import given, settings
from hypothesis import strategies as st

from jam.music import tokens as tk

# A monophonic phrase on the grid: (rest before the note, duration, pitch) per note.
phrases = st.tuples(
    st.integers(0, 10_000),  # where the phrase starts
    st.lists(
        st.tuples(st.integers(0, 300), st.integers(1, tk.MAX_SHIFT), st.integers(0, 127)),
        min_size=1,
        max_size=40,
    ),
)


def build(phrase) -> list[tk.Note]:
    tick, items = phrase
    notes = []
    for i, (rest, duration, pitch) in enumerate(items):
        if i:
            tick += rest
        notes.append(tk.Note(pitch, tick, duration))
        tick += duration
    return notes


@settings(max_examples=300, deadline=None)
@given(phrases)
def test_encode_then_decode_round_trips(phrase):
    notes = build(phrase)
    tokens = tk.encode(notes)
    assert tk.decode(tokens, start=notes[0].start) == notes
    assert tk.count_notes(tokens) == len(notes)
    assert tk.duration_ticks(tokens) == notes[-1].end - notes[0].start


@settings(max_examples=300, deadline=None)
@given(phrases, st.booleans())
def test_live_encoder_event_by_event_matches_encode(phrase, offs_first):
    notes = build(phrase)
    events = []  # (tick, order, kind, pitch); at one tick, note-offs first or note-ons first
    for i, note in enumerate(notes):  # (a repeated pitch always sends its note-off first)
        repeated = i > 0 and notes[i - 1].pitch == note.pitch
        events.append((note.start, 1 if offs_first or repeated else 0, "on", note.pitch))
        events.append((note.end, 0 if offs_first else 1, "off", note.pitch))
    encoder = tk.Encoder()
    live = []
    for tick, _, kind, pitch in sorted(events):
        live += encoder.note_on(pitch, tick) if kind == "on" else encoder.note_off(pitch, tick)
    live += encoder.finish(notes[-1].end)
    assert live == tk.encode(notes)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.integers(0, tk.VOCAB_SIZE - 1), max_size=200), st.integers(0, 1000))
def test_decode_of_any_tokens_gives_valid_notes(tokens, start):
    notes = tk.decode(tokens, start=start)
    for note in notes:
        assert 0 <= note.pitch < tk.N_PITCHES
        assert note.duration >= 1
        assert note.start >= start
    assert [n.start for n in notes] == sorted(n.start for n in notes)
    ends = start + tk.duration_ticks(tokens)
    assert all(n.end <= ends for n in notes)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 127), st.integers(0, 500), st.integers(-5, 200)), max_size=40))
def test_encode_of_any_notes_is_grammatical(raw):
    notes = [tk.Note(p, s, d) for p, s, d in raw]
    tokens = tk.encode(notes)
    previous = None
    for token in tokens:
        assert tk.grammar_mask(previous)[token]
        previous = token
    assert len(tokens) % 2 == 0


@given(st.lists(st.integers(0, tk.VOCAB_SIZE - 1), max_size=30))
def test_from_onset_drops_exactly_the_tokens_before_the_first_onset(tokens):
    kept = tk.from_onset(tokens)
    dropped = tokens[: len(tokens) - len(kept)]
    assert tokens[len(dropped):] == kept
    assert not any(tk.is_pitch(t) or t == tk.REST for t in dropped)
    assert kept == [] or tk.is_pitch(kept[0]) or kept[0] == tk.REST
