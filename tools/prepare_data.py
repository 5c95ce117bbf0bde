#!/usr/bin/env python3
"""Prepare a melody dataset (see jam/dataset.py) from music21 corpus collections and folders.

    python tools/prepare_data.py -o data/pd                          # the four public-domain sets
    python tools/prepare_data.py --folder ~/midi -o ~/jam/data/mine  # your own .mid/.abc/.musicxml
    python tools/prepare_data.py --folder ~/midi --all-parts -o ~/jam/data/mine-parts
    python tools/prepare_data.py -o data/all --corpus oneills1850 bach essenFolksong

Each file gives one melody, taken from one part (jam/midi/melody.py): parts (MIDI: a track
and channel; type 0: a channel; scores: a part) are never merged; within the part chords and
inner voices are reduced to the top line. The part is the one named like a melody (soprano,
melody, lead, vocal, right hand, ...), else the highest by mean pitch; ``--part`` chooses it,
``--all-parts`` takes every monophonic-enough part as its own tune. Drums never count. Ties
are merged, grace notes dropped (on purpose: they carry no time on the grid), repeats kept as
written; Bach chorales take the part named Soprano. ``--merge-parts`` is the old extraction
(every part merged, the highest note of each onset). Exact duplicate tunes (same pitches and
rhythm) are removed before the split, so a tune printed in two books cannot sit in train and
test at once. ``summary.json`` says for every file which part was taken and why, or why it
was skipped. Results are cached as JSON by content hash and options. The tool never writes
into a folder it reads. Needs the ``train`` extra (music21, tqdm).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import sys
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from jam import dataset
from jam.errors import JamError
from jam.fileio import atomic_write_bytes
from jam.midi import melody as mel
from jam.music import tokens as tk
from toolcli import Parser, inside, nonempty_path, quote, refuse_inside, suggest_outside

PREP_VERSION = "prep-3"  # bump when extraction changes: invalidates the cache
PUBLIC_DOMAIN = ("oneills1850", "ryansMammoth", "airdsAirs", "bach")
OPT_IN = {"essenFolksong": "licence unclear (non-commercial use only); never ship a model trained on it"}
MIDI_SUFFIXES = {".mid", ".midi"}
SCORE_SUFFIXES = dataset.MUSIC_SUFFIXES - MIDI_SUFFIXES


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/jam/prepare_data`` (``~/.cache/jam/prepare_data``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "jam" / "prepare_data"


@dataclass(frozen=True)
class Options:
    """How melodies are taken from a file's parts (see jam/midi/melody.py)."""

    part: str | None = None
    all_parts: bool = False
    merge_parts: bool = False
    min_notes: int = mel.MIN_NOTES
    min_pitches: int = mel.MIN_PITCHES
    max_polyphony: float = mel.MAX_POLYPHONY


@dataclass(frozen=True)
class Task:
    """One file to extract: a whole file, or one tune (``text``) of a multi-tune ABC file."""

    tune_id: str
    source: str
    path: str
    kind: str  # "midi", "score", "abc", "chorale"
    text: str = ""
    options: Options = field(default_factory=Options)

    def cache_key(self) -> str:
        settings = json.dumps(asdict(self.options), sort_keys=True)
        digest = hashlib.sha256(f"{PREP_VERSION}|{tk.REPRESENTATION}|{self.kind}|{settings}|".encode())
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


def tasks_for(source: str, files: list[Path], base: Path, chorales: bool,
              options: Options = Options()) -> tuple[list[Task], list[dict]]:
    """Tasks of a source's files, and the files that could not even be opened."""
    tasks, skipped = [], []
    for path in files:
        name = path.relative_to(base).as_posix() if base in path.parents else path.name
        suffix = path.suffix.lower()
        if suffix in MIDI_SUFFIXES:
            tasks.append(Task(f"{source}/{name}", source, str(path), "midi", options=options))
        elif suffix == ".abc":
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError as err:
                skipped.append({"path": f"{source}/{name}", "reason": f"cannot read: {err.strerror or err}"})
                continue
            for label, tune in abc_tunes(text):
                tasks.append(Task(f"{source}/{name}#{label}", source, str(path), "abc", tune, options))
        elif suffix in SCORE_SUFFIXES:
            kind = "chorale" if chorales else "score"
            tasks.append(Task(f"{source}/{name}", source, str(path), kind, options=options))
    return tasks, skipped


