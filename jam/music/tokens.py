"""The representation shared by training, export and the live runtime (numpy/stdlib only).

A melody is a sequence of notes on a tempo-relative grid of ``TICKS_PER_BEAT`` ticks per
quarter note (12: sixteenths and triplets). Each note becomes two tokens::

    PITCH(p) SHIFT(d)      a note of pitch p that lasts d ticks (until the next onset)
    REST     SHIFT(d)      d ticks of silence

so a tune reads ``BOS P S P S REST S P S ...``. Onsets are implied: every note starts where
the previous token pair ended. A note longer than ``MAX_SHIFT`` is clipped to it and the rest
of its time becomes a rest; long rests are chained (``REST S96 REST S12``).

**Incremental.** :class:`Encoder` takes live note-on/note-off events one at a time and
returns each token as soon as it is known, with no look-ahead: a note's PITCH at its
note-on, its SHIFT at the next note-on (or at :meth:`Encoder.finish`, when the phrase ends).

**Reductions (documented, deliberate).**
- Chords, live: a note-on on the same tick as the note just encoded is part of a chord and
  is dropped (the first note of a chord wins: no look-ahead). Offline, where whole chords
  are known, :func:`skyline` keeps the highest note of each onset.
- Overlap (legato playing): a new note-on ends the sounding note.
- Gaps shorter than ``min_rest`` ticks after a note are merged into the note (legato);
  the live listener uses an eighth note so staccato playing does not read as rests.
- Velocity is not encoded; the runtime chooses answer dynamics from the call.

**Decoding** (:func:`decode`) is total: any token sequence gives valid notes (positive
durations, times never go backwards). Pitches before a SHIFT all last that SHIFT (a chord);
pitches with no SHIFT after them are dropped; REST and BOS only mark time or starts.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple, Sequence

import numpy as np

REPRESENTATION = "jam-melody-v1"
TICKS_PER_BEAT = 12
MAX_SHIFT = 96  # 8 beats: two bars of 4/4

N_PITCHES = 128
REST = N_PITCHES  # 128
SHIFT_BASE = REST + 1  # SHIFT(d) = SHIFT_BASE + d - 1, d in 1..MAX_SHIFT
BOS = SHIFT_BASE + MAX_SHIFT  # 225
VOCAB_SIZE = BOS + 1  # 226


class Note(NamedTuple):
    """A note on the grid: MIDI pitch, onset and duration in ticks, velocity."""

    pitch: int
    start: int
    duration: int
    velocity: int = 80

    @property
    def end(self) -> int:
        return self.start + self.duration


def pitch_token(pitch: int) -> int:
    if not 0 <= pitch < N_PITCHES:
        raise ValueError(f"pitch {pitch} is outside 0..127")
    return pitch


def shift_token(ticks: int) -> int:
    if not 1 <= ticks <= MAX_SHIFT:
        raise ValueError(f"shift of {ticks} ticks is outside 1..{MAX_SHIFT}")
    return SHIFT_BASE + ticks - 1


def is_pitch(token: int) -> bool:
    return 0 <= token < N_PITCHES


def is_shift(token: int) -> bool:
    return SHIFT_BASE <= token < BOS


def shift_ticks(token: int) -> int:
    """Ticks of a SHIFT token (0 for any other token)."""
    return token - SHIFT_BASE + 1 if is_shift(token) else 0


# Token classes as boolean masks over the vocabulary (read-only; combine with `&`).
PITCH_MASK = np.zeros(VOCAB_SIZE, dtype=bool)
PITCH_MASK[:N_PITCHES] = True
SHIFT_MASK = np.zeros(VOCAB_SIZE, dtype=bool)
SHIFT_MASK[SHIFT_BASE:BOS] = True
ONSET_MASK = PITCH_MASK.copy()  # what may follow a SHIFT or BOS: a pitch or a rest
ONSET_MASK[REST] = True
for _mask in (PITCH_MASK, SHIFT_MASK, ONSET_MASK):
    _mask.flags.writeable = False


def grammar_mask(previous: int | None) -> np.ndarray:
    """Tokens allowed after ``previous`` in a well-formed melody (None: start of sequence).

    After a PITCH or REST comes a SHIFT; after a SHIFT or BOS, a PITCH or REST.
    """
    if previous is not None and (is_pitch(previous) or previous == REST):
        return SHIFT_MASK
    return ONSET_MASK


def from_onset(tokens: Sequence[int]) -> list[int]:
    """``tokens`` from the first onset (PITCH or REST) on: where a grammatical window may
    start, as in training."""
    for i, token in enumerate(tokens):
        if is_pitch(token) or token == REST:
            return list(tokens[i:])
    return []


def bars_to_ticks(bars: float, beats_per_bar: int = 4) -> int:
    return int(round(bars * beats_per_bar * TICKS_PER_BEAT))


class Encoder:
    """Live, incremental encoder: MIDI note events in, tokens out (see module docstring).

    Ticks passed in must not go backwards; an earlier tick is treated as the latest one.
    """

    def __init__(self, min_rest: int = 1) -> None:
        if min_rest < 1:
            raise ValueError("min_rest must be at least 1 tick")
        self.min_rest = min_rest
        self.clock: int | None = None  # tick up to which SHIFTs have accounted for time
        self._pitch = -1  # the note whose PITCH is out but whose SHIFT is not (-1: none)
        self._onset = 0
        self._release: int | None = None

    def note_on(self, pitch: int, tick: int) -> list[int]:
        if self._pitch >= 0 and tick <= self._onset:
            return []  # same tick as the open note: a chord member, dropped
        tokens = self._advance(tick) if self.clock is not None else []
        if self.clock is None:
            self.clock = tick
        tokens.append(pitch_token(pitch))
        self._pitch, self._onset, self._release = pitch, self.clock, None
        return tokens

    def note_off(self, pitch: int, tick: int) -> list[int]:
        if pitch == self._pitch and self._release is None:
            self._release = max(tick, self._onset + 1)
        return []

    def finish(self, tick: int) -> list[int]:
        """Close the open note and any silence up to ``tick`` (e.g. where an answer starts)."""
        if self.clock is None:
            self.clock = tick
            return []
        return self._advance(tick)

    def sync(self, tick: int) -> None:
        """Declare that time up to ``tick`` has been accounted for elsewhere (an answer that
        was fed to the model directly); the next note-on starts from there."""
        self.clock, self._pitch, self._release = tick, -1, None

    def _advance(self, tick: int) -> list[int]:
        assert self.clock is not None
        tick = max(tick, self.clock)
        tokens: list[int] = []
        if self._pitch >= 0:
            end = tick
            if self._release is not None and tick - self._release >= self.min_rest:
                end = self._release
            duration = max(1, end - self._onset)
            held = min(duration, MAX_SHIFT)
            tokens.append(shift_token(held))
            self.clock = self._onset + held
            self._pitch = -1
        while tick > self.clock:
            gap = min(tick - self.clock, MAX_SHIFT)
            tokens += (REST, shift_token(gap))
            self.clock += gap
        return tokens


def skyline(notes: Iterable[Note]) -> list[Note]:
    """Reduce any notes to one voice: the highest note of each onset, cut at the next onset."""
    by_onset: dict[int, Note] = {}
    for note in notes:
        if note.duration <= 0:
            continue
        best = by_onset.get(note.start)
        if best is None or note.pitch > best.pitch:
            by_onset[note.start] = note
    starts = sorted(by_onset)
    melody = []
    for i, start in enumerate(starts):
        note = by_onset[start]
        if i + 1 < len(starts):
            note = note._replace(duration=min(note.duration, starts[i + 1] - start))
        melody.append(note)
    return melody


def encode(notes: Iterable[Note], min_rest: int = 1) -> list[int]:
    """Tokens for a whole phrase (no BOS), through the same :class:`Encoder` as live input.

    The phrase is reduced with :func:`skyline`; time before the first note is not encoded.
    """
    melody = skyline(notes)
    encoder = Encoder(min_rest=min_rest)
    tokens: list[int] = []
    for note in melody:
        tokens += encoder.note_on(note.pitch, note.start)
        encoder.note_off(note.pitch, note.end)
    if melody:
        tokens += encoder.finish(max(note.end for note in melody))
    return tokens


def decode(tokens: Iterable[int], start: int = 0, velocity: int = 80) -> list[Note]:
    """Notes for any token sequence (total: never fails, always valid; see module docstring)."""
    notes: list[Note] = []
    pending: list[int] = []
    tick = start
    for token in tokens:
        token = int(token)
        if is_pitch(token):
            if token not in pending:
                pending.append(token)
        elif is_shift(token):
            ticks = shift_ticks(token)
            notes.extend(Note(p, tick, ticks, velocity) for p in pending)
            pending.clear()
            tick += ticks
    return notes


def duration_ticks(tokens: Iterable[int]) -> int:
    """Total time covered by the SHIFTs in ``tokens``."""
    return sum(shift_ticks(int(t)) for t in tokens)


def count_notes(tokens: Iterable[int]) -> int:
    """Number of notes (PITCH tokens): the denominator of bits per note."""
    return sum(1 for t in tokens if is_pitch(int(t)))


def metadata() -> dict[str, str]:
    """The settings a model must be trained with; written into every exported model."""
    return {
        "jam.representation": REPRESENTATION,
        "jam.ticks_per_beat": str(TICKS_PER_BEAT),
        "jam.max_shift": str(MAX_SHIFT),
        "jam.vocab_size": str(VOCAB_SIZE),
    }
