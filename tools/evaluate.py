"""Evaluate models and baselines on the held-out test split of a prepared dataset, in one
run and one table.

    python tools/evaluate.py --data ~/jam/data/mine --model ~/jam/models/mine.onnx --out ~/jam/eval/mine
    python tools/evaluate.py --data data/pd --out out/evaluation            # the shipped model alone
    python tools/evaluate.py --quick --out out/evaluation-quick             # CI: tiny data

The shipped model is always one of the models (``shipped``; ``--no-shipped`` leaves it out);
each ``--model FILE`` adds one, named after its file. So "is mine better than the shipped
one?" is one command. The baselines (variable-order Markov with and without a short-term
model, unigram, rules, repeat, random-in-key) are fitted on the dataset's train split.

1. Likelihood (bits per note, all tokens; pitch-only bits per note; lower is better) of
   every model and probabilistic baseline on the test tunes, on those whose opening does
   not occur in training, and on the test tunes of one corpus with a k-fold
   cross-validation of the Markov models on that corpus alone (IDyOM's protocol). The corpus
   is ``--corpus NAME``; by default the Bach chorale soprano lines when the data holds at
   least 100 of them (data/pd), else none.
2. Continuations (``--likelihood-only`` skips them): the first ``--call-bars`` bars of each
   test tune are the call (``--calls-per-tune`` cuts more calls further into each tune);
   each generator answers for ``--answer-bars`` bars (``--seeds`` seeds, the engine's
   default sampling, key and range mask); every metric of :mod:`jam.evaluation.continuation`
   (on-grid rate among them) is compared with the true continuations and with training
   continuations (MGEval-style).

Writes ``evaluation.json`` (every figure), ``evaluation.md`` (tables, generators as rows) and
PNG plots into ``--out`` (never inside ``--data``). ``--quick`` builds a small synthetic
dataset itself (in ``OUT/quick-data``) and runs everything on it with small settings.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from jam import dataset
from jam.dataset import Tune, data_hash, read_split, read_summary, write_split
from jam.engine.callresponse import EngineSettings, allowed_classes, answer_spec
from jam.errors import JamError
from jam.evaluation import continuation as cont
from jam.evaluation import mgeval
from jam.evaluation.likelihood import Likelihood, corpus_likelihood, tune_likelihood
from jam.fileio import atomic_write_bytes
from jam.generators.base import AnswerSpec, Generator, ProbabilisticGenerator
from jam.generators.baselines import RandomInKeyGenerator, RepeatCallGenerator
from jam.generators.blend import BlendGenerator
from jam.generators.lstm import LstmGenerator
from jam.generators.markov import MarkovGenerator
from jam.generators.rules import RulesGenerator
from jam.model.runtime import Model, default_model_path, load_model
from jam.music import tokens as tk
from jam.music.sampling import pitch_mask
from jam.music.theory import Key, estimate_key
from toolcli import Parser, nonempty_path, refuse_inside

CHORALES = "bach"  # the source name of the Bach chorale soprano lines in prepared data
AUTO_CORPUS_TUNES = 100  # --corpus auto takes the chorales when the data holds this many
SHIPPED = "shipped"
BASELINES = ("markov", "markov-ltm", "unigram")
OPENING = 12  # intervals that identify a melody across versions and keys
SCALES = tuple(frozenset(Key(t, mode).scale) for mode in ("major", "minor") for t in range(12))
PLOTTED = ("pitch_class_histogram", "interval_histogram", "note_length_histogram")
OVERLAP_PLOTTED = ("pitch_class_histogram", "interval_histogram", "note_length_histogram", "pitch_range")
TABLE_FEATURES = ("key_consistency", "scale_consistency", "groove_consistency", "on_grid_rate",
                  "call_repetition", "distinct_pitches", "pitch_range", "pitch_class_entropy",
                  "note_count")


def build_parser() -> Parser:
    p = Parser(prog="evaluate.py", description=__doc__.split("\n\n")[0] + "\n\n"
               + "\n\n".join(__doc__.split("\n\n")[1:3]))
    p.add_argument("--data", type=nonempty_path, default=None, metavar="DIR",
                   help="prepared dataset folder (the -o of tools/prepare_data.py); required "
                        "unless --quick")
    p.add_argument("--out", type=nonempty_path, required=True, metavar="DIR",
                   help="output folder for JSON, Markdown and PNG files (not inside --data)")
    p.add_argument("--model", action="append", default=[], metavar="FILE",
                   help="an exported ONNX model to compare (repeat for several); named after its file")
    p.add_argument("--no-shipped", action="store_true", help="leave the shipped model out")
    p.add_argument("--quick", action="store_true", help="tiny synthetic data and small settings (CI)")
    p.add_argument("--likelihood-only", action="store_true", help="no continuations (fast)")
    p.add_argument("--seeds", type=int, default=3, help="answers per call and generator")
    p.add_argument("--call-bars", type=int, default=2, help="bars of each call")
    p.add_argument("--answer-bars", type=int, default=2, help="bars of each answer")
    p.add_argument("--calls-per-tune", type=int, default=1,
                   help="calls cut from each test tune, every call+answer bars")
    p.add_argument("--markov-order", type=int, default=12, help="longest Markov context, tokens")
    p.add_argument("--max-set", type=int, default=300, help="melodies per set in the set comparison")
    p.add_argument("--max-tunes", type=int, default=None, help="use only the first N test tunes")
    p.add_argument("--corpus", default="auto", metavar="NAME",
                   help="source evaluated alone and cross-validated: a source of summary.json, "
                        f"none, or auto ({CHORALES} when the data holds at least "
                        f"{AUTO_CORPUS_TUNES} of its tunes, else none)")
    p.add_argument("--folds", type=int, default=10, help="cross-validation folds on --corpus")
    p.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


# ---------------------------------------------------------------- data

def synthetic_tunes(count: int, rng: np.random.Generator, source: str, prefix: str) -> list[Tune]:
    """Small diatonic tunes: a one-bar motif moved along the scale in an AABA form (4/4)."""
    rhythms = ([12, 12, 12, 12], [6, 6, 12, 12, 12], [18, 6, 12, 12], [24, 12, 12], [6, 6, 6, 6, 24])
    tunes = []
    for i in range(count):
        key = Key(int(rng.integers(12)), "major" if rng.random() < 0.7 else "minor")
        scale = key.scale
        bars = []
        for _ in range(2):
            rhythm = rhythms[int(rng.integers(len(rhythms)))]
            steps = np.cumsum(rng.integers(-2, 3, len(rhythm)))
            bars.append((rhythm, steps))
        form = [0, 0, 1, 0, 0, 1, 1, 0]
        notes, tick = [], 0
        for bar_no, which in enumerate(form):
            rhythm, steps = bars[which]
            lift = (bar_no % 4 == 2) * 2
            for length, step in zip(rhythm, steps):
                degree = 7 * 5 + int(step) + lift
                pitch = 12 * (degree // 7) + scale[degree % 7]
                notes.append(tk.Note(pitch, tick, length))
                tick += length
        tunes.append(Tune(f"{prefix}{i}", source, 4, tk.encode(notes)))
    return tunes


def quick_dataset(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    splits = {"train": (40, 12), "valid": (4, 2), "test": (10, 6)}
    for name, (folk, chorales) in splits.items():
        tunes = synthetic_tunes(folk, rng, "synthetic", f"{name}-folk-")
        tunes += synthetic_tunes(chorales, rng, CHORALES, f"{name}-chorale-")
        write_split(folder, name, tunes)
    return folder


# ---------------------------------------------------------------- likelihood

def markov(order: int, short_term: bool) -> MarkovGenerator:
    return MarkovGenerator(order=order, short_term=short_term, bias=0.0)


def pitch_sequences(tunes: list[Tune]) -> list[list[int]]:
    return [[t for t in tune.tokens if tk.is_pitch(t)] for tune in tunes]


def opening(tune: Tune, intervals: int = OPENING) -> tuple[int, ...]:
    """The tune's first melodic intervals: equal for versions of one melody in any key."""
    pitches = [t for t in tune.tokens if tk.is_pitch(t)]
    return tuple(b - a for a, b in zip(pitches, pitches[1 : intervals + 1]))


