"""The one thread that sends MIDI: absolute deadlines, note tracking, cancel and panic.

Other threads hand it timed events; it owns the output port and the
:class:`~jam.midi.tracker.NoteTracker` (each sounding note with the tag it was sent under),
so nothing else ever sends. Usage::

    scheduler = Scheduler(port, on_error=fail)
    scheduler.start()                       # thread up; scheduler.realtime says the policy
    scheduler.send_at(time.monotonic() + 0.5, note_on, tag=answer_id)
    scheduler.schedule([(t1, msg1), (t2, msg2)], tag=answer_id)   # one lock for many
    scheduler.cancel(answer_id)             # barge-in: drop its pending events, end its notes
    scheduler.panic()                       # drop everything, silence everything
    scheduler.close()                       # panic, then stop the thread (port stays open)

Deadlines are ``time.monotonic()`` seconds (or the injected ``clock``). The thread sleeps
until ``spin`` seconds before the next deadline, then spins to it and sends. An event sent
more than ``late_after`` seconds after its deadline counts as late (:meth:`stats`).
Events with equal deadlines go out in the order they were given.

A message is a mido message or its bytes (a tuple, list or bytes, status byte first, as
:meth:`mido.Message.bytes` gives them). Either way its bytes are made by the thread that
schedules it, so the sending thread only sends: to a port of mido's rtmidi backend it
calls python-rtmidi's ``send_message`` with them (the port's ``_rt``), skipping mido;
to any other port (a test double) it calls ``port.send`` with a mido message. The note
tracker reads the bytes too.

A port that goes away (a pulled cable) never stops the thread: :meth:`replace_port` with
None drops every message from then on, a send that raises is dropped too, both counted
(``dropped`` in :meth:`stats`), and a dropped message does not change the note tracker, so
:meth:`replace_port` with the device's new port first sends it the panic for what was
sounding. :meth:`healthy` tells a watchdog whether the thread is alive and turning (it
stamps a heartbeat on each turn of its loop).

A second port, ``clock_port`` (MIDI clock out), gets the events scheduled with
``port=scheduler.clock_port``: they do not touch the note tracker, :meth:`withdraw` takes
back the pending ones of a tag, :meth:`panic` keeps them, and :meth:`close` sends Stop
there if anything was sent there. ``sent_log``, when it is set to a deque, gets
``(message, send time)`` for each message sent to ``port`` (what the recorder writes).

Garbage collection (``collect_garbage=True``, as jam runs it): Python's collector runs in
whichever thread allocates when a count crosses its threshold, holding the GIL for 30-300
us (the youngest generation) up to 10 ms and more (the oldest), so a collection in the
engine thread held up sends. With this option :meth:`start` collects once, freezes what
exists (:func:`gc.freeze`: the modules and the model are never scanned again) and turns
automatic collection off; this thread then collects as the automatic policy would, but
only when nothing is due within :data:`GC_QUIET` (or when far past the threshold), and
looks at least every :data:`GC_EVERY` seconds while idle. :meth:`close` turns automatic
collection back on.

For tests, :meth:`run_due` does one pass of the thread's work at a given time without a
thread (with a fake clock and a dummy port that has ``send``).
"""

from __future__ import annotations

import gc
import heapq
import itertools
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterable, Sequence

import mido

from jam.midi.tracker import NoteTracker, note_offs, panic_sequence

log = logging.getLogger(__name__)

REALTIME_PRIORITY = 50
LATE_AFTER = 0.001  # s after its deadline: an event sent later counts as late
STUCK_AFTER = 1.0  # s: due work waiting this long with no turn of the loop means stuck
SPIN = 0.001  # s before a deadline: the thread stops sleeping and spins to it
GC_QUIET = 0.02  # s: with collect_garbage, collect only when nothing is due this soon
GC_EVERY = 1.0  # s: with collect_garbage, the idle thread still looks this often
GC_OVERDUE = 10  # x the youngest generation's threshold: collect even when something is due

_CANCEL = "cancel"
_PANIC = "panic"
_SILENCE = "silence"  # the panic sequence on a new port; pending events stay
_CLOCK_STOP = "clock stop"  # MIDI Stop on the clock port (at close)


Message = mido.Message
Bytes = Sequence[int]  # a message's bytes: tuple, list or bytes, status byte first
STOP = (0xFC,)  # MIDI Stop (system real-time)


def raw_sender(port: Any) -> Callable[[Bytes], None] | None:
    """python-rtmidi's ``send_message`` behind a port of mido's rtmidi backend (its
    ``_rt``), else None (the port is sent mido messages with ``port.send``)."""
    if port is None or not type(port).__module__.startswith("mido.backends.rtmidi"):
        return None
    return getattr(getattr(port, "_rt", None), "send_message", None)


