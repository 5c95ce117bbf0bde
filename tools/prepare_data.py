#!/usr/bin/env python3
"""Prepare a melody dataset (see jam/dataset.py) from music21 corpus collections and folders.

    python tools/prepare_data.py -o data/pd                       # the four public-domain sets
    python tools/prepare_data.py -o data/mine --folder ~/midi     # your own .mid/.abc/.musicxml
    python tools/prepare_data.py -o data/all --corpus oneills1850 bach essenFolksong

Each tune becomes one melody: ties merged, grace notes dropped (on purpose: they carry no
time on the grid), repeats kept as written, chords and several parts reduced to the highest
note (skyline), except Bach chorales, where the part named Soprano is the melody. Exact
duplicate tunes (same pitches and rhythm) are removed before the split, so a tune printed in
two books cannot sit in train and test at once. Results are cached as JSON by content hash.
Needs the ``train`` extra (music21, tqdm).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import re
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from jam import dataset
from jam.errors import JamError
from jam.fileio import atomic_write_bytes
from jam.music import tokens as tk

PREP_VERSION = "prep-2"  # bump when extraction changes: invalidates the cache
PUBLIC_DOMAIN = ("oneills1850", "ryansMammoth", "airdsAirs", "bach")
OPT_IN = {"essenFolksong": "licence unclear (non-commercial use only); never ship a model trained on it"}
MIN_NOTES = 8
MIDI_SUFFIXES = {".mid", ".midi"}
SCORE_SUFFIXES = {".abc", ".xml", ".mxl", ".musicxml", ".krn"}


@dataclass(frozen=True)
class Task:
    """One tune to extract: a whole file, or one tune (``text``) of a multi-tune ABC file."""

    tune_id: str
    source: str
    path: str
    kind: str  # "midi", "score", "abc", "chorale"
    text: str = ""

    def cache_key(self) -> str:
        digest = hashlib.sha256(f"{PREP_VERSION}|{tk.REPRESENTATION}|{self.kind}|".encode())
        digest.update(self.text.encode() if self.text else Path(self.path).read_bytes())
        return digest.hexdigest()


# ---------------------------------------------------------------- sources -> tasks


def corpus_files(name: str) -> tuple[Path, list[Path]]:
    """The folder and files of one music21 corpus collection (Bach: the chorales only)."""
    from music21 import corpus

    files = []
    base = Path(corpus.__file__).parent / name
    for path in map(Path, corpus.getCorePaths()):
        if base not in path.parents:
            continue
        if name == "bach" and (
            path.parent != base or path.suffix == ".rntxt" or path.stem.startswith("bwv846")
        ):
            continue  # analyses, subfolders and the one piano prelude are not chorales
        files.append(path)
    return base, sorted(files)


def abc_tunes(text: str) -> list[tuple[str, str]]:
    """Split an ABC file into (unique label, tune text); the file header is kept on each."""
    header, *pieces = re.split(r"(?m)^(?=X:)", text)
    if not pieces:
        return [("1", text)] if text.strip() else []
    tunes: list[tuple[str, str]] = []
    labels: set[str] = set()
    for piece in pieces:
        label = piece.split("\n", 1)[0][2:].strip() or str(len(tunes) + 1)
        while label in labels:  # a reference number used twice in one file
            label += "'"
        labels.add(label)
        tunes.append((label, header + piece))
    return tunes


def tasks_for(source: str, files: list[Path], base: Path, chorales: bool) -> tuple[list[Task], list[dict]]:
    """Tasks of a source's files, and the files that could not even be opened."""
    tasks, skipped = [], []
    for path in files:
        name = path.relative_to(base).as_posix() if base in path.parents else path.name
        suffix = path.suffix.lower()
        if suffix in MIDI_SUFFIXES:
            tasks.append(Task(f"{source}/{name}", source, str(path), "midi"))
        elif suffix == ".abc":
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError as err:
                skipped.append({"path": f"{source}/{name}", "reason": f"cannot read: {err.strerror or err}"})
                continue
            for label, tune in abc_tunes(text):
                tasks.append(Task(f"{source}/{name}#{label}", source, str(path), "abc", tune))
        elif suffix in SCORE_SUFFIXES:
            kind = "chorale" if chorales else "score"
            tasks.append(Task(f"{source}/{name}", source, str(path), kind))
    return tasks, skipped


# ---------------------------------------------------------------- one task -> tokens


