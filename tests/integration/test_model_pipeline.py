"""The whole model path on tiny data, with the real tools as subprocesses:
prepare (MIDI folder + a few Bach chorales) -> train -> export -> runtime -> answer -> MIDI.
Also: ONNX/PyTorch parity, loader errors, resume reproducibility, DDP with 2 processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("music21")

from jam import dataset  # noqa: E402
from jam.errors import JamError  # noqa: E402
from jam.generators.base import AnswerSpec  # noqa: E402
from jam.generators.lstm import LstmGenerator  # noqa: E402
from jam.midi.files import read_midi, write_midi  # noqa: E402
from jam.model.runtime import load_model  # noqa: E402
from jam.music import tokens as tk  # noqa: E402
from jam.music.sampling import SamplerSettings, pitch_mask  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"
TINY = ["--embed", "8", "--hidden", "16", "--layers", "2", "--window", "24", "--batch", "8",
        "--quiet", "--threads", "1", "--min-steps", "0", "--small-valid", "fixed"]


def run(*args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                            env=env, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def tune(rng: np.random.Generator, length: int) -> list[tk.Note]:
    """A random-walk melody with varied rhythm and a few rests."""
    notes, tick, pitch = [], 0, int(rng.integers(55, 75))
    for _ in range(length):
        duration = int(rng.choice([3, 6, 6, 12, 12, 12, 18, 24]))
        notes.append(tk.Note(pitch, tick, duration))
        tick += duration + (12 if rng.random() < 0.1 else 0)
        pitch = int(np.clip(pitch + rng.choice([-4, -2, -1, 1, 2, 3, 5]), 40, 90))
    return notes


@pytest.fixture(scope="module")
def midi_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("midi")
    rng = np.random.default_rng(1)
    for i in range(40):
        write_midi(folder / f"tune{i:02d}.mid", [tune(rng, int(rng.integers(20, 60)))], bpm=100)
    shutil.copy(folder / "tune00.mid", folder / "copy_of_tune00.mid")  # an exact duplicate
    (folder / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06not really midi")
    return folder


@pytest.fixture(scope="module")
def data(midi_folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "tiny"
    cache = out.parent / "cache"
    run(str(TOOLS / "prepare_data.py"), "-o", str(out), "--folder", str(midi_folder), "--corpus",
        "bach", "--limit", "4", "--workers", "2", "--cache", str(cache), "--quiet")
    return out


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "tiny"
    run(str(TOOLS / "train.py"), str(data), "-o", str(out), "--epochs", "2", *TINY)
    return out


@pytest.fixture(scope="module")
def exported(trained, data) -> Path:
    model = trained / "model.onnx"
    result = run(str(TOOLS / "export_onnx.py"), str(trained / "best.pt"), "-o", str(model),
                 "--data", str(data))
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["parity_max_abs_diff"] <= 1e-4
    assert report["fp32_latency"]["p99_us"] > 0
    # The ONNX model scored through the runtime gives the figure training reported (torch).
    metrics = json.loads((trained / "record.json").read_text())["metrics"]
    assert report["fp32_test"]["bits_per_note"] == pytest.approx(metrics["test_bits_per_note"], abs=1e-3)
    assert report["fp32_test"]["notes"] == metrics["test_notes"]
    return model


def test_prepare_reads_midi_and_chorales_dedups_and_reports_bad_files(data, midi_folder):
    summary = dataset.read_summary(data)
    assert summary["sources"]["bach"]["tunes"] == 4  # the soprano of each of 4 chorales
    assert summary["duplicates_removed"] == 1
    assert [s["reason"] for s in summary["skipped"] if "broken.mid" in s["path"]]
    tunes = [t for name in dataset.SPLITS for t in dataset.read_split(data, name)]
    assert len(tunes) == summary["tunes"] == 44
    assert all(split["tunes"] for split in summary["splits"].values())
    first = next(t for t in tunes if t.id.endswith("tune00.mid"))  # one copy is kept
    assert tk.decode(first.tokens) == read_midi(midi_folder / "tune00.mid").notes


def test_prepare_is_deterministic_and_uses_its_cache(data, midi_folder, tmp_path):
    again = tmp_path / "again"
    run(str(TOOLS / "prepare_data.py"), "-o", str(again), "--folder", str(midi_folder), "--corpus",
        "bach", "--limit", "4", "--workers", "1", "--cache", str(data.parent / "cache"), "--quiet")
    assert dataset.data_hash(again) == dataset.data_hash(data)
    refused = run(str(TOOLS / "prepare_data.py"), "-o", str(again), "--folder", str(midi_folder),
                  "--quiet", check=False)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1


def test_whole_path_answers_with_valid_midi(exported, tmp_path):
    model = load_model(exported, device="cpu")
    assert model.metadata["jam.representation"] == tk.REPRESENTATION
    generator = LstmGenerator(model)
    call = [tk.Note(60, 0, 12), tk.Note(62, 12, 12), tk.Note(64, 24, 6), tk.Note(67, 30, 18)]
    generator.feed(tk.encode(call))
    spec = AnswerSpec(SamplerSettings(temperature=1.0, top_p=0.95), pitch_mask(low=48, high=84))
    answer = generator.continuation(spec, np.random.default_rng(0))
    tokens = [next(answer) for _ in range(64)]
    notes = tk.decode(tokens, start=48)
    assert len(notes) == tk.count_notes(tokens) > 0  # grammatical: every pitch gets its SHIFT
    assert all(48 <= n.pitch <= 84 for n in notes)
    path = tmp_path / "answer.mid"
    write_midi(path, [notes], bpm=120)
    assert read_midi(path).notes == notes


def test_exported_model_matches_pytorch(trained, exported):
    from jam.model.network import model_from_config

    checkpoint = torch.load(trained / "best.pt", weights_only=True)
    reference = model_from_config(checkpoint["config"])
    reference.load_state_dict(checkpoint["model"])
    reference.eval()
    model = load_model(exported, device="cpu")
    rng = np.random.default_rng(7)
    for _ in range(3):
        seq = np.concatenate(([tk.BOS], rng.integers(0, tk.BOS, size=99)))
        with torch.no_grad():
            expected = reference(torch.from_numpy(seq).view(1, -1))[0][0].numpy()
        model.reset()
        stepped = np.stack([model.step(int(t)).copy() for t in seq])
        assert np.abs(stepped - expected).max() <= 1e-4
        model.reset()
        assert np.abs(model.prime(seq) - expected[-1]).max() <= 1e-4


def test_reprime_rebuilds_the_same_state_as_stepping(exported):
    generator = LstmGenerator(load_model(exported, device="cpu"))
    generator.feed(tk.encode([tk.Note(60 + i % 5, 6 * i, 6) for i in range(10)]))
    stepped = generator.next_logits()
    generator.reprime()  # BOS + the same 20 tokens, in one run
    assert np.abs(generator.next_logits() - stepped).max() <= 1e-4


def test_export_refuses_to_overwrite(trained, exported):
    before = exported.read_bytes()
    result = run(str(TOOLS / "export_onnx.py"), str(trained / "best.pt"), "-o", str(exported), check=False)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "--force" in result.stderr
    assert exported.read_bytes() == before


@pytest.fixture(scope="module")
def bad_models(exported, tmp_path_factory) -> dict[str, Path]:
    """A missing, a truncated, a foreign (non-jam) and a wrong-version model file."""
    from onnx import TensorProto, helper

    folder = tmp_path_factory.mktemp("bad_models")
    truncated = folder / "truncated.onnx"
    truncated.write_bytes(exported.read_bytes()[: exported.stat().st_size // 2])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "foreign",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    foreign = folder / "foreign.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(foreign))
    proto = onnx.load(str(exported))
    for entry in proto.metadata_props:
        if entry.key == "jam.representation":
            entry.value = "jam-melody-v0"
    old = folder / "old.onnx"
    onnx.save(proto, str(old))
    return {"no such model file": folder / "nope.onnx", "truncated": truncated,
            "not a jam model": foreign, "jam-melody-v0": old}


def test_loader_rejects_missing_truncated_foreign_and_wrong_version(bad_models):
    for expected, path in bad_models.items():
        with pytest.raises(JamError) as err:
            load_model(path)
        message = str(err.value)
        assert expected in message and "\n" not in message and err.value.exit_code == 2


def test_cli_reports_bad_models_in_one_line_with_exit_2(bad_models, tmp_path):
    call = tmp_path / "call.mid"
    write_midi(call, [[tk.Note(60 + 2 * i, 12 * i, 12) for i in range(8)]], bpm=120)
    for expected, path in bad_models.items():
        result = run("-m", "jam", "respond", str(call), "-o", str(tmp_path / "answer.mid"),
                     "--model", str(path), check=False)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0] and "Traceback" not in result.stderr
        assert not (tmp_path / "answer.mid").exists()


def test_resume_continues_exactly(data, trained, tmp_path):
    out = tmp_path / "resumed"
    first = run(str(TOOLS / "train.py"), str(data), "-o", str(out), "--epochs", "2", "--stop-after", "1", *TINY)
    assert "--resume" in first.stdout and not (out / "record.json").exists()
    run(str(TOOLS / "train.py"), str(data), "-o", str(out), "--epochs", "2", "--resume", *TINY)
    straight = json.loads((trained / "record.json").read_text())["history"]
    resumed = json.loads((out / "record.json").read_text())["history"]
    assert [h["valid_bits_per_note"] for h in resumed] == [h["valid_bits_per_note"] for h in straight]


def test_ddp_two_processes_gloo(data, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "JAM_DDP_BACKEND": "gloo", "OMP_NUM_THREADS": "1"}
    run("-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        str(TOOLS / "train.py"), str(data), "-o", str(out), "--epochs", "1", *TINY, env=env)
    record = json.loads((out / "record.json").read_text())
    assert record["config"]["world_size"] == 2
    assert 0 < record["metrics"]["valid_bits_per_note"] < 30
    assert record["metrics"]["valid_notes"] == sum(
        t.n_notes for t in dataset.read_split(data, "valid"))
