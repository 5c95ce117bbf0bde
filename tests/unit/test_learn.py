"""``jam learn``: which messages bind which action, and the config file it writes (the
MIDI side runs over JACK in tests/integration/test_stage_controls.py)."""

from __future__ import annotations

from pathlib import Path

import mido
import pytest
import yaml

from jam import cli
from jam.config import build_config
from jam.errors import JamError
from jam.midi.controls import Binding
from jam.midi.learn import bind, binding_for, read_mapping, write_binding


@pytest.mark.parametrize("action, message, binding", [
    ("temperature", mido.Message("control_change", control=74, channel=1), Binding("cc", 74, 1)),
    ("temperature", mido.Message("note_on", note=36, velocity=90), None),
    ("reroll", mido.Message("note_on", note=36, velocity=90, channel=9), Binding("note", 36, 9)),
    ("reroll", mido.Message("note_on", note=36, velocity=0), None),
    ("reroll", mido.Message("note_off", note=36), None),
    ("reroll", mido.Message("control_change", control=80), Binding("cc", 80, 0)),
    ("reroll", mido.Message("program_change", program=2), None),
    ("next_preset", mido.Message("program_change", program=2, channel=15),
     Binding("program", None, 15)),
    ("tap", mido.Message("clock"), None),
    ("tap", mido.Message("pitchwheel", pitch=30), None),
])
def test_what_binds_an_action(action, message, binding):
    assert binding_for(action, message) == binding


def test_binding_keeps_the_other_keys_and_takes_the_control_from_another_action():
    data = {"bpm": 96, "controls": {"top_p": "cc 74 ch 2", "reset": "note 40"}}
    bound, taken = bind(data, "temperature", Binding("cc", 74, 1))
    assert bound == {"bpm": 96, "controls": {"reset": "note 40", "temperature": "cc 74 ch 2"}}
    assert taken == ["top_p"] and data["controls"]["top_p"] == "cc 74 ch 2"  # not changed


def test_the_file_is_written_whole_with_its_other_keys_and_read_back_as_a_config(tmp_path):
    path = tmp_path / "new" / "config.yaml"  # neither the folder nor the file exist yet
    line = write_binding(path, "tap", Binding("note", 40, 9))
    assert line == f"tap: note 40 ch 10, written to {path}"
    path.write_text(path.read_text() + "key: d minor\n")
    write_binding(path, "temperature", Binding("cc", 74))
    assert yaml.safe_load(path.read_text()) == {
        "controls": {"tap": "note 40 ch 10", "temperature": "cc 74"}, "key": "d minor"}
    assert build_config({}, path).controls == {"tap": "note 40 ch 10", "temperature": "cc 74"}
    assert [p.name for p in path.parent.iterdir()] == ["config.yaml"]  # no temporary left


def test_a_config_file_that_cannot_be_written_is_a_one_line_error(tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    with pytest.raises(JamError, match="cannot write config file"):
        write_binding(blocker / "config.yaml", "tap", Binding("note", 40, 9))  # no folder
    with pytest.raises(JamError, match="cannot write config file"):
        write_binding(Path("/proc/jam-test.yaml"), "tap", Binding("note", 40, 9))  # read-only
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize("text, words", [
    ("controls: [oops\n", "not valid YAML"),
    ("- a list\n", "must be a mapping"),
    ("tempreture: 1\n", "did you mean 'temperature'"),
])
def test_a_file_that_does_not_parse_or_validate_is_left_as_it_is(tmp_path, text, words):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(JamError) as error:
        write_binding(path, "tap", Binding("note", 40))
    assert words in str(error.value) and "\n" not in str(error.value)
    assert path.read_text() == text
    assert read_mapping(tmp_path / "missing.yaml") == {}


@pytest.mark.parametrize("args, words", [
    (["learn", "tempreture"], "did you mean 'temperature'"),
    (["learn", "tap", "--timeout", "0"], "--timeout must be above 0"),
    (["learn", "tap", "--timeout", "soon"], "invalid float value"),
])
def test_learn_refuses_bad_arguments_on_one_line(tmp_path, capsys, args, words):
    code = cli.main([*args, "--config", str(tmp_path / "config.yaml"), "--api", "jack"])
    err = capsys.readouterr().err
    assert code == 2 and words in err and err.count("\n") == 1
    assert not (tmp_path / "config.yaml").exists()


def test_learn_leaves_a_broken_config_file_untouched(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text("controls:\n  tap: [note 40\n")
    before = path.stat().st_mtime_ns
    assert cli.main(["learn", "tap", "--config", str(path), "--api", "jack"]) == 2
    err = capsys.readouterr().err
    assert "not valid YAML" in err and err.count("\n") == 1
    assert path.read_text() == "controls:\n  tap: [note 40\n"
    assert path.stat().st_mtime_ns == before
