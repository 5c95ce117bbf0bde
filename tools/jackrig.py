"""Real MIDI for tests and benchmarks: a private JACK server, a test keyboard and a test synth.

``JackServer`` starts ``jackd -n NAME -R -d dummy`` (real-time where permitted, async,
``-p 128`` unless told otherwise), waits until clients can connect, and stops it by pid,
removing the ``/dev/shm`` files that carry its name. Clients in this process find it
through ``JACK_DEFAULT_SERVER`` (set by the fixtures); subprocesses get
:meth:`JackServer.env`.
The keyboard is a mido output port on the rtmidi JACK backend; the synth is a JACK-Client
client that stamps each event with the JACK cycle that delivered it (see :class:`Synth`);
:class:`JamProcess` runs ``python -m jam``.

Used by the tests (``tests/conftest.py``; pytest puts ``tools/`` on ``sys.path``) and by
``tools/bench.py`` (a tool's own folder is on ``sys.path`` when it runs).
"""

from __future__ import annotations

import glob
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

import mido

from jam.midi.ports import JACK_BACKEND

SHM = Path("/dev/shm")


def jackd_path() -> str | None:
    return shutil.which("jackd")


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.005) -> bool:
    """Poll ``condition`` until it is true or ``timeout`` seconds pass; return its value."""
    end = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(interval)


