"""Real MIDI for tests: a private JACK server, a test keyboard and a test synth.

``JackServer`` starts ``jackd -n NAME --no-realtime -d dummy`` (async, ``-p 128`` unless
told otherwise), waits until clients can connect, and stops it by pid, removing the
``/dev/shm`` files that carry its name. Clients in this process find it through
``JACK_DEFAULT_SERVER`` (set by the fixtures); subprocesses get :meth:`JackServer.env`.
The keyboard is a mido output port on the rtmidi JACK backend; the synth reads with jam's
``PolledInput`` (see :class:`Synth`); :class:`JamProcess` runs ``python -m jam``.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

import mido

from jam.midi.ports import PolledInput

JACK_BACKEND = "mido.backends.rtmidi/UNIX_JACK"
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
    # call-and-response tests; 1000/1000 notes arrived at 128 (docs/performance.md).
    def __init__(self, period: int = 128, sync: bool = False, rate: int = 48000) -> None:
        self.name = f"jamtest-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.command = ["jackd", "-n", self.name, "--no-realtime", *(["-S"] if sync else []),
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
    ``full_name`` is its JACK name ``client:name``. It reads through jam's PolledInput
    (a Python callback inside JACK's process thread garbles input under load); arrival
    times are taken when read, within ``POLL_INTERVAL`` (0.5 ms) of the arrival."""

    def __init__(self, name: str = "synth", client: str | None = None) -> None:
        self.received: list[tuple[float, mido.Message]] = []
        self._lock = threading.Lock()
        client = client or f"synth-{uuid.uuid4().hex[:6]}"
        self.port = PolledInput("jack", name, True, self._record, client_name=client)
        self.full_name = f"{client}:{name}"

    def _record(self, message: mido.Message) -> None:
        now = time.monotonic()
        with self._lock:
            self.received.append((now, message))

    def messages(self) -> list[mido.Message]:
        with self._lock:
            return [m for _, m in self.received]

    def wait_count(self, count: int, timeout: float = 10.0,
                   where: Callable[[mido.Message], bool] = lambda m: True) -> bool:
        """Wait until at least ``count`` received messages satisfy ``where``."""
        return wait_for(lambda: sum(1 for m in self.messages() if where(m)) >= count, timeout)

    def close(self) -> None:
        self.port.close()


class JamProcess:
    """``python -m jam ARGS`` as a subprocess; stderr lines are collected as they come."""

    READY = "Ctrl-C stops"  # the run loop's start-up line ends with this

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
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
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
