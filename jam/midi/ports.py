"""MIDI ports: API choice, listing, opening by name or substring, virtual ports, and the
decoding of input.

Built on python-rtmidi. :class:`MidiSystem` holds the public methods and their checks (name
matching, virtual-port support, one-line :class:`JamError` messages); :class:`RtMidiSystem`
does the I/O. Outputs are mido ports (mido's rtmidi backend). Inputs are our own
(:class:`PipedInput` for JACK, :class:`CallbackInput` for the other APIs, and
:class:`PolledInput`, which reads rtmidi's queue): each hands every event rtmidi delivers to
an :class:`InputDecoder` (:func:`decode_event`), which never raises,
so no input can stop jam; bytes that form no message are dropped and counted (``dropped``,
and a debug log line each). :func:`choose_api`, :func:`match_port`, :func:`decode_event` and
:class:`InputDecoder` need no MIDI system.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

import mido

from jam.errors import JamError
from jam.midi.jack_input import RECORD

log = logging.getLogger(__name__)

# our API names -> rtmidi API names (rtmidi.API_<name>; mido's rtmidi backend spells them so)
RTMIDI_APIS = {"alsa": "LINUX_ALSA", "jack": "UNIX_JACK", "coremidi": "MACOSX_CORE",
               "winmm": "WINDOWS_MM"}
JACK_BACKEND = f"mido.backends.rtmidi/{RTMIDI_APIS['jack']}"  # mido's JACK ports
ALSA_SEQUENCER = Path("/dev/snd/seq")
CLIENT_NAME = "jam"
VIRTUAL_IN = "jam in"
VIRTUAL_OUT = "jam out"
POLL_INTERVAL = 0.0005  # s between looks at rtmidi's queue while input is coming in
IDLE_POLL_INTERVAL = 0.002  # s between looks after IDLE_POLLS empty looks (~1 s of silence)
IDLE_POLLS = 2000
QUEUE_LIMIT = 8192  # messages rtmidi may hold for a PolledInput
OUTPUT_DRAIN = 0.1  # s an output stays open after its last message (see close_output)
JACK_CLOSE_WAIT = 2.0  # s jam waits for the JACK server to close its port-listing client

SYSEX_START, SYSEX_END = 0xF0, 0xF7
# status byte -> message length in bytes, for every status but sysex (its end is F7); the
# undefined F4, F5, F9 and FD (and a stray F7) are missing: such bytes are dropped
LENGTHS = {status: 2 if 0xC0 <= status < 0xE0 else 3 for status in range(0x80, 0xF0)}
LENGTHS.update({0xF1: 2, 0xF2: 3, 0xF3: 2, 0xF6: 1,
                0xF8: 1, 0xFA: 1, 0xFB: 1, 0xFC: 1, 0xFE: 1, 0xFF: 1})

HINTS = {
    "alsa": "load the ALSA sequencer ('sudo modprobe snd-seq') or use --api jack",
    "jack": "start a JACK server (e.g. 'jackd -d alsa &', 'jackd -d dummy &' or qjackctl) "
            "or use --api alsa",
    "coremidi": "check Audio MIDI Setup",
    "winmm": "check that a MIDI driver is installed",
}


CONNECT_HINTS = {  # how a user connects other programs or devices to jam's virtual ports
    "alsa": "'aconnect -l' lists, 'aconnect FROM TO' connects, or use a patchbay",
    "jack": "'jack_lsp' lists, 'jack_connect FROM TO' connects, or use a patchbay",
    "coremidi": "choose it in your program's MIDI settings",
    "winmm": "",
}


def choose_api(requested: str, platform: str = sys.platform,
               alsa_sequencer: bool | None = None) -> str:
    """The API to use: ``requested`` unless "auto", which picks the platform default
    (Linux: ALSA, or JACK when there is no ALSA sequencer device)."""
    if requested != "auto":
        return requested
    if platform.startswith("linux"):
        present = ALSA_SEQUENCER.exists() if alsa_sequencer is None else alsa_sequencer
        return "alsa" if present else "jack"
    if platform == "darwin":
        return "coremidi"
    if platform.startswith(("win", "cygwin")):
        return "winmm"
    return "alsa"


def match_port(query: str, names: Sequence[str], kind: str, flag: str | None = None) -> str:
    """The port in ``names`` equal to ``query``, else the only one containing it
    (case-insensitive). ``kind`` ("input"/"output") and ``flag`` (default ``--in`` or
    ``--out``) word the error."""
    if query in names:
        return query
    hits = [n for n in names if query.lower() in n.lower()]
    if len(hits) == 1:
        return hits[0]
    flag = flag or ("--in" if kind == "input" else "--out")
    if hits:
        listed = ", ".join(repr(n) for n in hits)
        raise JamError(f"{flag} '{query}' matches several MIDI {kind}s: {listed}; "
                       f"give more of the name")
    listed = ", ".join(repr(n) for n in names) if names else "none"
    raise JamError(f"no MIDI {kind} matches {flag} '{query}'; available {kind}s: {listed}")


def decode_event(data: Sequence[int]) -> tuple[list[mido.Message], list[bytes]]:
    """The messages in one event from rtmidi (a list of bytes, 0-255), and the runs of bytes
    between them that form no message (to drop). Never raises.

    An event is normally one complete message; anything else is split like a MIDI byte
    stream: running status, real-time bytes inside other messages, a new status byte ending
    an unfinished message (a truncated note-on, an F1 without its data byte, a sysex without
    F7: rtmidi's JACK input glues events to a sysex until one ends with F7). Each event starts
    afresh: nothing carries over from the previous one."""
    if data:
        status, size = data[0], len(data)
        if status == SYSEX_START:
            whole = size > 1 and data[-1] == SYSEX_END and max(data[1:-1], default=0) < 0x80
        else:
            whole = LENGTHS.get(status) == size and max(data[1:], default=0) < 0x80
        if whole:
            return [mido.Message.from_bytes(data)], []
    return _split(data)


def _split(data: Sequence[int]) -> tuple[list[mido.Message], list[bytes]]:
    """:func:`decode_event` for an event that is not one complete message."""
    messages: list[mido.Message] = []
    dropped: list[bytes] = []
    junk: list[int] = []  # bytes since the last message that belong to none
    current: list[int] = []  # the message being read (status byte first)
    running = 0  # running status: the last channel message's status byte

    def complete(message: list[int]) -> None:
        if junk:
            dropped.append(bytes(junk))
            junk.clear()
        messages.append(mido.Message.from_bytes(message))

    for byte in data:
        if byte >= 0xF8:  # real-time: a message of its own, even inside another one
            if byte in LENGTHS:
                messages.append(mido.Message.from_bytes([byte]))
            else:
                junk.append(byte)
        elif byte >= 0x80:  # a status byte ends what came before it
            if byte == SYSEX_END and current[:1] == [SYSEX_START]:
                current.append(byte)
                complete(current)
                current = []
                continue
            junk.extend(current)
            current = []
            running = byte if byte < 0xF0 else 0
            if LENGTHS.get(byte) == 1:
                complete([byte])
            elif byte in LENGTHS or byte == SYSEX_START:
                current = [byte]
            else:
                junk.append(byte)
        elif current or running:  # a data byte
            if not current:
                current = [running]
            current.append(byte)
            if len(current) == LENGTHS.get(current[0]):
                complete(current)
                current = []
        else:
            junk.append(byte)
    junk.extend(current)
    if junk:
        dropped.append(bytes(junk))
    return messages, dropped


class InputDecoder:
    """Turns an input's events (byte lists from rtmidi) into messages for ``callback``, one
    :meth:`feed` per event (see :func:`decode_event`). ``received`` counts the messages
    handed on. Bytes that form no message are dropped: ``dropped`` counts the runs of them,
    each logged at debug level with ``name``. Every input port reads through one of these."""

    __slots__ = ("name", "received", "dropped", "_callback")

    def __init__(self, callback: Callable[[mido.Message], None], name: str = "input") -> None:
        self.name = name
        self.received = 0
        self.dropped = 0
        self._callback = callback

    def feed(self, data: Sequence[int]) -> None:
        messages, dropped = decode_event(data)
        self.received += len(messages)
        if dropped:
            self.dropped += len(dropped)
            if log.isEnabledFor(logging.DEBUG):
                for junk in dropped:
                    log.debug("input '%s': dropped malformed MIDI bytes %s", self.name,
                              junk.hex(" "))
        for message in messages:
            self._callback(message)


def close_output(port: mido.ports.BaseOutput) -> None:
    """Close an output after :data:`OUTPUT_DRAIN` seconds, so the last messages (the
    panic) reach a receiver that runs a cycle late before the port goes away (JACK)."""
    if not port.closed:
        time.sleep(OUTPUT_DRAIN)
        port.close()


@contextlib.contextmanager
def _explained(kind: str, name: str) -> Iterator[None]:
    """Turn an OSError from opening a port into a one-line JamError."""
    try:
        yield
    except OSError as err:
        raise JamError(f"cannot open MIDI {kind} '{name}': {err}; "
                       f"check it with 'jam ports'") from None


class MidiSystem:
    """One MIDI API. Public methods check and explain; subclasses implement the ``_`` I/O."""

    def __init__(self, api: str) -> None:
        self.api = api

    @property
    def supports_virtual(self) -> bool:
        return self.api != "winmm"

    def input_names(self) -> list[str]:
        """Ports that jam can read from (keyboards, other programs' outputs)."""
        return self._names("input")

    def output_names(self) -> list[str]:
        """Ports that jam can send to (synths, other programs' inputs)."""
        return self._names("output")

    def describe(self) -> str:
        """The port listing printed by ``jam ports``."""
        lines = [f"MIDI API: {self.api}"]
        for kind, flag, names in (("inputs", "--in", self.input_names()),
                                  ("outputs", "--out", self.output_names())):
            lines.append(f"{kind} (use with {flag}):")
            lines.extend(f"  {name}" for name in names or ["(none)"])
        return "\n".join(lines)

    def open_input(self, query: str | None, callback: Callable[[mido.Message], None],
                   flag: str = "--in") -> RtMidiInput:
        """Open the input matching ``query`` (see :func:`match_port`), or the virtual
        port ``jam in`` when ``query`` is None. ``callback`` gets each message; ``flag``
        names the option in errors (a second input: ``--clock-in``)."""
        if query is None:
            self._need_virtual("input", flag)
        name = (VIRTUAL_IN if query is None
                else match_port(query, self.input_names(), "input", flag))
        with _explained("input", name):
            return self._open_input(name, query is None, callback)

    def open_output(self, query: str | None, flag: str = "--out") -> mido.ports.BaseOutput:
        """Open the output matching ``query``, or the virtual port ``jam out`` when None;
        ``flag`` names the option in errors (a second output: ``--clock-out``)."""
        if query is None:
            self._need_virtual("output", flag)
        name = (VIRTUAL_OUT if query is None
                else match_port(query, self.output_names(), "output", flag))
        with _explained("output", name):
            return self._open_output(name, query is None)

    def close(self) -> None:
        """Release what listing ports holds (ports opened stay open)."""

    def __enter__(self) -> MidiSystem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _need_virtual(self, kind: str, flag: str) -> None:
        if not self.supports_virtual:
            raise JamError(f"the {self.api} MIDI API has no virtual ports: name a MIDI "
                           f"{kind} with {flag} (list them with 'jam ports')")

    def _names(self, kind: str) -> list[str]:
        raise NotImplementedError

    def _open_input(self, name: str, virtual: bool,
                    callback: Callable[[mido.Message], None]) -> RtMidiInput:
        raise NotImplementedError

    def _open_output(self, name: str, virtual: bool) -> mido.ports.BaseOutput:
        raise NotImplementedError


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Discard what C libraries (libjack, ALSA) write to fd 2 meanwhile."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "wb") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _rtmidi_api(api: str) -> int:
    import rtmidi

    return getattr(rtmidi, f"API_{RTMIDI_APIS[api]}")


class RtMidiInput:
    """An rtmidi input port that hands ``callback(message)`` every message it receives,
    through an :class:`InputDecoder`; ``received`` counts those messages, ``dropped`` the
    runs of bytes that were no message. Subclasses decide how events are read."""

    def __init__(self, api: str, name: str, virtual: bool,
                 callback: Callable[[mido.Message], None],
                 client_name: str | None = None) -> None:
        import rtmidi

        self.name = name
        self.closed = True
        self._decoder = InputDecoder(callback, name)
        self._rt = rtmidi.MidiIn(_rtmidi_api(api), name=client_name or CLIENT_NAME,
                                 queue_size_limit=QUEUE_LIMIT)
        self._rt.ignore_types(sysex=False, timing=False, active_sense=True)
        try:
            if virtual:
                self._rt.open_virtual_port(name)
            else:
                self._rt.open_port(self._rt.get_ports().index(name))
        except (ValueError, rtmidi.RtMidiError) as err:
            self._rt.delete()
            raise OSError(f"cannot open input {name!r}: {err}") from None
        self.closed = False
        self._start()

    @property
    def dropped(self) -> int:
        return self._decoder.dropped

    @property
    def received(self) -> int:
        """Messages handed to the callback so far."""
        return self._decoder.received

    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._stop()
        self._rt.close_port()
        self._rt.delete()

    def __enter__(self) -> RtMidiInput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CallbackInput(RtMidiInput):
    """Events come through rtmidi's callback, on rtmidi's input thread (ALSA, CoreMIDI,
    WinMM)."""

    def _start(self) -> None:
        self._rt.set_callback(self._on_event)

    def _on_event(self, event: tuple[list[int], float], data: object) -> None:
        self._decoder.feed(event[0])

    def _stop(self) -> None:
        self._rt.cancel_callback()


class PolledInput(RtMidiInput):
    """Events are read by a Python thread from rtmidi's queue; ``callback(message)`` runs on
    that thread.

    jam read JACK input this way before :class:`PipedInput`: with a callback, python-rtmidi
    runs Python code (waiting for the GIL) inside JACK's process callback; when that makes
    the client late, an async JACK server hands it stale or missing events. Measured here
    (2,000 messages through a thru client on a loaded 2-core machine): 5 of 6 runs with
    callbacks received runs of repeated messages, 0 of 5 with polling. Polling keeps JACK's
    thread free of Python, at the cost of up to :data:`POLL_INTERVAL` of added latency
    (:data:`IDLE_POLL_INTERVAL` for the first message after about a second of silence) and
    of a wake-up every one of those intervals, idle or not. Kept as a plain listener.
    """

    def _start(self) -> None:
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="jam-midi-in", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        get, halt, feed = self._rt.get_message, self._halt, self._decoder.feed
        empty = 0
        while not halt.is_set():
            event = get()
            if event is None:
                empty += 1
                time.sleep(POLL_INTERVAL if empty < IDLE_POLLS else IDLE_POLL_INTERVAL)
                continue
            empty = 0
            feed(event[0])

    def _stop(self) -> None:
        self._halt.set()
        if self._thread is not threading.current_thread():
            self._thread.join(1.0)


class PipedInput(RtMidiInput):
    """A JACK input owned by a small process of its own (:mod:`jam.midi.jack_input`, only
    python-rtmidi imported): its rtmidi callback runs in JACK's process thread and writes
    each event to a pipe at once; a thread here blocks on that pipe and hands the events on,
    so ``callback(message)`` runs on that thread.

    Why: a callback in jam's own process waits for the GIL while the engine or the
    scheduler runs Python, and the late client gets repeated or missing events from an
    async JACK server; polling rtmidi's queue instead (:class:`PolledInput`) costs a wake-up
    every 0.5-2 ms, idle or not, and up to that much latency. In the helper process no
    other thread runs Python, so its callback never waits, and nothing polls: an idle input
    costs nothing here. With ``priority`` the reading thread runs SCHED_FIFO at it where
    permitted (:attr:`realtime` says what it got): jam gives it one below the priority of
    a real-time JACK server's client threads (:meth:`JackPorts.client_priority`), so a
    loaded machine does not keep it from running for milliseconds, as it did at normal
    priority, and a flood of input cannot keep JACK's own threads from theirs, as it did
    at priority 45 (an async server then repeated jam's output); with a JACK server that
    is not real-time it stays at normal priority. The helper ends
    when this port closes or jam ends (its stdin closes), whatever signal jam gets. A helper
    that ends by itself is logged once: its port is gone, as an unplugged device's would be.
    """

    HELPER = Path(__file__).with_name("jack_input.py")
    START_TIMEOUT = 10.0  # s for the helper to open its port

    def __init__(self, api: str, name: str, virtual: bool,
                 callback: Callable[[mido.Message], None],
                 client_name: str | None = None, priority: int | None = None) -> None:
        import subprocess

        import rtmidi

        if api != "jack":
            raise ValueError("PipedInput is for JACK only")
        self.name = name
        self.closed = True
        self.lost = 0  # events the helper dropped because this side did not read
        self.priority = priority
        self.realtime = "not started"  # the reading thread's scheduling, once it runs
        self._decoder = InputDecoder(callback, name)
        site = str(Path(rtmidi.__file__).resolve().parent.parent)
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-S", str(self.HELPER), site, client_name or CLIENT_NAME,
             name, "1" if virtual else "0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            close_fds=True)
        assert self._process.stdout is not None and self._process.stderr is not None
        ready = select.select([self._process.stdout], [], [], self.START_TIMEOUT)[0]
        if not ready or self._process.stdout.read(1) != b"R":
            self._end(kill=not ready)
            reason = self._process.stderr.read().decode("utf-8", "replace").strip()
            raise OSError(reason.splitlines()[-1] if reason else
                          f"cannot open input {name!r}: its JACK client did not start")
        self._process.stderr.close()
        self.closed = False
        self._thread = threading.Thread(target=self._read, name="jam-midi-in", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        if self.priority is None:
            self.realtime = "normal scheduling (no priority asked for)"
        else:
            try:
                os.sched_setscheduler(threading.get_native_id(), os.SCHED_FIFO,
                                      os.sched_param(self.priority))
                self.realtime = f"SCHED_FIFO priority {self.priority}"
            except (AttributeError, OSError) as err:  # not Linux, or not permitted
                self.realtime = f"normal scheduling ({getattr(err, 'strerror', None) or err})"
        log.debug("input '%s': reading thread %s", self.name, self.realtime)
        stream, feed, record = self._process.stdout, self._decoder.feed, RECORD
        size = record.size
        while True:
            head = stream.read(size)
            if len(head) < size:
                break
            kind, _, length = record.unpack(head)
            if kind == b"d":
                self.lost += length
                continue
            feed(list(stream.read(length)))
        if not self.closed:
            log.warning("input '%s': its JACK client ended (exit %s); jam hears nothing "
                        "from it", self.name, self._process.poll())

    def _end(self, kill: bool = False) -> None:
        process = self._process
        if process.stdin is not None and not process.stdin.closed:
            process.stdin.close()  # the helper's cue to close its port and end
        if kill:
            process.kill()
        try:
            process.wait(2.0)
        except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired: it is stuck
            process.kill()
            process.wait(2.0)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._end()
        if self._thread is not threading.current_thread():
            self._thread.join(1.0)
        if self._process.stdout is not None:
            self._process.stdout.close()


class JackPorts:
    """Lists JACK's MIDI ports through a JACK client that is never activated (libjack via
    ctypes): an activated client, such as python-rtmidi's, is woken every JACK cycle
    (about 0.35 % of a core each at 64 frames on a 2-core machine), and jam keeps its
    listing client for the whole run. Raises OSError when no server answers."""

    INPUT, OUTPUT = 0x1, 0x2  # JackPortIsInput, JackPortIsOutput
    MIDI = b"8 bit raw midi"  # JACK_DEFAULT_MIDI_TYPE

    def __init__(self, client_name: str) -> None:
        import ctypes
        import ctypes.util

        self._ctypes = ctypes
        lib = ctypes.CDLL(ctypes.util.find_library("jack") or "libjack.so.0")
        lib.jack_client_open.restype = ctypes.c_void_p
        lib.jack_client_open.argtypes = [ctypes.c_char_p, ctypes.c_int,
                                         ctypes.POINTER(ctypes.c_int)]
        lib.jack_get_ports.restype = ctypes.POINTER(ctypes.c_char_p)
        lib.jack_get_ports.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                       ctypes.c_ulong]
        lib.jack_free.argtypes = [ctypes.c_void_p]
        lib.jack_client_close.argtypes = [ctypes.c_void_p]
        lib.jack_client_real_time_priority.restype = ctypes.c_int
        lib.jack_client_real_time_priority.argtypes = [ctypes.c_void_p]
        status = ctypes.c_int(0)
        no_start_server = 0x01
        self._client = lib.jack_client_open(client_name.encode(), no_start_server,
                                            ctypes.byref(status))
        if not self._client:
            raise OSError(f"cannot connect to a JACK server (status 0x{status.value:x})")
        self._lib = lib

    def names(self, kind: str) -> list[str]:
        """Ports jam can read from (``input``: JACK output ports) or send to (``output``)."""
        if self._client is None:
            return []
        flags = self.OUTPUT if kind == "input" else self.INPUT
        found = self._lib.jack_get_ports(self._client, None, self.MIDI, flags)
        if not found:
            return []
        names = []
        i = 0
        while found[i] is not None:
            names.append(found[i].decode("utf-8", "replace"))
            i += 1
        self._lib.jack_free(self._ctypes.cast(found, self._ctypes.c_void_p))
        return names

    def client_priority(self) -> int | None:
        """The SCHED_FIFO priority of the server's client threads (5 under ``jackd -R``
        with its defaults), or None when the server is not real-time."""
        if self._client is None:
            return None
        priority = self._lib.jack_client_real_time_priority(self._client)
        return priority if priority > 0 else None

    def close(self) -> None:
        """Close the client. A server that does not answer within :data:`JACK_CLOSE_WAIT`
        (stopped, or stuck: seen once in about 60 loaded test runs) does not keep jam
        from ending: the close goes on in a daemon thread, and the process's exit ends
        the connection."""
        client, self._client = self._client, None
        if client is None:
            return
        closer = threading.Thread(target=self._lib.jack_client_close, args=(client,),
                                  name="jam-jack-close", daemon=True)
        closer.start()
        closer.join(JACK_CLOSE_WAIT)
        if closer.is_alive():
            log.warning("the JACK server did not close jam's port-listing client within "
                        "%.0f s; going on without it", JACK_CLOSE_WAIT)


class RtMidiSystem(MidiSystem):
    """The MIDI system of python-rtmidi: inputs are :class:`RtMidiInput` ports, outputs come
    from mido's rtmidi backend. Port lists come from long-lived clients (a client per
    listing would churn clients: ALSA runs out of them, and a JACK server busy with a
    closing client can refuse the next one): two of python-rtmidi's, or for JACK one
    :class:`JackPorts` client that is never activated."""

    def __init__(self, api: str) -> None:
        import rtmidi

        super().__init__(api)
        self._backend = mido.Backend(f"mido.backends.rtmidi/{RTMIDI_APIS[api]}", load=True)
        rtapi = _rtmidi_api(api)
        self._jack: JackPorts | None = None
        self._listers: dict = {}
        if api == "jack":
            self._jack = JackPorts(f"{CLIENT_NAME} ports")
            return
        self._listers = {"input": rtmidi.MidiIn(rtapi, name=f"{CLIENT_NAME} ports")}
        try:
            self._listers["output"] = rtmidi.MidiOut(rtapi, name=f"{CLIENT_NAME} ports")
        except rtmidi.RtMidiError:
            self._listers["input"].delete()
            raise

    @classmethod
    def connect(cls, requested: str = "auto") -> RtMidiSystem:
        """Pick the API (see :func:`choose_api`) and check that it works: its clients are
        created with their noise kept off the terminal. Raises JamError with a hint."""
        import rtmidi

        api = choose_api(requested)
        compiled = set(rtmidi.get_compiled_api())
        if _rtmidi_api(api) not in compiled:
            have = [name for name in RTMIDI_APIS if _rtmidi_api(name) in compiled]
            raise JamError(f"this python-rtmidi build has no {api} support (it has: "
                           f"{', '.join(have) or 'none'}); choose another --api")
        os.environ.setdefault("JACK_NO_START_SERVER", "1")  # never start a stray server
        with _quiet_stderr():
            try:
                return cls(api)
            except (rtmidi.RtMidiError, OSError) as err:
                failure = err
        detail = " ".join(str(failure).split())
        if requested == "auto" and api == "jack":
            raise JamError(f"no MIDI system found: no ALSA sequencer ({ALSA_SEQUENCER}) "
                           f"and no JACK server running ({detail}); load the ALSA sequencer "
                           f"('sudo modprobe snd-seq') or start a JACK server (e.g. "
                           f"'jackd -d alsa &', or 'jackd -d dummy &' without a sound card)")
        raise JamError(f"cannot use the {api} MIDI API ({detail}); {HINTS[api]}")

    def close(self) -> None:
        for lister in self._listers.values():
            lister.delete()
        self._listers.clear()
        if self._jack is not None:
            self._jack.close()

    def _names(self, kind: str) -> list[str]:
        if self._jack is not None:
            return list(dict.fromkeys(self._jack.names(kind)))
        return list(dict.fromkeys(self._listers[kind].get_ports()))

    def _open_input(self, name: str, virtual: bool,
                    callback: Callable[[mido.Message], None]) -> RtMidiInput:
        if self.api != "jack":
            return CallbackInput(self.api, name, virtual, callback)
        above = self._jack.client_priority() if self._jack is not None else None
        priority = None if above is None else max(1, above - 1)  # just below JACK's threads
        return PipedInput(self.api, name, virtual, callback, priority=priority)

    def _open_output(self, name: str, virtual: bool) -> mido.ports.BaseOutput:
        extra = {"client_name": CLIENT_NAME} if virtual else {}
        return self._backend.open_output(name, **extra)