@dataclass(frozen=True)
class SchedulerStats:
    """Counters since start: messages sent, how many late, the worst lateness (s), the
    recent lateness samples (s) when ``keep_lateness`` > 0, and the messages dropped
    because the port was gone or its send failed."""

    sent: int
    late: int
    max_lateness: float
    lateness: tuple[float, ...]
    dropped: int = 0


class Scheduler:
    """Owns ``port`` (anything with ``send(message)``) and sends at absolute deadlines."""

    def __init__(self, port: Any, *, clock: Callable[[], float] = time.monotonic,
                 spin: float = SPIN, late_after: float = LATE_AFTER, keep_lateness: int = 0,
                 realtime: bool = True, clock_port: Any = None,
                 on_error: Callable[[BaseException], None] | None = None,
                 collect_garbage: bool = False) -> None:
        self.port = port
        self.clock_port = clock_port
        self.collect_garbage = collect_garbage
        self._gc_was_enabled: bool | None = None  # gc.isenabled() when start() took over
        self.collections = 0  # garbage collections this thread ran (collect_garbage)
        self._raw = raw_sender(port)  # python-rtmidi's send_message of the port, if it has one
        self._raw_clock = raw_sender(clock_port)
        self.sent_log: deque[tuple[mido.Message, float]] | None = None
        self._clock_sent = False  # something went to the clock port (Stop at close)
        self.tracker = NoteTracker()
        self.realtime = "not started"
        self._clock = clock
        self._spin = spin
        self._late_after = late_after
        self._want_realtime = realtime
        self._on_error = on_error
        self._cond = threading.Condition()
        # (deadline, order, bytes, tag, port (None: the output), the mido message or None)
        self._heap: list[tuple[float, int, Bytes, Hashable | None, Any, Message | None]] = []
        # the events taken off the heap for the deadline the thread is spinning to, and
        # that deadline: cancel, withdraw and panic drop from them too, and bump _version
        # (as does an earlier event scheduled meanwhile) so the thread puts them back
        self._due: list[tuple[float, int, Bytes, Hashable | None, Any, Message | None]] = []
        self._spinning_to: float | None = None
        self._version = 0
        self._order = itertools.count()
        self._commands: deque[tuple[str, Hashable | None]] = deque()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._sent = 0
        self._late = 0
        self._max_lateness = 0.0
        self._lateness: deque[float] = deque(maxlen=keep_lateness or None)
        self._keep_lateness = keep_lateness > 0
        self._port_lock = threading.Lock()  # held around each send and by replace_port
        self._dropped = 0
        self._send_failed = False  # a send raised since the last replace_port (logged once)
        self._beat = clock()  # the thread's heartbeat: clock() at its last turn
        self._sending_since: float | None = None  # clock() when the send in progress began

    # --- any thread -------------------------------------------------------------------

    def send_at(self, deadline: float, message: Message | Bytes,
                tag: Hashable | None = None) -> None:
        """Send ``message`` at ``deadline``; ``tag`` groups events for :meth:`cancel`."""
        self.schedule(((deadline, message),), tag)

    def send_now(self, message: Message | Bytes, tag: Hashable | None = None) -> None:
        self.schedule(((self._clock(), message),), tag)

    def schedule(self, events: Iterable[tuple[float, Message | Bytes]],
                 tag: Hashable | None = None, port: Any = None) -> None:
        """Queue several (deadline, message) events under one tag; a message is a mido
        message or its bytes; ``port`` None: the output port, else :attr:`clock_port`."""
        queued = []
        for deadline, message in events:  # the bytes are made here, not in the sending thread
            to_bytes = getattr(message, "bytes", None)
            if to_bytes is None:
                queued.append((deadline, message, None))
            else:
                queued.append((deadline, to_bytes(), message))
        with self._cond:
            for deadline, data, message in queued:
                heapq.heappush(self._heap, (deadline, next(self._order), data, tag, port,
                                            message))
                if self._spinning_to is not None and deadline < self._spinning_to:
                    self._version += 1  # due before what the thread is about to send
            self._cond.notify()

    def cancel(self, tag: Hashable) -> None:
        """Drop the pending events of ``tag`` now; its sounding notes get note-offs next."""
        with self._cond:
            kept = [event for event in self._heap if event[3] != tag]
            if len(kept) != len(self._heap):
                heapq.heapify(kept)
                self._heap[:] = kept
            self._due = [event for event in self._due if event[3] != tag]
            self._version += 1
            self._commands.append((_CANCEL, tag))
            self._cond.notify()

    def withdraw(self, tag: Hashable) -> int:
        """Drop the pending events of ``tag`` (nothing else happens); how many there were."""
        with self._cond:
            kept = [event for event in self._heap if event[3] != tag]
            dropped = len(self._heap) - len(kept)
            if dropped:
                heapq.heapify(kept)
                self._heap[:] = kept
            due = [event for event in self._due if event[3] != tag]
            if len(due) != len(self._due):
                dropped += len(self._due) - len(due)
                self._due = due
                self._version += 1
            return dropped

    def panic(self) -> None:
        """Drop all pending events but the clock port's; note-offs for all sounding notes,
        then CC64=0, CC123 and CC120 on the channels used (see
        :func:`jam.midi.tracker.panic_sequence`)."""
        with self._cond:
            self._heap[:] = [event for event in self._heap if event[4] is not None]
            heapq.heapify(self._heap)
            self._due = [event for event in self._due if event[4] is not None]
            self._version += 1
            self._commands.append((_PANIC, None))
            self._cond.notify()

    def replace_port(self, port: Any | None) -> None:
        """Send to ``port`` from now on (None: drop and count every message until a port
        is given). Once this returns, the old port is out of use and may be closed. A new
        port first gets the panic sequence for what the tracker holds (note-offs for the
        notes sounding when the old port went, resets on the channels used); pending
        events stay and go to the new port."""
        with self._cond:
            with self._port_lock:
                self.port = port
                self._raw = raw_sender(port)
                self._send_failed = False
            if port is not None:
                self._commands.append((_SILENCE, None))
                self._version += 1  # the panic for the new port goes before anything else
                self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def stats(self) -> SchedulerStats:
        with self._cond:
            return SchedulerStats(self._sent, self._late, self._max_lateness,
                                  tuple(self._lateness), self._dropped)

    def healthy(self, now: float | None = None, stuck_after: float = STUCK_AFTER) -> bool:
        """Whether the thread is alive and not stuck: stuck means a send has been in
        progress for ``stuck_after`` seconds, or work has been due that long while the
        loop did not turn (a cheap check for a watchdog; any thread)."""
        if self._thread is None or not self._thread.is_alive():
            return False
        now = self._clock() if now is None else now
        sending = self._sending_since
        if sending is not None and now - sending > stuck_after:
            return False
        if now - self._beat <= stuck_after:
            return True
        with self._cond:
            due = bool(self._commands) or bool(self._heap) and self._heap[0][0] < now - stuck_after
        return not due

    def start(self) -> None:
        """Start the thread and wait until it has set its scheduling policy."""
        if self.collect_garbage:
            gc.collect()
            gc.freeze()
            self._gc_was_enabled = gc.isenabled()
            gc.disable()
        started = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(started,),
                                        name="jam-scheduler", daemon=True)
        self._thread.start()
        started.wait()

    def close(self, panic: bool = True, timeout: float = 2.0) -> None:
        """Drop pending events, panic (unless ``panic`` is False) and stop the thread.
        Without a running thread the panic is sent by the caller."""
        with self._cond:
            self._heap.clear()
            self._due = []
            self._version += 1
            if panic:
                self._commands.append((_PANIC, None))
            self._commands.append((_CLOCK_STOP, None))
            self._stopping = True
            self._cond.notify()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout)
        else:
            self.run_due(self._clock())
        if self._gc_was_enabled is not None:
            if self._gc_was_enabled:
                gc.enable()
            self._gc_was_enabled = None
        if self._thread is None or not self._thread.is_alive():
            # let go of python-rtmidi's objects: mido deletes a virtual port's with the port
            self._raw = self._raw_clock = None

    # --- the scheduler thread -----------------------------------------------------------

    def run_due(self, now: float) -> float | None:
        """Run queued commands, send every event due at ``now``; return the next deadline
        (None when nothing is pending)."""
        while True:
            with self._cond:
                if not self._commands:
                    break
                command, tag = self._commands.popleft()
            if command == _PANIC or command == _SILENCE:
                for message in panic_sequence(self.tracker):
                    self._send(message.bytes(), message)
                self.tracker.clear()
            elif command == _CLOCK_STOP:
                if self._clock_sent:
                    self._send(STOP, None, to=self.clock_port)
            else:
                for message in note_offs(self.tracker.owned_by(tag)):
                    self._send(message.bytes(), message)
        heap = self._heap
        while True:
            with self._cond:
                if not heap or heap[0][0] > now:
                    return heap[0][0] if heap else None
                deadline, _, data, tag, to, message = heapq.heappop(heap)
            self._send(data, message, tag, deadline, to)

    def _send(self, data: Bytes, message: Message | None, tag: Hashable | None = None,
              deadline: float | None = None, to: Any = None) -> None:
        now = self._clock()
        with self._port_lock:
            port = self.port if to is None else to
            if port is None:
                self._dropped += 1
                return
            self._sending_since = now
            try:
                raw = self._raw if to is None else self._raw_clock
                if raw is not None:
                    raw(data)
                else:
                    port.send(message if message is not None else mido.Message.from_bytes(data))
            except Exception as err:  # noqa: BLE001 - a port that went away never stops us
                self._dropped += 1
                if not self._send_failed:
                    self._send_failed = True
                    log.warning("output '%s': send failed (%s); dropping messages until it "
                                "works again", getattr(port, "name", port), err)
                return
            finally:
                self._sending_since = None
        if to is None:
            self.tracker.update_bytes(data, tag)
            if self.sent_log is not None:
                self.sent_log.append((message if message is not None
                                      else mido.Message.from_bytes(data), now))
        else:
            self._clock_sent = True
        self._sent += 1
        if deadline is not None:
            lateness = now - deadline
            if lateness > self._late_after:
                self._late += 1
            if lateness > self._max_lateness:
                self._max_lateness = lateness
            if self._keep_lateness:
                self._lateness.append(lateness)

    def _collect(self, now: float) -> None:
        """Collect garbage as the automatic policy would (the oldest generation whose count
        is past its threshold), if the youngest's count is past its threshold and nothing
        is due within :data:`GC_QUIET`, or whenever it is :data:`GC_OVERDUE` times past."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        if counts[0] <= thresholds[0]:
            return
        with self._cond:
            quiet = not self._heap or self._heap[0][0] - now > GC_QUIET
        if not quiet and counts[0] <= GC_OVERDUE * thresholds[0]:
            return
        generation = 0
        for older in (2, 1) if quiet else ():  # overdue, not quiet: the youngest only
            if counts[older] > thresholds[older]:
                generation = older
                break
        gc.collect(generation)
        self.collections += 1

    def _set_realtime(self) -> str:
        if not self._want_realtime:
            return "normal scheduling (real-time not requested)"
        try:
            os.sched_setscheduler(threading.get_native_id(), os.SCHED_FIFO,
                                  os.sched_param(REALTIME_PRIORITY))
        except (AttributeError, OSError) as err:  # not Linux, or not permitted
            reason = getattr(err, "strerror", None) or "not supported here"
            return f"normal scheduling (SCHED_FIFO refused: {reason})"
        return f"SCHED_FIFO priority {REALTIME_PRIORITY}"

    def _main(self, started: threading.Event) -> None:
        self.realtime = self._set_realtime()
        started.set()
        try:
            self._loop()
        except BaseException as err:  # noqa: BLE001 - reported to the owner, never lost
            if self._on_error is None:
                raise
            self._on_error(err)

    def _loop(self) -> None:
        """Sleep until ``spin`` before the next deadline, take its events off the heap,
        spin to it and send them with no lock but the port's: a thread scheduling,
        cancelling or reading stats holds the heap's lock only briefly, but a lock it holds
        while it waits for the GIL (or a CPU) would stall the send behind it. What the
        other threads change meanwhile (a cancel, a panic, an earlier event) bumps
        ``_version``, and the events go back on the heap for :meth:`run_due`."""
        clock, cond, heap, spin = self._clock, self._cond, self._heap, self._spin
        collect = self.collect_garbage
        while True:
            self._beat = clock()
            if collect:
                self._collect(clock())
            due = None
            with cond:
                self._due, self._spinning_to = [], None
                while not self._commands and not self._stopping:
                    if not heap:
                        if not collect:
                            cond.wait()
                            continue
                        cond.wait(GC_EVERY)
                        break  # look at the garbage, then wait again
                    wait = heap[0][0] - clock() - spin
                    if wait <= 0:
                        break
                    if collect and wait > GC_QUIET and gc.get_count()[0] > gc.get_threshold()[0]:
                        break  # time to collect before this deadline
                    cond.wait(wait)
                stopping = self._stopping
                if heap and not self._commands and not stopping and heap[0][0] - clock() <= spin:
                    deadline = heap[0][0]
                    due = []
                    while heap and heap[0][0] <= deadline:
                        due.append(heapq.heappop(heap))
                    self._due, self._spinning_to, version = due, deadline, self._version
            if due is not None:
                while clock() < deadline:  # the last ~spin seconds: no sleep granularity
                    pass
                if self._version == version:
                    for _, _, data, tag, to, message in due:
                        self._send(data, message, tag, deadline, to)
                else:
                    with cond:
                        for event in self._due:
                            heapq.heappush(heap, event)
                        self._due, self._spinning_to = [], None
            self.run_due(clock())
            if stopping:
                return
