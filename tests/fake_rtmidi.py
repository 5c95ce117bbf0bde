"""A stand-in for the ``rtmidi`` module (python-rtmidi) on an ALSA sequencer, for tests on
machines without ``/dev/snd/seq``. Test double of a library that is not ours.

It has the interface jam and mido's rtmidi backend use: ``MidiIn`` / ``MidiOut`` with
``get_ports``, ``open_port``, ``open_virtual_port``, ``ignore_types``, ``set_callback``,
``cancel_callback``, ``get_message``, ``send_message``, ``close_port``, ``delete``,
``get_current_api``, ``is_port_open``; ``get_compiled_api``, the ``API_*`` constants (the
real module's values) and ``RtMidiError``. What it models of ALSA and RtMidi's ALSA input:

- ports are named ``client:port NN:N`` (``USB Keyboard:USB Keyboard MIDI 1 20:0``) and a
  virtual port appears as ``CLIENT:NAME 128:N`` to the others;
- the sequencer delivers whole messages, one event each, to a connected input's callback
  on a thread of its own (RtMidi's ALSA input thread), with the delta time; a port that
  was never given a callback queues them for ``get_message``;
- ``ignore_types`` filters as RtMidi does: sysex (F0), timing (F1 quarter frame, F8 clock)
  and active sensing (FE); all three are ignored until it is called;
- a device can be unplugged (its port leaves the lists; a connected input hears nothing
  more) and plugged in again under new client numbers.

:class:`Sequencer` is the ALSA system: the test makes devices (:meth:`Sequencer.device`),
plays through them (:meth:`Device.play`) and reads what reached them (:attr:`Device.got`).
:func:`module` makes a fresh module object around one sequencer.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
import types
from typing import Any, Callable

import rtmidi as _real

API_UNSPECIFIED = _real.API_UNSPECIFIED
API_LINUX_ALSA = _real.API_LINUX_ALSA
API_UNIX_JACK = _real.API_UNIX_JACK
API_MACOSX_CORE = _real.API_MACOSX_CORE
API_WINDOWS_MM = _real.API_WINDOWS_MM
API_RTMIDI_DUMMY = getattr(_real, "API_RTMIDI_DUMMY", 5)


class RtMidiError(Exception):
    """The fake's RtMidiError (jam catches the module's own class)."""

    def __init__(self, message: str, type: int = 0) -> None:
        super().__init__(message)
        self.type = type


class Device:
    """A MIDI device (or a program's port) on the sequencer: ``kind`` "output" (jam can read
    from it: a keyboard) or "input" (jam can send to it: a synth)."""

    def __init__(self, sequencer: Sequencer, client: str, port: str, kind: str,
                 number: int) -> None:
        self.sequencer = sequencer
        self.client, self.port, self.kind, self.number = client, port, kind, number
        self.got: list[tuple[float, list[int]]] = []  # (time.monotonic(), bytes) received
        self.plugged = True

    @property
    def name(self) -> str:
        return f"{self.client}:{self.port} {self.number}:0"

    def play(self, data: list[int]) -> int:
        """Send ``data`` (one message) to every input connected to this device; how many
        inputs took it (the delivery itself happens on their threads)."""
        return sum(listener.deliver(data) for listener in self.sequencer.listeners(self))

    def unplug(self) -> None:
        self.plugged = False

    def plug_in(self, number: int | None = None) -> None:
        """Back, under client number ``number`` (a new one by default, as after a replug)."""
        self.number = self.sequencer.next_number() if number is None else number
        self.plugged = True


class Sequencer:
    """The ALSA sequencer: its devices and the rtmidi ports opened on it."""

    def __init__(self) -> None:
        self.devices: list[Device] = []
        self.ports: list[_Port] = []  # MidiIn/MidiOut objects ever made
        self._numbers = itertools.count(20)
        self.lock = threading.Lock()
        self.fail_next_client: Exception | None = None  # raised by the next MidiIn/MidiOut
        self.refuse_open = False  # open_port raises RtMidiError

    def next_number(self) -> int:
        return next(self._numbers)

    def device(self, client: str, port: str, kind: str) -> Device:
        device = Device(self, client, port, kind, self.next_number())
        self.devices.append(device)
        return device

    def listed(self, kind: str) -> list[Any]:
        """What a MidiIn (``kind`` "input": the others' outputs) or MidiOut lists."""
        with self.lock:
            found: list[Any] = [d for d in self.devices if d.plugged and d.kind ==
                                ("output" if kind == "input" else "input")]
            found += [p for p in self.ports if p.virtual_name is not None and p.kind != kind
                      and not p.deleted]
        return found

    def listeners(self, device: Device) -> list[MidiIn]:
        with self.lock:
            return [p for p in self.ports if isinstance(p, MidiIn) and p.source is device
                    and p.is_port_open()]


class _Port:
    kind = ""

    def __init__(self, sequencer: Sequencer, rtapi: int = API_UNSPECIFIED,
                 name: str | None = None) -> None:
        if sequencer.fail_next_client is not None:
            error, sequencer.fail_next_client = sequencer.fail_next_client, None
            raise error
        self.sequencer = sequencer
        self.api = API_LINUX_ALSA if rtapi == API_UNSPECIFIED else rtapi
        if self.api != API_LINUX_ALSA:
            raise RtMidiError(f"API {rtapi} not compiled in")
        self.client_name = name or ("RtMidiIn Client" if self.kind == "input"
                                    else "RtMidiOut Client")
        self.calls: list[tuple] = []  # (method, args) in order, for the test to check
        self.source: Device | None = None  # the device an input is connected to
        self.virtual_name: str | None = None
        self.number = sequencer.next_number()
        self.deleted = False
        self._open = False
        with sequencer.lock:
            sequencer.ports.append(self)

    @property
    def name(self) -> str:  # as other clients list a virtual port
        return f"{self.client_name}:{self.virtual_name} {self.number}:0"

    def get_current_api(self) -> int:
        return self.api

    def get_ports(self) -> list[str]:
        self._check()
        return [item.name for item in self.sequencer.listed(self.kind)]

    def get_port_count(self) -> int:
        return len(self.get_ports())

    def open_port(self, port: int = 0, name: str | None = None) -> _Port:
        self._check()
        self.calls.append(("open_port", port))
        if self._open:
            raise RtMidiError("a port is already open")
        listed = self.sequencer.listed(self.kind)
        if not 0 <= port < len(listed):
            raise RtMidiError(f"invalid port number {port}", type=2)
        if self.sequencer.refuse_open:
            raise RtMidiError("error creating ALSA sequencer port subscription", type=9)
        self._connect(listed[port])
        self._open = True
        return self

    def open_virtual_port(self, name: str | None = None) -> _Port:
        self._check()
        self.calls.append(("open_virtual_port", name))
        self.virtual_name = name or "RtMidi virtual port"
        self._open = True
        return self

    def is_port_open(self) -> bool:
        return self._open and not self.deleted and (self.source is None or self.source.plugged)

    def close_port(self) -> None:
        self.calls.append(("close_port",))
        self._open = False
        self.source = None

    def delete(self) -> None:
        self.calls.append(("delete",))
        self._open = False
        self.deleted = True

    def _connect(self, target: Any) -> None:
        pass

    def _check(self) -> None:
        if self.deleted:
            raise RuntimeError("the rtmidi object was deleted")  # python-rtmidi segfaults


class MidiIn(_Port):
    kind = "input"

    def __init__(self, sequencer: Sequencer, rtapi: int = API_UNSPECIFIED,
                 name: str | None = None, queue_size_limit: int = 1024) -> None:
        super().__init__(sequencer, rtapi, name)
        self.queue_size_limit = queue_size_limit
        self.ignoring = {"sysex": True, "timing": True, "active_sense": True}
        self._callback: tuple[Callable, Any] | None = None
        self._events: queue.Queue = queue.Queue()
        self._queue: queue.Queue = queue.Queue()  # for get_message
        self._last = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="alsa-in", daemon=True)
        self._thread.start()

    def ignore_types(self, sysex: bool = True, timing: bool = True,
                     active_sense: bool = True) -> None:
        self.calls.append(("ignore_types", sysex, timing, active_sense))
        self.ignoring = {"sysex": sysex, "timing": timing, "active_sense": active_sense}

    def set_callback(self, func: Callable, data: Any = None) -> None:
        self.calls.append(("set_callback",))
        if self._callback is not None:
            raise RtMidiError("a callback function is already set")
        self._callback = (func, data)

    def cancel_callback(self) -> None:
        self.calls.append(("cancel_callback",))
        self._callback = None

    def get_message(self) -> tuple[list[int], float] | None:
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return None

    def _connect(self, target: Any) -> None:
        self.source = target

    def deliver(self, data: list[int]) -> bool:
        """The sequencer hands this input one message (False: filtered out, as RtMidi's
        ALSA input does with the ignore flags)."""
        first = data[0]
        if (first == 0xF0 and self.ignoring["sysex"]
                or first in (0xF1, 0xF8) and self.ignoring["timing"]
                or first == 0xFE and self.ignoring["active_sense"]):
            return False
        self._events.put(list(data))
        return True

    def _run(self) -> None:  # RtMidi's ALSA input thread
        while not self.deleted:
            try:
                data = self._events.get(timeout=0.05)
            except queue.Empty:
                continue
            now = time.monotonic()
            event = (data, now - self._last)
            self._last = now
            callback = self._callback
            if callback is not None:
                callback[0](event, callback[1])
            elif self._queue.qsize() < self.queue_size_limit:
                self._queue.put(event)


