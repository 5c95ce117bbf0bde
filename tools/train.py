#!/usr/bin/env python3
"""Train the jam LSTM (jam/model/network.py: Embedding -> LSTM -> Linear) on a prepared
dataset (jam/dataset.py).

    python tools/train.py ~/jam/data/mine -o ~/jam/runs/mine --threads 1   # defaults fit the data
    torchrun --nproc-per-node 2 tools/train.py data/pd -o runs/ddp     # DistributedDataParallel

Training sequences are ``BOS`` + a window of a train tune starting at a note or rest (the
first window of each tune is its true start), randomly transposed; every epoch covers each
train tune once. Everything is seeded, so a rerun reproduces the figures.

The defaults fit anything from 20 to 20,000 tunes. The batch shrinks for small data
(``--batch auto``: 8, 16 or 32 windows) and the budget is ``--epochs`` but at least
``--min-steps`` optimizer steps, so a small folder still gets hundreds of steps. Validation
runs on whole held-out tunes every epoch, or every few epochs so that at least 100 steps
lie between two validations; training stops after ``--patience`` validations without gain
and keeps the best. A valid split below 1,000 notes or 5 tunes is too small to choose by:
the tool says so and (``--small-valid folds``) estimates the best number of epochs by 3-fold
cross-validation on train+valid, then trains on all of them for that long; or
(``--small-valid fixed``) trains for the whole budget and keeps the last weights.

- bits per note: total negative log2-likelihood of every token of the tunes / notes
- pitch bits per note: NLL of each PITCH token with the softmax renormalized over pitches / notes

Writes ``last.pt`` and ``best.pt`` (state_dict + JSON-able config; loaded with
``torch.load(weights_only=True)``) and ``record.json`` (config, plan, data hash, metrics,
time). ``--resume`` continues from ``last.pt`` exactly where it stopped. The run folder is
never a folder of the data. Needs the ``train`` extra.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
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
from toolcli import Parser, nonempty_path, quote, refuse_inside, suggest_outside

PAD = -100  # ignored target
LOG2 = math.log(2.0)
EPOCHS = 30  # default budget in epochs ...
MIN_STEPS = 1500  # ... but at least this many optimizer steps
EVAL_STEPS = 100  # validate every epoch, or every few epochs so that this many steps lie between
PATIENCE = 5  # validations without gain before stopping
MIN_VALID_NOTES = 1000  # a valid split smaller than this (or than MIN_VALID_TUNES) is noise
MIN_VALID_TUNES = 5
FOLDS = 3


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


# ---------------------------------------------------------------- plan


@dataclass
class Plan:
    """How long and in what batches to train, from the data and the options."""

    batch: int
    windows: int  # training windows per epoch (about)
    steps_per_epoch: int
    epochs: int
    epochs_per_round: int  # validate every this many epochs
    notes: list[str]  # why, in words

    @property
    def steps(self) -> int:
        return self.steps_per_epoch * self.epochs


def auto_batch(windows: int) -> int:
    """Windows per step for ``--batch auto``: 32 for big data, fewer for small data."""
    return 32 if windows >= 1024 else 16 if windows >= 256 else 8


def plan_for(tunes: list[np.ndarray], window: int, batch: int | None, epochs: int,
             min_steps: int, eval_steps: int = EVAL_STEPS) -> Plan:
    """The budget for these training tunes: ``batch`` None = :func:`auto_batch`; ``epochs``
    raised so that the run makes at least ``min_steps`` optimizer steps."""
    windows = sum(math.ceil(t.size / window) for t in tunes)
    notes = []
    if batch is None:
        batch = auto_batch(windows)
        notes.append(f"batch {batch} for {windows} windows per epoch")
    steps_per_epoch = max(1, windows // batch)
    total = epochs
    if steps_per_epoch * epochs < min_steps:
        total = math.ceil(min_steps / steps_per_epoch)
        notes.append(f"{total} epochs instead of {epochs}: at least {min_steps} steps "
                     f"({steps_per_epoch} per epoch)")
    per_round = max(1, math.ceil(eval_steps / steps_per_epoch))
    if per_round > 1:
        notes.append(f"validation every {per_round} epochs ({per_round * steps_per_epoch} steps)")
    return Plan(batch, windows, steps_per_epoch, total, per_round, notes)


def fold_of(tune_id: str, folds: int) -> int:
    """The cross-validation fold of a tune (by its file, as the splits are)."""
    digest = hashlib.sha256(f"fold:{dataset.group_of(tune_id)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % folds


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


def pick_device(name: str, world: int) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        why = "this torch is built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
        raise JamError(f"--device cuda: {why} (torch {torch.__version__}); use --device cpu, "
                       "or auto to take a GPU when there is one")
    device = torch.device(name if name != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


@dataclass
class Fit:
    """One training run: its data, budget and whether it validates, stops early and saves."""

    train: list[np.ndarray]
    valid: list[np.ndarray]  # empty: no validation (the last weights are the best)
    plan: Plan
    patience: int | None  # None: no early stopping
    out: Path | None = None  # None: nothing saved (a cross-validation fold)
    label: str = ""


def fit(args: argparse.Namespace, config: dict, job: Fit, device: torch.device, rank: int,
        world: int, data_info: dict, resume: bool = False) -> tuple[nn.Module, dict]:
    """Train a model as ``job`` says; returns it (with the best weights loaded when it
    validated) and the state (history of validations, best entry, epochs, seconds)."""
    plan, out = job.plan, job.out
    torch.manual_seed(args.seed)
    model = model_from_config(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    state = {"epoch": 0, "history": [], "best": None, "bad_epochs": 0, "seconds": 0.0, "steps": 0}
    last_path = best_path = None
    if out is not None:
        last_path, best_path = out / "last.pt", out / "best.pt"
    checkpoint = None
    if resume:
        checkpoint = torch.load(last_path, map_location=device, weights_only=True)
        if checkpoint["config"] != config:
            raise JamError(f"{last_path}: trained with other settings; resume with the same options")
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        state = checkpoint["state"]
        state.setdefault("steps", 0)

    net = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    total_steps = plan.steps
    schedule = torch.optim.lr_scheduler.LambdaLR(  # cosine to 10 % over the whole budget
        optimizer, lambda step: 0.1 + 0.45 * (1 + math.cos(math.pi * min(step / total_steps, 1.0))))
    if checkpoint is not None:
        schedule.load_state_dict(checkpoint["schedule"])
        for group, lr in zip(optimizer.param_groups, schedule.get_last_lr()):
            group["lr"] = lr  # creating the schedule reset it to the first step's rate
    batch = plan.batch
    local_batch = max(1, batch // world)
    valid_shard = job.valid[rank::world]
    started = time.monotonic() - state["seconds"]
    patience = job.patience if job.patience is not None else math.inf
    best_weights = None

    stop = plan.epochs if not args.stop_after or out is None else min(plan.epochs, state["epoch"] + args.stop_after)
    while state["epoch"] < stop and state["bad_epochs"] < patience:
        epoch = state["epoch"]
        rng = np.random.default_rng([args.seed, epoch])
        torch.manual_seed(args.seed * 100_003 + epoch)
        windows = epoch_windows(job.train, args.window, args.transpose, rng)
        steps = min(plan.steps_per_epoch, len(windows) // batch) or 1
        model.train()
        progress = tqdm(range(steps), desc=f"{job.label}epoch {epoch + 1}/{plan.epochs}", unit="step",
                        disable=rank != 0 or args.quiet, leave=False)
        running = 0.0
        for step in progress:
            chunk = windows[step * batch : (step + 1) * batch][rank::world][:local_batch]
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
        state["epoch"] = epoch + 1
        state["steps"] += steps
        state["seconds"] = time.monotonic() - started
        round_end = state["epoch"] % plan.epochs_per_round == 0 or state["epoch"] == plan.epochs
        if not round_end:
            if rank == 0 and out is not None and state["epoch"] == stop:  # --stop-after: resumable
                save(last_path, {"config": config, "model": model.state_dict(),
                                 "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                                 "state": state, "data": data_info})
            continue
        entry = {"epoch": epoch + 1, "steps": state["steps"], "train_bits_per_token": running / LOG2,
                 "seconds": round(state["seconds"], 1)}
        improved = True
        if job.valid:
            sums = all_sum(evaluate(model, valid_shard, device), world)
            valid = bits(sums)
            entry.update({f"valid_{k}": v for k, v in valid.items()})
            entry["valid_nll_nats"] = sums["nll_nats"]
            improved = state["best"] is None or valid["bits_per_note"] < state["best"]["valid_bits_per_note"]
        state["history"].append(entry)
        if improved:
            state["best"] = entry
            state["bad_epochs"] = 0
            if out is None and job.valid:
                best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            state["bad_epochs"] += 1
        if rank == 0 and not args.quiet or (rank == 0 and out is not None):
            figures = (f"valid {entry['valid_bits_per_note']:.4f} bits/note, pitch "
                       f"{entry['valid_pitch_bits_per_note']:.4f} bits/note" if job.valid else
                       f"train {entry['train_bits_per_token']:.4f} bits/token")
            print(f"{job.label}epoch {epoch + 1} (step {state['steps']}): {figures} "
                  f"({state['seconds']:.0f} s)" + (" *" if improved and job.valid else ""), flush=True)
        if rank == 0 and out is not None:
            payload = {"config": config, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                       "schedule": schedule.state_dict(), "state": state, "data": data_info}
            save(last_path, payload)
            if improved:
                metrics = {f"valid_{k[6:]}": v for k, v in entry.items()
                           if k.startswith("valid_") and k != "valid_nll_nats"}
                save(best_path, {"config": config, "model": model.state_dict(), "data": data_info,
                                 "metrics": metrics, "epoch": epoch + 1})
        if world > 1:
            dist.barrier()
    if best_weights is not None:
        model.load_state_dict(best_weights)
    return model, state


def cross_validate(args: argparse.Namespace, config: dict, pool: list[dataset.Tune],
                   plan: Plan, device: torch.device, rank: int, world: int,
                   data_info: dict) -> dict:
    """Estimate the best number of epochs by k-fold cross-validation on ``pool`` (folds by
    file): the pooled valid bits per note of all folds after each validation round."""
    folds = []
    for k in range(args.folds):
        train = [np.asarray(t.tokens, dtype=np.int64) for t in pool if fold_of(t.id, args.folds) != k]
        valid = [np.asarray(t.tokens, dtype=np.int64) for t in pool if fold_of(t.id, args.folds) == k]
        if not train or not valid:
            raise JamError(f"too few tunes ({len(pool)}) for {args.folds}-fold cross-validation; "
                           "prepare more music, or pass --small-valid fixed")
        fold_plan = Plan(plan.batch, plan.windows, max(1, sum(math.ceil(t.size / args.window)
                                                                for t in train) // plan.batch),
                         plan.epochs, plan.epochs_per_round, [])
        _, state = fit(args, config, Fit(train, valid, fold_plan, args.patience, None,
                                         f"fold {k + 1}/{args.folds} "), device, rank, world, data_info)
        folds.append(state["history"])
    rounds = min(len(h) for h in folds)
    pooled = []
    for r in range(rounds):
        nats = sum(h[r]["valid_nll_nats"] for h in folds)
        notes = sum(h[r]["valid_notes"] for h in folds)
        pooled.append({"epoch": folds[0][r]["epoch"], "valid_bits_per_note": nats / LOG2 / max(notes, 1),
                       "valid_notes": notes})
    best = min(pooled, key=lambda e: e["valid_bits_per_note"])
    return {"folds": args.folds, "pooled": pooled, "best": best,
            "per_fold": [[{k: e[k] for k in ("epoch", "steps", "valid_bits_per_note", "valid_notes")}
                          for e in h] for h in folds]}


def check_run_folder(out: Path, data: Path, resume: bool, force: bool) -> None:
    """The run folder: never inside the data, never a folder of something else."""
    refuse_inside(out, [data], "train", "-o")
    if out.exists() and not out.is_dir():
        raise JamError(f"-o {out} is a file; give a folder for the run")
    ours = any((out / name).exists() for name in ("record.json", "last.pt", "best.pt"))
    if resume:
        if not (out / "last.pt").is_file():
            raise JamError(f"{out / 'last.pt'}: no checkpoint to resume from; start without --resume")
        return
    if ours and not force:
        raise JamError(f"{out} already holds a run; pass --resume to continue or --force to replace it")
    if not ours and out.is_dir() and any(out.iterdir()):
        raise JamError(f"-o {out} is not empty and holds no run of this tool; give a new folder, "
                       f"e.g. -o {quote(suggest_outside(out, 'runs'))}")


def train(args: argparse.Namespace) -> dict:
    rank, world = distributed()
    device = pick_device(args.device, world)
    if args.threads:
        torch.set_num_threads(args.threads)
    out: Path = args.output
    dataset.check_prepared(args.data)
    if rank == 0:
        check_run_folder(out, args.data, args.resume, args.force)
    record_path, best_path = out / "record.json", out / "best.pt"

    train_set = [t for t in dataset.read_split(args.data, "train") if t.tokens]
    valid_set = dataset.read_split(args.data, "valid")
    test_tunes = [np.asarray(t.tokens, dtype=np.int64) for t in dataset.read_split(args.data, "test")]
    if not train_set:
        raise JamError(f"{args.data}: the train split is empty; prepare more music")
    valid_notes = sum(t.n_notes for t in valid_set)
    small = valid_notes < MIN_VALID_NOTES or len(valid_set) < MIN_VALID_TUNES
    mode = args.small_valid if small else "split"
    if mode == "folds" and (args.resume or args.stop_after):
        raise JamError("--resume and --stop-after need a valid split large enough for early "
                       f"stopping (this one has {valid_notes} notes in {len(valid_set)} tune(s)); "
                       "run without them, or pass --small-valid fixed")
    pool = train_set + valid_set if mode == "folds" else train_set
    train_tunes = [np.asarray(t.tokens, dtype=np.int64) for t in pool]
    valid_tunes = [np.asarray(t.tokens, dtype=np.int64) for t in valid_set]
    plan = plan_for(train_tunes, args.window, None if args.batch == "auto" else int(args.batch),
                    args.epochs, args.min_steps)
    if small and rank == 0:
        then = (f"estimating the best number of epochs by {args.folds}-fold cross-validation on "
                f"train+valid ({len(pool)} tunes), then training on all of them" if mode == "folds"
                else "training for the whole budget without early stopping (--small-valid fixed)")
        print(f"train: warning: the valid split has {valid_notes} notes in {len(valid_set)} "
              f"tune{'s' if len(valid_set) != 1 else ''}, "
              f"too few to stop early on (needs {MIN_VALID_NOTES} notes in {MIN_VALID_TUNES} tunes); "
              f"{then}", file=sys.stderr, flush=True)
    summary = dataset.read_summary(args.data)
    config = {
        "vocab": tk.VOCAB_SIZE, "embed": args.embed, "hidden": args.hidden, "layers": args.layers,
        "dropout": args.dropout, "window": args.window, "batch": plan.batch, "lr": args.lr,
        "epochs": plan.epochs, "patience": args.patience, "transpose": args.transpose,
        "clip": args.clip, "seed": args.seed, "world_size": world,
    }
    data_info = {"path": str(args.data), "sha256": dataset.data_hash(args.data),
                 "sources": sorted(summary.get("sources", {})),
                 "split_seed": summary.get("seed", 0),
                 "tunes": {k: v["tunes"] for k, v in summary.get("splits", {}).items()}}
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        print(f"train: {len(train_tunes)} tunes, batch {plan.batch}, {plan.steps_per_epoch} steps per "
              f"epoch, up to {plan.epochs} epochs ({plan.steps} steps)"
              + (f"; {'; '.join(plan.notes)}" if plan.notes else ""), flush=True)
    began = time.monotonic()
    cv = None
    if mode == "folds":
        cv = cross_validate(args, config, pool, plan, device, rank, world, data_info)
        epochs = cv["best"]["epoch"]
        final_plan = Plan(plan.batch, plan.windows, plan.steps_per_epoch, epochs, epochs, plan.notes)
        if rank == 0:
            print(f"train: {args.folds}-fold estimate {cv['best']['valid_bits_per_note']:.4f} bits/note "
                  f"after {epochs} epochs; training on all {len(pool)} tunes for {epochs} epochs",
                  flush=True)
        model, state = fit(args, config, Fit(train_tunes, [], final_plan, None, out, "all "),
                           device, rank, world, data_info)
        state["best"] = {**state["history"][-1], **{
            "valid_bits_per_note": cv["best"]["valid_bits_per_note"], "valid_notes": cv["best"]["valid_notes"]}}
    else:
        patience = args.patience if mode == "split" else None
        model, state = fit(args, config, Fit(train_tunes, valid_tunes, plan, patience, out),
                           device, rank, world, data_info, resume=args.resume)
    seconds = round(state["seconds"] if mode != "folds" else time.monotonic() - began, 1)

    record = {}
    finished = (mode == "folds" or state["epoch"] >= plan.epochs
                or (mode == "split" and state["bad_epochs"] >= args.patience))
    if rank == 0 and not finished:
        print(f"stopped after epoch {state['epoch']} of {plan.epochs}; continue with --resume")
    elif rank == 0:
        if mode == "split":
            best = torch.load(best_path, map_location=device, weights_only=True)
            model.load_state_dict(best["model"])
        else:  # the last weights: no validation to choose by
            best = {"config": config, "model": model.state_dict(), "data": data_info,
                    "epoch": state["epoch"], "metrics": {}}
            last = state["history"][-1] if state["history"] else {}
            best["metrics"] = {f"valid_{k[6:]}": v for k, v in last.items()
                               if k.startswith("valid_") and k != "valid_nll_nats"}
            if mode == "folds":
                best["metrics"] = {"valid_bits_per_note": cv["best"]["valid_bits_per_note"],
                                   "valid_notes": cv["best"]["valid_notes"],
                                   "valid_kind": f"{args.folds}-fold cross-validation on train+valid"}
        test = bits(evaluate(model, test_tunes, device)) if test_tunes else {}
        metrics = {**best["metrics"], **{f"test_{k}": v for k, v in test.items()},
                   "best_epoch": best["epoch"], "steps": state["steps"]}
        best["metrics"] = metrics
        best["command"] = args.command
        best["train_seconds"] = seconds
        save(best_path, best)
        validation = {"mode": mode, "valid_notes": valid_notes, "valid_tunes": len(valid_set)}
        if cv is not None:
            validation["cross_validation"] = cv
        record = {
            "command": args.command, "config": config, "plan": asdict(plan), "validation": validation,
            "data": data_info, "metrics": metrics, "history": state["history"],
            "train_seconds": seconds, "device": str(device), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        write_json(record_path, record)
        valid_text = (f"{metrics['valid_bits_per_note']:.4f} bits/note"
                      + (f" ({args.folds}-fold estimate)" if mode == "folds" else "")
                      if "valid_bits_per_note" in metrics else "not measured")
        print(f"best epoch {best['epoch']} of {state['epoch']} ({state['steps']} steps in all): "
              f"valid {valid_text}; "
              + (f"test {metrics['test_bits_per_note']:.4f} bits/note, pitch "
                 f"{metrics['test_pitch_bits_per_note']:.4f}; " if test else "")
              + f"{seconds:.0f} s -> {best_path}")
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return record


def batch_arg(text: str) -> str:
    if text == "auto" or (text.isdigit() and int(text) > 0):
        return text
    raise argparse.ArgumentTypeError("a number of windows above 0, or auto")


def build_parser() -> Parser:
    parser = Parser(prog="train.py", description=__doc__.split("\n\n")[0] + "\n\n"
                    + __doc__.split("\n\n")[1])
    parser.add_argument("data", type=nonempty_path, help="prepared dataset folder (the -o of tools/prepare_data.py)")
    parser.add_argument("-o", "--output", type=nonempty_path, required=True, metavar="DIR",
                        help="run folder to write: checkpoints and record.json (a new folder)")
    model = parser.add_argument_group("model")
    model.add_argument("--embed", type=int, default=64, help="token embedding size")
    model.add_argument("--hidden", type=int, default=128, help="LSTM units per layer")
    model.add_argument("--layers", type=int, default=2, help="LSTM layers")
    model.add_argument("--dropout", type=float, default=0.1, help="dropout between LSTM layers")
    budget = parser.add_argument_group("budget and batches")
    budget.add_argument("--epochs", type=int, default=EPOCHS,
                        help="passes over the training tunes (raised to reach --min-steps)")
    budget.add_argument("--min-steps", type=int, default=MIN_STEPS,
                        help="at least this many optimizer steps, however small the data (0: none)")
    budget.add_argument("--batch", type=batch_arg, default="auto",
                        help="windows per step, all processes together; auto: 32, or 16/8 for small data")
    budget.add_argument("--window", type=int, default=128, help="tokens per training window")
    budget.add_argument("--patience", type=int, default=PATIENCE,
                        help="stop after this many validations without gain")
    budget.add_argument("--small-valid", choices=("folds", "fixed"), default="folds",
                        help=f"when the valid split has under {MIN_VALID_NOTES} notes or "
                             f"{MIN_VALID_TUNES} tunes: folds = choose the epochs by cross-validation "
                             "on train+valid, then train on both; fixed = the whole budget, last weights")
    budget.add_argument("--folds", type=int, default=FOLDS, help="folds for --small-valid folds")
    optim = parser.add_argument_group("optimizer and augmentation")
    optim.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (cosine decay to 10 %%)")
    optim.add_argument("--clip", type=float, default=1.0, help="gradient norm clip")
    optim.add_argument("--transpose", type=int, default=6, help="random transposition by up to +-N semitones")
    optim.add_argument("--seed", type=int, default=0, help="seed of everything random")
    run = parser.add_argument_group("running")
    run.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                     help="torch device; auto: CUDA when available, else the CPU")
    run.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    run.add_argument("--resume", action="store_true", help="continue from OUTPUT/last.pt")
    run.add_argument("--stop-after", type=int, default=0, metavar="N",
                     help="stop after N epochs in this invocation (continue later with --resume; 0: no stop)")
    run.add_argument("--force", action="store_true", help="replace a run this tool wrote before")
    run.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.folds < 2:
        parser.error("--folds must be 2 or more")
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
