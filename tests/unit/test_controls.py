"""Bindings of controls from the instrument (pure) and their place in the config file."""

from __future__ import annotations

import mido
import pytest

from jam.config import build_config
from jam.errors import JamError
from jam.midi.controls import CONTINUOUS, Binding, TriggerEdge, parse_binding, scaled


@pytest.mark.parametrize("text, binding", [
    ("cc 74", Binding("cc", 74)),
    ("CC74", Binding("cc", 74)),
    ("note 36 ch 10", Binding("note", 36, 9)),
    ("program", Binding("program")),
    (" program ch 1 ", Binding("program", None, 0)),
])
def test_bindings_parse_and_print_back(text, binding):
    assert parse_binding(text) == binding
    assert parse_binding(str(binding)) == binding


@pytest.mark.parametrize("text", ["", "cc", "cc 128", "note -1", "program 3", "cc 1 ch 0",
                                  "cc 1 ch 17", "pitchbend", 74, None])
def test_bad_bindings_say_what_is_expected(text):
    with pytest.raises(ValueError, match="expected"):
        parse_binding(text)


def test_a_binding_matches_its_control_on_its_channel_only():
    pad = parse_binding("note 36 ch 10")
    assert pad.matches(mido.Message("note_on", note=36, channel=9))
    assert pad.matches(mido.Message("note_off", note=36, channel=9))
    assert not pad.matches(mido.Message("note_on", note=36, channel=0))
    assert not pad.matches(mido.Message("note_on", note=37, channel=9))
    knob = parse_binding("cc 74")
    assert knob.matches(mido.Message("control_change", control=74, channel=5))
    assert not knob.matches(mido.Message("control_change", control=75))
    assert not knob.matches(mido.Message("note_on", note=74))
    assert parse_binding("program").matches(mido.Message("program_change", program=3))


@pytest.mark.parametrize("action", sorted(CONTINUOUS))
def test_continuous_actions_span_their_range(action):
    low, high, integer = CONTINUOUS[action]
    assert scaled(action, 0) == low and scaled(action, 127) == high
    values = [scaled(action, v) for v in range(128)]
    assert values == sorted(values)
    assert all(isinstance(v, int) for v in values) == integer


def test_a_cc_trigger_fires_once_per_press():
    edge, pedal = TriggerEdge(), Binding("cc", 64)
    presses = [edge.press(pedal, v) for v in (0, 127, 127, 100, 0, 63, 64, 0)]
    assert presses == [False, True, False, False, False, False, True, False]


def test_controls_and_presets_in_the_config_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("controls:\n  temperature: cc 74\n  end_call: note 36 ch 10\n"
                    "presets:\n  - {answer_bars: 1}\n  - {answer_bars: 2, key: d minor}\n")
    config = build_config({}, path)
    assert config.controls == {"temperature": "cc 74", "end_call": "note 36 ch 10"}
    assert config.presets == [{"answer_bars": 1}, {"answer_bars": 2, "key": "D minor"}]


@pytest.mark.parametrize("text, words", [
    ("controls:\n  temprature: cc 3\n", "did you mean 'temperature'"),
    ("controls: [cc 3]\n", "mapping of action"),
    ("controls:\n  reset: cc 300\n", "control of 'reset'"),
    ("presets:\n  - {in: Keyboard}\n", "cannot be set by a preset"),
    ("presets:\n  - {temperature: -1}\n", "temperature"),
    ("presets: {answer_bars: 1}\n", "list of mappings"),
])
def test_bad_controls_and_presets_are_one_line_errors(tmp_path, text, words):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(JamError) as error:
        build_config({}, path)
    assert words in str(error.value) and "\n" not in str(error.value)