# ---------------------------------------------------------------- one task -> tokens


def score_parts(score) -> tuple[list[mel.Part], int]:
    """The parts of a music21 score (ties merged, chords reduced to their highest note, grace
    notes dropped) and its beats per bar (the last part's most frequent time signature)."""
    from music21 import meter

    parts: list[mel.Part] = []
    beats_per_bar = 4
    for part in list(getattr(score, "parts", [])) or [score]:
        flat = part.flatten()
        # The most frequent signature: music21 marks pickup bars with their own (e.g. 1/16).
        signatures = Counter((ts.numerator, ts.denominator)
                             for ts in flat.getElementsByClass(meter.TimeSignature))
        if signatures:
            numerator, denominator = signatures.most_common(1)[0][0]
            beats_per_bar = max(1, round(numerator * 4 / denominator))
        notes: list[tk.Note] = []
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
        name = (getattr(part, "partName", None) or "").strip() if part is not score else ""
        parts.append(mel.Part(len(parts) + 1, name, notes))
    return parts, beats_per_bar


def melodies_of(parts: list[mel.Part], kind: str, options: Options) -> tuple[list[mel.Melody], str]:
    """The melodies to take from a file's parts (see jam/midi/melody.py), or why none."""
    if kind == "chorale" and options.part is None and not options.all_parts:
        # the soprano, by name, as the shipped model's data was prepared
        soprano = [p for p in parts if p.name.lower().startswith("soprano")]
        if not soprano:
            return [], "no part named Soprano"
        line = tk.skyline(soprano[0].notes)
        if len(line) < options.min_notes:
            return [], f"only {len(line)} notes (fewer than {options.min_notes})"
        return [mel.Melody(line, soprano[0], "chorale: the part named Soprano")], ""
    if options.merge_parts:
        everything = mel.Part(0, "all parts merged", [n for p in parts if not p.drums for n in p.notes])
        line = tk.skyline(everything.notes)
        if len(line) < options.min_notes:
            return [], f"only {len(line)} notes (fewer than {options.min_notes})"
        return [mel.Melody(line, everything, "--merge-parts: highest note of each onset, all parts")], ""
    return mel.choose_melodies(parts, options.part, options.all_parts, options.min_notes,
                               options.min_pitches, options.max_polyphony)


def extract(task: Task) -> dict:
    """The melodies of one task with the part each came from, or why it was skipped (never
    raises): ``{"tunes": [{"part", "reason", "tokens"}], "beats_per_bar", "parts", "note"}``
    or ``{"skip": reason, "parts": [...]}``."""
    warnings.filterwarnings("ignore")
    options = task.options
    parts: list[mel.Part] = []
    try:
        if task.kind == "midi":
            if options.merge_parts:  # the old reader, byte for byte: every channel but 10 merged
                from jam.midi.files import read_midi

                phrase = read_midi(task.path)
                parts = [mel.Part(1, "all parts merged", phrase.notes)]
                beats_per_bar = phrase.beats_per_bar
            else:
                midi = mel.read_parts(task.path)
                parts, beats_per_bar = midi.parts, midi.beats_per_bar
        else:
            from music21 import converter, stream

            if task.kind == "abc":
                parsed = converter.parse(task.text, format="abc")
            else:
                parsed = converter.parse(task.path)
            if isinstance(parsed, stream.Opus):
                parsed = parsed.scores[0]
            parts, beats_per_bar = score_parts(parsed)
        melodies, note = melodies_of(parts, task.kind, options)
        reports = [p.report() for p in parts] if len(parts) > 1 else []
        if not melodies:
            return {"skip": note or "no melody", "parts": reports}
        tunes = []
        for found in melodies:
            tunes.append({"part": found.part.label() if found.part.number else found.part.name,
                          "number": found.part.number, "reason": found.reason,
                          "tokens": tk.encode(found.notes)})
        return {"tunes": tunes, "beats_per_bar": int(beats_per_bar), "parts": reports, "note": note}
    except Exception as err:  # one unreadable file is reported, never fatal
        text = str(err).strip()
        reason = text.splitlines()[0] if text else type(err).__name__
        if isinstance(err, JamError):
            reason = reason.split(": ", 1)[-1] if reason.startswith(task.path) else reason
            return {"skip": reason[:300]}
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


def reason_kind(reason: str) -> str:
    """The kind of a part choice, for tallies: 'named like a melody', 'highest mean pitch', ..."""
    return re.split(r" \(|:| \d| '", reason, maxsplit=1)[0]


