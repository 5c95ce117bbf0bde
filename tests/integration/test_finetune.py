"""tools/finetune.py on tiny generated material, as a subprocess: a repeated motif that the
shipped model does not expect, learnt in a handful of steps (held-out bits per note fall), a
recorded session's player track taken by name, the result loaded by the runtime and answering
with ``jam respond --model``; misuse gives one-line errors and writes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")

from jam.midi.files import write_midi  # noqa: E402
from jam.music.tokens import Note  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "finetune.py"
BASE = ROOT / "models" / "default.onnx"
FAST = ["--steps", "12", "--eval-every", "4", "--lr", "3e-3", "--quiet", "--threads", "1"]
MOTIF = [(60, 6), (62, 6), (64, 6), (67, 12), (65, 6), (64, 6), (62, 12), (59, 6), (60, 12)]


def motif_notes(shift: int, repeats: int = 8) -> list[Note]:
    notes, tick = [], 0
    for _ in range(repeats):
        for pitch, length in MOTIF:
            notes.append(Note(pitch + shift, tick, length))
            tick += length
    return notes


def write_material(folder: Path) -> Path:
    """Five plain files and one recorded session whose jam track sits above the player."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(5):
        write_midi(folder / f"tune{k}.mid", [motif_notes(2 * (k % 3))], 100)
    jam_track = [Note(84 + (i * 5) % 12, i * 6, 6) for i in range(100)]
    write_midi(folder / "session.mid", [motif_notes(0), jam_track], 100, names=["player", "jam"])
    return folder


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(TOOL), *args], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=300)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_recorded_session_gives_the_player_track(tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    from finetune import melody_of

    folder = write_material(tmp_path / "music")
    notes, why = melody_of(folder / "session.mid")
    assert "player" in why
    assert [n.pitch for n in notes[:len(MOTIF)]] == [p for p, _ in MOTIF]


def test_finetune_lowers_held_out_bits_and_the_model_answers(tmp_path):
    from jam.model.runtime import load_model

    folder = write_material(tmp_path / "music")
    out = tmp_path / "models" / "mine.onnx"
    result = run(tmp_path, str(folder), "--base", str(BASE), "-o", str(out), *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    model = load_model(out, device="cpu")
    info = json.loads(model.metadata["jam.finetune"])
    assert info["base"] == "default.onnx" and info["files"] == 6
    assert "bach" in info["base_sources"]
    assert info["valid_bits_per_note_after"] < info["valid_bits_per_note_before"] - 0.3, info
    assert "held-out bits per note" in result.stdout

    answer = tmp_path / "answer.mid"
    jam = subprocess.run([sys.executable, "-m", "jam", "respond", str(folder / "tune1.mid"), "-o",
                          str(answer), "--model", str(out), "--seed", "1"], cwd=ROOT, capture_output=True,
                         text=True, env={**os.environ, "HOME": str(tmp_path / "home")}, timeout=120)
    assert jam.returncode == 0, jam.stderr
    assert answer.stat().st_size > 0

    again = run(tmp_path, str(folder), "--base", str(BASE), "-o", str(out), *FAST)
    assert "already exists" in one_line_error(again) and "--force" in one_line_error(again)


def test_misuse_is_a_one_line_error_and_writes_nothing(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    folder = write_material(tmp_path / "music")
    before = sorted(p.name for p in folder.iterdir())
    out = tmp_path / "out.onnx"

    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no MIDI files" in one_line_error(run(tmp_path, str(empty), "-o", str(out)))
    assert "no such file" in one_line_error(run(tmp_path, str(tmp_path / "nothing"), "-o", str(out)))
    assert "inside the input folder" in one_line_error(run(tmp_path, str(folder), "-o", str(folder / "m.onnx")))

    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model at all")
    assert "not a readable ONNX model" in one_line_error(
        run(tmp_path, str(folder), "--base", str(garbage), "-o", str(out)))
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    other = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph), str(other))
    assert "not a jam model" in one_line_error(run(tmp_path, str(folder), "--base", str(other), "-o", str(out)))

    assert not out.exists()
    assert sorted(p.name for p in folder.iterdir()) == before


def test_held_out_part_is_whole_files_or_pieces_of_one_long_session():
    import numpy as np

    sys.path.insert(0, str(ROOT / "tools"))
    from finetune import pieces, split

    long = np.arange(2000) % 100
    cut = pieces(list(long))
    assert len(cut) == 4 and sum(p.size for p in cut) == 2000 and all(p.size % 2 == 0 for p in cut)
    session = [(f"/s/evening.mid#{k}", p) for k, p in enumerate(cut)]
    train, valid, by = split(session, 0.2)
    assert by == "pieces" and len(valid) == 1 and len(train) == 3

    many = [(f"/m/f{f}.mid#{k}", np.full(10, f * 10 + k)) for f in range(10) for k in range(3)]
    train, valid, by = split(many, 0.2)
    assert by == "files" and len(valid) == 6 and len(train) == 24
    held = {int(t[0]) // 10 for t in valid}
    assert len(held) == 2 and not held & {int(t[0]) // 10 for t in train}
    assert split(many, 0.2)[1][0][0] == valid[0][0]  # deterministic
