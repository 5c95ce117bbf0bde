"""Shared fixtures. pytest puts ``tests/`` and ``tools/`` on sys.path (``pythonpath`` in
pyproject.toml), so test modules import the helpers ``recording`` (tests/recording.py) and
``jackrig`` (tools/jackrig.py, the JACK rig shared with tools/bench.py) directly.

MIDI fixtures: ``jack_server`` (one private JACK server per test session; skipped with a
reason when jackd is not installed, failed instead when JAM_REQUIRE_JACK=1 as in CI),
``keyboard`` (a test keyboard port), ``synth`` (a test synth recording what it receives),
``jam_env`` (environment for a ``jam`` subprocess: that server, and an empty config folder
so no user config is read), ``start_jam`` (runs jam between the keyboard and the synth).
"""

from __future__ import annotations

import os

import pytest

from jackrig import JackServer, JamProcess, Synth, jackd_path
from jackrig import keyboard as open_keyboard


@pytest.fixture(scope="session")
def jack_server():
    if jackd_path() is None:
        reason = "jackd is not installed (apt-get install jackd2); the MIDI tests need it"
        if os.environ.get("JAM_REQUIRE_JACK") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    server = JackServer().start()
    saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    os.environ.update(JACK_DEFAULT_SERVER=server.name, JACK_NO_START_SERVER="1")
    try:
        yield server
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


@pytest.fixture
def jam_env(jack_server, tmp_path):
    env = jack_server.env()
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config-home")
    return env


@pytest.fixture
def keyboard(jack_server):
    port = open_keyboard()
    yield port
    port.close()


@pytest.fixture
def synth(jack_server):
    recorder = Synth()
    yield recorder
    recorder.close()


@pytest.fixture
def start_jam(keyboard, synth, jam_env):
    """``start_jam(*args)``: run ``jam --api jack --in <keyboard> --out <synth> *args`` as a
    subprocess, wait until it is ready and return its :class:`JamProcess`; any still
    running at teardown is killed."""
    started = []

    def start(*args: str) -> JamProcess:
        process = JamProcess(["--api", "jack", "--in", keyboard.full_name,
                              "--out", synth.full_name, *args], jam_env)
        started.append(process)
        process.wait_ready()
        return process

    yield start
    for process in started:
        process.kill()
