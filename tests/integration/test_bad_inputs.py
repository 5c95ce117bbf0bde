"""Bad files and values, table-driven: every one is a one-line error with exit code 2 (or a
clean exit 0 where the value is valid: an option at its limit), never a traceback, and a
file that was there before is never harmed (its SHA-256 is the same afterwards).

- ``jam respond`` on broken MIDI files (garbage, truncated, empty, type 2, SMPTE time, a
  tempo of 0 or one jam cannot play, no notes, a folder, a missing file), with
  ``--force`` onto an existing output file;
- ``--model`` files that are no jam model (garbage, truncated, empty, another ONNX graph)
  for ``jam respond``, ``jam model`` and the main job;
- config files that do not parse or validate (syntax, types, unknown keys, numbers too
  large for Python, nesting too deep, binary, missing, a folder) for ``jam config`` and
  ``jam learn`` (which rewrites the file: it must stay as it was);
- every numeric option of :data:`jam.config.OPTIONS` at its limits and one step beyond each
  side, through ``jam config --KEY VALUE`` and through the config file;
- ``--record`` into a place where no file can be written (a file, a read-only folder):
  one warning, and jam plays on (over JACK).
"""

from __future__ import annotations

import hashlib
import math
import os
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import mido
import pytest
import yaml

from jam import cli
from jam.config import OPTIONS
from jam.midi.files import write_midi
from jam.music.tokens import Note
from stagerig import check_notes

PRECIOUS = b"MThd precious bytes that must survive"


def run_jam(args, env, timeout=120):
    return subprocess.run([sys.executable, "-m", "jam", *map(str, args)], env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=timeout)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line_error(result, code: int = 2) -> str:
    """The one stderr line of a failed run (its exit code ``code``)."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, \
        result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("jam: model:")]
    assert len(lines) == 1 and lines[0].startswith("jam: "), result.stderr
    return lines[0]


@pytest.fixture
def env(tmp_path):
    return {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config-home")}


@pytest.fixture
def call(tmp_path) -> Path:
    path = tmp_path / "call.mid"
    write_midi(path, [[Note(p, 12 * i, 12, 80) for i, p in enumerate([62, 66, 69, 74])]],
               100.0)
    return path


@pytest.fixture
def existing(tmp_path) -> Path:
    """An output file that is there already (a take the user wants to keep)."""
    path = tmp_path / "keep.mid"
    path.write_bytes(PRECIOUS)
    return path


# --- MIDI files (jam respond) ----------------------------------------------------------------


def _midi(tmp_path, name, build) -> Path:
    midi = mido.MidiFile(type=build.get("type", 0), ticks_per_beat=480)
    for pitches in build.get("tracks", [[60, 62, 64, 65]]):
        track = mido.MidiTrack()
        track.extend(build.get("meta", []))
        for pitch in pitches:
            track.append(mido.Message("note_on", note=pitch, velocity=80,
                                      channel=build.get("channel", 0)))
            track.append(mido.Message("note_off", note=pitch, time=480,
                                      channel=build.get("channel", 0)))
        midi.tracks.append(track)
    path = tmp_path / name
    midi.save(path)
    return path


def _bytes(tmp_path, name, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _good_bytes(tmp_path) -> bytes:
    return _midi(tmp_path, "good.mid", {}).read_bytes()


def _smpte(tmp_path) -> Path:
    data = bytearray(_good_bytes(tmp_path))
    data[12:14] = b"\xe7\x28"  # division: -25 frames per second, 40 ticks per frame
    return _bytes(tmp_path, "smpte.mid", bytes(data))


MIDI_CASES = {  # name -> (make(tmp_path) -> path, text the error line contains)
    "garbage": (lambda t: _bytes(t, "garbage.mid", bytes(range(256)) * 2), "not a readable MIDI"),
    "truncated": (lambda t: _bytes(t, "cut.mid", _good_bytes(t)[:40]), "not a readable MIDI"),
    "empty file": (lambda t: _bytes(t, "empty.mid", b""), "not a readable MIDI"),
    "header only": (lambda t: _bytes(t, "head.mid", b"MThd\0\0\0\6\0\1\0\1\1\xe0"),
                    "not a readable MIDI"),
    "huge track length": (lambda t: _bytes(t, "long.mid", b"MThd\0\0\0\6\0\0\0\1\1\xe0MTrk"
                                           b"\x7f\xff\xff\xff\0\x90\x3c\x40"),
                          "not a readable MIDI"),
    "type 2": (lambda t: _midi(t, "type2.mid", {"type": 2, "tracks": [[60, 62], [64, 65]]}),
               "type 2"),
    "no notes": (lambda t: _midi(t, "silent.mid", {"tracks": [[]]}), "no notes"),
    "drums only": (lambda t: _midi(t, "drums.mid", {"channel": 9}), "no notes"),
    "SMPTE time": (_smpte, "SMPTE"),
    "tempo 0": (lambda t: _midi(t, "tempo0.mid", {
        "meta": [mido.MetaMessage("set_tempo", tempo=0)]}), "tempo of 0"),
    "tempo 3.6 BPM": (lambda t: _midi(t, "slow.mid", {
        "meta": [mido.MetaMessage("set_tempo", tempo=0xFFFFFF)]}), "--bpm"),
    "tempo 60,000,000 BPM": (lambda t: _midi(t, "fast.mid", {
        "meta": [mido.MetaMessage("set_tempo", tempo=1)]}), "--bpm"),
    "a folder": (lambda t: (t / "folder.mid").mkdir() or t / "folder.mid", "folder.mid"),
    "missing": (lambda t: t / "missing.mid", "no such file"),
}


@pytest.mark.parametrize("case", MIDI_CASES)
def test_a_bad_midi_file_is_one_line_and_the_output_is_kept(case, tmp_path, env, existing):
    make, text = MIDI_CASES[case]
    bad = make(tmp_path)
    before = digest(existing)
    result = run_jam(["respond", bad, "-o", existing, "--force", "--model", "rules"], env)
    line = one_line_error(result)
    assert text in line, line
    assert digest(existing) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_a_tempo_jam_cannot_play_is_fine_with_bpm(tmp_path, env):
    bad = MIDI_CASES["tempo 3.6 BPM"][0](tmp_path)
    out = tmp_path / "out.mid"
    result = run_jam(["respond", bad, "-o", out, "--model", "rules", "--bpm", "90"], env)
    assert result.returncode == 0, result.stderr
    assert "at 90 BPM" in result.stdout and out.read_bytes().startswith(b"MThd")


OUTPUT_CASES = {  # -o where no file can go: (make(tmp_path) -> path, text)
    "a folder, with --force": (lambda t: (t / "takes").mkdir() or t / "takes", "Is a directory"),
    "a missing folder": (lambda t: t / "nowhere" / "out.mid", "does not exist"),
    "a read-only place": (lambda t: Path("/proc/jam-test-out.mid"), "cannot write"),
}


@pytest.mark.parametrize("case", OUTPUT_CASES)
def test_an_output_that_cannot_be_written_is_one_line(case, tmp_path, env, call):
    make, text = OUTPUT_CASES[case]
    out = make(tmp_path)
    result = run_jam(["respond", call, "-o", out, "--force", "--model", "rules"], env)
    assert text in one_line_error(result)


# --- model files (--model) --------------------------------------------------------------------


def _default_model() -> bytes:
    return (resources.files("jam.models") / "default.onnx").read_bytes()


def _other_onnx(tmp_path) -> Path:
    """A valid ONNX model that is not jam's (one Relu)."""
    onnx = pytest.importorskip("onnx", reason="the onnx package builds a foreign model")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "relu.onnx"
    onnx.save(model, path)
    return path