def corpus_cross_validation(chorales: list[Tune], folds: int, order: int) -> dict:
    """IDyOM's protocol for our Markov models: k-fold CV on one corpus alone, pitch-only
    bits per note; with our pitch+rhythm tokens, and with pitch-only input sequences. Folds
    are drawn by melody (opening), so versions of one tune never straddle a fold."""
    melodies = sorted({opening(c) for c in chorales})
    fold_of_melody = dict(zip(melodies, np.random.default_rng(0).permutation(len(melodies)) % folds))
    fold_of = [fold_of_melody[opening(c)] for c in chorales]
    results = {}
    variants = {
        "markov-ltm": (False, False), "markov": (True, False),
        "markov-ltm, pitch-only input": (False, True), "markov, pitch-only input": (True, True),
    }
    for name, (stm, pitch_only) in variants.items():
        total = Likelihood()
        for k in range(folds):
            train = [c for c, f in zip(chorales, fold_of) if f != k]
            test = [c for c, f in zip(chorales, fold_of) if f == k]
            seq = pitch_sequences if pitch_only else (lambda ts: [t.tokens for t in ts])
            model = markov(order, stm).fit(seq(train))
            total += corpus_likelihood(model, seq(test), grammar=not pitch_only)
        summary = total.summary()
        results[name] = {"pitch_bits_per_note": summary["pitch_bits_per_note"],
                         "notes": summary["notes"], "tunes": summary["tunes"]}
        if not pitch_only:
            results[name]["bits_per_note"] = summary["bits_per_note"]
    return {"folds": folds, "order": order, "melodies": len(melodies), "models": results}


