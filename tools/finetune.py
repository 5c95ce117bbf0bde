#!/usr/bin/env python3
"""Fine-tune a jam model (the shipped one by default) on your own playing or MIDI files.

    python tools/finetune.py ~/jam/sessions --base models/default.onnx -o ~/jam/models/mine.onnx
    python tools/finetune.py evening.mid more/*.mid -o ~/jam/models/evening.onnx --threads 1

Inputs are MIDI files or folders (searched for .mid/.midi). A session recorded with
``jam --record`` gives the track named ``player`` (jam's own answers, track ``jam``, are
left out); any other file gives one melody per file, chosen as tools/prepare_data.py does
(jam/midi/melody.py). Long melodies are cut into pieces of 512 tokens (256 notes or
rests). From 5 usable files on, whole files are held out; with fewer (one long evening),
pieces are.

The base model's weights are read back from its ONNX file alone (no checkpoint) into the
PyTorch network (jam/model/network.py) and checked against onnxruntime before training: a
model that is not a jam LSTM is refused. A share of the files or pieces (chosen by name, at
least one) is held out; bits per note on it are reported before and after. Training uses a small
learning rate, random transposition like tools/train.py, and stops early on the held-out
part, keeping the best weights (the base itself if nothing helps). The result is exported
with tools/export_onnx.py's parity check; its metadata names the base, the base's data
sources, the number of files and the before/after figures. Never overwrites without
--force, never writes into an input folder. Needs the ``train`` extra.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from jam.errors import JamError
from jam.fileio import atomic_write_bytes
from jam.midi import melody as mel
from jam.music import tokens as tk
from toolcli import Parser, inside, nonempty_path, quote, refuse_inside

MIDI_SUFFIXES = {".mid", ".midi"}
PIECE = 512  # tokens per held-out/training piece of a long melody (256 notes or rests)
VALID_SHARE = 0.2
SMALL_VALID_NOTES = 200
BY_FILE = 5  # from this many usable files on, whole files are held out
ROUND_TRIP_LIMIT = 1e-4
RECORDED_PLAYER = "player"  # the track names jam --record writes
RECORDED_JAM = "jam"


# ---------------------------------------------------------------- inputs


def midi_files(inputs: list[Path]) -> tuple[list[Path], list[Path]]:
    """The MIDI files named or found under the folders (sorted), and the folders."""
    files: list[Path] = []
    folders: list[Path] = []
    for item in inputs:
        if item.is_dir():
            folders.append(item)
            files += sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in MIDI_SUFFIXES)
        elif item.is_file():
            files.append(item)
        else:
            raise JamError(f"{item}: no such file or folder")
    unique = list(dict.fromkeys(p.resolve() for p in files))
    if not unique:
        where = ", ".join(str(p) for p in inputs)
        raise JamError(f"no MIDI files (.mid, .midi) in {where}; give recorded sessions or MIDI files")
    return unique, folders


def melody_of(path: Path) -> tuple[list[tk.Note], str]:
    """The player's line of a recorded session, or the melody of any MIDI file; JamError
    (one line) when there is none."""
    parts = mel.read_parts(path).parts
    names = {p.name.strip().lower() for p in parts}
    if RECORDED_PLAYER in names and RECORDED_JAM in names:
        player = [p for p in parts if p.name.strip().lower() == RECORDED_PLAYER and p.notes]
        if not player:
            raise JamError("a recorded session with nothing played")
        notes = [n for p in player for n in p.notes]
        return mel.top_line(sorted(notes, key=lambda n: (n.start, -n.pitch))), "recorded session: track 'player'"
    found, why = mel.choose_melodies(parts)
    if not found:
        raise JamError(why or "no melody")
    return found[0].notes, found[0].reason


def pieces(tokens: list[int], size: int = PIECE) -> list[np.ndarray]:
    """A melody's tokens cut at onsets (even positions) into pieces of about ``size``; a
    short tail joins the piece before it."""
    array = np.asarray(tokens, dtype=np.int64)
    if array.size <= size * 3 // 2:
        return [array]
    cuts = list(range(0, array.size, size))
    if array.size - cuts[-1] < size // 2:
        cuts.pop()
    cuts.append(array.size)
    return [array[a:b] for a, b in zip(cuts[:-1], cuts[1:])]


def read_tunes(files: list[Path], quiet: bool) -> list[tuple[str, np.ndarray]]:
    """(id, tokens) of every piece of every usable file; skipped files are reported."""
    tunes = []
    for path in files:
        try:
            notes, _ = melody_of(path)
        except JamError as err:
            text = str(err)
            text = text.split(": ", 1)[-1] if text.startswith(str(path)) else text
            print(f"finetune: skipping {path}: {text}", file=sys.stderr)
            continue
        tokens = tk.encode(notes)
        if not tokens:
            print(f"finetune: skipping {path}: no notes", file=sys.stderr)
            continue
        for k, piece in enumerate(pieces(tokens)):
            tunes.append((f"{path}#{k}", piece))
    return tunes


def split(tunes: list[tuple[str, np.ndarray]], share: float) -> tuple[list[np.ndarray], list[np.ndarray], str]:
    """(train, valid, by what): from BY_FILE usable files on, the ``share`` of the files whose
    names hash lowest (all their pieces); with fewer files (one long session), the ``share``
    of the pieces whose ids hash lowest. At least one held out, at least one kept."""
    files = sorted({tune_id.rsplit("#", 1)[0] for tune_id, _ in tunes})
    by_file = len(files) >= BY_FILE
    units = files if by_file else [tune_id for tune_id, _ in tunes]
    order = sorted(units, key=lambda u: hashlib.sha256(f"finetune:{Path(u).name if by_file else u}".encode()).digest())
    held = set(order[:min(len(order) - 1, max(1, round(share * len(order))))])
    key = (lambda tune_id: tune_id.rsplit("#", 1)[0]) if by_file else (lambda tune_id: tune_id)
    return ([t for i, t in tunes if key(i) not in held], [t for i, t in tunes if key(i) in held],
            "files" if by_file else "pieces")


def n_notes(tunes: list[np.ndarray]) -> int:
    return int(sum(int((t < tk.N_PITCHES).sum()) for t in tunes))


# ---------------------------------------------------------------- the base model


def _lstm_from_onnx(w: np.ndarray, r: np.ndarray, b: np.ndarray, hidden: int):
    """torch's weight_ih, weight_hh, bias_ih, bias_hh (gates i,f,g,o) from an ONNX LSTM's
    W[1,4H,in], R[1,4H,H], B[1,8H] (gates i,o,f,c)."""
    order = [0, 2, 3, 1]  # torch gate k is ONNX gate order[k]

    def gates(matrix: np.ndarray) -> np.ndarray:
        blocks = [matrix[g * hidden:(g + 1) * hidden] for g in range(4)]
        return np.concatenate([blocks[g] for g in order])

    return gates(w[0]), gates(r[0]), gates(b[0][:4 * hidden]), gates(b[0][4 * hidden:])


def read_base(path: Path):
    """(torch model, config, metadata) of a jam LSTM ONNX model, from its initializers;
    JamError (one line) if the file is not one or its weights do not round-trip."""
    import onnx
    import torch
    from onnx import numpy_helper

    from export_onnx import parity
    from jam.model.network import model_from_config
    from jam.model.runtime import Model, _checked, make_session

    if not path.is_file():
        raise JamError(f"--base {path}: no such model file")
    try:
        proto = onnx.load(str(path))
        session = make_session(str(path), "cpu")
    except Exception as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise JamError(f"--base {path}: not a readable ONNX model ({reason})") from None
    runtime = _checked(path, session)  # JamError when it is not a jam model
    meta = runtime.metadata
    if meta.get("jam.model.type") != "lstm":
        raise JamError(f"--base {path}: a jam model of type {meta.get('jam.model.type')!r}, not an LSTM; "
                       "only jam LSTM models can be fine-tuned")
    try:
        train_config = json.loads(meta.get("jam.train.config", "{}"))
        config = {"vocab": int(meta["jam.vocab_size"]), "embed": int(meta["jam.model.embed"]),
                  "hidden": int(meta["jam.model.hidden"]), "layers": int(meta["jam.model.layers"]),
                  "dropout": float(train_config.get("dropout", 0.1)),
                  "window": int(meta.get("jam.train.window", 128))}
    except (KeyError, ValueError, TypeError, AttributeError):
        raise JamError(f"--base {path}: its jam.* metadata lacks the model sizes; "
                       "use a model exported by tools/export_onnx.py") from None
    weights = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    nodes = list(proto.graph.node)
    try:
        embed = [weights[n.input[0]] for n in nodes if n.op_type == "Gather" and n.input[0] in weights]
        lstms = [n for n in nodes if n.op_type == "LSTM"]
        head_w = [weights[i] for n in nodes if n.op_type == "MatMul" for i in n.input if i in weights]
        head_b = [weights[i] for n in nodes if n.op_type == "Add" for i in n.input if i in weights]
        if len(embed) != 1 or len(lstms) != config["layers"] or len(head_w) != 1 or len(head_b) != 1:
            raise ValueError("layout")
        model = model_from_config(config)
        state = {"embed.weight": embed[0], "head.weight": head_w[0].T, "head.bias": head_b[0]}
        for k, node in enumerate(lstms):
            w, r, b = (weights[name] for name in node.input[1:4])
            ih, hh, bih, bhh = _lstm_from_onnx(w, r, b, config["hidden"])
            state.update({f"lstm.weight_ih_l{k}": ih, f"lstm.weight_hh_l{k}": hh,
                          f"lstm.bias_ih_l{k}": bih, f"lstm.bias_hh_l{k}": bhh})
        model.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float32))
                               for k, v in state.items()})
    except (KeyError, ValueError, IndexError, RuntimeError):
        raise JamError(f"--base {path}: its graph is not the jam LSTM (Embedding, LSTM, Linear) "
                       "that tools/export_onnx.py writes; it cannot be fine-tuned") from None
    model.eval()
    diff = parity(model, Model(session, meta, path), sequences=3, length=48)
    if not diff <= ROUND_TRIP_LIMIT:
        raise JamError(f"--base {path}: its weights read back into PyTorch differ from onnxruntime by "
                       f"{diff:.1e} (> {ROUND_TRIP_LIMIT:.0e}); not a jam LSTM that can be fine-tuned")
    return model, config, meta


# ---------------------------------------------------------------- training


def finetune(args: argparse.Namespace) -> dict:
    from jam.model.runtime import default_model_path

    started = time.monotonic()
    out: Path = args.output
    files, folders = midi_files(args.inputs)
    refuse_inside(out, folders, "finetune", "-o")
    if any(inside(out, f) for f in files):
        raise JamError(f"-o {out} is one of the input files; finetune never writes over its input")
    if out.is_dir():
        raise JamError(f"-o {out} is a folder; give a file name, e.g. -o {quote(out / 'mine.onnx')}")
    if out.exists() and not args.force:
        raise JamError(f"{out} already exists; choose another name or pass --force to replace it")
    import torch
    from torch import nn
    from tqdm import tqdm

    from export_onnx import PARITY_LIMIT, export_bytes, parity
    from jam.model.runtime import Model, make_session
    from train import LOG2, PAD, batch_tensors, bits, epoch_windows, evaluate

    warnings.filterwarnings("ignore", category=UserWarning)  # torch's ONNX exporter notes
    torch.set_num_threads(args.threads)
    base_path = default_model_path() if args.base is None else args.base
    model, config, base_meta = read_base(base_path)

    tunes = read_tunes(files, args.quiet)
    if len(tunes) < 2:
        raise JamError(f"only {len(tunes)} usable melod{'y' if len(tunes) == 1 else 'ies'} in "
                       f"{len(files)} file(s); fine-tuning needs at least 2 (one is held out): "
                       "give more or longer files")
    train_tunes, valid_tunes, held_by = split(tunes, args.valid_share)
    valid_notes = n_notes(valid_tunes)
    if valid_notes < SMALL_VALID_NOTES or len(valid_tunes) < 2:
        print(f"finetune: warning: the held-out part is tiny ({len(valid_tunes)} piece(s), {valid_notes} "
              f"notes): its figures are noisy; play or give more music", file=sys.stderr, flush=True)
    device = torch.device("cpu")
    before = bits(evaluate(model, valid_tunes, device))
    if not args.quiet:
        print(f"finetune: {len(files)} file{'s' if len(files) != 1 else ''}, {len(train_tunes)} training pieces ({n_notes(train_tunes)} notes), "
              f"{len(valid_tunes)} held out ({valid_notes} notes, whole {held_by}); base {base_path.name}: "
              f"{before['bits_per_note']:.4f} bits/note held out", flush=True)

    torch.manual_seed(args.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    best_bits, best_state, best_step = before["bits_per_note"], copy.deepcopy(model.state_dict()), 0
    history = [{"step": 0, "valid_bits_per_note": best_bits}]
    bad, step, epoch = 0, 0, 0
    progress = tqdm(total=args.steps, desc="finetune", unit="step", disable=args.quiet, leave=False)
    model.train()
    while step < args.steps and bad < args.patience:
        rng = np.random.default_rng([args.seed, epoch])
        windows = epoch_windows(train_tunes, config["window"], args.transpose, rng)
        epoch += 1
        for i in range(0, len(windows), args.batch):
            inputs, targets = batch_tensors(windows[i:i + args.batch])
            logits = model(inputs)[0]
            loss = nn.functional.cross_entropy(logits.transpose(1, 2), targets, ignore_index=PAD)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1
            progress.update(1)
            progress.set_postfix(bits_per_token=f"{loss.item() / LOG2:.3f}", best=f"{best_bits:.3f}")
            if step % args.eval_every == 0 or step == args.steps:
                now = bits(evaluate(model, valid_tunes, device))["bits_per_note"]
                history.append({"step": step, "valid_bits_per_note": now})
                if now < best_bits - 1e-4:
                    best_bits, best_state, best_step, bad = now, copy.deepcopy(model.state_dict()), step, 0
                else:
                    bad += 1
                if bad >= args.patience or step >= args.steps:
                    break
    progress.close()
    model.load_state_dict(best_state)
    model.eval()
    after = bits(evaluate(model, valid_tunes, device))
    seconds = round(time.monotonic() - started, 1)

    meta = dict(base_meta)
    metrics = {"valid_bits_per_note": after["bits_per_note"],
               "valid_pitch_bits_per_note": after["pitch_bits_per_note"], "valid_notes": valid_notes,
               "valid_kind": "fine-tuning held-out part",
               "base_valid_bits_per_note": before["bits_per_note"], "best_step": best_step, "steps": step}
    finetune_info = {
        "base": base_path.name, "base_sources": base_meta.get("jam.data.sources", ""),
        "base_sha256": hashlib.sha256(base_path.read_bytes()).hexdigest(),
        "files": len(files), "pieces": len(tunes), "train_pieces": len(train_tunes),
        "valid_pieces": len(valid_tunes), "valid_notes": valid_notes, "held_out_by": held_by,
        "valid_bits_per_note_before": round(before["bits_per_note"], 4),
        "valid_bits_per_note_after": round(after["bits_per_note"], 4),
        "lr": args.lr, "steps": step, "best_step": best_step, "seconds": seconds,
    }
    licences = json.loads(base_meta.get("jam.data.licences", "{}") or "{}")
    licences["finetune"] = "user data"
    sources = [s for s in base_meta.get("jam.data.sources", "").split(",") if s] + ["finetune"]
    train_config = json.loads(base_meta.get("jam.train.config", "{}") or "{}")
    train_config.update({"batch": args.batch, "lr": args.lr, "epochs": epoch, "patience": args.patience,
                         "transpose": args.transpose, "seed": args.seed, "finetuned_from": base_path.name})
    meta.update({
        "jam.data.sources": ",".join(sources),
        "jam.data.sha256": hashlib.sha256(b"".join(t.tobytes() for _, t in tunes)).hexdigest(),
        "jam.train.config": json.dumps(train_config, sort_keys=True),
        "jam.finetune": json.dumps(finetune_info, sort_keys=True),
        "jam.finetune.base": base_path.name,
        "jam.finetune.base_sources": base_meta.get("jam.data.sources", ""),
        "jam.finetune.files": str(len(files)),
        "jam.finetune.valid_bits_before": f"{before['bits_per_note']:.4f}",
        "jam.finetune.valid_bits_after": f"{after['bits_per_note']:.4f}",
        "jam.data.licences": json.dumps(licences, sort_keys=True),
        "jam.train.command": args.command,
        "jam.train.seconds": str(seconds),
        "jam.metrics": json.dumps(metrics, sort_keys=True),
    })
    data = export_bytes(model, config, meta)
    diff = parity(model, Model(make_session(data, "cpu"), meta, out))
    if diff > PARITY_LIMIT:
        raise JamError(f"parity check failed: ONNX differs from PyTorch by {diff:.2e} "
                       f"(> {PARITY_LIMIT:.0e}); the model was not written")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, data, overwrite=args.force)
    report = {**finetune_info, "parity_max_abs_diff": diff, "history": history,
              "seconds": round(time.monotonic() - started, 1)}
    print(f"finetune: held-out bits per note {before['bits_per_note']:.4f} -> {after['bits_per_note']:.4f} "
          f"({valid_notes} notes; best after {best_step} of {step} steps), {report['seconds']:.0f} s "
          f"-> {out}", flush=True)
    return report


# ---------------------------------------------------------------- command line


def positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0 or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
        return value
    return parse


def build_parser() -> Parser:
    parser = Parser(prog="finetune.py", description=__doc__.split("\n\n")[0] + "\n\n"
                    + __doc__.split("\n\n")[1])
    parser.add_argument("inputs", type=nonempty_path, nargs="+", metavar="FILE_OR_FOLDER",
                        help="recorded sessions or MIDI files, or folders of them")
    parser.add_argument("--base", type=nonempty_path, default=None, metavar="MODEL.onnx",
                        help="the jam model to start from (default: the shipped model)")
    parser.add_argument("-o", "--output", type=nonempty_path, required=True, metavar="FILE",
                        help="ONNX file to write (its folder is created)")
    parser.add_argument("--force", action="store_true", help="replace an existing output file")
    parser.add_argument("--lr", type=positive(float), default=3e-4, help="Adam learning rate")
    parser.add_argument("--steps", type=positive(int), default=2000, help="most optimizer steps")
    parser.add_argument("--batch", type=positive(int), default=8, help="windows per step")
    parser.add_argument("--eval-every", type=positive(int), default=25,
                        help="score the held-out part every N steps")
    parser.add_argument("--patience", type=positive(int), default=8,
                        help="stop after this many held-out scores without gain")
    parser.add_argument("--valid-share", type=positive(float), default=VALID_SHARE,
                        help="share of the pieces held out (at least one)")
    parser.add_argument("--transpose", type=int, default=6, help="random transposition by up to +-N semitones")
    parser.add_argument("--seed", type=int, default=0, help="seed of everything random")
    parser.add_argument("--threads", type=positive(int), default=1, help="torch CPU threads")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.valid_share >= 1:
        parser.error("--valid-share must be below 1")
    if args.transpose < 0:
        parser.error("--transpose must be 0 or more")
    args.command = " ".join(["python", "tools/finetune.py"] + (sys.argv[1:] if argv is None else argv))
    try:
        finetune(args)
    except JamError as err:
        print(f"finetune: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
