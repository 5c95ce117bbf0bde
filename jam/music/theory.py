"""Keys, scales and key estimation (pure).

Scales: major (Ionian) and natural minor (Aeolian); a key's scale is what ``--key`` masks
answers to. Key estimation first keeps the keys whose scale holds (nearly) the most of the
call's duration, then picks among them by Krumhansl-Schmuckler: the call's duration-weighted
pitch-class histogram correlated with the Krumhansl-Kessler major and minor profiles. The
first step matters for short calls, where the correlation alone can pick a key whose mask
would forbid notes the player just played (G A B C B A G A B correlates best with B minor).
"""

from __future__ import annotations

import re
from typing import Iterable, NamedTuple, Sequence

import numpy as np

from jam.music.tokens import Note

NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_KEY_RE = re.compile(r"^\s*([A-Ga-g])\s*([#b]?)\s*(major|minor|maj|min|m)?\s*$", re.IGNORECASE)

SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
# Krumhansl & Kessler (1982) probe-tone ratings, tonic first.
PROFILES = {
    "major": np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88]),
    "minor": np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]),
}


class Key(NamedTuple):
    tonic: int  # pitch class 0-11
    mode: str  # "major" or "minor"

    @property
    def scale(self) -> tuple[int, ...]:
        """Pitch classes of the key's scale, tonic first."""
        return tuple((self.tonic + step) % 12 for step in SCALES[self.mode])

    @property
    def name(self) -> str:
        return f"{NAMES[self.tonic]} {self.mode}"

    @property
    def triad(self) -> tuple[int, ...]:
        """Pitch classes of the tonic triad (root, third, fifth): where phrases come to
        rest."""
        scale = self.scale
        return scale[0], scale[2], scale[4]


def parse_key(text: str) -> Key:
    """``"F# minor"``, ``"Bb major"``, ``"c"`` (major), ``"am"`` -> Key; ValueError otherwise."""
    match = _KEY_RE.match(text)
    if match is None:
        raise ValueError(f'not a key: {text!r} (expected e.g. "C major" or "F# minor")')
    letter, accidental, mode = match[1].upper(), match[2], (match[3] or "major").lower()
    tonic = (_LETTERS[letter] + {"#": 1, "b": -1, "": 0}[accidental]) % 12
    return Key(tonic, "minor" if mode in ("minor", "min", "m") else "major")


def pitch_class_weights(notes: Iterable[Note]) -> np.ndarray:
    """Duration-weighted pitch-class histogram (12 floats)."""
    weights = np.zeros(12)
    for note in notes:
        weights[note.pitch % 12] += max(note.duration, 1)
    return weights


def _zscore(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=-1, keepdims=True)) / x.std(axis=-1, keepdims=True)


KEYS = [Key(t, m) for m in ("major", "minor") for t in range(12)]
# the 24 rotated profiles, standardized: correlation = mean of z(histogram) * z(profile)
_PROFILE_Z = _zscore(np.array([np.roll(PROFILES[k.mode], k.tonic) for k in KEYS]))


def key_scores(notes: Iterable[Note]) -> dict[Key, float]:
    """Correlation of the call's histogram with each of the 24 key profiles (0 for none)."""
    weights = pitch_class_weights(notes)
    if weights.std() == 0:
        return dict.fromkeys(KEYS, 0.0)
    scores = _PROFILE_Z @ _zscore(weights) / 12
    return {key: float(score) for key, score in zip(KEYS, scores)}


_SCALE_MASKS = np.array([[pc in key.scale for pc in range(12)] for key in KEYS])
FIT_TOLERANCE = 0.05  # share of the call's duration that may fall outside the chosen scale


def key_fits(notes: Iterable[Note]) -> dict[Key, float]:
    """Share of the call's duration whose pitch class is in each key's scale (1 for none)."""
    weights = pitch_class_weights(notes)
    total = weights.sum()
    fits = _SCALE_MASKS @ weights / total if total else np.ones(len(KEYS))
    return {key: float(fit) for key, fit in zip(KEYS, fits)}


def estimate_key(notes: Iterable[Note], candidates: Sequence[Key] | None = None) -> Key:
    """The key for a call (among ``candidates`` if given); C major for no notes.

    Keys whose scale holds within :data:`FIT_TOLERANCE` of the best share of the call are
    kept, and the best-correlated of those wins. Ties go to the first key in the order
    C major, C# major, ..., B major, C minor, ...
    """
    notes = list(notes)
    scores, fits = key_scores(notes), key_fits(notes)
    pool = list(candidates) if candidates else KEYS
    best_fit = max(fits[key] for key in pool)
    pool = [key for key in pool if fits[key] >= best_fit - FIT_TOLERANCE]
    return max(pool, key=lambda key: scores[key])


def keys_within(pitch_classes: Iterable[int]) -> list[Key]:
    """Keys whose whole scale lies inside the given pitch classes."""
    allowed = set(pitch_classes)
    return [key for key in KEYS if set(key.scale) <= allowed]


def degree_of(pitch: int, scale: Sequence[int]) -> int:
    """Diatonic position of a pitch on the scale ladder (7 per octave, 0 = the lowest scale
    tone at or above MIDI 0); pitches off the scale go to the nearest scale tone below."""
    tones = sorted(scale)
    octave, pc = divmod(pitch, 12)
    below = [i for i, t in enumerate(tones) if t <= pc]
    if not below:  # below the lowest tone of this octave: the top tone of the octave below
        return octave * len(tones) - 1
    return octave * len(tones) + below[-1]


def pitch_of(degree: int, scale: Sequence[int]) -> int:
    """MIDI pitch of a diatonic position (inverse of :func:`degree_of` on scale tones)."""
    tones = sorted(scale)
    octave, index = divmod(degree, len(tones))
    return octave * 12 + tones[index]


def nearest_in(pitch: int, pitch_classes: Iterable[int], low: int = 0, high: int = 127) -> int:
    """The closest pitch to ``pitch`` in ``low..high`` whose class is allowed (lower wins
    ties); ``pitch`` clamped to the range when nothing is allowed there."""
    allowed = set(pitch_classes)
    options = [p for p in range(low, high + 1) if p % 12 in allowed]
    if not options:
        return min(max(pitch, low), high)
    return min(options, key=lambda p: (abs(p - pitch), p))
