"""The prepared-dataset format written by ``tools/prepare_data.py`` and read by training and
evaluation (stdlib only).

A dataset is a folder::

    train.jsonl  valid.jsonl  test.jsonl   one tune per line:
        {"id": "...", "source": "...", "beats_per_bar": 4, "tokens": [60, 140, ...]}
    summary.json                           counts, sources, skipped files, settings

``tokens`` follow :mod:`jam.music.tokens` without the leading BOS. Tunes are split by tune
(never by window) with :func:`split_of`, a hash of the tune id: deterministic, and a tune
keeps its split when other tunes are added or removed. Melodies taken from several parts of
one file (``FILE::PART``, :data:`PART_SEP`) are split by the file, so the parts of one piece
never sit in train and test at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

from jam.errors import JamError
from jam.fileio import atomic_write_bytes
from jam.music import tokens as tk

SPLITS = ("train", "valid", "test")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
SUMMARY = "summary.json"
PART_SEP = "::"  # tune id of one part of a file: "source/file.mid::2"
MUSIC_SUFFIXES = frozenset({".mid", ".midi", ".abc", ".xml", ".mxl", ".musicxml", ".krn"})


@dataclass
class Tune:
    """One melody of the dataset."""

    id: str
    source: str
    beats_per_bar: int = 4
    tokens: list[int] = field(default_factory=list)

    @property
    def n_notes(self) -> int:
        return tk.count_notes(self.tokens)


def group_of(tune_id: str) -> str:
    """What a tune is split by: its id, or its file for one part of a multi-part file."""
    return tune_id.split(PART_SEP, 1)[0]


def split_of(tune_id: str, seed: int = 0) -> str:
    """The split a tune belongs to: 80/10/10 by a hash of its group (:func:`group_of`) and
    the seed."""
    digest = hashlib.sha256(f"{seed}:{group_of(tune_id)}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    edge = 0.0
    for name, fraction in zip(SPLITS, SPLIT_FRACTIONS):
        edge += fraction
        if u < edge:
            return name
    return SPLITS[-1]


def split_path(folder: str | os.PathLike, name: str) -> Path:
    if name not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {name!r}")
    return Path(folder) / f"{name}.jsonl"


def _shell(path: str | os.PathLike) -> str:
    text, home = str(path), os.path.expanduser("~")
    if text.startswith(home + os.sep):
        return "~/" + shlex.quote(text[len(home) + 1:])
    return shlex.quote(text)


def not_prepared(folder: str | os.PathLike) -> JamError:
    """The error for a folder that is not a prepared dataset, with a hint that is safe to
    paste: it never suggests writing a dataset into a folder of the user's music."""
    folder = Path(folder)
    if not folder.exists():
        return JamError(f"{folder}: no such dataset folder; prepare one from your music with "
                        f"python tools/prepare_data.py --folder YOUR_MIDI_FOLDER -o {_shell(folder)}")
    if not folder.is_dir():
        return JamError(f"{folder}: not a folder; give the -o folder of tools/prepare_data.py")
    try:
        music = next((p for p in folder.rglob("*") if p.suffix.lower() in MUSIC_SUFFIXES), None)
    except OSError:
        music = None
    if music is not None:
        target = Path.home() / "jam" / "data" / (folder.resolve().name or "mine")
        if folder.resolve() in (target, *target.parents) or target in folder.resolve().parents:
            target = target.with_name(target.name + "-data")
        return JamError(f"{folder} holds music files, not a prepared dataset; prepare it first "
                        f"(into a new folder outside it): python tools/prepare_data.py --folder "
                        f"{_shell(folder)} -o {_shell(target)}")
    return JamError(f"{folder}: not a prepared dataset (no {', '.join(n + '.jsonl' for n in SPLITS)}); "
                    "give the -o folder of tools/prepare_data.py")


def check_prepared(folder: str | os.PathLike) -> None:
    """JamError (see :func:`not_prepared`) unless ``folder`` holds the three split files."""
    if not all(split_path(folder, name).is_file() for name in SPLITS):
        raise not_prepared(folder)


def _tune_from_json(record: object, where: str) -> Tune:
    if not isinstance(record, dict) or not {"id", "source", "tokens"} <= record.keys():
        raise JamError(f"{where}: not a tune record (needs id, source, tokens); prepare the data again")
    tokens = record["tokens"]
    if not isinstance(tokens, list) or not all(
        isinstance(t, int) and 0 <= t < tk.VOCAB_SIZE and t != tk.BOS for t in tokens
    ):
        raise JamError(f"{where}: tokens are not valid {tk.REPRESENTATION} tokens; prepare the data again")
    return Tune(str(record["id"]), str(record["source"]), int(record.get("beats_per_bar", 4)), tokens)


def read_split(folder: str | os.PathLike, name: str) -> list[Tune]:
    """The tunes of one split. JamError if the folder is not a prepared dataset."""
    path = split_path(folder, name)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise not_prepared(folder) from None
    tunes = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise JamError(f"{path}:{number}: not JSON; prepare the data again") from None
        tunes.append(_tune_from_json(record, f"{path}:{number}"))
    return tunes


def write_split(folder: str | os.PathLike, name: str, tunes: list[Tune]) -> Path:
    """Write one split atomically (replacing a previous preparation of the same folder)."""
    text = "".join(json.dumps(asdict(t), separators=(",", ":")) + "\n" for t in tunes)
    return atomic_write_bytes(split_path(folder, name), text.encode(), overwrite=True)


def read_summary(folder: str | os.PathLike) -> dict:
    path = Path(folder) / SUMMARY
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise not_prepared(folder) from None
    except json.JSONDecodeError:
        raise JamError(f"{path}: not JSON; prepare the data again") from None


def data_hash(folder: str | os.PathLike) -> str:
    """SHA-256 over the three split files: identifies the exact data a model saw."""
    digest = hashlib.sha256()
    for name in SPLITS:
        path = split_path(folder, name)
        try:
            digest.update(path.read_bytes())
        except FileNotFoundError:
            raise not_prepared(folder) from None
    return digest.hexdigest()
