"""jam's JACK side without polling: the input port belongs to a helper process that ends
with jam however jam ends, and the port lists come from a JACK client that is never
activated, listing what python-rtmidi lists."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import rtmidi

from jackrig import JackServer, JamProcess, wait_for
from jam.midi.ports import JACK_CLOSE_WAIT, JackPorts
from stagerig import children


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_the_port_lists_are_python_rtmidis(keyboard, synth):
    lister = JackPorts("jam-test-ports")
    rt_in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="jam-test-in")
    rt_out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="jam-test-out")
    try:
        assert lister.names("input") == rt_in.get_ports()
        assert lister.names("output") == rt_out.get_ports()
        assert keyboard.full_name in lister.names("input")
        assert synth.full_name in lister.names("output")
    finally:
        rt_in.delete()
        rt_out.delete()
        lister.close()
    assert lister.names("input") == []  # closed: nothing to list with


def test_the_input_helper_ignores_stop_signals_and_ends_with_jam(jam_env):
    jam = JamProcess(["--api", "jack", "--mode", "thru"], jam_env)
    try:
        jam.wait_ready()
        helpers = children(jam.process.pid)
        assert len(helpers) == 1, helpers
        helper = helpers[0]
        assert "jack_input.py" in Path(f"/proc/{helper}/cmdline").read_text()
        os.kill(helper, signal.SIGINT)  # what a terminal's Ctrl-C sends the whole group
        os.kill(helper, signal.SIGTERM)
        time.sleep(0.3)
        assert alive(helper)
        jam.process.kill()  # SIGKILL: no cleanup in jam at all
        jam.wait()
        assert wait_for(lambda: not alive(helper), 5), "the helper outlived jam"
    finally:
        jam.kill()


def rt_priorities(pid: int) -> list[int]:
    """The SCHED_FIFO/RR priorities of a process's threads (0: normal scheduling)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        found.append(int(fields[37]))  # rt_priority
    return found


def test_the_reading_thread_runs_just_below_jacks_threads(jam_env, jack_server):
    lister = JackPorts("jam-test-priority")
    try:
        jack = lister.client_priority()
    finally:
        lister.close()
    jam = JamProcess(["--api", "jack", "--mode", "thru"], jam_env)
    try:
        jam.wait_ready()
        priorities = rt_priorities(jam.process.pid)
        if jack is not None and 50 in priorities:  # real-time permitted here
            assert max(1, jack - 1) in priorities, priorities
            assert not [p for p in priorities if jack < p < 50], priorities
        else:  # JACK not real-time, or no permission: the reader stays normal
            assert not [p for p in priorities if 0 < p < 50 and p != jack], priorities
    finally:
        jam.kill()


def test_a_server_that_does_not_answer_does_not_keep_the_lister_from_closing(
        jack_server, monkeypatch):
    server = JackServer().start()  # its own server: this one is stopped mid-test
    try:
        monkeypatch.setenv("JACK_DEFAULT_SERVER", server.name)
        lister = JackPorts("jam-test-close")
        assert lister.names("output") == []
        server.process.send_signal(signal.SIGSTOP)
        try:
            began = time.monotonic()
            lister.close()  # without the bound this waits as long as the server is stopped
            took = time.monotonic() - began
        finally:
            server.process.send_signal(signal.SIGCONT)
        assert JACK_CLOSE_WAIT <= took < JACK_CLOSE_WAIT + 1.0, took
    finally:
        server.stop()
