"""Listening: live notes onto the grid, into the generator at once, and where a call ends.

:class:`PhraseDetector` (pure) decides when a call is over: ``listen_silence`` beats with
no key held (and the sustain pedal up), a sustain-pedal release with no key held, the
``end_call_cc`` controller pressed (value >= 64), or ``max_call`` bars after its first note.

:class:`Listener` quantizes each event to the nearest grid tick of the :class:`Clock`,
encodes it with :class:`jam.music.tokens.Encoder` using ``min_rest`` = 6 ticks (an eighth
note: shorter gaps after a note are legato, so staccato playing does not read as rests),
and feeds the tokens to the generator immediately, so its state is warm when the call ends.
It keeps the token history; from it a fresh state is re-primed (``BOS`` + the last
:data:`WINDOW` tokens from an onset, :meth:`Generator.reprime`) when the state no longer
matches the music: a new call after more than :data:`~jam.music.tokens.MAX_SHIFT` ticks of
silence (the gap is then one ``REST`` of that length), a call re-quantized because the
tempo source moved the pulse when it ended, or an answer stopped early (barge-in).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from jam.engine.clock import Clock, TempoSource
from jam.generators.base import Generator
from jam.midi.tracker import CC_SUSTAIN
from jam.music import tokens as tk
from jam.music.tokens import Encoder, Note

MIN_REST = 6  # ticks: an eighth note
WINDOW = 64  # tokens of history a re-prime conditions on


class PhraseDetector:
    """When does the call end? Times in seconds; the clock turns beats into seconds."""

    def __init__(self, silence_beats: float = 1.0, end_call_cc: int | None = None,
                 max_call_ticks: int | None = None) -> None:
        self.silence_beats = silence_beats
        self.end_call_cc = end_call_cc
        self.max_call_ticks = max_call_ticks
        self.reset()

    def reset(self) -> None:
        self.active = False  # a call is in progress
        self.held: set[int] = set()
        self.pedal = False
        self.quiet_since: float | None = None  # last time sound stopped (keys and pedal up)
        self.first_tick: int | None = None

    def note_on(self, pitch: int, t: float, tick: int) -> None:
        if not self.active:
            self.active, self.first_tick = True, tick
        self.held.add(pitch)
        self.quiet_since = None

    def note_off(self, pitch: int, t: float) -> None:
        self.held.discard(pitch)
        if self.active and not self.held and not self.pedal:
            self.quiet_since = t

    def control(self, control: int, value: int, t: float) -> str | None:
        """Update the pedal; returns why the call ends now ("pedal", "cc") or None."""
        if control == self.end_call_cc and value >= 64:
            return "cc" if self.active else None
        if control != CC_SUSTAIN:
            return None
        down = value >= 64
        released = self.pedal and not down
        self.pedal = down
        if down:
            self.quiet_since = None
        elif self.active and not self.held:
            self.quiet_since = t
            if released:
                return "pedal"
        return None

    def due(self, clock: Clock) -> tuple[float, str] | None:
        """When the call ends if nothing else happens, and why ("silence", "max_call")."""
        if not self.active:
            return None
        ends = []
        if self.quiet_since is not None:
            ends.append((self.quiet_since + self.silence_beats * clock.beat_seconds, "silence"))
        if self.max_call_ticks is not None and self.first_tick is not None:
            ends.append((clock.seconds(self.first_tick + self.max_call_ticks), "max_call"))
        return min(ends) if ends else None


@dataclass
class Call:
    """A finished call: its notes on the grid (one voice) and what the answer follows."""

    notes: list[Note]
    start: int  # tick of the first onset
    end: int  # tick where its last note ends
    velocity: int  # mean note-on velocity
    requantized: bool  # the tempo source moved the pulse and the call was re-encoded


class Listener:
    """Feeds the call to the generator as it is played; the engine thread owns it."""

    def __init__(self, generator: Generator, clock: Clock, tempo: TempoSource,
                 min_rest: int = MIN_REST) -> None:
        self.generator = generator
        self.clock = clock
        self.tempo = tempo
        self.min_rest = min_rest
        self.history: list[int] = []  # recent tokens the generator was fed, oldest first
        self.heard: set[int] = set()  # pitch classes the player used in the session
        self.encoder = Encoder(min_rest=min_rest)
        self.accounted: float | None = None  # time up to which history covers the music
        self._events: list[tuple[str, int, float, int]] = []  # (kind, pitch, t, velocity)
        self._call_from = 0  # index in history where the current call's tokens begin
        self._requantized = False
        self.generator.reset()

    # --- live events -----------------------------------------------------------------------

    @property
    def in_call(self) -> bool:
        return bool(self._events)

    def note_on(self, pitch: int, velocity: int, t: float) -> int:
        """Quantize and feed a note-on; returns its grid tick."""
        if not self._events:
            self._start_call(t)
        self._events.append(("on", pitch, t, velocity))
        self.heard.add(pitch % 12)
        tick = self.clock.tick(t)
        self._feed(self.encoder.note_on(pitch, tick))
        return tick

    def note_off(self, pitch: int, t: float) -> None:
        if self._events:
            self._events.append(("off", pitch, t, 0))
            self.encoder.note_off(pitch, self.clock.tick(t))

    def _start_call(self, t: float) -> None:
        gap = None if self.accounted is None else t - self.accounted
        self.tempo.call_started(self.clock, t)
        if gap is not None:
            rest = round(gap / self.clock.tick_seconds)
            if rest > tk.MAX_SHIFT:
                self._reprime(self.history + [tk.REST, tk.shift_token(tk.MAX_SHIFT)])
            elif rest > 0:
                self._feed([tk.REST, tk.shift_token(rest)])
        if len(self.history) > 4 * WINDOW:  # keep what a re-prime can use, not the session
            self.history = self.history[-2 * WINDOW:]
        self.encoder.sync(self.clock.tick(t))
        self._call_from = len(self.history)

    # --- the end of a call -----------------------------------------------------------------

    def end_call(self, answer_start: int) -> Call:
        """Close the call (the tempo source may move the pulse first: the call is then
        re-encoded and the state re-primed), and account for the silence up to the tick
        ``answer_start``. ``answer_start`` must be chosen on the clock as it is after
        :meth:`settle_tempo`."""
        velocities = [v for kind, _, _, v in self._events if kind == "on"]
        velocity = round(sum(velocities) / len(velocities))
        self._feed(self.encoder.finish(answer_start))
        call_tokens = self.history[self._call_from:]
        notes = tk.decode(call_tokens, start=answer_start - tk.duration_ticks(call_tokens))
        requantized, self._requantized = self._requantized, False
        self._events = []
        self.accounted = self.clock.seconds(answer_start)
        start = notes[0].start if notes else answer_start
        end = max((n.end for n in notes), default=answer_start)
        return Call(notes, start, end, velocity, requantized)

    def settle_tempo(self) -> bool:
        """Let the tempo source fit the finished call; re-encode and re-prime if the pulse
        moved and the tokens differ. Call once per call, before choosing the answer start."""
        onsets = [t for kind, _, t, _ in self._events if kind == "on"]
        if not self.tempo.call_ended(self.clock, onsets):
            return False
        encoder = Encoder(min_rest=self.min_rest)
        tokens: list[int] = []
        encoder.sync(self.clock.tick(self._events[0][2]))
        for kind, pitch, t, _ in self._events:
            if kind == "on":
                tokens += encoder.note_on(pitch, self.clock.tick(t))
            else:
                encoder.note_off(pitch, self.clock.tick(t))
        self.encoder = encoder
        if tokens != self.history[self._call_from:]:
            self._reprime(self.history[: self._call_from] + tokens)
            self._requantized = True
        return self._requantized

    # --- answers ---------------------------------------------------------------------------

    def answered(self, tokens: Sequence[int], start: int, end: int, stopped: bool) -> None:
        """The answer from tick ``start`` took ``tokens`` (the generator has seen them all)
        and was played up to tick ``end``. If what was played differs from what the
        generator saw (stopped, or its last note cut), the state is re-primed."""
        played = cut(tokens, end - start)
        if stopped or played != list(tokens):
            self._reprime(self.history + played)
        else:
            self.history += played
        self.encoder.sync(end)
        self.accounted = self.clock.seconds(end)

    def silence_until(self, tick: int) -> None:
        """Account for the silence from the end of the music so far up to grid tick
        ``tick``, where music that is not a call (a replayed answer) begins."""
        if self.accounted is not None:
            rest = tick - self.clock.tick(self.accounted)
            if rest > tk.MAX_SHIFT:
                self._reprime(self.history + [tk.REST, tk.shift_token(tk.MAX_SHIFT)])
            elif rest > 0:
                self._feed([tk.REST, tk.shift_token(rest)])
        self.encoder.sync(tick)
        self.accounted = self.clock.seconds(tick)

    def restore(self, history: list[int], tick: int) -> None:
        """Go back to an earlier ``history`` (the state right after a call, to answer it
        anew from grid tick ``tick``): the generator is re-primed from it."""
        self._reprime(list(history))
        self.encoder.sync(tick)
        self.accounted = self.clock.seconds(tick)

    def use(self, generator: Generator) -> None:
        """Feed ``generator`` from now on, primed with the history so far."""
        self.generator = generator
        generator.reset()
        if self.history:
            self._reprime(self.history)

    # --- generator -------------------------------------------------------------------------

    def _feed(self, tokens: list[int]) -> None:
        if tokens:
            self.generator.feed(tokens)
            self.history += tokens

    def _reprime(self, history: list[int]) -> None:
        self.history = history
        self.generator.reprime(window(history))


def window(history: Sequence[int], size: int = WINDOW) -> list[int]:
    """The last ``size`` tokens of ``history``, starting at an onset (PITCH or REST)."""
    return tk.from_onset(history[-size:])


def cut(tokens: Sequence[int], ticks: int) -> list[int]:
    """The prefix of a grammatical token sequence covering ``ticks`` (last SHIFT shortened)."""
    out: list[int] = []
    elapsed = 0
    for token in tokens:
        if elapsed >= ticks:
            break
        if tk.is_shift(token):
            d = min(tk.shift_ticks(token), ticks - elapsed)
            out.append(tk.shift_token(d))
            elapsed += d
        else:
            out.append(token)
    if out and not tk.is_shift(out[-1]):
        out.pop()  # an onset with no time after it
    return out
