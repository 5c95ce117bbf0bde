"""tools/evaluate.py --quick end to end (what CI runs): every figure for every generator."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

from jam.evaluation.continuation import Context, features  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PROBABILISTIC = ("shipped", "shipped + memory", "markov", "markov-ltm", "unigram")
ANSWERING = ("shipped", "shipped + memory", "shipped, no key mask", "markov", "markov-ltm",
             "unigram", "rules", "repeat", "random-in-key")
FEATURES = set(features([], Context([], frozenset(), (frozenset(),), 48)))


def finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def test_quick_evaluation_reports_every_metric_for_every_generator(tmp_path):
    out = tmp_path / "eval"
    command = [sys.executable, str(ROOT / "tools" / "evaluate.py"), "--quick", "--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "evaluation.json").read_text())

    assert set(result["likelihood"]) == set(PROBABILISTIC)
    for entry in result["likelihood"].values():
        for part in ("test", "corpus_test"):
            assert finite(entry[part]["bits_per_note"]) and finite(entry[part]["pitch_bits_per_note"])
            assert entry[part]["pitch_bits_per_note"] < entry[part]["bits_per_note"]
    for entry in result["corpus_cv"]["models"].values():
        assert finite(entry["pitch_bits_per_note"]) and entry["notes"] > 0

    sets = result["continuation"]["sets"]
    assert set(ANSWERING) | {"real continuation", "training continuation"} == set(sets)
    for name in ANSWERING:
        entry = sets[name]
        assert set(entry["means"]) == FEATURES
        assert all(entry["means"][f] is not None for f in FEATURES), name
        assert set(entry["vs_real"]["features"]) == FEATURES
        for comparison in entry["vs_real"]["features"].values():
            assert 0 <= comparison["overlap"] <= 1 and comparison["kl"] >= 0
        assert 0 <= entry["vs_train"]["mean_overlap"] <= 1
    # properties the setup guarantees: answers end on the tonic triad, repeating is copying
    assert sets["shipped"]["ends_on_tonic_triad"] == 1.0
    assert sets["shipped + memory"]["ends_on_tonic_triad"] == 1.0
    assert sets["repeat"]["means"]["call_repetition"] == 1.0
    assert 0 <= sets["real continuation"]["ends_on_tonic_triad"] <= 1
    endings = result["continuation"]["real_endings"]
    assert endings["tune ends"]["count"] > 0 and 0 <= endings["tune ends"]["share"] <= 1

    for name in result["plots"]:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / "evaluation.md").read_text()
    assert all(f"| {name} |" in table for name in ANSWERING)

    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
