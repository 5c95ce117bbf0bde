"""The prepared-dataset format (jam/dataset.py): split assignment, reading, errors."""

import json

import pytest

from jam import dataset
from jam.errors import JamError
from jam.music import tokens as tk


def test_split_is_deterministic_and_close_to_80_10_10():
    ids = [f"book/{i}.abc#{i}" for i in range(20_000)]
    splits = [dataset.split_of(i) for i in ids]
    assert splits == [dataset.split_of(i) for i in ids]
    shares = {name: splits.count(name) / len(ids) for name in dataset.SPLITS}
    assert abs(shares["train"] - 0.8) < 0.02 and abs(shares["test"] - 0.1) < 0.02
    assert splits != [dataset.split_of(i, seed=1) for i in ids]


def test_write_then_read_round_trips(tmp_path):
    tunes = [dataset.Tune("a/1", "a", 3, tk.encode([tk.Note(60, 0, 12), tk.Note(62, 12, 6)])),
             dataset.Tune("b/2", "b", 4, [])]
    dataset.write_split(tmp_path, "valid", tunes)
    assert dataset.read_split(tmp_path, "valid") == tunes
    assert tunes[0].n_notes == 2


def test_bad_dataset_folders_are_one_line_errors(tmp_path):
    with pytest.raises(JamError, match="prepare_data"):
        dataset.read_split(tmp_path, "train")
    (tmp_path / "train.jsonl").write_text(json.dumps({"id": "x", "source": "s", "tokens": [tk.BOS]}) + "\n")
    with pytest.raises(JamError, match=r"train.jsonl:1: tokens"):
        dataset.read_split(tmp_path, "train")
    (tmp_path / "train.jsonl").write_text("{not json\n")
    with pytest.raises(JamError, match="not JSON"):
        dataset.read_split(tmp_path, "train")
    with pytest.raises(JamError, match="prepare_data"):
        dataset.data_hash(tmp_path)
