#!/usr/bin/env python3
"""Benchmark a jam model's inference on this machine; prints one JSON object.

    python tools/bench_model.py [MODEL.onnx] [--steps 20000] [--device cpu]

Measures, with time.perf_counter_ns around each call (after a warm-up): session load time,
:meth:`Model.step` (one token, state kept inside: what the live loop pays per event) and
:meth:`Model.prime` on a 64-token window (a re-prime). Without MODEL: the default model.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

from benchstats import percentiles  # tools/ is on sys.path when a tool runs
from jam.errors import JamError
from jam.model.runtime import Model, load_model
from jam.music import tokens as tk

WARMUP = 500


def step_latency(model: Model, steps: int = 5000, seed: int = 0) -> dict[str, float]:
    """Per-call time of ``model.step`` on random tokens."""
    tokens = np.random.default_rng(seed).integers(0, tk.BOS, size=steps + WARMUP)
    model.reset()
    times = np.empty(steps, dtype=np.float64)
    for i, token in enumerate(tokens.tolist()):
        start = time.perf_counter_ns()
        model.step(token)
        if i >= WARMUP:
            times[i - WARMUP] = time.perf_counter_ns() - start
    return percentiles(times * 1e-9)


def prime_latency(model: Model, length: int = 64, runs: int = 300, seed: int = 0) -> dict[str, float]:
    windows = np.random.default_rng(seed).integers(0, tk.BOS, size=(runs + 20, length))
    times = np.empty(runs, dtype=np.float64)
    for i, window in enumerate(windows):
        model.reset()
        start = time.perf_counter_ns()
        model.prime(window)
        if i >= 20:
            times[i - 20] = time.perf_counter_ns() - start
    return percentiles(times * 1e-9)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", default=None, help="ONNX model (default: the shipped one)")
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    args = parser.parse_args(argv)
    try:
        start = time.perf_counter()
        model = load_model(args.model, device=args.device)
        load_ms = (time.perf_counter() - start) * 1000
    except JamError as err:
        print(f"bench_model: {err}", file=sys.stderr)
        return 2
    import onnxruntime

    report = {
        "model": str(model.path), "bytes": model.path.stat().st_size,
        "layers": model.layers, "hidden": model.hidden, "device": model.device,
        "load_ms": round(load_ms, 1),
        "step": step_latency(model, args.steps),
        "prime_64": prime_latency(model),
        "cpus": os.cpu_count(), "loadavg_1min": os.getloadavg()[0],
        "onnxruntime": onnxruntime.__version__, "python": platform.python_version(),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
