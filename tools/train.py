#!/usr/bin/env python3
"""Train the jam LSTM (jam/model/network.py: Embedding -> LSTM -> Linear) on a prepared
dataset (jam/dataset.py).

    python tools/train.py data/pd -o runs/default --epochs 12
    torchrun --nproc-per-node 2 tools/train.py data/pd -o runs/ddp     # DistributedDataParallel

Training sequences are ``BOS`` + a window of a train tune starting at a note or rest (the
first window of each tune is its true start), randomly transposed; every epoch covers each
train tune once. The budget is fixed (epochs; early stopping by patience), everything is
seeded, so a rerun reproduces the figures. Validation each epoch, on whole held-out tunes:

- bits per note: total negative log2-likelihood of every token of the tunes / notes
- pitch bits per note: NLL of each PITCH token with the softmax renormalized over pitches / notes

Writes ``last.pt`` and ``best.pt`` (state_dict + JSON-able config; loaded with
``torch.load(weights_only=True)``) and ``record.json`` (config, data hash, metrics, time).
``--resume`` continues from ``last.pt`` exactly where it stopped. Needs the ``train`` extra.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from jam import dataset
from jam.errors import JamError
from jam.fileio import atomic_write_bytes
from jam.model.network import model_from_config
from jam.music import tokens as tk

PAD = -100  # ignored target
LOG2 = math.log(2.0)


# ---------------------------------------------------------------- data


def transpose(tokens: np.ndarray, semitones: int) -> np.ndarray:
    """Shift every PITCH token; unchanged if any pitch would leave 0..127."""
    if semitones == 0:
        return tokens
    pitches = tokens < tk.N_PITCHES
    moved = tokens[pitches] + semitones
    if moved.size and (moved.min() < 0 or moved.max() >= tk.N_PITCHES):
        return tokens
    out = tokens.copy()
    out[pitches] = moved
    return out


def epoch_windows(tunes: list[np.ndarray], window: int, max_transpose: int,
                  rng: np.random.Generator) -> list[np.ndarray]:
    """BOS-prefixed windows covering each tune once (random phase), shuffled and transposed."""
    windows = []
    for tokens in tunes:
        edges = [0]
        if tokens.size > window:
            first = 2 * int(rng.integers(1, window // 2 + 1))  # even: windows start at an onset
            edges += list(range(first, tokens.size, window))
        edges.append(tokens.size)
        for a, b in zip(edges[:-1], edges[1:]):
            if b > a:
                windows.append(np.concatenate(([tk.BOS], tokens[a:b])))
    order = rng.permutation(len(windows))
    shifts = rng.integers(-max_transpose, max_transpose + 1, size=len(windows))
    return [transpose(windows[i], int(s)) for i, s in zip(order, shifts)]


def batch_tensors(seqs: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs (BOS-led, padded with 0) and targets (padded with PAD) for sequences."""
    longest = max(s.size for s in seqs) - 1
    inputs = np.zeros((len(seqs), longest), dtype=np.int64)
    targets = np.full((len(seqs), longest), PAD, dtype=np.int64)
    for i, s in enumerate(seqs):
        inputs[i, : s.size - 1] = s[:-1]
        targets[i, : s.size - 1] = s[1:]
    return torch.from_numpy(inputs), torch.from_numpy(targets)


@torch.no_grad()
def evaluate(model: nn.Module, tunes: list[np.ndarray], device: torch.device,
             batch: int = 32) -> dict[str, float]:
    """Sums over whole tunes (BOS + tokens, from a zero state): NLL bits, pitch-only bits, counts."""
    model.eval()
    total = pitch_total = 0.0
    notes = tokens = 0
    ordered = sorted(tunes, key=len)
    for i in range(0, len(ordered), batch):
        seqs = [np.concatenate(([tk.BOS], t)) for t in ordered[i : i + batch]]
        inputs, targets = batch_tensors(seqs)
        logits = model(inputs.to(device))[0].float()
        targets = targets.to(device)
        real = targets != PAD
        nll = nn.functional.cross_entropy(logits.transpose(1, 2), targets, ignore_index=PAD,
                                          reduction="none")
        total += float(nll[real].sum())
        is_pitch = real & (targets < tk.N_PITCHES)
        pitch_logp = torch.log_softmax(logits[..., : tk.N_PITCHES], dim=-1)
        picked = pitch_logp.gather(-1, targets.clamp(0, tk.N_PITCHES - 1).unsqueeze(-1)).squeeze(-1)
        pitch_total -= float(picked[is_pitch].sum())
        notes += int(is_pitch.sum())
        tokens += int(real.sum())
    model.train()
    return {"nll_nats": total, "pitch_nll_nats": pitch_total, "notes": notes, "tokens": tokens}