def likelihoods(models: dict[str, ProbabilisticGenerator], test: list[Tune], train: list[Tune],
                corpus: str | None) -> dict:
    """Pooled figures on the test tunes and on subsets: one corpus (if any), and the tunes
    whose opening does not occur in training (near-duplicates across tune books flatter a
    model)."""
    seen = {opening(t) for t in train}
    subsets = {
        "test": [True] * len(test),
        "test_unseen_opening": [opening(t) not in seen for t in test],
    }
    if corpus is not None:
        subsets["corpus_test"] = [t.source == corpus for t in test]
        subsets["corpus_test_unseen_opening"] = [t.source == corpus and opening(t) not in seen
                                                 for t in test]
    out = {}
    for name, model in models.items():
        scores = [tune_likelihood(model, t.tokens) for t in tqdm(test, desc=f"likelihood {name}", leave=False)]
        out[name] = {}
        for subset, member in subsets.items():
            total = Likelihood()
            for score, keep in zip(scores, member):
                if keep:
                    total += score
            if total.tunes:
                out[name][subset] = total.summary()
    return out


# ---------------------------------------------------------------- continuations

def from_bar(tune: Tune, bar: int) -> list[int]:
    """The tune's tokens from the first note at or after the start of ``bar`` (0-based)."""
    if bar == 0:
        return tune.tokens
    cut = tk.bars_to_ticks(bar, tune.beats_per_bar)
    notes = [n for n in tk.decode(tune.tokens) if n.start >= cut]
    return tk.encode(notes) if notes else []


def examples_of(tunes: list[Tune], args: argparse.Namespace, calls_per_tune: int = 1) -> list[cont.Example]:
    made = []
    step = args.call_bars + args.answer_bars
    for t in tunes:
        for k in range(calls_per_tune):
            tokens = from_bar(t, k * step)
            example = cont.make_example(t.id if k == 0 else f"{t.id}@{k * step}", t.source, tokens,
                                        t.beats_per_bar, args.call_bars, args.answer_bars)
            if example is None:
                break
            made.append(example)
    return made


def context_of(example: cont.Example) -> cont.Context:
    key = estimate_key(example.call)
    return cont.Context(example.call, frozenset(key.scale), SCALES,
                        tk.bars_to_ticks(1, example.beats_per_bar))


def feature_table(melodies: list[list[tk.Note]], contexts: list[cont.Context]) -> dict[str, np.ndarray]:
    rows = [cont.features(m, c) for m, c in zip(melodies, contexts)]
    return {name: np.array([np.atleast_1d(r[name]) for r in rows], dtype=np.float64) for name in rows[0]}


