"""Blind A/B listening test: which answer continues the call better?

    python tools/listening_test.py --a lstm --b rules --data data/pd --trials 20 --out out/listen
    python tools/listening_test.py --a lstm --b markov --calls my_calls/ --out out/listen2 \\
        --play "aplay {}"

For each trial a call (the first ``--call-bars`` bars of a test tune of ``--data``, or a MIDI
file of ``--calls``) is answered by both generators through the offline engine (the same
code as ``jam respond``: default sampling, key and range mask), and each call+answer is
rendered to WAV with FluidSynth and the General MIDI soundfont. The two versions are
presented as "1" and "2" in a seeded random order; the listener types ``1`` or ``2`` (``s``
skips, ``r`` plays again with ``--play``, ``q`` stops). Every answer is appended to
``results.csv`` at once, so a stopped test resumes where it stopped (same ``--seed`` and
settings: the trials are the same). The summary gives how often A was preferred and the
exact two-sided binomial p-value against no preference (p = 1/2).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

from jam.dataset import read_split
from jam.engine.assembly import make_generator
from jam.engine.callresponse import EngineSettings
from jam.engine.offline import respond
from jam.errors import JamError
from jam.evaluation.continuation import make_example
from jam.fileio import atomic_write_bytes
from jam.generators.base import Generator
from jam.generators.baselines import RandomInKeyGenerator, RepeatCallGenerator
from jam.generators.markov import MarkovGenerator
from jam.midi.files import Phrase, read_midi, write_midi
from jam.music.meter import Meter
from jam.render import SOUNDFONT, fluidsynth_for, render_wav

GENERATORS = ("lstm", "rules", "markov", "unigram", "repeat", "random-in-key")
FIELDS = ("trial", "call", "file_1", "file_2", "choice", "preferred")
SETTINGS = "settings.json"
RESULTS = "results.csv"


def binomial_p_value(k: int, n: int) -> float:
    """Exact two-sided binomial test of k successes in n trials against p = 1/2."""
    if n == 0:
        return 1.0
    tail = min(k, n - k)
    p = 2 * sum(math.comb(n, i) for i in range(tail + 1)) / 2**n
    return min(1.0, p)


def summarize(rows: list[dict], a: str, b: str) -> dict:
    decided = [r for r in rows if r["preferred"] in (a, b)]
    wins = sum(r["preferred"] == a for r in decided)
    n = len(decided)
    return {"a": a, "b": b, "trials_done": len(rows), "decided": n, "skipped": len(rows) - n,
            "a_preferred": wins, "a_preference_rate": wins / n if n else None,
            "p_value_two_sided": binomial_p_value(wins, n)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--a", required=True, choices=GENERATORS, help="first generator")
    p.add_argument("--b", required=True, choices=GENERATORS, help="second generator")
    p.add_argument("--out", required=True, help="folder for WAV files, results.csv, summary.json")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="prepared dataset: calls from its test split")
    source.add_argument("--calls", help="folder of .mid files, one call each")
    p.add_argument("--train-data", help="dataset to fit markov/unigram on (default: --data)")
    p.add_argument("--model", default=None, help="ONNX model for lstm (default: the shipped one)")
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--call-bars", type=int, default=2)
    p.add_argument("--bpm", type=float, default=100.0, help="tempo of calls from --data")
    p.add_argument("--soundfont", default=SOUNDFONT)
    p.add_argument("--play", default=None, help='command to play a WAV, "{}" = its path (e.g. "aplay {}")')
    args = p.parse_args(argv)
    if args.a == args.b:
        p.error("--a and --b must differ")
    return args


def load_calls(args: argparse.Namespace) -> list[tuple[str, Phrase]]:
    """The calls in a seeded order, at most ``--trials`` of them."""
    if args.calls:
        paths = sorted(Path(args.calls).glob("*.mid"))
        if not paths:
            raise JamError(f"{args.calls}: no .mid files; give a folder of MIDI calls")
        calls = [(p.name, read_midi(p)) for p in paths]
    else:
        calls = []
        for tune in read_split(args.data, "test"):
            example = make_example(tune.id, tune.source, tune.tokens, tune.beats_per_bar,
                                   args.call_bars, answer_bars=1)
            if example is not None:
                calls.append((tune.id, Phrase(example.call, args.bpm,
                                              Meter(tune.beats_per_bar, 4))))
    order = np.random.default_rng(args.seed).permutation(len(calls))
    return [calls[i] for i in order[: args.trials]]


def build(name: str, args: argparse.Namespace) -> Generator:
    if name in ("lstm", "rules"):
        return make_generator("rules" if name == "rules" else args.model, "cpu")
    if name == "repeat":
        return RepeatCallGenerator()
    if name == "random-in-key":
        return RandomInKeyGenerator()
    data = args.train_data or args.data
    if data is None:
        raise JamError(f"{name} must be fitted: pass --train-data DATASET (or --data)")
    tunes = [t.tokens for t in read_split(data, "train")]
    model = MarkovGenerator(order=0) if name == "unigram" else MarkovGenerator(short_term=True)
    return model.fit(tunes)



def prepare_trial(index: int, name: str, call: Phrase, generators: dict[str, Generator],
                  args: argparse.Namespace, out: Path) -> list[str]:
    """Render both versions of a trial (if not yet rendered); the generators in file order."""
    rng = np.random.default_rng([args.seed, index])
    order = [args.a, args.b] if rng.random() < 0.5 else [args.b, args.a]
    settings = EngineSettings.defaults(meter=call.meter)
    for slot, generator_name in enumerate(order, 1):
        wav = out / f"trial{index:03d}-{slot}.wav"
        if wav.is_file():
            continue
        result = respond(call.notes, call.bpm, generators[generator_name], settings,
                         rng=np.random.default_rng([args.seed, index, slot]))
        midi = out / f"trial{index:03d}-{slot}.mid"
        write_midi(midi, [result.call, result.answer], result.bpm, call.meter,
                   names=["call", "answer"], overwrite=True)
        render_wav(midi, wav, args.soundfont, overwrite=True, rate=22050)
    return order


def ask(index: int, total: int, call_name: str, out: Path, play: str | None) -> str | None:
    files = [out / f"trial{index:03d}-{slot}.wav" for slot in (1, 2)]
    print(f"\ntrial {index + 1}/{total} (call {call_name})")
    for slot, path in enumerate(files, 1):
        print(f"  {slot}: {path}")
    while True:
        if play:
            for path in files:
                subprocess.run(shlex.split(play.replace("{}", shlex.quote(str(path)))), check=False)
        print("which continues the call better? [1/2, s=skip, r=replay, q=quit] ", end="", flush=True)
        line = sys.stdin.readline()
        if not line:
            return None  # end of input: stop, resumable
        answer = line.strip().lower()
        if answer in ("1", "2", "s"):
            return answer
        if answer == "q":
            return None
        if answer != "r":
            print("  type 1, 2, s, r or q")


def run(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fluidsynth_for(args.soundfont)  # both there, before any trial is prepared
    settings = {k: v for k, v in vars(args).items() if k != "play"}
    settings_path = out / SETTINGS
    if settings_path.is_file():
        if json.loads(settings_path.read_text()) != settings:
            raise JamError(f"{out} holds a test with other settings; use another --out to start a new one")
    else:
        atomic_write_bytes(settings_path, json.dumps(settings, indent=1).encode())
    results = out / RESULTS
    rows = list(csv.DictReader(results.open())) if results.is_file() else []
    done = {int(r["trial"]) for r in rows}
    calls = load_calls(args)
    generators = {name: build(name, args) for name in (args.a, args.b)}
    with results.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        if not rows:
            writer.writeheader()
        for index, (name, call) in enumerate(calls):
            if index in done:
                continue
            order = prepare_trial(index, name, call, generators, args, out)
            choice = ask(index, len(calls), name, out, args.play)
            if choice is None:
                break
            row = {"trial": index, "call": name, "file_1": order[0], "file_2": order[1], "choice": choice,
                   "preferred": "" if choice == "s" else order[int(choice) - 1]}
            writer.writerow(row)
            handle.flush()
            rows.append({k: str(v) for k, v in row.items()})
    summary = summarize(rows, args.a, args.b) | {"trials": len(calls)}
    atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=1).encode(), overwrite=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary = run(args)
    except JamError as err:
        print(f"listening_test: {err}", file=sys.stderr)
        return 2
    rate = summary["a_preference_rate"]
    print(f"\n{summary['trials_done']}/{summary['trials']} trials done; {args.a} preferred in "
          f"{summary['a_preferred']} of {summary['decided']} decided"
          + (f" ({rate:.0%}), two-sided binomial p = {summary['p_value_two_sided']:.3g}" if rate is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
