"""jam as a systemd service would run it, over a real JACK server: the test owns a real
AF_UNIX datagram socket as ``$NOTIFY_SOCKET`` (systemd's side of sd_notify) and sees
READY=1, WATCHDOG=1 at the interval ``$WATCHDOG_USEC`` asks for, STATUS= and STOPPING=1;
the pings stop when the main loop or the scheduler thread is stalled on purpose (the
``JAM_TEST_STALL_AFTER`` test hook). SIGHUP reloads the config file: an invalid one keeps
the old settings with one log line, a valid one is applied, and jam keeps running."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid

import mido
import pytest

from jackrig import JamProcess, NotifySocket, Synth, wait_for

WATCHDOG_USEC = 500_000  # systemd would kill jam 0.5 s after a missed ping


@pytest.fixture
def manager():
    sock = NotifySocket()
    yield sock
    sock.close()


@pytest.fixture
def service(keyboard, synth, jam_env, manager):
    """``service(*args, **env)``: jam in thru mode between the test keyboard and synth, as
    systemd runs it (NOTIFY_SOCKET, WATCHDOG_USEC), ready; killed at teardown if running."""
    started = []

    def start(*args: str, **extra: str) -> JamProcess:
        env = {**jam_env, "NOTIFY_SOCKET": manager.path, "WATCHDOG_USEC": str(WATCHDOG_USEC),
               **extra}
        process = JamProcess(["--api", "jack", "--in", keyboard.full_name, "--out",
                              synth.full_name, "--mode", "thru", *args], env)
        started.append(process)
        process.wait_ready()
        return process

    yield start
    for process in started:
        process.kill()


def test_ready_then_regular_pings_then_stopping(service, manager):
    jam = service()
    assert manager.wait_for("READY=1"), jam.stderr
    assert manager.wait_for("WATCHDOG=1", count=8), jam.stderr
    ready = manager.times("READY=1")[0]
    pings = manager.times("WATCHDOG=1")
    assert pings[0] >= ready
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert gaps and max(gaps) < WATCHDOG_USEC / 1e6, gaps  # never late for systemd
    assert min(gaps) > WATCHDOG_USEC / 1e6 / 4, gaps  # at its interval, not flooding
    jam.process.send_signal(signal.SIGTERM)
    assert jam.wait() == 0, jam.stderr
    manager.drain()
    stopping = manager.times("STOPPING=1")
    assert len(stopping) == 1 and stopping[0] >= pings[-1]
    statuses = [text for _, text in manager.got if text.startswith("STATUS=")
                or "\nSTATUS=" in text]
    assert any("thru mode: input" in text for text in statuses), statuses
    assert "\r" not in jam.stderr  # no status line under systemd


def pings_stop_after(manager, jam, line: str) -> None:
    """Once ``line`` is in jam's log, no ping comes for two watchdog periods (pings came
    regularly before it)."""
    assert wait_for(lambda: any(line in entry for entry in jam.lines), 15), jam.stderr
    manager.drain()  # every ping sent before the line was logged is in the socket now
    before = len(manager.times("WATCHDOG=1"))
    assert before >= 3, manager.got
    manager.drain(2 * WATCHDOG_USEC / 1e6)
    time.sleep(2 * WATCHDOG_USEC / 1e6)  # the silence being checked, not a wait for work
    manager.drain()
    assert len(manager.times("WATCHDOG=1")) == before, "pings went on: " + jam.stderr
    assert jam.process.poll() is None  # stalled, not dead: systemd's watchdog would act


def test_a_stalled_main_loop_sends_no_pings(service, manager):
    jam = service(JAM_TEST_STALL_AFTER="1.5")
    pings_stop_after(manager, jam, "the main loop stalls for good now")


def test_a_stuck_scheduler_thread_stops_the_pings(service, manager, keyboard):
    jam = service(JAM_TEST_STALL_AFTER="scheduler:0.5")
    assert manager.wait_for("WATCHDOG=1", count=4), jam.stderr  # past the stall time
    keyboard.send(mido.Message("note_on", note=60, velocity=90))  # its send hangs
    pings_stop_after(manager, jam, "the scheduler thread is stuck")


def test_sighup_reloads_the_config_file_and_jam_keeps_running(tmp_path, keyboard, synth,
                                                              jam_env):
    config = tmp_path / "config.yaml"
    ports = f"api: jack\nin: {keyboard.full_name}\nout: {synth.full_name}\nmode: thru\n"
    config.write_text(ports + "bpm: 100\ntemperature: 0.9\n")
    # --temperature on the command line beats the file, at start and on every reload
    jam = JamProcess(["--config", str(config), "--temperature", "0.5"], jam_env)
    try:
        sighups(jam, config, ports, keyboard, synth)
    finally:
        jam.kill()


def sighups(jam, config, ports, keyboard, synth):
    jam.wait_ready()

    def after_reload(count: int) -> list[str]:
        jam.process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: len([e for e in jam.lines if "reload" in e]) >= count, 10), \
            jam.stderr
        return [e for e in jam.lines if "reload" in e]

    config.write_text("bpm: fast\n")
    lines = after_reload(1)
    assert len(lines) == 1 and "refused, old settings kept" in lines[0], jam.stderr
    assert "bad value for 'bpm'" in lines[0]

    config.write_text(ports + "bpm: 96\ntemperature: 0.7\n")
    lines = after_reload(2)
    assert lines[1].endswith(f"applied from {config}: bpm 100 -> 96"), jam.stderr

    config.write_text(ports.replace(synth.full_name, "another synth") + "bpm: 96\n")
    lines = after_reload(3)
    assert "out changed" in lines[2] and "restart jam" in lines[2], jam.stderr

    keyboard.send(mido.Message("note_on", note=64, velocity=90))  # still forwarding
    assert synth.wait_count(1, timeout=5, where=lambda m: m.type == "note_on"), jam.stderr
    assert jam.process.poll() is None
    jam.process.send_signal(signal.SIGTERM)
    assert jam.wait() == 0, jam.stderr
    assert not [e for e in jam.lines if "Traceback" in e]


def test_under_systemd_a_port_not_there_yet_is_awaited(keyboard, jam_env, manager):
    client = f"late-{uuid.uuid4().hex[:6]}"
    args = ["--api", "jack", "--in", keyboard.full_name, "--out", f"{client}:synth",
            "--mode", "thru"]
    # outside systemd a port that is not there is an error, on one line
    alone = subprocess.run([sys.executable, "-m", "jam", *args], env=jam_env, text=True,
                           capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    assert alone.returncode == 2, alone.stderr
    lines = alone.stderr.strip().splitlines()
    assert len(lines) == 1, alone.stderr
    assert lines[0].startswith(f"jam: no MIDI output matches --out '{client}:synth'")
    env = {**jam_env, "NOTIFY_SOCKET": manager.path, "WATCHDOG_USEC": str(WATCHDOG_USEC)}
    jam = JamProcess(args, env)
    try:
        jam.wait_ready()
        assert manager.wait_for("READY=1"), jam.stderr
        assert [line for line in jam.lines if "waiting for it" in line], jam.stderr
        synth = Synth("synth", client=client)  # the synth is switched on
        try:
            assert wait_for(lambda: any("is there after" in e for e in jam.lines), 5), \
                jam.stderr
            keyboard.send(mido.Message("note_on", note=60, velocity=90))
            assert synth.wait_count(1, timeout=5, where=lambda m: m.type == "note_on"), \
                jam.stderr
            jam.process.send_signal(signal.SIGTERM)
            assert jam.wait() == 0, jam.stderr
        finally:
            synth.close()
    finally:
        jam.kill()
