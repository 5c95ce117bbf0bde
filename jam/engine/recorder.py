"""Recording: each live session as a type-1 Standard MIDI File, kept on disk as it grows.

With ``--record DIR`` the live call mode writes ``DIR/jam-YYYYMMDD-HHMMSS.mid`` (local time
of the start; ``-2``, ``-3``... when that name exists: an existing file is never replaced).
It holds a conductor track (the time signature of ``--meter`` and a set_tempo at each tempo
jam played at), the track ``player`` (every channel message that came in from the player)
and the track ``jam`` (every message jam's scheduler sent to the output, the note-offs of a
barge-in included), at :data:`~jam.midi.files.FILE_TICKS_PER_BEAT` ticks per quarter note.

Times: the input thread stamps arrivals and the scheduler thread stamps sends with
``time.monotonic()``; both only append to a deque. The engine thread turns the new events
into file ticks on the session's :class:`TempoMap` (one segment per tempo change, each at
the tempo written in the file, so the file plays back at the times it was played). The
file's first beat is a downbeat of jam's clock (with ``--tempo fixed`` the player's first
note), so its bars are jam's until the tempo or the phase moves.

Durability: :data:`SETTLE` seconds after each phrase boundary (a call ends, an answer ends or
is stopped) the whole file is written again, atomically (a temporary file renamed over it,
:func:`jam.fileio.atomic_write_bytes`, fsync'd), by a writer thread; the engine thread only
encodes the new events and joins the bytes. A crash or a power cut loses at most the phrase
in progress. Notes still sounding when the file is written end at the end of the file there
(the next write has their real note-offs). At shutdown the file is written a last time.

Failures never stop the music: a folder that is missing or cannot be written at the start
is one warning and no recording; a write that fails later (a full disk, a folder that went
away) is one warning, jam plays on and each later boundary tries again (one line when it
works again).
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
import time
from collections import Counter, deque
from datetime import datetime
from pathlib import Path
from typing import Any

import mido

from jam.engine.clock import Clock
from jam.errors import JamError
from jam.fileio import atomic_write_bytes
from jam.midi.files import FILE_TICKS_PER_BEAT
from jam.music.meter import Meter

log = logging.getLogger(__name__)

SETTLE = 0.05  # s after a phrase boundary before the write (the last note-offs are sent)
TEMPO_CHANGE = 0.001  # a tempo this much (relative) away from the file's is a tempo change
RECORDED = frozenset({"note_on", "note_off", "control_change", "program_change", "pitchwheel",
                      "aftertouch", "polytouch"})
MAX_SUFFIX = 1000


def tempo_of(bpm: float) -> int:
    """Microseconds per quarter note, as a MIDI file stores a tempo."""
    return max(1, min(0xFFFFFF, round(60_000_000 / bpm)))


class TempoMap:
    """Monotonic seconds -> file ticks: piecewise linear, one segment per tempo, each
    starting on a whole tick."""

    def __init__(self, start: float, bpm: float,
                 ticks_per_beat: int = FILE_TICKS_PER_BEAT) -> None:
        self.ticks_per_beat = ticks_per_beat
        self.starts = [start]  # seconds where each segment starts
        self.ticks = [0]  # file tick there
        self.tempos = [tempo_of(bpm)]  # microseconds per quarter note

    def _tick_seconds(self, i: int) -> float:
        return self.tempos[i] / 1e6 / self.ticks_per_beat

    @property
    def bpm(self) -> float:
        return 60_000_000 / self.tempos[-1]

    def tick(self, t: float) -> int:
        """The file tick of time ``t`` (0 before the start)."""
        i = bisect.bisect_right(self.starts, t) - 1
        if i < 0:
            return 0
        return self.ticks[i] + int(math.floor((t - self.starts[i]) / self._tick_seconds(i) + 0.5))

    def change(self, at: float, bpm: float) -> tuple[int, int] | None:
        """A new tempo from about ``at`` (the next whole tick, never before the last
        change); returns (tick, microseconds per quarter) if the file's tempo changes."""
        tempo = tempo_of(bpm)
        if tempo == self.tempos[-1]:
            return None
        length = self._tick_seconds(-1)
        at = max(at, self.starts[-1])
        tick = self.ticks[-1] + int(math.ceil((at - self.starts[-1]) / length - 1e-9))
        self.starts.append(self.starts[-1] + (tick - self.ticks[-1]) * length)
        self.ticks.append(tick)
        self.tempos.append(tempo)
        return tick, tempo