def prepare(
    output: Path,
    corpora: list[str],
    folders: list[Path],
    workers: int = 2,
    cache_dir: Path | None = None,
    seed: int = 0,
    limit: int | None = None,
    progress: bool = True,
    options: Options = Options(),
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
        found, unreadable = tasks_for(name, files[:limit], base, name == "bach", options)
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
        if source in order:
            raise JamError(f"two sources named {source!r}; rename one of the folders")
        found, unreadable = tasks_for(source, files, folder, False, options)
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
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), unit="file",
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
    files_report: list[dict] = []
    splits: dict[str, list[dataset.Tune]] = {name: [] for name in dataset.SPLITS}
    per_source: dict[str, dict] = {name: {"files": 0, "tunes": 0, "notes": 0, "tokens": 0,
                                         "skipped": 0, "duplicates": 0, "taken_because": {}}
                                   for name in order}
    counted_files: set[str] = set()
    for task in tasks:
        stats = per_source[task.source]
        if task.path not in counted_files:
            counted_files.add(task.path)
            stats["files"] += 1
        result = results[task.tune_id]
        entry: dict = {"file": task.tune_id}
        if result.get("parts"):
            entry["parts"] = result["parts"]
        files_report.append(entry)
        if "skip" in result:
            skipped.append({"path": task.tune_id, "reason": result["skip"]})
            entry["skipped"] = result["skip"]
            stats["skipped"] += 1
            continue
        if result.get("note"):
            entry["left_out"] = result["note"]
        entry["taken"] = []
        for found in result["tunes"]:
            tune_id = (f"{task.tune_id}{dataset.PART_SEP}{found['number']}" if options.all_parts
                       else task.tune_id)
            taken = {"id": tune_id, "part": found["part"], "reason": found["reason"]}
            entry["taken"].append(taken)
            key = tuple(found["tokens"])
            if key in seen:
                duplicates.append({"id": tune_id, "same_as": seen[key]})
                taken["duplicate_of"] = seen[key]
                stats["duplicates"] += 1
                continue
            seen[key] = tune_id
            kind = reason_kind(found["reason"])
            stats["taken_because"][kind] = stats["taken_because"].get(kind, 0) + 1
            tune = dataset.Tune(tune_id, task.source, result["beats_per_bar"], found["tokens"])
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
        "extraction": asdict(options),
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
        "files": files_report,
        "sha256": dataset.data_hash(output),
        "seconds": round(time.monotonic() - started, 1),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
    }
    atomic_write_bytes(output / dataset.SUMMARY, (json.dumps(summary, indent=1) + "\n").encode(),
                       overwrite=True)
    return summary


def check_output(output: Path, folders: list[Path], cache: Path | None, force: bool) -> None:
    """Never write into an input folder, and never into a folder that is not a dataset."""
    refuse_inside(output, folders, "prepare_data", "-o")
    if cache is not None:
        for folder in folders:
            if inside(cache, folder):
                raise JamError(f"the cache {cache} is inside the input folder {folder}; pass "
                               f"--cache with a folder outside it, or --no-cache")
    if output.exists() and not output.is_dir():
        raise JamError(f"-o {output} is a file; give a new folder for the dataset")
    if (output / dataset.SUMMARY).exists():
        if not force:
            raise JamError(f"{output} already holds a dataset; pass --force to replace it")
        return
    if output.is_dir() and any(output.iterdir()):
        music = any(p.suffix.lower() in dataset.MUSIC_SUFFIXES for p in output.rglob("*"))
        what = "holds music files" if music else "is not empty"
        raise JamError(f"-o {output} {what} and is not a dataset this tool wrote; give a new "
                       f"folder, e.g. -o {quote(suggest_outside(output, 'data'))}")


