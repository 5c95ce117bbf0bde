"""MIDI ports: API choice, listing, opening by name or substring, virtual ports.

Built on mido with the rtmidi backend. :class:`MidiSystem` holds the public methods and
their checks (name matching, virtual-port support, one-line :class:`JamError` messages);
:class:`RtMidiSystem` does the I/O. The ports it returns are mido ports (``send``,
``close``, input callbacks). :func:`choose_api` and :func:`match_port` are pure.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

import mido

from jam.errors import JamError

# our API names -> rtmidi API names (as mido spells them)
RTMIDI_APIS = {"alsa": "LINUX_ALSA", "jack": "UNIX_JACK", "coremidi": "MACOSX_CORE",
               "winmm": "WINDOWS_MM"}
ALSA_SEQUENCER = Path("/dev/snd/seq")
CLIENT_NAME = "jam"
VIRTUAL_IN = "jam in"
VIRTUAL_OUT = "jam out"
POLL_INTERVAL = 0.0005  # s between looks at rtmidi's queue while input is coming in
IDLE_POLL_INTERVAL = 0.002  # s between looks after IDLE_POLLS empty looks (~1 s of silence)
IDLE_POLLS = 2000
QUEUE_LIMIT = 8192  # messages rtmidi may hold for a PolledInput
OUTPUT_DRAIN = 0.1  # s an output stays open after its last message (see close_output)

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


def match_port(query: str, names: Sequence[str], kind: str) -> str:
    """The port in ``names`` equal to ``query``, else the only one containing it
    (case-insensitive). ``kind`` ("input"/"output") words the error."""
    if query in names:
        return query
    hits = [n for n in names if query.lower() in n.lower()]
    if len(hits) == 1:
        return hits[0]
    flag = "--in" if kind == "input" else "--out"
    if hits:
        listed = ", ".join(repr(n) for n in hits)
        raise JamError(f"{flag} '{query}' matches several MIDI {kind}s: {listed}; "
                       f"give more of the name")
    listed = ", ".join(repr(n) for n in names) if names else "none"
    raise JamError(f"no MIDI {kind} matches {flag} '{query}'; available {kind}s: {listed}")


def close_output(port: mido.ports.BaseOutput) -> None:
    """Close an output after :data:`OUTPUT_DRAIN` seconds, so the last messages (the
    panic) reach a receiver that runs a cycle late before the port goes away (JACK)."""
    if not port.closed:
        time.sleep(OUTPUT_DRAIN)
        port.close()


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

    def open_input(self, query: str | None,
                   callback: Callable[[mido.Message], None] | None = None
                   ) -> mido.ports.BaseInput | PolledInput:
        """Open the input matching ``query`` (see :func:`match_port`), or the virtual
        port ``jam in`` when ``query`` is None. ``callback`` gets each message."""
        if query is None:
            self._need_virtual("input", "--in")
            return self._open("input", VIRTUAL_IN, True, callback)
        return self._open("input", match_port(query, self.input_names(), "input"), False,
                          callback)

    def open_output(self, query: str | None) -> mido.ports.BaseOutput:
        """Open the output matching ``query``, or the virtual port ``jam out`` when None."""
        if query is None:
            self._need_virtual("output", "--out")
            return self._open("output", VIRTUAL_OUT, True, None)
        return self._open("output", match_port(query, self.output_names(), "output"), False,
                          None)

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

    def _open(self, kind: str, name: str, virtual: bool,
              callback: Callable[[mido.Message], None] | None
              ) -> mido.ports.BasePort | PolledInput:
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


class PolledInput:
    """An rtmidi input read by a Python thread from rtmidi's queue; ``callback(message)``
    runs on that thread.

    Used for JACK: with a callback, python-rtmidi runs Python code (waiting for the GIL)
    inside JACK's process callback; when that makes the client late, an async JACK server
    hands it stale or missing events. Measured here (2,000 messages through a thru client
    on a loaded 2-core machine): 5 of 6 runs with callbacks received runs of repeated
    messages, 0 of 5 with polling. Polling keeps JACK's thread free of Python, at the cost
    of up to :data:`POLL_INTERVAL` of added latency (:data:`IDLE_POLL_INTERVAL` for the
    first message after about a second of silence, which keeps idle CPU use low).
    ``dropped`` counts undecodable input.
    """

    def __init__(self, api: str, name: str, virtual: bool,
                 callback: Callable[[mido.Message], None],
                 client_name: str | None = None) -> None:
        import rtmidi

        self.name = name
        self.closed = True
        self.dropped = 0
        self._callback = callback
        rtapi = getattr(rtmidi, f"API_{RTMIDI_APIS[api]}")
        self._rt = rtmidi.MidiIn(rtapi, name=client_name or CLIENT_NAME,
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
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="jam-midi-in", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        get, stop, callback = self._rt.get_message, self._stop, self._callback
        empty = 0
        while not stop.is_set():
            event = get()
            if event is None:
                empty += 1
                time.sleep(POLL_INTERVAL if empty < IDLE_POLLS else IDLE_POLL_INTERVAL)
                continue
            empty = 0
            try:
                message = mido.Message.from_bytes(event[0])
            except ValueError:
                self.dropped += 1
                continue
            callback(message)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(1.0)
        self._rt.close_port()
        self._rt.delete()

    def __enter__(self) -> PolledInput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RtMidiSystem(MidiSystem):
    """The MIDI system of python-rtmidi, through mido's rtmidi backend. Port lists come from
    two long-lived clients (a client per listing would churn clients: ALSA runs out of
    them, and a JACK server busy with a closing client can refuse the next one)."""

    def __init__(self, api: str) -> None:
        import rtmidi

        super().__init__(api)
        self._backend = mido.Backend(f"mido.backends.rtmidi/{RTMIDI_APIS[api]}", load=True)
        rtapi = getattr(rtmidi, f"API_{RTMIDI_APIS[api]}")
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
        compiled = {rtmidi.get_api_name(a) for a in rtmidi.get_compiled_api()}
        rt_name = {"alsa": "alsa", "jack": "jack", "coremidi": "core", "winmm": "winmm"}[api]
        if rt_name not in compiled:
            raise JamError(f"this python-rtmidi build has no {api} support (it has: "
                           f"{', '.join(sorted(compiled)) or 'none'}); choose another --api")
        os.environ.setdefault("JACK_NO_START_SERVER", "1")  # never start a stray server
        with _quiet_stderr():
            try:
                return cls(api)
            except rtmidi.RtMidiError as err:
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

    def _names(self, kind: str) -> list[str]:
        return list(dict.fromkeys(self._listers[kind].get_ports()))

    def _open(self, kind: str, name: str, virtual: bool,
              callback: Callable[[mido.Message], None] | None
              ) -> mido.ports.BasePort | PolledInput:
        extra = {"client_name": CLIENT_NAME} if virtual else {}
        try:
            if kind == "output":
                return self._backend.open_output(name, **extra)
            if self.api == "jack" and callback is not None:
                return PolledInput(self.api, name, virtual, callback)
            return self._backend.open_input(name, callback=callback, **extra)
        except OSError as err:
            raise JamError(f"cannot open MIDI {kind} '{name}': {err}; "
                           f"check it with 'jam ports'") from None