class JackServer:
    """A private JACK server with the dummy driver."""

    # 128 frames (2.67 ms): half the arrival jitter of 256 in the 10 ms timing checks of the
    # call-and-response tests. Real-time (-R, jackd's own default; without the permission
    # jackd says so and runs normally): on a loaded machine a normal-priority server and
    # its clients (jam's JACK threads too) missed cycles, and a note arrived 14 ms late
    # although jam sent it on time (docs/performance.md).
    def __init__(self, period: int = 128, sync: bool = False, rate: int = 48000,
                 realtime: bool = True) -> None:
        self.name = f"jamtest-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.command = ["jackd", "-n", self.name, "-R" if realtime else "--no-realtime",
                        *(["-S"] if sync else []),
                        "-d", "dummy", "-r", str(rate), "-p", str(period)]
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()

    def env(self) -> dict[str, str]:
        """Environment for a subprocess that should use this server."""
        return {**os.environ, "JACK_DEFAULT_SERVER": self.name, "JACK_NO_START_SERVER": "1"}

    def start(self, timeout: float = 10.0) -> JackServer:
        self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL,
                                        stdout=self._log, stderr=subprocess.STDOUT)
        socket = SHM / f"jack_{self.name}_{os.getuid()}_0"
        if not wait_for(lambda: socket.exists() or self.process.poll() is not None, timeout):
            self.stop()
            raise RuntimeError(f"jackd did not come up in {timeout} s: {self.log()}")
        if self.process.poll() is not None:
            raise RuntimeError(f"jackd exited with {self.process.returncode}: {self.log()}")
        if not wait_for(self._answers, timeout, interval=0.05):
            self.stop()
            raise RuntimeError(f"jackd does not answer clients: {self.log()}")
        return self

    def _answers(self) -> bool:
        probe = subprocess.run(["jack_lsp"], env=self.env(), stdin=subprocess.DEVNULL,
                               capture_output=True)
        return probe.returncode == 0

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-2000:]

    def stop(self) -> None:
        """SIGTERM (jackd then frees its shared memory), SIGKILL after 5 s; then remove
        whatever in /dev/shm still carries this server's name."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        for leftover in glob.glob(str(SHM / f"*{self.name}*")):
            Path(leftover).unlink(missing_ok=True)
        self._log.close()


def jack_backend() -> mido.Backend:
    return mido.Backend(JACK_BACKEND, load=True)


def keyboard(name: str = "keyboard", client: str | None = None) -> mido.ports.BaseOutput:
    """A test keyboard: a JACK MIDI output port other clients (jam) can read from.
    ``port.full_name`` is its JACK name ``client:name``."""
    client = client or f"kbd-{uuid.uuid4().hex[:6]}"
    port = jack_backend().open_output(name, client_name=client)
    port.full_name = f"{client}:{name}"
    return port


class Synth:
    """A test synth: a JACK MIDI input port that records (arrival time, message).

    ``full_name`` is its JACK name ``client:name``. The port belongs to a recorder process
    of its own (:func:`record`, this file run as a script): a JACK-Client client whose
    process callback stores each event's time and bytes in preallocated lists, and whose
    main thread passes them on every 2 ms. The arrival time is the start of the JACK cycle
    that delivered the event plus its offset in frames, on the ``time.monotonic()`` clock
    (which all processes share): where a JACK synth would render it, with no reading delay.
    The callback takes that cycle start from ``frames_since_cycle_start`` and the monotonic
    clock read together, so it holds however late the callback runs within its cycle.

    Why a process of its own: the callback runs Python in JACK's thread and needs the GIL;
    in the test process a busy thread (the player spinning to a note's time, a loop
    sending messages) holds it, and the callback, which gives the GIL up at every C call,
    then runs cycles late, reads events twice or misses them. Where permitted, the
    recorder's threads run SCHED_FIFO (priority 40, below jam's scheduler thread): on a
    loaded machine a normal-priority recorder missed cycles and lost events that a
    connection through jam delivered. ``irregular`` counts cycles
    with input whose frame time did not follow the recorder's previous cycle by one period
    (the cycle before was missed, or this one is seen twice: its stamps may be a period
    off): 0 when all is well. ``dropped`` counts undecodable input (and events the recorder
    could not pass on, if its ring ever overflowed).
    """

    def __init__(self, name: str = "synth", client: str | None = None,
                 timeout: float = 10.0) -> None:
        client = client or f"synth-{uuid.uuid4().hex[:6]}"
        self.full_name = f"{client}:{name}"
        self.irregular = 0
        self.dropped = 0
        self.policy = "not known yet"  # the process callback's scheduling, once it has run
        self._received: list[tuple[float, mido.Message]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._errors = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "record", client, name],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._errors, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not wait_for(lambda: self._ready.is_set() or self._process.poll() is not None,
                        timeout) or not self._ready.is_set():
            self.close()
            raise RuntimeError(f"the recorder for {self.full_name} did not start: "
                               f"{self._stderr()}")

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            kind, _, rest = line.rstrip("\n").partition(" ")
            if kind == "e":
                when, data = rest.split(" ")
                try:
                    message = mido.Message.from_bytes(bytes.fromhex(data))
                except ValueError:
                    self.dropped += 1
                    continue
                with self._lock:
                    self._received.append((float(when), message))
            elif kind == "irregular":
                self.irregular = int(rest)
            elif kind == "dropped":
                self.dropped += int(rest)
            elif kind == "policy":
                self.policy = rest
            elif kind == "ready":
                self._ready.set()

    def _stderr(self) -> str:
        self._errors.seek(0)
        return self._errors.read().decode("utf-8", "replace")[-2000:]

    @property
    def received(self) -> list[tuple[float, mido.Message]]:
        """(arrival time on the monotonic clock, message) of everything received so far
        (up to 2 ms behind the arrivals)."""
        with self._lock:
            return list(self._received)

    def messages(self) -> list[mido.Message]:
        return [m for _, m in self.received]

    def wait_count(self, count: int, timeout: float = 10.0,
                   where: Callable[[mido.Message], bool] = lambda m: True) -> bool:
        """Wait until at least ``count`` received messages satisfy ``where``."""
        return wait_for(lambda: sum(1 for m in self.messages() if where(m)) >= count, timeout)

    def close(self) -> None:
        """Stop the recorder (end of its stdin; SIGKILL by pid after 5 s)."""
        if self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        self._reader.join(5)
        self._errors.close()


RECORDER_PRIORITY = 40  # SCHED_FIFO, when permitted: below jam's scheduler thread (50)


def realtime(priority: int) -> str:
    """Put the calling thread in SCHED_FIFO at ``priority``; say what it got."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (AttributeError, OSError) as err:
        return f"normal scheduling ({getattr(err, 'strerror', None) or err})"
    return f"SCHED_FIFO {priority}"


