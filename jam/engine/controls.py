"""Controls from the instrument, as pure logic: which incoming message is which action, tap
tempo, and the echoes of what jam sent. No ports, no clock: times are passed in.

- :class:`ControlMap` maps a message to the actions bound to it (``controls:`` of the
  config file; ``end_call_cc`` is an alias of binding ``end_call`` to that CC). A message
  that belongs to a control is *consumed* (it never reaches the model or the synth), even
  when it triggers nothing (a pad's note-off, a switch CC going back under 64). A Program
  Change is always consumed: it selects a preset (action ``preset`` with the program
  number) unless it is bound to ``next_preset`` or ``previous_preset``.
- :class:`TapTempo`: tapped beats -> a tempo (median interval) and the beat phase.
- :class:`EchoFilter`: a note-on that arrives less than ``window`` seconds after jam sent
  the same pitch is jam's own echo (a synth's MIDI thru looped back), not the player.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from jam.midi.controls import CONTINUOUS, Binding, TriggerEdge, parse_binding, scaled

PRESET = "preset"  # the action of an unbound Program Change: select preset ``value``


@dataclass(frozen=True)
class Action:
    """What a control asks for: ``name`` (an action of :data:`jam.midi.controls.ACTIONS`,
    or :data:`PRESET`), its ``value`` (a continuous action's scaled value, the program
    number of a preset; None for a trigger) and ``source``, the control as text."""

    name: str
    value: float | int | None
    source: str


def bindings(controls: Mapping[str, str], end_call_cc: int | None = None
             ) -> list[tuple[Binding, str]]:
    """(binding, action) pairs of the ``controls`` option, plus ``end_call`` on CC
    ``end_call_cc`` (the older option) unless that exact binding is already there."""
    pairs = [(parse_binding(text), action) for action, text in controls.items()]
    if end_call_cc is not None:
        alias = Binding("cc", end_call_cc)
        if (alias, "end_call") not in pairs:
            pairs.append((alias, "end_call"))
    return pairs


class ControlMap:
    """Messages -> actions (see the module docstring). Keeps the state of CC switches."""

    def __init__(self, controls: Mapping[str, str], end_call_cc: int | None = None) -> None:
        self.pairs = bindings(controls, end_call_cc)
        self._edges = TriggerEdge()

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def handle(self, message: Any) -> list[Action] | None:
        """The actions ``message`` triggers, ``[]`` if it belongs to a control but triggers
        nothing, None if it is no control (it goes on to the music)."""
        kind = message.type
        if kind not in ("note_on", "note_off", "control_change", "program_change"):
            return None
        matched = [(b, a) for b, a in self.pairs if b.matches(message)]
        if kind == "program_change":
            actions = [Action(a, None, f"{b}") for b, a in matched
                       if a in ("next_preset", "previous_preset")]
            return actions or [Action(PRESET, message.program, f"program {message.program}")]
        if not matched:
            return None
        actions = []
        pressed: dict[Binding, bool] = {}
        for binding, action in matched:
            if kind == "control_change":
                source = f"cc {message.control}"
                if action in CONTINUOUS:
                    actions.append(Action(action, scaled(action, message.value), source))
                    continue
                if binding not in pressed:  # one edge per binding, however many actions
                    pressed[binding] = self._edges.press(binding, message.value)
                if pressed[binding]:
                    actions.append(Action(action, None, source))
            elif kind == "note_on" and message.velocity > 0 and action not in CONTINUOUS:
                actions.append(Action(action, None, f"note {message.note}"))
        return actions


# --- tap tempo -------------------------------------------------------------------------------

TAPS = 4  # taps before a tempo is given
KEEP_TAPS = 8  # the most recent taps of a run that count
MAX_TAP_GAP = 2.0  # s: a longer gap starts a new run of taps (30 BPM)
MIN_TAP_GAP = 0.15  # s: a shorter one is a bounce of the switch, ignored (400 BPM)
TAP_OUTLIER = 0.08  # of a beat: a tap further than this off the median line is a slip


@dataclass(frozen=True)
class Tapped:
    """A tapped tempo: ``bpm``, and ``origin``: the time of the run's first tap, on the
    line fitted through the taps (a beat, and taken as a downbeat)."""

    bpm: float
    origin: float


def tap_tempo(times: Iterable[float]) -> Tapped | None:
    """Tempo and first beat of tapped beats. The median interval counts the beats from
    the first tap to each (a skipped tap is two beats) and, with the median phase, marks
    taps far off its line (more than :data:`TAP_OUTLIER` of a beat) as slips; the line
    fitted through the other taps by least squares then gives the beat length and the
    first beat's time: 2-3 times closer than the median interval alone when the taps are
    jittered. None with fewer than two taps."""
    taps = list(times)
    if len(taps) < 2:
        return None
    interval = statistics.median(b - a for a, b in zip(taps, taps[1:]))
    if interval <= 0:
        return None
    counted = [(round((t - taps[0]) / interval), t) for t in taps]
    phase = statistics.median(t - b * interval for b, t in counted)
    kept = [(b, t) for b, t in counted if abs(t - phase - b * interval) <= TAP_OUTLIER * interval]
    beats, taps = [b for b, _ in kept], [t for _, t in kept]
    if len(set(beats)) < 2:
        return Tapped(60.0 / interval, phase)
    mean_b, mean_t = statistics.fmean(beats), statistics.fmean(taps)
    spread = sum((b - mean_b) ** 2 for b in beats)
    if spread == 0:
        return None
    beat = sum((b - mean_b) * (t - mean_t) for b, t in zip(beats, taps)) / spread
    return Tapped(60.0 / beat, mean_t - beat * mean_b)


class TapTempo:
    """Runs of taps: :meth:`tap` returns the tempo once a run has :data:`TAPS` taps (then
    after every tap, from the last :data:`KEEP_TAPS`), else None."""

    def __init__(self, taps: int = TAPS, keep: int = KEEP_TAPS) -> None:
        self.taps = taps
        self._run: deque[float] = deque(maxlen=keep)

    def tap(self, t: float) -> Tapped | None:
        if self._run:
            gap = t - self._run[-1]
            if gap < MIN_TAP_GAP:
                return None
            if gap > MAX_TAP_GAP:
                self._run.clear()
        self._run.append(t)
        return tap_tempo(self._run) if len(self._run) >= self.taps else None


# --- echoes ----------------------------------------------------------------------------------

PRUNE_AT = 256  # notes remembered before the old ones are dropped without a note-on in
STALE = 10.0  # s: a note sent this long before one being sent now can echo no more


class EchoFilter:
    """Notes jam sent (pitch, send time; the channel too where given) and the input's
    echoes of them. Times are seconds on one clock; ``window`` seconds (0: off).

    :meth:`sent` records a note-on (its send time may lie ahead: it is scheduled) under a
    ``tag``; :meth:`is_echo` says whether a note-on arriving at ``t`` is the echo of one
    sent in ``(t - window, t]``, and remembers it, so its note-off is an echo too
    (:meth:`is_echo_off`). :meth:`unsend` forgets the notes of a tag that will not be sent
    after all (a cancelled answer)."""

    def __init__(self, window: float) -> None:
        self.window = window
        self.echoes = 0
        self._sent: list[tuple[float, int, int | None, Any]] = []  # time, pitch, channel, tag
        self._open: dict[int, int] = {}  # pitch -> echoed note-ons not yet ended

    def __len__(self) -> int:
        """How many notes sent are remembered (their echoes may still come)."""
        return len(self._sent)

    def sent(self, t: float, pitch: int, channel: int | None = None, tag: Any = None) -> None:
        """Note-on ``pitch`` goes out at ``t`` (``channel`` None: its echo may come on any)."""
        if self.window > 0:
            if len(self._sent) >= PRUNE_AT:  # no note-on came in for a while (clicks go on)
                self._sent = [item for item in self._sent if item[0] > t - STALE]
            self._sent.append((t, pitch, channel, tag))

    def unsend(self, after: float, tag: Any = None) -> None:
        """Forget the notes of ``tag`` due after ``after`` (they were cancelled)."""
        self._sent = [item for item in self._sent if item[0] <= after or item[3] != tag]

    def is_echo(self, t: float, pitch: int, channel: int) -> bool:
        if self.window <= 0:
            return False
        self._sent = [item for item in self._sent if item[0] > t - self.window]  # too old
        for item in self._sent:
            when, sent_pitch, sent_channel, _ = item
            if sent_pitch == pitch and when <= t and sent_channel in (None, channel):
                self._sent.remove(item)
                self._open[pitch] = self._open.get(pitch, 0) + 1
                self.echoes += 1
                return True
        return False

    def is_echo_off(self, pitch: int) -> bool:
        count = self._open.get(pitch, 0)
        if not count:
            return False
        if count == 1:
            del self._open[pitch]
        else:
            self._open[pitch] = count - 1
        return True