MODEL_CASES = {
    "garbage": (lambda t: _bytes(t, "garbage.onnx", bytes(range(256))), "not a readable ONNX"),
    "truncated": (lambda t: _bytes(t, "cut.onnx", _default_model()[:300_000]),
                  "not a readable ONNX"),
    "empty file": (lambda t: _bytes(t, "empty.onnx", b""), "not a readable ONNX"),
    "not jam's": (_other_onnx, "not a jam model"),
    "missing": (lambda t: t / "missing.onnx", "no such model file"),
}


@pytest.mark.parametrize("case", MODEL_CASES)
def test_a_bad_model_file_is_one_line_everywhere(case, tmp_path, env, call, existing):
    make, text = MODEL_CASES[case]
    model = make(tmp_path)
    before = digest(existing)
    runs = {"respond": ["respond", call, "-o", existing, "--force", "--model", model],
            "model": ["model", model],
            # the main job loads the model before it opens any port: no MIDI system needed
            "main job": ["--api", "jack", "--model", model]}
    for name, args in runs.items():
        line = one_line_error(run_jam(args, env))
        assert text in line, (name, line)
    assert digest(existing) == before


# --- config files -----------------------------------------------------------------------------

CONFIG_CASES = {  # file content (bytes), or None for a folder -> text the error contains
    "syntax": (b"bpm: [\n", "not valid YAML at line 2"),
    "a tab": (b"bpm:\t96\n", "not valid YAML at line 1"),
    "unclosed quote": (b'key: "D minor\n', "not valid YAML"),
    "a word for a number": (b"bpm: fast\n", "bad value for 'bpm'"),
    "a list for a number": (b"bpm: [1, 2]\n", "bad value for 'bpm'"),
    "a fraction for an integer": (b"channel: 1.5\n", "bad value for 'channel'"),
    "true for a number": (b"bpm: true\n", "bad value for 'bpm'"),
    "nan": (b"bpm: .nan\n", "bad value for 'bpm'"),
    "infinity": (b"temperature: .inf\n", "bad value for 'temperature'"),
    "a bad switch": (b"metronome: maybe\n", "bad value for 'metronome'"),
    "controls not a mapping": (b"controls: 5\n", "bad value for 'controls'"),
    "a control out of range": (b"controls: {temperature: cc 300}\n", "bad value for 'controls'"),
    "presets not a list": (b"presets: {a: 1}\n", "bad value for 'presets'"),
    "a preset out of range": (b"presets:\n  - {bpm: 1000}\n", "bad value for 'bpm'"),
    "unknown key": (b"tempreture: 0.9\n", "did you mean 'temperature'"),
    "a list, not a mapping": (b"- bpm\n", "must be a mapping"),
    "a python object": (b"!!python/object:os.system {}\n", "not valid YAML"),
    "an integer of 500 digits": (b"seed: " + b"1" * 500 + b"\n", "too large"),
    "an integer of 5000 digits": (b"seed: " + b"1" * 5000 + b"\n", "cannot read"),
    "nested 20000 deep": (b"bpm: " + b"[" * 20000 + b"\n", "too deeply"),
    "binary": (b"\xff\xfe\x00bpm", "cannot read config file"),
    "low above high": (b"low: 90\nhigh: 60\n", "swap them"),
    "a folder": (None, "cannot read config file"),
}