def engine_spec(example: cont.Example, key_mask: bool) -> AnswerSpec:
    """The spec the live engine gives with the shipped defaults: sampling, the key mask of
    the call's estimated key plus the pitch classes the call used (none without
    ``key_mask``), the range, and the ending on the tonic triad."""
    s = EngineSettings.defaults()
    key = estimate_key(example.call)
    heard = frozenset(n.pitch % 12 for n in example.call)
    classes = allowed_classes(s.key, key, heard) if key_mask else None
    return answer_spec(s, pitch_mask(classes, s.low, s.high), example.answer_ticks, key.triad)


def ends_on_triad(melody: list[tk.Note], key: Key) -> bool | None:
    """Is the last note of ``melody`` a tone of ``key``'s tonic triad (None: no notes)?"""
    return melody[-1].pitch % 12 in key.triad if melody else None


def share(flags: list[bool | None]) -> float | None:
    known = [f for f in flags if f is not None]
    return sum(known) / len(known) if known else None


def real_endings(tunes: list[Tune], call_bars: int) -> dict:
    """How often real melodies come to rest on the tonic triad (key estimated from each
    tune's first ``call_bars`` bars, as for a call): the last note of each tune, the last
    note before each 8-bar boundary (a strain's end) and before each other 4-bar
    boundary (mid-strain)."""
    flags: dict[str, list[bool | None]] = {"tune ends": [], "8-bar boundaries": [],
                                          "other 4-bar boundaries": []}
    for tune in tunes:
        notes = tk.decode(tune.tokens)
        if not notes:
            continue
        bar = tk.bars_to_ticks(1, tune.beats_per_bar)
        origin = notes[0].start
        key = estimate_key([n for n in notes if n.start - origin < call_bars * bar])
        flags["tune ends"].append(ends_on_triad(notes, key))
        for boundary in range(origin + 4 * bar, notes[-1].start, 4 * bar):
            before = [n for n in notes if n.start < boundary]
            kind = "8-bar boundaries" if (boundary - origin) % (8 * bar) == 0 else \
                "other 4-bar boundaries"
            flags[kind].append(ends_on_triad(before, key))
    return {kind: {"share": share(f), "count": len(f)} for kind, f in flags.items()}


def answers_of(generator: Generator, examples: list[cont.Example], seeds: int, key_mask: bool,
               name: str) -> list[list[tk.Note]]:
    out = []
    for seed in range(seeds):
        for i, example in enumerate(tqdm(examples, desc=f"answers {name} seed {seed}", leave=False)):
            rng = np.random.default_rng([seed, i])
            out.append(cont.answer(generator, example, engine_spec(example, key_mask), rng))
    return out


def subsample(table: dict[str, np.ndarray], limit: int, seed: int = 0) -> dict[str, np.ndarray]:
    n = len(next(iter(table.values())))
    if n <= limit:
        return table
    keep = np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))
    return {k: v[keep] for k, v in table.items()}


def compare(generated: dict[str, np.ndarray], reference: dict[str, np.ndarray], limit: int) -> dict:
    g, r = subsample(generated, limit, 1), subsample(reference, limit, 2)
    out = {}
    for name in g:
        try:
            out[name] = mgeval.compare_sets(g[name], r[name])
        except ValueError:  # undefined for (almost) every melody of a set, e.g. one-bar answers
            out[name] = None
    return out


def feature_means(table: dict[str, np.ndarray]) -> dict:
    return {name: (float(np.nanmean(v)) if v.shape[1] == 1 and not np.isnan(v).all() else
                   np.nanmean(v, axis=0).tolist() if v.shape[1] > 1 else None)
            for name, v in table.items()}


def summarize(comparisons: dict) -> dict:
    valid = {k: c.summary() for k, c in comparisons.items() if c is not None}
    return {"mean_overlap": float(np.mean([v["overlap"] for v in valid.values()])),
            "mean_kl": float(np.mean([v["kl"] for v in valid.values()])),
            "features": valid}


# ---------------------------------------------------------------- output

