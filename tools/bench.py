"""The benchmark of jam, one entry point: prints one JSON object (stdout) and one Markdown
table (``--markdown FILE``, else stderr), with the machine, the versions and the load
average. A measurement, not a test: nothing here passes or fails, the aims are compared
in the table.

Sections (``--sections``, default all; each is a module of tools/benchparts/):

- ``spin``: how long this machine stalls a thread that holds its CPU (no Python in the way).
- ``model``: per-event model cost, one run, the same weights: jam's onnxruntime model
  stepped with its state kept (ours), the same LSTM in PyTorch eager mode (oneDNN on and
  off), onnxruntime recomputing a 64-token window per event, Notochord's feed + query at
  its default size with random weights (when importable); ratios to ours; and the session
  memory blend's cost per listened event and per answer token.
- ``engine``: listening (engine time per note-on) and call end -> first answer note
  computed, ``--tempo fixed`` and ``follow``, on a virtual clock.
- ``thru``: ``jam --mode thru`` over a private sync JACK server (64 frames): latency added
  by jam, idle and under ``stress-ng --cpu 2``.
- ``timing``: the live stack answering calls over JACK: send - deadline, arrival - grid
  time, late and lost notes, idle and under ``stress-ng --cpu 2``.
- ``input``: reading a JACK input three ways while another thread runs Python, on an
  async server, idle and under ``stress-ng --cpu 2``: a callback in the process, polling
  rtmidi's queue (jam's input before), jam's helper process; repeated and missing events.
- ``process``: cold start (process start -> READY=1 on a NOTIFY_SOCKET we own), memory
  after warm-up (private vs JACK's shared memory), CPU use while idle.
- ``cuda``: the model rows with ``--device cuda`` when onnxruntime offers CUDA (else why not).

Usage::

    python tools/bench.py                           # everything (about 7 minutes)
    python tools/bench.py --markdown bench.md > bench.json
    python tools/bench.py --sections model engine   # no JACK needed
    python tools/bench.py --smoke                   # a few hundred events, seconds (CI)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone

from benchparts import engine, machine, report  # tools/ is on sys.path when a tool runs
from benchparts import model as model_part

SECTIONS = ("spin", "model", "engine", "thru", "timing", "input", "process", "cuda")

FULL = {"spin_seconds": 10.0, "events": 5000, "notochord_events": 500, "answer_tokens": 2000,
        "listen_events": 3000, "calls": 200, "thru_notes": 1000, "answers": 40,
        "input_messages": 2000, "input_runs": 2, "cold_starts": 5, "idle_seconds": 30.0,
        "stress_cpus": 2}
SMOKE = {"spin_seconds": 0.5, "events": 300, "notochord_events": 0, "answer_tokens": 100,
         "listen_events": 300, "calls": 15, "thru_notes": 100, "answers": 1,
         "input_messages": 200, "input_runs": 1, "cold_starts": 1, "idle_seconds": 1.0,
         "stress_cpus": 0}


def cuda_section(model: str | None, sizes: dict) -> dict:
    """The model rows on CUDA, when onnxruntime offers it; PyTorch's step on the GPU beside
    its step on the CPU, when PyTorch sees a GPU."""
    import onnxruntime

    from jam.model.runtime import load_model

    events = model_part.event_tokens(sizes["events"])
    torch_rows = model_part.torch_cuda_rows(load_model(model, device="cpu"), events)
    providers = onnxruntime.get_available_providers()
    if "CUDAExecutionProvider" not in providers:
        return {"available": False, **torch_rows,
                "reason": f"onnxruntime {onnxruntime.__version__} offers {', '.join(providers)} "
                          "here (no CUDAExecutionProvider: no GPU, or onnxruntime without CUDA)"}
    rows = model_part.section(model, sizes["events"], 0, sizes["answer_tokens"], device="cuda")
    return {"available": True, **rows, **torch_rows}


def run_section(name: str, args: argparse.Namespace, sizes: dict) -> dict:
    if name == "spin":
        return machine.spin_gaps(sizes["spin_seconds"])
    if name == "model":
        return model_part.section(args.model, sizes["events"], sizes["notochord_events"],
                                  sizes["answer_tokens"])
    if name == "engine":
        return engine.section(args.model, sizes["listen_events"], sizes["calls"])
    if name == "cuda":
        return cuda_section(args.model, sizes)
    from benchparts import jack  # needs tools/jackrig.py and jackd
    from jackrig import jackd_path

    if jackd_path() is None:
        return {"skipped": "jackd is not installed (Debian: apt-get install jackd2)"}
    if name == "thru":
        return jack.thru_section(sizes["thru_notes"], 0.005, sizes["stress_cpus"])
    if name == "timing":
        return jack.timing_section(sizes["answers"], args.bpm, sizes["stress_cpus"], args.model)
    if name == "input":
        return jack.input_section(sizes["input_messages"], sizes["input_runs"],
                                  sizes["stress_cpus"])
    return jack.process_section(sizes["cold_starts"], sizes["idle_seconds"], args.model)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        metavar="SECTION", help=f"what to run: {', '.join(SECTIONS)} "
                        "(default: all)")
    parser.add_argument("--smoke", action="store_true",
                        help="a few hundred events per section, no load generator (CI)")
    parser.add_argument("--model", default=None,
                        help="ONNX model or 'rules' (default: the shipped model)")
    parser.add_argument("--bpm", type=float, default=160.0, help="tempo of the answers over "
                        "JACK (default: 160)")
    parser.add_argument("--markdown", default=None, metavar="FILE",
                        help="write the Markdown table there (default: stderr)")
    for key, value in FULL.items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=None,
                            help=f"(default {value}; --smoke: {SMOKE[key]})")
    args = parser.parse_args(argv)
    sizes = dict(SMOKE if args.smoke else FULL)
    sizes.update({k: getattr(args, k) for k in FULL if getattr(args, k) is not None})
    if args.model is not None and args.model.lower() == "rules":
        args.sections = [s for s in args.sections if s not in ("model", "cuda")]

    result: dict = {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", "tools/bench.py", *(sys.argv[1:] if argv is None
                                                           else argv)]),
        "smoke": args.smoke, "sizes": sizes, "model_file": args.model or "default",
        "machine": machine.describe(), "load_start": machine.load(),
    }
    for name in SECTIONS:
        if name not in args.sections:
            continue
        began, load = time.monotonic(), machine.load()
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        figures = run_section(name, args, sizes)
        result[name] = {**figures, "load_before": figures.get("load_before", load),
                        "load_after": figures.get("load_after", machine.load()),
                        "seconds": round(time.monotonic() - began, 1)}
    result["load_end"] = machine.load()
    result["aims"] = report.aims(result)
    json.dump(result, sys.stdout, indent=1)
    print()
    table = report.markdown(result)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as handle:
            handle.write(table)
    else:
        print(table, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