def _varlen(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _meta(kind: int, data: bytes) -> bytes:
    return bytes((0xFF, kind)) + _varlen(len(data)) + data


def _time_signature(meter: Meter) -> bytes:
    return _meta(0x58, bytes((meter.numerator, meter.denominator.bit_length() - 1, 24, 8)))


def _set_tempo(tempo: int) -> bytes:
    return _meta(0x51, tempo.to_bytes(3, "big"))


class _Track:
    """One track's encoded events (delta time + bytes), appended in time order, and the
    notes sounding at its end."""

    def __init__(self, name: str | None) -> None:
        self.data = bytearray()
        self.tick = 0
        self.sounding: Counter[tuple[int, int]] = Counter()  # (channel, note) -> note-ons
        if name is not None:
            self.add(0, _meta(0x03, name.encode("utf-8")))

    def add(self, tick: int, data: bytes) -> None:
        tick = max(tick, self.tick)
        self.data += _varlen(tick - self.tick)
        self.data += data
        self.tick = tick

    def add_message(self, tick: int, data: bytes) -> None:
        status = data[0] & 0xF0
        key = (data[0] & 0x0F, data[1]) if status in (0x80, 0x90) else None
        if status == 0x90 and data[2] > 0:
            self.sounding[key] += 1
        elif key is not None and self.sounding[key] > 0:
            self.sounding[key] -= 1
        self.add(tick, data)

    def chunk(self, end: int) -> bytes:
        """The track chunk as it stands, its sounding notes ended at tick ``end``."""
        tail = bytearray()
        at = self.tick
        for (channel, note), count in sorted(self.sounding.items()):
            for _ in range(count):
                tail += _varlen(max(end, at) - at) + bytes((0x80 | channel, note, 0))
                at = max(end, at)
        tail += _varlen(max(end, at) - at) + b"\xff\x2f\x00"
        body = bytes(self.data) + bytes(tail)
        return b"MTrk" + len(body).to_bytes(4, "big") + body


class SessionRecorder:
    """Records one session (see the module's description). :meth:`played` is for the input
    thread, the scheduler appends to :attr:`sent`; the rest belongs to the engine thread."""

    def __init__(self, folder: str | Path, meter: Meter, *, stamp: datetime | None = None,
                 settle: float = SETTLE) -> None:
        self.folder = Path(folder).expanduser()
        self.meter = meter
        self.stamp = stamp
        self.settle = settle
        self.path: Path | None = None  # the file, once created
        self.writes = 0  # files written (the first included)
        self.failed = False  # the last write failed
        self.sent: deque[tuple[mido.Message, float]] = deque()  # the scheduler's sent_log
        self._played: deque[tuple[mido.Message, float]] = deque()
        self._map: TempoMap | None = None
        self._bpm = 120.0  # the tempo at the start (the file's until the clock has a phase)
        self._conductor = _Track(None)
        self._tracks = {"player": _Track("player"), "jam": _Track("jam")}
        self._due: float | None = None  # when the next write is due
        self._cond = threading.Condition()
        self._pending: bytes | None = None  # the latest file, for the writer thread
        self._closing = False
        self._writer: threading.Thread | None = None

    # --- input thread ----------------------------------------------------------------------

    def played(self, message: mido.Message, when: float) -> None:
        """An input message from the player, with its arrival time."""
        if message.type in RECORDED:
            self._played.append((message, when))

    # --- engine thread ---------------------------------------------------------------------

    def start(self, scheduler: Any, clock: Clock, now: float) -> bool:
        """Create the file (the name it gets is never an existing file's) and have
        ``scheduler`` log what it sends; False (and one warning) if the folder cannot be
        written: recording is then off."""
        self._bpm = clock.bpm
        self._conductor = self._conductor_track(self._bpm)
        try:
            self.path = self._create(self._file_bytes(0))
        except (OSError, JamError) as err:
            log.warning("recording off: cannot write a file in %s (%s)", self.folder,
                        _reason(err))
            return False
        self.writes = 1
        scheduler.sent_log = self.sent
        self._writer = threading.Thread(target=self._write_loop, name="jam-recorder",
                                        daemon=True)
        self._writer.start()
        log.info("recording to %s", self.path)
        return True

    @property
    def active(self) -> bool:
        return self._writer is not None

    def boundary(self, now: float) -> None:
        """A phrase ended: write the file :attr:`settle` seconds from now."""
        if self.active and self._due is None:
            self._due = now + self.settle

    def follow(self, clock: Clock, now: float) -> None:
        """Note the tempo jam plays at (cheap; every poll)."""
        if not self.active:
            return
        tempo_map = self._map
        if tempo_map is None:
            if clock.anchored:
                self._begin(clock, now)
            return
        if abs(clock.bpm / tempo_map.bpm - 1.0) > TEMPO_CHANGE:
            change = tempo_map.change(now, clock.bpm)
            if change is not None:
                self._conductor.add(change[0], _set_tempo(change[1]))

    def poll(self, now: float) -> float | None:
        """Write if a write is due; returns when the next one is due (None: none)."""
        if self._due is not None and now >= self._due:
            self._due = None
            self._hand_over(now)
        return self._due

    def close(self, now: float | None = None, timeout: float = 5.0) -> None:
        """Write the file a last time and wait for the writer (shutdown)."""
        if not self.active:
            return
        self._hand_over(time.monotonic() if now is None else now)
        with self._cond:
            self._closing = True
            self._cond.notify()
        assert self._writer is not None
        self._writer.join(timeout)

    # --- encoding --------------------------------------------------------------------------

    def _begin(self, clock: Clock, now: float) -> None:
        """The tempo map starts on the clock's last downbeat at or before the first
        event (or now)."""
        bar = clock.meter.bar_ticks * clock.tick_seconds
        origin = clock.seconds(0)
        start = origin + math.floor((self._first(now) - origin) / bar + 1e-9) * bar
        self._map = TempoMap(start, clock.bpm)
        self._conductor = self._conductor_track(clock.bpm)

    def _first(self, now: float) -> float:
        """The time of the first event not yet converted, or ``now``."""
        return min([now] + [queue[0][1] for queue in (self._played, self.sent) if queue])

    def _conductor_track(self, bpm: float) -> _Track:
        track = _Track(None)
        track.add(0, _time_signature(self.meter))
        track.add(0, _set_tempo(tempo_of(bpm)))
        return track

    def _convert(self, now: float) -> int:
        """Move the queued events into the tracks; returns the file tick of ``now``."""
        if self._map is None:  # the clock has no phase yet (no note): the file starts here
            self._map = TempoMap(self._first(now), self._bpm)
        tick = self._map.tick
        for queue, track in ((self._played, self._tracks["player"]),
                             (self.sent, self._tracks["jam"])):
            while queue:
                message, when = queue.popleft()
                if message.type in RECORDED:
                    track.add_message(tick(when), bytes(message.bytes()))
        return tick(now)

    def _file_bytes(self, end: int) -> bytes:
        tracks = [self._conductor, self._tracks["player"], self._tracks["jam"]]
        end = max([end] + [track.tick for track in tracks])
        header = (b"MThd" + (6).to_bytes(4, "big") + (1).to_bytes(2, "big")
                  + len(tracks).to_bytes(2, "big") + FILE_TICKS_PER_BEAT.to_bytes(2, "big"))
        return header + b"".join(track.chunk(end) for track in tracks)

    def _hand_over(self, now: float) -> None:
        data = self._file_bytes(self._convert(now))
        with self._cond:
            self._pending = data
            self._cond.notify()

    # --- files -----------------------------------------------------------------------------

    def _create(self, data: bytes) -> Path:
        if not self.folder.is_dir():
            raise JamError("no such folder" if not self.folder.exists() else "not a folder")
        stamp = (self.stamp or datetime.now()).strftime("%Y%m%d-%H%M%S")
        for suffix in range(1, MAX_SUFFIX + 1):
            name = f"jam-{stamp}.mid" if suffix == 1 else f"jam-{stamp}-{suffix}.mid"
            path = self.folder / name
            if path.exists():
                continue
            try:
                return atomic_write_bytes(path, data, overwrite=False)
            except JamError:
                if not path.exists():
                    raise
        raise JamError(f"{MAX_SUFFIX} files named jam-{stamp}*.mid exist")

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closing:
                    self._cond.wait()
                data, self._pending = self._pending, None
                closing = self._closing
            if data is not None:
                self._write(data)
            if closing and data is None:
                return

    def _write(self, data: bytes) -> None:
        assert self.path is not None
        try:
            atomic_write_bytes(self.path, data, overwrite=True)
        except (OSError, JamError) as err:
            if not self.failed:
                self.failed = True
                log.warning("recording: cannot write %s (%s); jam plays on and tries again "
                            "after the next phrase", self.path, _reason(err))
            return
        self.writes += 1
        if self.failed:
            self.failed = False
            log.info("recording: %s written again", self.path)


def _reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err)
