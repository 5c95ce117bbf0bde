"""Config: defaults, YAML file, CLI flags, precedence and one-line errors (via jam.cli.main)."""

from __future__ import annotations

import pytest
import yaml

from jam.cli import main
from jam.config import OPTIONS, build_config


@pytest.fixture(autouse=True)
def no_user_config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def effective(capsys, *argv):
    code, out, err = run(capsys, "config", *argv)
    assert code == 0, err
    return yaml.safe_load(out)


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_defaults_are_printed_for_every_key(capsys):
    printed = effective(capsys)
    assert list(printed) == [o.key for o in OPTIONS]
    assert printed["bpm"] == 120.0 and printed["mode"] == "call" and printed["in"] is None
    assert printed["top_p"] == 0.95 and printed["key"] == "auto" and printed["debug"] is False


def test_cli_beats_file_beats_defaults(capsys, tmp_path):
    config = write(tmp_path / "c.yaml", "bpm: 90\nmeter: 3/4\nlow: 48\n")
    printed = effective(capsys, "--config", config, "--bpm", "100")
    assert printed["bpm"] == 100.0  # CLI over file
    assert printed["meter"] == "3/4" and printed["low"] == 48  # file over defaults
    assert printed["high"] == 96  # default


def test_default_config_path_is_read_when_present(capsys, tmp_path):
    (tmp_path / "xdg" / "jam").mkdir(parents=True)
    write(tmp_path / "xdg" / "jam" / "config.yaml", "max_call: 2\nin: Keyboard\n")
    printed = effective(capsys)
    assert printed["max_call"] == 2 and printed["in"] == "Keyboard"


def test_printed_config_reads_back_as_a_config_file(capsys, tmp_path):
    printed_text = run(capsys, "config", "--key", "f# minor", "--seed", "7")[1]
    again = effective(capsys, "--config", write(tmp_path / "back.yaml", printed_text))
    assert again["key"] == "F# minor" and again["seed"] == 7


def test_typo_in_file_key_gets_a_suggestion(capsys, tmp_path):
    code, _, err = run(capsys, "config", "--config", write(tmp_path / "c.yaml", "tempreture: 2\n"))
    assert code == 2
    assert err.count("\n") == 1 and "tempreture" in err and "did you mean 'temperature'" in err


def test_typo_in_cli_flag_gets_a_suggestion(capsys):
    code, _, err = run(capsys, "--max-answer-bar", "3")
    assert code == 2 and err.count("\n") == 1
    assert "did you mean --max-answer-bars" in err


@pytest.mark.parametrize("text, key", [
    ("bpm: fast\n", "bpm"),
    ("channel: 17\n", "channel"),
    ("max_call: 1.5\n", "max_call"),
    ("debug: 1\n", "debug"),
    ("top_p: 0\n", "top_p"),
    ("meter: 4-4\n", "meter"),
    ("key: H major\n", "key"),
    ("api: pipewire\n", "api"),
    ("low: true\n", "low"),
])
def test_wrong_type_or_range_in_file_names_the_key(capsys, tmp_path, text, key):
    code, _, err = run(capsys, "config", "--config", write(tmp_path / "c.yaml", text))
    assert code == 2 and err.count("\n") == 1
    assert f"'{key}'" in err and "expected" in err


def test_wrong_value_on_the_cli_names_the_flag(capsys):
    code, _, err = run(capsys, "config", "--temperature", "hot")
    assert code == 2 and err.count("\n") == 1
    assert "'temperature'" in err and "--temperature" in err


def test_none_unsets_a_nullable_option_from_the_file(capsys, tmp_path):
    config = write(tmp_path / "c.yaml", "channel: 3\nkey: C major\nseed: none\nmodel: ~\n")
    printed = effective(capsys, "--config", config, "--channel", "none", "--key", "null")
    assert printed["channel"] is None and printed["key"] is None
    assert printed["seed"] is None and printed["model"] is None
    code, _, err = run(capsys, "config", "--bpm", "none")  # not nullable
    assert code == 2 and "'bpm'" in err


def test_cross_checks(capsys):
    code, _, err = run(capsys, "config", "--low", "80", "--high", "60")
    assert code == 2 and "'low'" in err
    code, _, err = run(capsys, "config", "--answer-bars", "9")
    assert code == 2 and "max_answer_bars" in err


@pytest.mark.parametrize("text", ["bpm: [1, 2\n", "- bpm\n- 3\n", "bpm: 1\n\tmode: x\n"])
def test_malformed_or_non_mapping_yaml_is_one_line(capsys, tmp_path, text):
    code, _, err = run(capsys, "config", "--config", write(tmp_path / "c.yaml", text))
    assert code == 2 and err.count("\n") == 1 and "c.yaml" in err


def test_missing_config_file_is_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "config", "--config", str(tmp_path / "nope.yaml"))
    assert code == 2 and err.count("\n") == 1 and "nope.yaml" in err


def test_empty_file_means_defaults(tmp_path):
    config = build_config({}, write(tmp_path / "c.yaml", "# nothing yet\n"))
    assert config.bpm == 120.0 and config.source == tmp_path / "c.yaml"


def test_attribute_names_and_meter():
    config = build_config({"in": "Keys", "meter": " 6 / 8 "}, None)
    assert config.in_ == "Keys" and config.meter == "6/8"


def test_unknown_command_and_help(capsys):
    code, _, err = run(capsys, "jump")
    assert code == 2 and err.count("\n") == 1
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "--listen-silence" in capsys.readouterr().out