def record(client_name: str, port_name: str, capacity: int = 1 << 14) -> None:
    """The recorder process of a :class:`Synth`: prints ``ready``, then ``e TIME HEX`` for
    each event, ``irregular N`` when that count grows and ``policy ...`` (the process
    callback's scheduling) once, until its stdin ends."""
    import gc
    import select

    import jack  # JACK-Client

    gc.disable()  # nothing here makes reference cycles; no collection pauses in the callback
    sys.setswitchinterval(0.0005)
    client = jack.Client(client_name, use_exact_name=True, no_start_server=True,
                         servername=os.environ.get("JACK_DEFAULT_SERVER"))
    port = client.midi_inports.register(port_name)
    rate = client.samplerate
    times = [0.0] * capacity  # a ring the callback only stores into
    data = [b""] * capacity
    state = {"count": 0, "last": None, "irregular": 0, "policy": ""}
    monotonic = time.monotonic

    def process(frames: int) -> None:
        if not state["policy"]:  # first call, in JACK's thread for this client
            state["policy"] = realtime(RECORDER_PRIORITY)
        cycle = client.last_frame_time
        last = state["last"]
        state["last"] = cycle
        start = None
        count = state["count"]
        for offset, event in port.incoming_midi_events():
            if start is None:  # once per cycle with input: where this cycle began
                start = monotonic() - client.frames_since_cycle_start / rate
                if last is not None and cycle - last != frames:  # missed one, or twice
                    state["irregular"] += 1
            times[count % capacity] = start + offset / rate
            data[count % capacity] = bytes(event)
            count += 1
        state["count"] = count

    client.set_process_callback(process)
    realtime(RECORDER_PRIORITY - 1)  # this thread passes the events on
    client.activate()
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    done, irregular, stopping, policy_told = 0, 0, False, False
    while True:
        stopping = stopping or bool(select.select([sys.stdin], [], [], 0.002)[0])
        if stopping:
            client.deactivate()
        count = state["count"]
        if count - done > capacity:  # overwritten before passed on: say so, as dropped
            out.write(f"dropped {count - done - capacity}\n")
            done = count - capacity
        for i in range(done, count):
            out.write(f"e {times[i % capacity]!r} {data[i % capacity].hex()}\n")
        done = count
        if state["irregular"] != irregular:
            irregular = state["irregular"]
            out.write(f"irregular {irregular}\n")
        if state["policy"] and not policy_told:
            out.write(f"policy {state['policy']}\n")
            policy_told = True
        out.flush()
        if stopping:
            client.close()
            return


class NotifySocket:
    """systemd's end of the notify socket (``NOTIFY_SOCKET``): the datagrams jam sends,
    each with its arrival time (``time.monotonic()``)."""

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="jamsd")  # a short socket path
        self.path = str(Path(self._folder.name) / "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.got: list[tuple[float, str]] = []

    def drain(self, wait: float = 0.0) -> list[str]:
        """Read what has arrived (waiting up to ``wait`` s for the first); return it."""
        new = []
        timeout = wait
        while select.select([self.sock], [], [], timeout)[0]:
            text = self.sock.recv(4096).decode()
            self.got.append((time.monotonic(), text))
            new.append(text)
            timeout = 0.0
        return new

    def wait_for(self, field: str, count: int = 1, timeout: float = 10.0) -> bool:
        """Wait until ``count`` datagrams carried ``field`` (e.g. "WATCHDOG=1")."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if len(self.times(field)) >= count:
                return True
            self.drain(0.05)
        return False

    def times(self, field: str) -> list[float]:
        return [when for when, text in self.got if field in text.split("\n")]

    def close(self) -> None:
        self.sock.close()
        self._folder.cleanup()


class JamProcess:
    """``python -m jam ARGS`` as a subprocess; stderr lines are collected as they come.
    It runs with Python's fault handler on, so a jam that does not end in :meth:`wait`
    gets SIGABRT and the error shows where each of its threads was."""

    READY = "Ctrl-C stops"  # the run loop's start-up line ends with this

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        env = {**env, "PYTHONFAULTHANDLER": "1"}
        self.process = subprocess.Popen([sys.executable, "-m", "jam", *args], env=env,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def wait_ready(self, timeout: float = 15.0) -> None:
        ready = wait_for(lambda: any(self.READY in line for line in self.lines)
                         or self.process.poll() is not None, timeout)
        if not ready or self.process.poll() is not None:
            self.kill()
            raise AssertionError(f"jam did not start (exit {self.process.returncode}): "
                                 f"{self.stderr}")

    def wait(self, timeout: float = 15.0) -> int:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGABRT)  # the fault handler prints the stacks
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()
            self._reader.join(5)
            raise AssertionError(f"jam did not end within {timeout} s:\n{self.stderr}")
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


if __name__ == "__main__":
    if sys.argv[1:2] == ["record"] and len(sys.argv) == 4:
        record(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: jackrig.py record CLIENT PORT  (the recorder process of a Synth)")