class MidiOut(_Port):
    kind = "output"

    def _connect(self, target: Any) -> None:
        self.source = target  # the device it sends to

    def send_message(self, message: Any) -> None:
        data = list(message)
        if not data or len(data) > 3 and data[0] != 0xF0:
            raise ValueError("'message' must not be empty, or be a sysex if longer than 3")
        if not self._open:
            return  # RtMidi sends nothing (and says so as a warning)
        target = self.source
        if isinstance(target, Device):
            if target.plugged:
                target.got.append((time.monotonic(), data))
        elif isinstance(target, MidiIn):  # another program's virtual input
            if target.is_port_open():
                target.deliver(data)
        elif target is None and self.virtual_name is not None:
            for port in self.sequencer.ports:  # inputs connected to this virtual port
                if isinstance(port, MidiIn) and port.source is self and port.is_port_open():
                    port.deliver(data)


def module(sequencer: Sequencer | None = None) -> types.ModuleType:
    """A fresh ``rtmidi`` stand-in on ``sequencer`` (a new one by default, as
    ``module.sequencer``)."""
    sequencer = sequencer or Sequencer()
    fake = types.ModuleType("rtmidi")
    fake.sequencer = sequencer
    fake.RtMidiError = RtMidiError
    for name, value in globals().items():
        if name.startswith("API_"):
            setattr(fake, name, value)
    fake.get_compiled_api = lambda: [API_LINUX_ALSA]
    fake.get_api_name = lambda api: "alsa"
    fake.MidiIn = lambda rtapi=API_UNSPECIFIED, name=None, queue_size_limit=1024: MidiIn(
        sequencer, rtapi, name, queue_size_limit)
    fake.MidiOut = lambda rtapi=API_UNSPECIFIED, name=None: MidiOut(sequencer, rtapi, name)
    return fake