def score_melody(score, chorale: bool) -> tuple[list[tk.Note], int]:
    """Notes of the melody of a music21 score and its beats per bar."""
    from music21 import meter

    parts = list(getattr(score, "parts", [])) or [score]
    if chorale:
        parts = [p for p in parts if (p.partName or "").strip().lower().startswith("soprano")]
        if not parts:
            raise ValueError("no part named Soprano")
        parts = parts[:1]
    notes: list[tk.Note] = []
    beats_per_bar = 4
    for part in parts:
        flat = part.flatten()
        # The most frequent signature: music21 marks pickup bars with their own (e.g. 1/16).
        signatures = Counter((ts.numerator, ts.denominator)
                             for ts in flat.getElementsByClass(meter.TimeSignature))
        if signatures:
            numerator, denominator = signatures.most_common(1)[0][0]
            beats_per_bar = max(1, round(numerator * 4 / denominator))
        open_tie: tk.Note | None = None  # merge ties ourselves: only same pitch, back to back
        for element in flat.notes:
            if element.duration.isGrace:
                continue
            pitches = [p.midi for p in getattr(element, "pitches", ()) if 0 <= p.midi < 128]
            if not pitches:
                continue
            start = int(round(float(element.offset) * tk.TICKS_PER_BEAT))
            end = int(round(float(element.offset + element.quarterLength) * tk.TICKS_PER_BEAT))
            pitch = max(pitches)
            tie = element.tie.type if element.tie is not None else None
            if open_tie is not None and tie in ("stop", "continue") and open_tie.pitch == pitch \
                    and open_tie.end == start:
                open_tie = open_tie._replace(duration=max(1, end - open_tie.start))
                notes[-1] = open_tie
            elif end > start:
                open_tie = tk.Note(pitch, start, end - start)
                notes.append(open_tie)
            if tie not in ("start", "continue"):
                open_tie = None
    return notes, beats_per_bar


def extract(task: Task) -> dict:
    """Tokens of one task, or the reason it was skipped (never raises)."""
    warnings.filterwarnings("ignore")
    try:
        if task.kind == "midi":
            from jam.midi.files import read_midi

            phrase = read_midi(task.path)
            notes, beats_per_bar = phrase.notes, phrase.beats_per_bar
        else:
            from music21 import converter, stream

            if task.kind == "abc":
                parsed = converter.parse(task.text, format="abc")
            else:
                parsed = converter.parse(task.path)
            if isinstance(parsed, stream.Opus):
                parsed = parsed.scores[0]
            notes, beats_per_bar = score_melody(parsed, task.kind == "chorale")
        tokens = tk.encode(notes)
        n_notes = tk.count_notes(tokens)
        if n_notes < MIN_NOTES:
            return {"skip": f"only {n_notes} notes (fewer than {MIN_NOTES})"}
        return {"tokens": tokens, "beats_per_bar": int(beats_per_bar)}
    except Exception as err:  # one unreadable file is reported, never fatal
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return {"skip": f"{type(err).__name__}: {reason[:200]}"}


# ---------------------------------------------------------------- cache


