"""The training tools as a new user meets them, run as subprocesses on tiny generated data:
melody extraction by part through prepare_data, the default training budget on a small
folder, evaluation of a user model against the shipped one, and every misuse the product
owner hit (one-line error, exit 2, nothing written into an input folder, hints that are safe
to paste). HOME is a temporary folder in every subprocess, so nothing lands in the real one."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("music21")

from chorale import ALTO, BASS, SOPRANO, TENOR, chorale_type0, chorale_type1  # noqa: E402
from jam import dataset  # noqa: E402
from jam.midi.files import write_midi  # noqa: E402
from jam.music import tokens as tk  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"
TINY = ["--embed", "8", "--hidden", "8", "--layers", "1", "--quiet", "--threads", "1"]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("home")


def tool(home: Path, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"),
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(TOOLS / name), *args], cwd=ROOT, capture_output=True,
                            text=True, env=env, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"{name} {args} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The failure is exit 2 with exactly one line on stderr and no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def melody_file(path: Path, rng: np.random.Generator, length: int) -> None:
    notes, tick, pitch = [], 0, int(rng.integers(60, 72))
    for _ in range(length):
        duration = int(rng.choice([6, 12, 12, 24]))
        notes.append(tk.Note(pitch, tick, duration))
        tick += duration
        pitch = int(np.clip(pitch + rng.choice([-3, -2, -1, 1, 2, 4]), 50, 84))
    write_midi(path, [notes], bpm=100)


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory) -> Path:
    """24 short one-part tunes: the size of folder the old defaults trained 20 steps on."""
    folder = tmp_path_factory.mktemp("my-midi")
    rng = np.random.default_rng(3)
    for i in range(24):
        melody_file(folder / f"tune{i:02d}.mid", rng, int(rng.integers(24, 48)))
    return folder


@pytest.fixture(scope="module")
def small_data(small_folder, home) -> Path:
    out = home / "jam" / "data" / "small"
    tool(home, "prepare_data.py", "--folder", str(small_folder), "-o", str(out), "--quiet", "--workers", "1")
    return out


# ---------------------------------------------------------------- melody extraction


@pytest.fixture(scope="module")
def chorale_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("chorales")
    chorale_type1(folder / "type1.mid")
    chorale_type0(folder / "type0.mid")
    return folder


def all_tunes(data: Path) -> list[dataset.Tune]:
    return [t for name in dataset.SPLITS for t in dataset.read_split(data, name)]


def test_prepare_takes_the_soprano_of_a_type1_and_a_type0_chorale(chorale_folder, home, tmp_path):
    out = tmp_path / "data"
    done = tool(home, "prepare_data.py", "--folder", str(chorale_folder), "-o", str(out), "--quiet",
                "--no-cache")
    summary = dataset.read_summary(out)
    by_file = {f["file"].split("/")[-1]: f for f in summary["files"]}
    for name in ("type1.mid", "type0.mid"):
        taken = by_file[name]["taken"]
        assert len(taken) == 1 and "channel 1)" in taken[0]["part"], taken
        assert len(by_file[name]["parts"]) == 5  # four voices and the drums, each reported
    assert by_file["type1.mid"]["taken"][0]["reason"] == "named like a melody ('Soprano')"
    assert by_file["type0.mid"]["taken"][0]["reason"].startswith("highest mean pitch")
    # both files give the soprano note for note: the second copy is a removed duplicate
    tunes = all_tunes(out)
    assert len(tunes) == 1 and summary["duplicates_removed"] == 1
    assert tk.decode(tunes[0].tokens) == [n._replace(velocity=80) for n in SOPRANO]
    assert "(1 highest mean pitch)" in done.stdout  # the tally of why parts were taken


def test_prepare_all_parts_gives_four_tunes_per_file_and_no_drums(chorale_folder, home, tmp_path):
    out = tmp_path / "parts"
    tool(home, "prepare_data.py", "--folder", str(chorale_folder), "-o", str(out), "--all-parts",
         "--quiet", "--no-cache")
    summary = dataset.read_summary(out)
    for entry in summary["files"]:
        assert len(entry["taken"]) == 4 and "Drums" not in json.dumps(entry["taken"])
    lines = {tuple(tk.decode(t.tokens)) for t in all_tunes(out)}
    voices = [tuple(n._replace(velocity=80) for n in v) for v in (SOPRANO, ALTO, TENOR, BASS)]
    assert lines == set(voices)  # the type-0 file's four parts are duplicates of the type-1 file's
    drum_pitches = {36, 38, 42, 81}
    assert not any(drum_pitches & {n.pitch for n in line} for line in lines)
    # the parts of one file share a split: tune ids FILE::PART are split by FILE
    ids = [t.id for t in all_tunes(out)]
    assert all(dataset.PART_SEP in i for i in ids)
    assert len({dataset.split_of(i) for i in ids}) == 1


# ---------------------------------------------------------------- training budget


def test_default_budget_does_hundreds_of_steps_on_a_small_folder(small_data, home, tmp_path):
    from train import EPOCHS, EVAL_STEPS, MIN_STEPS, plan_for

    tunes = [np.asarray(t.tokens) for t in dataset.read_split(small_data, "train")]
    assert len(tunes) < 30
    old = plan_for(tunes, 128, batch=64, epochs=10, min_steps=0)  # what the defaults were
    new = plan_for(tunes, 128, batch=None, epochs=EPOCHS, min_steps=MIN_STEPS)  # the defaults
    assert old.steps < 50
    assert new.batch == 8 and new.steps >= 300 and new.epochs_per_round * new.steps_per_epoch >= EVAL_STEPS
    # the tool follows the plan (a smaller minimum here, to keep the test short)
    run = tmp_path / "run"
    tool(home, "train.py", str(small_data), "-o", str(run), "--small-valid", "fixed", "--window", "32",
         "--min-steps", "300", *TINY)
    record = json.loads((run / "record.json").read_text())
    assert record["metrics"]["steps"] == record["plan"]["steps_per_epoch"] * record["plan"]["epochs"] >= 300
    assert record["plan"]["batch"] == 8 and record["validation"]["mode"] == "fixed"


def test_a_small_valid_split_warns_and_chooses_the_length_by_cross_validation(small_data, home, tmp_path):
    valid = dataset.read_split(small_data, "valid")
    assert sum(t.n_notes for t in valid) < 1000
    run = tmp_path / "run"
    done = tool(home, "train.py", str(small_data), "-o", str(run), "--min-steps", "30", "--window", "32", *TINY)
    warning = [line for line in done.stderr.splitlines() if "warning" in line]
    assert len(warning) == 1 and "3-fold cross-validation" in warning[0]
    record = json.loads((run / "record.json").read_text())
    cv = record["validation"]["cross_validation"]
    assert cv["folds"] == 3 and len(cv["per_fold"]) == 3
    best = min(cv["pooled"], key=lambda e: e["valid_bits_per_note"])
    assert record["metrics"]["best_epoch"] == best["epoch"]  # the final run trains that long
    assert record["metrics"]["valid_bits_per_note"] == pytest.approx(best["valid_bits_per_note"])
    pool = len(dataset.read_split(small_data, "train")) + len(valid)
    assert f"on all {pool} tunes" in done.stdout


def test_every_option_has_help_and_shows_its_default():
    import argparse

    import evaluate
    import export_onnx
    import prepare_data
    import train

    for module in (prepare_data, train, export_onnx, evaluate):
        parser = module.build_parser()
        text = parser.format_help()
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{module.__name__}: {action.option_strings or action.dest} has no help"
            shows = action.default not in (None, False, []) and action.option_strings
            if shows:
                assert f"(default: {action.default})" in " ".join(text.split()), \
                    f"{module.__name__}: {action.option_strings} does not show its default"


# ---------------------------------------------------------------- misuse


def test_folder_without_a_value_is_an_error_and_prepares_nothing(home, tmp_path):
    out = tmp_path / "data"
    for args in (["--folder", "-o", str(out)], ["-o", str(out), "--folder"], ["--folder", "", "-o", str(out)]):
        line = one_line_error(tool(home, "prepare_data.py", *args, check=False))
        assert "--folder" in line
        assert not out.exists()


def test_prepare_never_writes_into_an_input_folder(small_folder, home):
    before = snapshot(small_folder)
    for out in (small_folder, small_folder / "data"):
        line = one_line_error(tool(home, "prepare_data.py", "--folder", str(small_folder), "-o", str(out),
                                   "--quiet", check=False))
        assert "inside the input folder" in line
    # the old hint, followed literally: -o MIDI_FOLDER without --folder would prepare the corpus there
    line = one_line_error(tool(home, "prepare_data.py", "-o", str(small_folder), "--quiet", check=False))
    assert "holds music files" in line
    assert snapshot(small_folder) == before


def test_train_on_a_midi_folder_gives_a_hint_that_is_safe_to_paste(small_folder, home):
    before = snapshot(small_folder)
    line = one_line_error(tool(home, "train.py", str(small_folder), "-o", str(home / "runs" / "x"),
                               check=False))
    assert "holds music files, not a prepared dataset" in line
    command = line.split("(into a new folder outside it): ", 1)[1]
    words = shlex.split(command.replace("~/", f"{home}/"))
    assert words[:2] == ["python", "tools/prepare_data.py"]
    out = Path(words[words.index("-o") + 1])
    assert small_folder not in (out, *out.parents)
    tool(home, "prepare_data.py", *words[2:], "--quiet")  # pasted as printed: it works ...
    assert dataset.read_summary(out)["tunes"] > 0
    assert snapshot(small_folder) == before  # ... and leaves the music folder alone
    assert not (home / "runs" / "x").exists()


def test_train_refuses_a_run_folder_inside_the_data(small_data, home):
    before = snapshot(small_data)
    line = one_line_error(tool(home, "train.py", str(small_data), "-o", str(small_data / "run"), check=False))
    assert "inside the input folder" in line
    assert snapshot(small_data) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_train_device_cuda_without_cuda_is_one_line(small_data, home, tmp_path):
    line = one_line_error(tool(home, "train.py", str(small_data), "-o", str(tmp_path / "run"),
                               "--device", "cuda", check=False))
    assert "--device cuda" in line and "--device cpu" in line
    assert not (tmp_path / "run").exists()


def test_bad_values_are_one_line_errors(small_data, home, tmp_path):
    for name, args in (("train.py", [str(small_data), "-o", str(tmp_path / "r"), "--batch", "0"]),
                       ("train.py", [str(small_data)]),
                       ("evaluate.py", ["--out", str(tmp_path / "e"), "--seeds", "x"]),
                       ("export_onnx.py", [str(tmp_path / "none.pt")])):
        one_line_error(tool(home, name, *args, check=False))


# ---------------------------------------------------------------- mine vs shipped


@pytest.fixture(scope="module")
def user_model(small_data, home) -> Path:
    run = home / "jam" / "runs" / "small"
    tool(home, "train.py", str(small_data), "-o", str(run), "--small-valid", "fixed", "--min-steps", "40",
         "--window", "32", *TINY)
    model = home / "jam" / "models" / "mine.onnx"  # the folder does not exist yet: export makes it
    tool(home, "export_onnx.py", str(run / "best.pt"), "-o", str(model))
    return model


def test_one_evaluate_run_compares_the_shipped_model_with_mine(small_data, user_model, home):
    before = snapshot(small_data)
    out = home / "jam" / "eval"
    done = tool(home, "evaluate.py", "--data", str(small_data), "--model", str(user_model), "--out",
                str(out), "--seeds", "1", "--calls-per-tune", "2")
    result = json.loads((out / "evaluation.json").read_text())
    assert list(result["models"]) == ["shipped", "mine"]
    assert result["models"]["mine"]["trained_on_this_data"] is True
    assert result["models"]["shipped"]["trained_on_this_data"] is False
    assert {"shipped", "mine", "markov", "markov-ltm", "unigram"} <= set(result["likelihood"])
    for entry in result["likelihood"].values():
        assert 0 < entry["test"]["bits_per_note"] < 30
    assert result["config"]["corpus"] is None and "corpus_cv" not in result  # no --corpus needed
    assert {"shipped", "mine", "rules"} <= set(result["continuation"]["sets"])
    table = done.stdout
    assert "| shipped |" in table and "| mine |" in table and "mine vs shipped" in table
    assert snapshot(small_data) == before
    line = one_line_error(tool(home, "evaluate.py", "--data", str(small_data), "--out",
                               str(small_data / "eval"), check=False))
    assert "inside the input folder" in line


def test_jam_explains_a_checkpoint_and_prints_a_model_card(user_model, home):
    env = {**os.environ, "HOME": str(home)}
    checkpoint = home / "jam" / "runs" / "small" / "best.pt"
    done = subprocess.run([sys.executable, "-m", "jam", "model", str(checkpoint)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=60)
    line = one_line_error(done)
    assert "PyTorch checkpoint" in line and "tools/export_onnx.py" in line and "truncated" not in line
    done = subprocess.run([sys.executable, "-m", "jam", "model", str(user_model)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "mine.onnx" in done.stdout and "test " in done.stdout and "small" in done.stdout
    assert "model: mine.onnx" in done.stderr  # the one log line of every model load