def build_parser() -> Parser:
    parser = Parser(prog="prepare_data.py", description=__doc__.split("\n\n")[0] + "\n\n"
                    + __doc__.split("\n\n")[1])
    parser.add_argument("-o", "--output", type=nonempty_path, required=True, metavar="DIR",
                        help="dataset folder to write: a new folder, outside every input folder")
    parser.add_argument("--folder", nargs="+", type=nonempty_path, default=[], metavar="DIR",
                        help="folders of your .mid/.midi/.abc/.xml/.mxl/.musicxml/.krn files "
                             "(read, never written)")
    parser.add_argument("--corpus", nargs="+", default=None, metavar="NAME",
                        help=f"music21 collections; without --folder and --corpus: "
                             f"{' '.join(PUBLIC_DOMAIN)}; opt-in: essenFolksong")
    melody = parser.add_argument_group("melody extraction (jam/midi/melody.py)")
    choice = melody.add_mutually_exclusive_group()
    choice.add_argument("--part", default=None, metavar="NAME|INDEX",
                        help="take this part of every file: its number (1 = the first track or "
                             "channel with notes, as listed in summary.json) or a part of its name; "
                             "default: the part named like a melody, else the highest by mean pitch")
    choice.add_argument("--all-parts", action="store_true",
                        help="take every monophonic-enough part of a file as its own tune")
    choice.add_argument("--merge-parts", action="store_true",
                        help="the extraction before prep-3: merge every part of a MIDI file or "
                             "score and keep the highest note of each onset (lower voices leak in)")
    melody.add_argument("--min-notes", type=int, default=mel.MIN_NOTES,
                        help="keep a melody only with at least this many notes")
    melody.add_argument("--min-pitches", type=int, default=mel.MIN_PITCHES,
                        help="keep a melody only with at least this many distinct pitches")
    melody.add_argument("--max-polyphony", type=float, default=mel.MAX_POLYPHONY,
                        help="--all-parts: leave out a part when more than this share of its "
                             "notes are chord or inner-voice notes")
    parser.add_argument("--workers", type=int, default=2, help="parallel worker processes")
    parser.add_argument("--cache", type=nonempty_path, default=default_cache(), metavar="DIR",
                        help="JSON cache of extracted files")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    parser.add_argument("--seed", type=int, default=0, help="split seed (80/10/10 by a hash of the tune id)")
    parser.add_argument("--limit", type=int, default=None,
                        help="at most N files per corpus collection (quick trials, tests)")
    parser.add_argument("--force", action="store_true", help="replace a dataset this tool wrote before")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    corpora = args.corpus if args.corpus is not None else ([] if args.folder else list(PUBLIC_DOMAIN))
    options = Options(args.part, args.all_parts, args.merge_parts, args.min_notes, args.min_pitches,
                      args.max_polyphony)
    cache = None if args.no_cache else args.cache
    try:
        if args.min_notes < 1 or args.min_pitches < 1 or not 0 <= args.max_polyphony <= 1:
            raise JamError("--min-notes and --min-pitches must be 1 or more, --max-polyphony 0 to 1")
        check_output(args.output, args.folder, cache, args.force)
        for name in corpora:
            if name in OPT_IN:
                print(f"note: {name}: {OPT_IN[name]}", file=sys.stderr)
        summary = prepare(args.output, corpora, args.folder, max(1, args.workers), cache,
                          args.seed, args.limit, progress=not args.quiet, options=options)
    except JamError as err:
        print(f"prepare_data: {err}", file=sys.stderr)
        return 2
    splits = ", ".join(f"{k} {v['tunes']}" for k, v in summary["splits"].items())
    print(f"{summary['tunes']} tunes ({splits}), {summary['notes']} notes, {summary['tokens']} tokens; "
          f"{summary['duplicates_removed']} duplicates removed, {len(summary['skipped'])} skipped; "
          f"{summary['seconds']} s -> {args.output}")
    for name, stats in summary["sources"].items():
        because = ", ".join(f"{n} {kind}" for kind, n in sorted(stats["taken_because"].items(),
                                                                  key=lambda kv: -kv[1]))
        print(f"  {name}: {stats['tunes']} tunes from {stats['files']} files" + (f" ({because})" if because else ""))
    for item in summary["skipped"]:
        print(f"  skipped {item['path']}: {item['reason']}")
    for name, what in (("valid", "tools/train.py will choose the training length by "
                                 "cross-validation instead"),
                       ("test", "held-out figures will be noisy; compare models over several "
                                "--seed values, or add music")):
        split = summary["splits"][name]
        if split["tunes"] == 0 and name == "test":
            print("  warning: the test split is empty: no held-out figures; add music or try "
                  "another --seed")
        elif split["tunes"] < 5:
            print(f"  warning: the {name} split has {split['tunes']} tune{'s' if split['tunes'] != 1 else ''} "
                  f"({split['notes']} notes): {what}")
    print(f"  what each file gave and why: {args.output / dataset.SUMMARY} ('files')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