def _config_file(tmp_path, case) -> Path:
    content, _ = CONFIG_CASES[case]
    path = tmp_path / "jam.yaml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    return path


class InProcess:
    """What ``cli.main(args)`` printed and returned, as a finished process would show it."""

    def __init__(self, args, capsys) -> None:
        self.returncode = cli.main([str(a) for a in args])
        self.stdout, self.stderr = capsys.readouterr()


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_a_bad_config_file_is_one_line_and_jam_learn_leaves_it_alone(case, tmp_path, capsys,
                                                                     monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    content, text = CONFIG_CASES[case]
    path = _config_file(tmp_path, case)
    line = one_line_error(InProcess(["config", "--config", path], capsys))
    assert text in line, line
    if content is not None:  # jam learn rewrites the file: not this one
        result = InProcess(["learn", "temperature", "--config", path, "--timeout", "1"], capsys)
        assert text in one_line_error(result)
        assert path.read_bytes() == content


@pytest.mark.parametrize("case", ["syntax", "an integer of 5000 digits", "nested 20000 deep"])
def test_a_bad_config_file_as_a_process_sees_it(case, tmp_path, env):
    path = _config_file(tmp_path, case)
    assert CONFIG_CASES[case][1] in one_line_error(run_jam(["config", "--config", path], env))


def test_a_missing_config_file_is_one_line(tmp_path, env):
    line = one_line_error(run_jam(["config", "--config", tmp_path / "nope.yaml"], env))
    assert "does not exist" in line


# --- every numeric option at and beyond its limits --------------------------------------------

# other options a value needs to be valid at all (low <= high, answer_bars <= max_answer_bars)
COMPANIONS = {"low": ["--high", "127"], "high": ["--low", "0"],
              "answer_bars": ["--max-answer-bars", "64"]}
NOT_NUMBERS = ["nan", "inf", "-inf", "1e999", "1" + "0" * 400, "twelve", "0x10", ""]


def _limits():
    return [o for o in OPTIONS if hasattr(o.check, "limits")]


def _text(value: float, integer: bool) -> str:
    return str(int(value)) if integer else repr(float(value))


def boundary_cases(option) -> list[tuple[str, bool]]:
    """(text, valid) for ``option``: each limit, one step beyond each side, a fraction for
    an integer option, and things that are no number at all."""
    limits = option.check.limits
    step = 1 if limits.integer else 0.001
    cases: list[tuple[str, bool]] = []
    if limits.low is not None:
        if limits.low_open:
            cases += [(_text(limits.low, False), False), (repr(limits.low + 1e-9), True)]
        else:
            cases += [(_text(limits.low, limits.integer), True),
                      (_text(limits.low - step, limits.integer), False)]
    if limits.high is not None:
        cases += [(_text(limits.high, limits.integer), True),
                  (_text(limits.high + step, limits.integer), False)]
    else:  # no upper limit: a very large number is valid (and a float's range the end)
        cases += [("1e300" if not limits.integer else str(10 ** 300), True)]
    if limits.integer:
        cases.append((repr((limits.low or 0) + 1.5), False))
    return cases + [(text, False) for text in NOT_NUMBERS]


def _run_cli(args, capsys) -> tuple[int, str, str]:
    result = InProcess(args, capsys)
    return result.returncode, result.stdout, result.stderr


def test_the_options_with_limits_are_the_numeric_ones():
    numeric = {o.key for o in OPTIONS if o.from_text.__name__ == "_number_text"}
    assert {o.key for o in _limits()} == numeric and len(numeric) >= 15, numeric


@pytest.mark.parametrize("option", _limits(), ids=lambda o: o.key)
def test_every_numeric_option_at_and_beyond_its_limits(option, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    extra = COMPANIONS.get(option.key, [])
    checked = []
    for text, valid in boundary_cases(option):
        # on the command line
        code, out, err = _run_cli(["config", option.flag, text, *extra], capsys)
        assert "Traceback" not in err and "internal error" not in err, (text, err)
        if valid:
            assert code == 0 and err == "", (option.key, text, err)
            printed = next(line for line in out.splitlines()
                           if line.startswith(f"{option.key}: "))
            assert math.isclose(float(printed.split(": ", 1)[1]), float(text)), printed
        else:
            lines = err.strip().splitlines()
            assert code == 2 and len(lines) == 1, (option.key, text, err)
            assert lines[0].startswith((f"jam: bad value for '{option.key}' ({option.flag})",
                                        # argparse takes "-inf" for a flag; --bpm=-inf works
                                        f"jam: argument {option.flag}: expected one")), lines[0]
            assert len(lines[0]) < 300, lines[0]
        # and in the config file, as YAML writes the number the command line gives
        path = tmp_path / "jam.yaml"
        path.write_text(yaml.safe_dump({option.key: option.from_text(text)}))
        code, out, err = _run_cli(["config", "--config", path, *extra], capsys)
        assert "Traceback" not in err and "internal error" not in err, (text, err)
        assert code == (0 if valid else 2), (option.key, text, err)
        assert valid or len(err.strip().splitlines()) == 1, err
        checked.append(text)
    assert len(checked) >= 10


# --- recording where nothing can be written (over JACK) ---------------------------------------


PROC = Path("/proc")


def _read_only_folder(tmp_path) -> Path:
    if os.geteuid() == 0:  # root writes through permissions: /proc takes no files
        return PROC
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    return folder


RECORD_CASES = {  # --record target -> (make(tmp_path) -> (path, file to keep or None), why)
    "an existing file": (lambda t: (t / "take.mid",) * 2, "not a folder"),
    "a read-only folder": (lambda t: (_read_only_folder(t), None), ""),
}


@pytest.mark.parametrize("case", RECORD_CASES)
def test_record_where_nothing_can_be_written_warns_once_and_jam_plays(case, start_jam,
                                                                       keyboard, synth,
                                                                       tmp_path):
    make, why = RECORD_CASES[case]
    target, keep = make(tmp_path)
    if keep is not None:
        keep.write_bytes(PRECIOUS)
    # nothing may appear in the folder (/proc, root's read-only place, lists processes)
    before = sorted(os.listdir(target)) if target.is_dir() and target != PROC else None
    jam = start_jam("--model", "rules", "--answer-bars", "1", "--record", str(target))
    start = time.monotonic() + 0.1
    for i, pitch in enumerate([60, 62, 64, 65]):
        while time.monotonic() < start + 0.5 * i:
            time.sleep(0.001)
        keyboard.send(mido.Message("note_on", note=pitch, velocity=90))
        while time.monotonic() < start + 0.5 * i + 0.45:
            time.sleep(0.001)
        keyboard.send(mido.Message("note_off", note=pitch, velocity=0))
    assert synth.wait_count(1, timeout=10, where=lambda m: m.type == "note_on"), jam.stderr
    jam.process.send_signal(signal.SIGTERM)
    assert jam.wait() == 0, jam.stderr
    warnings = [line for line in jam.lines if "recording" in line]
    assert len(warnings) == 1, jam.stderr
    assert warnings[0].startswith(f"jam: recording off: cannot write a file in {target} ")
    assert why in warnings[0]
    assert "Traceback" not in jam.stderr
    if keep is not None:
        assert keep.read_bytes() == PRECIOUS
    if before is not None:
        assert sorted(os.listdir(target)) == before
    assert synth.wait_count(1, timeout=5, where=lambda m: m.type == "control_change"
                            and m.control == 120)
    assert check_notes(synth.received).clean