def bits(sums: dict[str, float]) -> dict[str, float]:
    notes = max(sums["notes"], 1)
    return {
        "bits_per_note": sums["nll_nats"] / LOG2 / notes,
        "pitch_bits_per_note": sums["pitch_nll_nats"] / LOG2 / notes,
        "bits_per_token": sums["nll_nats"] / LOG2 / max(sums["tokens"], 1),
        "notes": int(sums["notes"]),
    }


# ---------------------------------------------------------------- training


def distributed() -> tuple[int, int]:
    """(rank, world size); starts the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and os.environ.get("JAM_DDP_BACKEND") != "gloo" else "gloo"
        dist.init_process_group(backend)
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def all_sum(sums: dict[str, float], world: int) -> dict[str, float]:
    if world == 1:
        return sums
    keys = sorted(sums)
    values = torch.tensor([float(sums[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(values)
    return dict(zip(keys, values.tolist()))


def save(path: Path, payload: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def write_json(path: Path, data: dict) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=1) + "\n").encode(), overwrite=True)


def train(args: argparse.Namespace) -> dict:
    rank, world = distributed()
    device = torch.device(args.device if args.device != "auto" else
                          ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if args.threads:
        torch.set_num_threads(args.threads)
    out: Path = args.output
    last_path, best_path, record_path = out / "last.pt", out / "best.pt", out / "record.json"

    train_tunes = [np.asarray(t.tokens, dtype=np.int64) for t in dataset.read_split(args.data, "train")]
    valid_tunes = [np.asarray(t.tokens, dtype=np.int64) for t in dataset.read_split(args.data, "valid")]
    test_tunes = [np.asarray(t.tokens, dtype=np.int64) for t in dataset.read_split(args.data, "test")]
    train_tunes = [t for t in train_tunes if t.size]
    if not train_tunes or not valid_tunes:
        raise JamError(f"{args.data}: the train or valid split is empty; prepare more data")
    summary = dataset.read_summary(args.data)
    config = {
        "vocab": tk.VOCAB_SIZE, "embed": args.embed, "hidden": args.hidden, "layers": args.layers,
        "dropout": args.dropout, "window": args.window, "batch": args.batch, "lr": args.lr,
        "epochs": args.epochs, "patience": args.patience, "transpose": args.transpose,
        "clip": args.clip, "seed": args.seed, "world_size": world,
    }
    data_info = {"path": str(args.data), "sha256": dataset.data_hash(args.data),
                 "sources": sorted(summary.get("sources", {})),
                 "split_seed": summary.get("seed", 0),
                 "tunes": {k: v["tunes"] for k, v in summary.get("splits", {}).items()}}

    torch.manual_seed(args.seed)
    model = model_from_config(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    state = {"epoch": 0, "history": [], "best": None, "bad_epochs": 0, "seconds": 0.0}
    if args.resume:
        if not last_path.is_file():
            raise JamError(f"{last_path}: no checkpoint to resume from; start without --resume")
        checkpoint = torch.load(last_path, map_location=device, weights_only=True)
        if checkpoint["config"] != config:
            raise JamError(f"{last_path}: trained with other settings; resume with the same options")
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        state = checkpoint["state"]
    elif rank == 0:
        if (record_path.exists() or last_path.exists()) and not args.force:
            raise JamError(f"{out} already holds a run; pass --resume to continue or --force to replace it")
        out.mkdir(parents=True, exist_ok=True)

    net = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    steps_per_epoch = max(1, sum(math.ceil(t.size / args.window) for t in train_tunes) // args.batch)
    total_steps = steps_per_epoch * args.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(  # cosine to 10 % over the whole budget
        optimizer, lambda step: 0.1 + 0.45 * (1 + math.cos(math.pi * min(step / total_steps, 1.0))))
    if args.resume:
        schedule.load_state_dict(checkpoint["schedule"])
        for group, lr in zip(optimizer.param_groups, schedule.get_last_lr()):
            group["lr"] = lr  # creating the schedule reset it to the first step's rate
    local_batch = max(1, args.batch // world)
    valid_shard = valid_tunes[rank::world]
    started = time.monotonic() - state["seconds"]

    stop = args.epochs if not args.stop_after else min(args.epochs, state["epoch"] + args.stop_after)
    while state["epoch"] < stop and state["bad_epochs"] < args.patience:
        epoch = state["epoch"]
        rng = np.random.default_rng([args.seed, epoch])
        torch.manual_seed(args.seed * 100_003 + epoch)
        windows = epoch_windows(train_tunes, args.window, args.transpose, rng)
        steps = min(steps_per_epoch, len(windows) // args.batch) or 1
        model.train()
        progress = tqdm(range(steps), desc=f"epoch {epoch + 1}/{args.epochs}", unit="step",
                        disable=rank != 0 or args.quiet, leave=False)
        running = 0.0
        for step in progress:
            chunk = windows[step * args.batch : (step + 1) * args.batch][rank::world][:local_batch]
            inputs, targets = batch_tensors(chunk)
            logits = net(inputs.to(device))[0]
            loss = nn.functional.cross_entropy(logits.transpose(1, 2), targets.to(device),
                                               ignore_index=PAD)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            optimizer.step()
            schedule.step()
            running = 0.98 * running + 0.02 * loss.item() if step else loss.item()
            progress.set_postfix(bits_per_token=f"{running / LOG2:.3f}")
        valid = bits(all_sum(evaluate(model, valid_shard, device), world))
        state["epoch"] = epoch + 1
        state["seconds"] = time.monotonic() - started
        entry = {"epoch": epoch + 1, "steps": steps, "train_bits_per_token": running / LOG2,
                 "seconds": round(state["seconds"], 1), **{f"valid_{k}": v for k, v in valid.items()}}
        state["history"].append(entry)
        improved = state["best"] is None or valid["bits_per_note"] < state["best"]["valid_bits_per_note"]
        if improved:
            state["best"] = entry
            state["bad_epochs"] = 0
        else:
            state["bad_epochs"] += 1
        if rank == 0:
            print(f"epoch {epoch + 1}: valid {valid['bits_per_note']:.4f} bits/note, "
                  f"pitch {valid['pitch_bits_per_note']:.4f} bits/note ({state['seconds']:.0f} s)"
                  + (" *" if improved else ""), flush=True)
            payload = {"config": config, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                       "schedule": schedule.state_dict(), "state": state, "data": data_info}
            save(last_path, payload)
            if improved:
                save(best_path, {"config": config, "model": model.state_dict(), "data": data_info,
                                 "metrics": {f"valid_{k}": v for k, v in valid.items()},
                                 "epoch": epoch + 1})
        if world > 1:
            dist.barrier()

    record = {}
    if rank == 0 and state["epoch"] < args.epochs and state["bad_epochs"] < args.patience:
        print(f"stopped after epoch {state['epoch']} of {args.epochs}; continue with --resume")
    elif rank == 0:
        best = torch.load(best_path, map_location=device, weights_only=True)
        model.load_state_dict(best["model"])
        test = bits(evaluate(model, test_tunes, device)) if test_tunes else {}
        metrics = {**best["metrics"], **{f"test_{k}": v for k, v in test.items()},
                   "best_epoch": best["epoch"]}
        best["metrics"] = metrics
        best["command"] = args.command
        best["train_seconds"] = round(state["seconds"], 1)
        save(best_path, best)
        record = {
            "command": args.command, "config": config, "data": data_info, "metrics": metrics,
            "history": state["history"], "train_seconds": round(state["seconds"], 1),
            "device": str(device), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        write_json(record_path, record)
        print(f"best epoch {best['epoch']}: valid {metrics['valid_bits_per_note']:.4f} bits/note; "
              + (f"test {metrics['test_bits_per_note']:.4f} bits/note, pitch "
                 f"{metrics['test_pitch_bits_per_note']:.4f}; " if test else "")
              + f"{state['seconds']:.0f} s -> {best_path}")
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return record


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="prepared dataset folder")
    parser.add_argument("-o", "--output", type=Path, required=True, help="run folder")
    parser.add_argument("--embed", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--window", type=int, default=128, help="tokens per training window")
    parser.add_argument("--batch", type=int, default=64, help="windows per step (all processes)")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--clip", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=10, help="fixed budget")
    parser.add_argument("--patience", type=int, default=3, help="stop after N epochs without gain")
    parser.add_argument("--transpose", type=int, default=6, help="random transposition +-N semitones")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT/last.pt")
    parser.add_argument("--stop-after", type=int, default=0, metavar="N",
                        help="stop after N epochs in this invocation (continue later with --resume)")
    parser.add_argument("--force", action="store_true", help="replace an existing run folder")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    args.command = " ".join(["python", "tools/train.py"] + (sys.argv[1:] if argv is None else argv))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        train(args)
    except JamError as err:
        print(f"train: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