class Cache:
    """JSON results by content hash, one small file each (safe to interrupt)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        if self.folder is None:
            return None
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def put(self, key: str, result: dict) -> None:
        if self.folder is None:
            return
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        atomic_write_bytes(path, json.dumps(result).encode(), overwrite=True)


def _run(item: tuple[str, Task]) -> tuple[str, Task, dict]:
    key, task = item
    return key, task, extract(task)


# ---------------------------------------------------------------- whole run


def prepare(
    output: Path,
    corpora: list[str],
    folders: list[Path],
    workers: int = 2,
    cache_dir: Path | None = None,
    seed: int = 0,
    limit: int | None = None,
    progress: bool = True,
) -> dict:
    """Build the dataset in ``output``; returns the summary (also written as summary.json)."""
    started = time.monotonic()
    tasks: list[Task] = []
    skipped: list[dict] = []
    order: list[str] = []
    for name in corpora:
        base, files = corpus_files(name)
        if not files:
            raise JamError(f"music21 corpus has no collection {name!r}; try one of "
                           f"{', '.join(PUBLIC_DOMAIN + tuple(OPT_IN))}")
        found, unreadable = tasks_for(name, files[:limit], base, chorales=name == "bach")
        tasks += found
        skipped += unreadable
        order.append(name)
    for folder in folders:
        if not folder.is_dir():
            raise JamError(f"{folder}: no such folder; give a folder of .mid/.abc/.musicxml files")
        files = sorted(p for p in folder.rglob("*")
                       if p.is_file() and p.suffix.lower() in MIDI_SUFFIXES | SCORE_SUFFIXES)
        if not files:
            skipped.append({"path": str(folder), "reason": "no .mid/.midi/.abc/.xml/.mxl files"})
        source = folder.resolve().name or "folder"
        found, unreadable = tasks_for(source, files, folder, chorales=False)
        tasks += found
        skipped += unreadable
        order.append(source)
    if not tasks:
        raise JamError("nothing to read; name a --corpus collection or a --folder with music files")

    cache = Cache(cache_dir)
    results: dict[str, dict] = {}
    todo: list[tuple[str, Task]] = []
    for task in tasks:
        try:
            key = task.cache_key()
        except OSError as err:
            results[task.tune_id] = {"skip": f"cannot read: {err.strerror or err}"}
            continue
        hit = cache.get(key)
        if hit is not None:
            results[task.tune_id] = hit
        else:
            todo.append((key, task))
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), unit="tune",
               desc="prepare", disable=not progress)
    if workers > 1 and len(todo) > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for key, task, result in pool.imap_unordered(_run, todo, chunksize=4):
                cache.put(key, result)
                results[task.tune_id] = result
                bar.update()
    else:
        for item in todo:
            key, task, result = _run(item)
            cache.put(key, result)
            results[task.tune_id] = result
            bar.update()
    bar.close()

    # Deterministic order: sources as named, then tune id; the first copy of a duplicate wins.
    rank = {name: i for i, name in enumerate(order)}
    tasks.sort(key=lambda t: (rank[t.source], t.tune_id))
    seen: dict[tuple[int, ...], str] = {}
    duplicates: list[dict] = []
    splits: dict[str, list[dataset.Tune]] = {name: [] for name in dataset.SPLITS}
    per_source: dict[str, dict] = {name: {"files": 0, "tunes": 0, "notes": 0, "tokens": 0,
                                         "skipped": 0, "duplicates": 0} for name in order}
    counted_files: set[str] = set()
    for task in tasks:
        stats = per_source[task.source]
        if task.path not in counted_files:
            counted_files.add(task.path)
            stats["files"] += 1
        result = results[task.tune_id]
        if "skip" in result:
            skipped.append({"path": task.tune_id, "reason": result["skip"]})
            stats["skipped"] += 1
            continue
        key = tuple(result["tokens"])
        if key in seen:
            duplicates.append({"id": task.tune_id, "same_as": seen[key]})
            stats["duplicates"] += 1
            continue
        seen[key] = task.tune_id
        tune = dataset.Tune(task.tune_id, task.source, result["beats_per_bar"], result["tokens"])
        splits[dataset.split_of(tune.id, seed)].append(tune)
        stats["tunes"] += 1
        stats["notes"] += tune.n_notes
        stats["tokens"] += len(tune.tokens)

    output.mkdir(parents=True, exist_ok=True)
    for name, tunes in splits.items():
        dataset.write_split(output, name, tunes)
    summary = {
        "representation": tk.metadata(),
        "prep_version": PREP_VERSION,
        "seed": seed,
        "split_fractions": dict(zip(dataset.SPLITS, dataset.SPLIT_FRACTIONS)),
        "sources": per_source,
        "splits": {name: {"tunes": len(t), "notes": sum(x.n_notes for x in t),
                          "tokens": sum(len(x.tokens) for x in t)} for name, t in splits.items()},
        "tunes": sum(len(t) for t in splits.values()),
        "notes": sum(s["notes"] for s in per_source.values()),
        "tokens": sum(s["tokens"] for s in per_source.values()),
        "duplicates_removed": len(duplicates),
        "duplicates": duplicates,
        "skipped": skipped,
        "sha256": dataset.data_hash(output),
        "seconds": round(time.monotonic() - started, 1),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
    }
    atomic_write_bytes(output / dataset.SUMMARY, (json.dumps(summary, indent=1) + "\n").encode(),
                       overwrite=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, required=True, help="dataset folder to write")
    parser.add_argument("--corpus", nargs="*", default=None, metavar="NAME",
                        help=f"music21 collections (default without --folder: {' '.join(PUBLIC_DOMAIN)}; "
                             "opt-in: essenFolksong)")
    parser.add_argument("--folder", nargs="*", type=Path, default=[], help="folders of .mid/.abc/.musicxml")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path("cache/prepare_data"), help="JSON cache folder")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--seed", type=int, default=0, help="split seed")
    parser.add_argument("--limit", type=int, default=None, help="at most N files per corpus collection (quick trials, tests)")
    parser.add_argument("--force", action="store_true", help="replace an existing dataset folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    corpora = args.corpus if args.corpus is not None else ([] if args.folder else list(PUBLIC_DOMAIN))
    try:
        if (args.output / dataset.SUMMARY).exists() and not args.force:
            raise JamError(f"{args.output} already holds a dataset; pass --force to replace it")
        for name in corpora:
            if name in OPT_IN:
                print(f"note: {name}: {OPT_IN[name]}", file=sys.stderr)
        summary = prepare(args.output, corpora, args.folder, max(1, args.workers),
                          None if args.no_cache else args.cache, args.seed, args.limit,
                          progress=not args.quiet)
    except JamError as err:
        print(f"prepare_data: {err}", file=sys.stderr)
        return 2
    splits = ", ".join(f"{k} {v['tunes']}" for k, v in summary["splits"].items())
    print(f"{summary['tunes']} tunes ({splits}), {summary['notes']} notes, {summary['tokens']} tokens; "
          f"{summary['duplicates_removed']} duplicates removed, {len(summary['skipped'])} skipped; "
          f"{summary['seconds']} s -> {args.output}")
    for item in summary["skipped"][:10]:
        print(f"  skipped {item['path']}: {item['reason']}")
    if len(summary["skipped"]) > 10:
        print(f"  ... {len(summary['skipped']) - 10} more in {args.output / dataset.SUMMARY}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
