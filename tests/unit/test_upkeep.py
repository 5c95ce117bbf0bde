"""The reload on SIGHUP (the same file again, the command line on top; an invalid file keeps
the old settings; ports are kept), and the test hook's parsing. Real config files, a real
scheduler (not started) on a recording port, and a thru mode that keeps what it is given."""

from __future__ import annotations

import logging

import pytest

from jam.config import build_config
from jam.engine.scheduler import Scheduler
from jam.engine.thru import ThruMode
from jam.errors import JamError
from jam.service.upkeep import Upkeep, changes, stall_from_env
from recording import RecordingOutput


class KeepingThru(ThruMode):
    """Thru mode that keeps each configuration a reload hands it (or refuses one)."""

    def __init__(self) -> None:
        super().__init__()
        self.reloaded = []
        self.refuse: str | None = None

    def reload(self, config):
        if self.refuse:
            raise JamError(self.refuse)
        self.reloaded.append(config)


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "none"))
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    path = tmp_path / "config.yaml"
    path.write_text("bpm: 100\ntemperature: 0.9\nout: FLUID\n")
    cli = {"temperature": 0.5}  # on the command line: beats the file, now and on reload
    config = build_config(cli, path)
    mode = KeepingThru()
    upkeep = Upkeep(mode=mode, scheduler=Scheduler(RecordingOutput()), config=config,
                    load_config=lambda: build_config(cli, config.source))
    return path, mode, upkeep


def warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_an_invalid_file_keeps_the_old_settings_with_one_line(setup, caplog):
    path, mode, upkeep = setup
    before = upkeep.config
    path.write_text("bpm: fast\n")
    upkeep.reload()
    assert upkeep.config is before and mode.reloaded == []
    lines = warnings(caplog)
    assert len(lines) == 1 and "old settings kept" in lines[0] and "'bpm'" in lines[0]
    assert "\n" not in lines[0]


def test_a_valid_change_goes_to_the_mode_with_the_command_line_on_top(setup, caplog):
    caplog.set_level(logging.INFO)
    path, mode, upkeep = setup
    path.write_text("bpm: 96\ntemperature: 0.7\nout: FLUID\n")
    upkeep.reload()
    assert len(mode.reloaded) == 1
    new = mode.reloaded[0]
    assert (new.bpm, new.temperature) == (96.0, 0.5)
    assert upkeep.config is new
    applied = [r.getMessage() for r in caplog.records if "applied" in r.getMessage()]
    assert applied == [f"reload (SIGHUP): applied from {path}: bpm 100 -> 96"]


def test_ports_are_kept_and_a_restart_is_asked_for(setup, caplog):
    path, mode, upkeep = setup
    path.write_text("bpm: 100\ntemperature: 0.9\nout: Other synth\nmode: call\n")
    upkeep.reload()
    assert mode.reloaded == []  # nothing else changed
    assert upkeep.config.out == "FLUID"
    assert any("out changed" in line and "restart jam" in line for line in warnings(caplog))


def test_a_mode_that_refuses_keeps_the_old_settings(setup, caplog):
    path, mode, upkeep = setup
    before = upkeep.config
    mode.refuse = "model x.onnx: no such model file"
    path.write_text("bpm: 90\ntemperature: 0.9\nout: FLUID\n")
    upkeep.reload()
    assert upkeep.config is before
    assert warnings(caplog) == [
        "reload (SIGHUP) refused, old settings kept: model x.onnx: no such model file"]


def test_changes_lists_what_differs_in_option_order(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    a = build_config({"bpm": 100, "key": "C major"})
    b = build_config({"bpm": 96, "key": None, "seed": 3})
    assert changes(a, b) == [("bpm", 100.0, 96.0), ("seed", None, 3), ("key", "C major", None)]


@pytest.mark.parametrize("value, expected", [
    ("", None), ("2", ("main", 2.0)), ("scheduler:0.5", ("scheduler", 0.5)),
    ("main:1", ("main", 1.0))])
def test_the_stall_hook_value(value, expected):
    assert stall_from_env({"JAM_TEST_STALL_AFTER": value}) == expected


@pytest.mark.parametrize("value", ["soon", "engine:1", "-1"])
def test_a_malformed_stall_hook_is_an_error(value):
    with pytest.raises(JamError, match="JAM_TEST_STALL_AFTER"):
        stall_from_env({"JAM_TEST_STALL_AFTER": value})
