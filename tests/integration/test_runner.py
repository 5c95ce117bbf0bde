"""The run loop in-process over real JACK ports: an error in a mode stops it cleanly."""

from __future__ import annotations

import threading

import mido
import pytest

from jam import cli
from jam.config import build_config
from jam.engine import runner
from jam.engine.runner import run
from jam.engine.thru import ThruMode


class FailingThru(ThruMode):
    """Forwards like thru, then fails on the MIDI input thread at the third note-on."""

    def __init__(self) -> None:
        super().__init__()
        self.ready = threading.Event()
        self.notes = 0

    def poll(self, now):
        self.ready.set()  # the input port is open once the loop polls
        return None

    def on_message(self, message, when):
        if message.type == "note_on":
            self.notes += 1
            if self.notes == 3:
                raise RuntimeError("boom in the input thread")
        super().on_message(message, when)


def play_when_ready(mode, keyboard):
    def play():
        assert mode.ready.wait(10)
        for pitch in (60, 62, 64):
            keyboard.send(mido.Message("note_on", note=pitch, velocity=90))

    thread = threading.Thread(target=play, daemon=True)
    thread.start()
    return thread


class WatchedControl(runner.RunControl):
    """The run loop's control, stopped by the watchdog after ``LIMIT`` seconds."""

    LIMIT = 10.0

    def __init__(self) -> None:
        super().__init__()
        self._watchdog = threading.Timer(self.LIMIT, self._expire)
        self._watchdog.daemon = True
        self._watchdog.start()

    def _expire(self) -> None:
        self.stop("watchdog")
        self.wake()

    def close(self) -> None:
        self._watchdog.cancel()
        super().close()


@pytest.fixture(autouse=True)
def stop_after_10_s(monkeypatch):
    """If a run does not stop by itself, the watchdog stops that run, as a stop signal
    would (run() then returns 0 and the test fails instead of hanging). jam runs in this
    process here, so no signal is sent: one would reach the whole pytest run, and kill it
    once jam's handler is gone."""
    monkeypatch.setattr(runner, "RunControl", WatchedControl)


@pytest.fixture
def config(keyboard, synth, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    return build_config({"api": "jack", "in": keyboard.full_name, "out": synth.full_name,
                         "mode": "thru"})


def run_into_error(config, mode, keyboard, synth, error, match):
    """Run ``mode`` while the keyboard plays; expect ``error``; return what the synth got
    once the shutdown's last message (CC120) is in."""
    player = play_when_ready(mode, keyboard)
    with pytest.raises(error, match=match):
        run(config, mode)
    player.join(5)
    assert synth.wait_count(1, where=lambda m: m.type == "control_change" and m.control == 120)
    return synth.messages()


def test_error_in_a_thread_releases_held_notes_then_raises(config, keyboard, synth):
    received = run_into_error(config, FailingThru(), keyboard, synth, RuntimeError, "boom")
    kinds = [(m.type, getattr(m, "note", None), getattr(m, "control", None))
             for m in received]
    assert kinds == [("note_on", 60, None), ("note_on", 62, None),
                     ("note_off", 60, None), ("note_off", 62, None),
                     ("control_change", None, 64), ("control_change", None, 123),
                     ("control_change", None, 120)]


def test_cli_reports_an_internal_error_on_one_line_with_exit_1(keyboard, synth, tmp_path,
                                                               monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    mode = FailingThru()
    monkeypatch.setitem(cli.MODES, "thru", lambda config: mode)
    player = play_when_ready(mode, keyboard)
    code = cli.main(["--api", "jack", "--in", keyboard.full_name, "--out", synth.full_name,
                     "--mode", "thru"])
    player.join(5)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("jam: internal error: RuntimeError: boom in the input thread")
    assert "--debug" in err[-1] and not any("Traceback" in line for line in err)


class ThreadFailingThru(FailingThru):
    """Forwards like thru; a helper thread of its own dies once the input is open."""

    def on_message(self, message, when):
        ThruMode.on_message(self, message, when)
        if message.type == "note_on" and message.note == 64:
            threading.Thread(target=self._explode, daemon=True).start()

    @staticmethod
    def _explode():
        raise ValueError("helper thread died")


def test_uncaught_error_in_any_thread_stops_the_run_cleanly(config, keyboard, synth):
    received = run_into_error(config, ThreadFailingThru(), keyboard, synth, ValueError,
                              "helper thread died")
    offs = sorted(m.note for m in received if m.type == "note_off")
    assert offs == [60, 62, 64]