def clean(value):
    """JSON-safe: NaN -> None, numpy -> Python."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def fmt(value, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def model_rows(result: dict) -> list[str]:
    lines = ["## Models", "", "| model | file | size | data it was trained on | its own test bits/note "
             "| this test split held out from its training |", "|---|---|---|---|---|---|"]
    for name, info in result["models"].items():
        lines.append(f"| {name} | {info['file']} | {info['bytes'] / 1e6:.2f} MB | "
                     f"{info['sources'] or '-'} | {fmt(info['own_test_bits_per_note'])} | {info['held_out']} |")
    return lines + [""]


def markdown(result: dict) -> str:
    config = result["config"]
    lines = [f"# Evaluation ({config['data']})", ""]
    lines += model_rows(result)
    subsets = [("test", "test"), ("test_unseen_opening", "test, opening unseen")]
    if config["corpus"]:
        subsets += [("corpus_test", f"{config['corpus']} test"),
                    ("corpus_test_unseen_opening", f"{config['corpus']} test, opening unseen")]
    lines += ["## Likelihood (held-out test tunes; bits per note: all tokens / pitch only; lower is better)", "",
              "| generator | " + " | ".join(f"{label} ({result['likelihood_sizes'].get(key, '-')})"
                                         for key, label in subsets) + " |",
              "|---|" + "---|" * len(subsets)]
    for name, entry in result["likelihood"].items():
        cells = [f"{fmt(entry[k]['bits_per_note'])} / {fmt(entry[k]['pitch_bits_per_note'])}"
                 if k in entry else "-" for k, _ in subsets]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for line in result.get("versus", []):
        lines += ["", line]
    cv = result.get("corpus_cv")
    if cv:
        lines += ["", f"## {config['corpus']}: {cv['folds']}-fold cross-validation on this corpus alone "
                  f"(Markov order {cv['order']}; folds by melody, {cv['melodies']} melodies)", "",
                  "| model | pitch-only bits/note | bits/note | notes |", "|---|---|---|---|"]
        for name, entry in cv["models"].items():
            lines.append(f"| {name} | {fmt(entry['pitch_bits_per_note'])} | {fmt(entry.get('bits_per_note'))} | "
                         f"{entry['notes']} |")
    c = result.get("continuation")
    if not c or "sets" not in c:
        if c and c.get("skipped"):
            lines += ["", f"Continuations: not measured ({c['skipped']})."]
        lines.append("")
        return "\n".join(lines)
    header = ["generator", "overlap vs real", "(per seed)", "KL vs real", "overlap vs train",
              "ends on tonic triad", *TABLE_FEATURES]
    lines += ["", f"## Continuations ({c['examples']} calls x {c['seeds']} seeds; "
              f"{c['call_bars']} bars call, {c['answer_bars']} bars answer)", "",
              "Overlap/KL: mean over all features of the MGEval-style comparison with the true "
              "continuations (real) and with training continuations (train). Feature columns: means over answers.",
              "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, entry in c["sets"].items():
        vs_real, vs_train = entry.get("vs_real"), entry.get("vs_train")
        seeds = vs_real["per_seed_mean_overlap"] if vs_real else []
        cells = [name, fmt(vs_real and vs_real["mean_overlap"]),
                 f"{min(seeds):.3f}-{max(seeds):.3f}" if seeds else "-", fmt(vs_real and vs_real["mean_kl"]),
                 fmt(vs_train and vs_train["mean_overlap"]), fmt(entry.get("ends_on_tonic_triad"), 2)]
        cells += [fmt(entry["means"][f], 2) for f in TABLE_FEATURES]
        lines.append("| " + " | ".join(cells) + " |")
    endings = c.get("real_endings", {})
    if endings:
        lines += ["", "Real melodies, last note on the tonic triad of the key of their first "
                  f"{c['call_bars']} bars: " + "; ".join(
                      f"{kind} {fmt(e['share'], 2)} ({e['count']})" for kind, e in endings.items())]
    compared = {name: e["vs_real"]["features"] for name, e in c["sets"].items() if e.get("vs_real")}
    features = list(next(iter(compared.values())))
    lines += ["", "### Overlap with the true continuations, per feature", "",
              "| generator | " + " | ".join(features) + " |", "|---|" + "---|" * len(features)]
    for name, per_feature in compared.items():
        cells = [fmt(per_feature[f]["overlap"], 2) if f in per_feature else "-" for f in features]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def plots(out: Path, tables: dict[str, dict[str, np.ndarray]], comparisons: dict[str, dict]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jam.evaluation import metrics as m

    written = []
    names = list(tables)
    labels = {
        "pitch_class_histogram": ("pitch class", [str(i) for i in range(12)]),
        "interval_histogram": ("interval (semitones)", [str(i) for i in range(-m.MAX_INTERVAL, m.MAX_INTERVAL + 1)]),
        "note_length_histogram": ("note length (ticks, 12 per beat)", [str(x) for x in m.LENGTH_CLASSES]),
    }
    fig, axes = plt.subplots(len(PLOTTED), 1, figsize=(10, 2.6 * len(PLOTTED)))
    for ax, feature in zip(axes, PLOTTED):
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            mean = np.nanmean(tables[name][feature], axis=0)
            ax.bar(np.arange(mean.size) + i * width, mean, width, label=name)
        title, ticks = labels[feature]
        ax.set_xticks(np.arange(len(ticks)) + 0.4 - width / 2, ticks, fontsize=7)
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(out / "histograms.png", dpi=72)
    plt.close(fig)
    written.append("histograms.png")

    fig, axes = plt.subplots(1, len(OVERLAP_PLOTTED), figsize=(3.2 * len(OVERLAP_PLOTTED), 2.8))
    for ax, feature in zip(axes, OVERLAP_PLOTTED):
        drawn = False
        for name, comps in comparisons.items():
            comp = comps.get(feature)
            if comp is None:
                continue
            grid = mgeval.density_grid(comp.intra_reference, comp.inter)
            if not drawn:
                ax.plot(grid, mgeval.kde(comp.intra_reference, grid), "k--", label="intra(real)")
                drawn = True
            ax.plot(grid, mgeval.kde(comp.inter, grid), label=f"{name} ({comp.overlap:.2f})")
        ax.set_title(f"{feature}: distances", fontsize=8)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "overlap.png", dpi=72)
    plt.close(fig)
    written.append("overlap.png")
    return written


# ---------------------------------------------------------------- main

def load_models(args: argparse.Namespace) -> dict[str, Model]:
    """The models to compare, by name: ``shipped`` (unless --no-shipped), then each --model
    named after its file (the same file twice is loaded once)."""
    paths: list[tuple[str, Path]] = []
    if not args.no_shipped:
        paths.append((SHIPPED, default_model_path()))
    for given in args.model:
        path = Path(given).expanduser()
        if any(p.resolve() == path.resolve() for _, p in paths if path.exists()):
            continue
        name, n = path.stem, 2
        while name in {x for x, _ in paths} or name in BASELINES:
            name, n = f"{path.stem}-{n}", n + 1
        paths.append((name, path))
    if not paths:
        raise JamError("no model to evaluate: give --model FILE, or leave out --no-shipped")
    return {name: load_model(path, device="cpu") for name, path in paths}


def model_info(model: Model, data_sha: str, data_sources: set[str], split_seed: int | None = None) -> dict:
    """What the Models table says about a model, from its metadata. A tune's split depends
    only on its id and the split seed, so a model trained on other data that shares sources
    has the same tunes held out when its data was split with the same seed."""
    meta = model.metadata
    sources = [s for s in meta.get("jam.data.sources", "").split(",") if s]
    try:
        own = json.loads(meta.get("jam.metrics", "{}")).get("test_bits_per_note")
    except json.JSONDecodeError:
        own = None
    if meta.get("jam.data.sha256") == data_sha:
        held_out = "yes (trained on this dataset)"
    elif "jam.finetune" in meta:  # tools/finetune.py's files are not a prepared dataset's tunes
        held_out = (f"unknown: fine-tuned on {meta.get('jam.finetune.files', 'some')} files it does "
                    "not name; keep this test split's files out of the fine-tuning")
    elif set(sources) & data_sources:
        shared = ", ".join(sorted(set(sources) & data_sources))
        if split_seed is not None and meta.get("jam.data.split_seed") == str(split_seed):
            held_out = f"yes (trained on other data that shares {shared}, split with the same seed)"
        else:
            held_out = (f"only if prepared with the same split seed: it was trained on other data "
                        f"that shares {shared}")
    else:
        held_out = "yes (trained on other sources)"
    return {"file": str(model.path), "bytes": Path(model.path).stat().st_size,
            "sources": ", ".join(sources), "own_test_bits_per_note": own, "held_out": held_out,
            "data_sha256": meta.get("jam.data.sha256", ""),
            "trained_on_this_data": meta.get("jam.data.sha256") == data_sha}


def resolve_corpus(args: argparse.Namespace, tunes: list[Tune]) -> str | None:
    counts: dict[str, int] = {}
    for t in tunes:
        counts[t.source] = counts.get(t.source, 0) + 1
    if args.corpus == "none":
        return None
    if args.corpus == "auto":
        return CHORALES if counts.get(CHORALES, 0) >= AUTO_CORPUS_TUNES else None
    if counts.get(args.corpus, 0) < args.folds:
        have = ", ".join(f"{k} ({v})" for k, v in sorted(counts.items()))
        raise JamError(f"corpus {args.corpus!r} has {counts.get(args.corpus, 0)} tunes in {args.data}, "
                       f"too few for {args.folds} folds; sources here: {have}; or leave --corpus out")
    return args.corpus


def run(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    if (out / "evaluation.json").exists() and not args.overwrite:
        raise JamError(f"{out}/evaluation.json exists; choose another --out or pass --overwrite")
    if args.quick:
        args.data = str(quick_dataset(out / "quick-data"))
        args.seeds, args.max_set, args.markov_order, args.folds = min(args.seeds, 2), 60, 6, 3
        args.corpus = CHORALES if args.corpus == "auto" else args.corpus
    elif args.data is None:
        raise JamError("--data DIR is required (a dataset prepared by tools/prepare_data.py), "
                       "or --quick for synthetic data")
    else:
        dataset.check_prepared(args.data)
        refuse_inside(out, [Path(args.data)], "evaluate", "--out")
    lstm_models = load_models(args)
    out.mkdir(parents=True, exist_ok=True)
    began = time.time()
    train, test = read_split(args.data, "train"), read_split(args.data, "test")
    if not test:
        raise JamError(f"{args.data}: the test split is empty; prepare more music")
    if args.max_tunes:
        test = test[: args.max_tunes]
    everything = [t for split in ("train", "valid", "test") for t in read_split(args.data, split)]
    corpus_name = resolve_corpus(args, everything)
    data_sha = data_hash(args.data)
    try:
        summary = read_summary(args.data)
        data_sources, split_seed = set(summary.get("sources", {})), summary.get("seed")
    except JamError:
        data_sources, split_seed = {t.source for t in everything}, None
    fitted = [t.tokens for t in train]
    probabilistic: dict[str, ProbabilisticGenerator] = {
        name: LstmGenerator(model) for name, model in lstm_models.items()}
    probabilistic.update({  # each LSTM with the session memory, as jam plays (--style auto)
        f"{name} + memory": BlendGenerator(LstmGenerator(model))
        for name, model in lstm_models.items()})
    probabilistic.update({
        "markov": markov(args.markov_order, True).fit(fitted),
        "markov-ltm": markov(args.markov_order, False).fit(fitted),
        "unigram": markov(0, False).fit(fitted),
    })
    models = {name: model_info(m, data_sha, data_sources, split_seed) for name, m in lstm_models.items()}
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    result: dict = {"config": {**settings, "corpus": corpus_name, "data_sha256": data_sha,
                               "models": {n: m["file"] for n, m in models.items()},
                               "model_metadata": {n: m.metadata for n, m in lstm_models.items()},
                               "engine_sampler": vars(EngineSettings.defaults().sampler)},
                    "models": models}
    result["likelihood"] = likelihoods(probabilistic, test, train, corpus_name)
    first = next(iter(result["likelihood"].values()))
    result["likelihood_sizes"] = {k: f"{v['tunes']} tunes, {v['notes']} notes" for k, v in first.items()}
    if SHIPPED in lstm_models:
        base = result["likelihood"][SHIPPED]["test"]["bits_per_note"]
        result["versus"] = [
            f"{name} vs {SHIPPED} on the test split: {entry['test']['bits_per_note'] - base:+.3f} bits per "
            f"note ({'better' if entry['test']['bits_per_note'] < base else 'worse'}: lower is better)"
            for name, entry in result["likelihood"].items() if name in lstm_models and name != SHIPPED]
    if corpus_name is not None:
        corpus = [t for t in everything if t.source == corpus_name]
        result["corpus_cv"] = corpus_cross_validation(corpus, args.folds, args.markov_order)

    result["plots"] = []
    examples = examples_of(test, args, args.calls_per_tune)
    train_examples = examples_of(train, args)
    if args.likelihood_only:
        result["continuation"] = {"skipped": "--likelihood-only"}
    elif len(examples) < 2 or len(train_examples) < 2:
        result["continuation"] = {"skipped": f"{len(examples)} test tunes long enough for a "
                                  f"{args.call_bars}-bar call and a {args.answer_bars}-bar answer; "
                                  "use more data, fewer bars or --calls-per-tune"}
    else:
        result["continuation"], tables, comparisons = continuations(
            args, probabilistic, lstm_models, examples, train_examples)
        result["continuation"]["real_endings"] = real_endings(test, args.call_bars)
        result["plots"] = plots(out, tables, comparisons)
    result["seconds"] = round(time.time() - began, 1)
    result = clean(result)
    atomic_write_bytes(out / "evaluation.json", json.dumps(result, indent=1).encode(), overwrite=True)
    atomic_write_bytes(out / "evaluation.md", markdown(result).encode(), overwrite=True)
    return result


def continuations(args: argparse.Namespace, probabilistic: dict[str, ProbabilisticGenerator],
                  lstm_models: dict[str, Model], examples: list[cont.Example],
                  train_examples: list[cont.Example]) -> tuple[dict, dict, dict]:
    contexts = [context_of(e) for e in examples]
    train_contexts = [context_of(e) for e in train_examples]
    answering: dict[str, tuple[Generator, bool]] = {}
    for name in lstm_models:
        answering[name] = (probabilistic[name], True)
        answering[f"{name} + memory"] = (probabilistic[f"{name} + memory"], True)
        answering[f"{name}, no key mask"] = (probabilistic[name], False)
    answering.update({
        "markov": (probabilistic["markov"], True),
        "markov-ltm": (probabilistic["markov-ltm"], True),
        "unigram": (probabilistic["unigram"], True),
        "rules": (RulesGenerator(), True),
        "repeat": (RepeatCallGenerator(), True),
        "random-in-key": (RandomInKeyGenerator(), True),
    })
    real = feature_table([e.continuation for e in examples], contexts)
    training = feature_table([e.continuation for e in train_examples], train_contexts)
    tables = {"real continuation": real}
    keys = [estimate_key(e.call) for e in examples]
    endings = {"real continuation": share([ends_on_triad(e.continuation, k)
                                           for e, k in zip(examples, keys)])}
    for name, (generator, key_mask) in answering.items():
        answers = answers_of(generator, examples, args.seeds, key_mask, name)
        tables[name] = feature_table(answers, contexts * args.seeds)
        endings[name] = share([ends_on_triad(a, k) for a, k in zip(answers, keys * args.seeds)])
    sets, comparisons = {}, {}
    for name, table in tables.items():
        entry = {"means": feature_means(table), "answers": len(next(iter(table.values()))),
                 "ends_on_tonic_triad": endings[name]}
        vs_train = compare(table, training, args.max_set)
        entry["vs_train"] = summarize(vs_train)
        if name != "real continuation":
            comparisons[name] = compare(table, real, args.max_set)
            entry["vs_real"] = summarize(comparisons[name])
            n = len(examples)  # answers are seed-major: the spread over seeds
            entry["vs_real"]["per_seed_mean_overlap"] = [
                summarize(compare({k: v[s * n : (s + 1) * n] for k, v in table.items()}, real,
                                  args.max_set))["mean_overlap"] for s in range(args.seeds)]
        sets[name] = entry
    sets["training continuation"] = {"means": feature_means(training), "answers": len(train_examples)}
    summary = {"examples": len(examples), "seeds": args.seeds, "call_bars": args.call_bars,
               "answer_bars": args.answer_bars, "sets": sets}
    return summary, tables, comparisons


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    except JamError as err:
        print(f"evaluate: {err}", file=sys.stderr)
        return 2
    print(markdown(result))
    plots_written = "".join(f", {name}" for name in result["plots"])
    print(f"wrote {args.out}/evaluation.json, evaluation.md{plots_written} "
          f"in {result['seconds']} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
