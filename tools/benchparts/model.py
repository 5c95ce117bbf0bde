"""Per-event model cost, one run, the same weights: jam's onnxruntime model stepped with its
state kept (ours), the same LSTM in PyTorch eager mode, onnxruntime recomputing a window of
the last 64 tokens for every event (what a naive rolling-window loop does), and Notochord's
feed + query when it is installed; then the session-memory blend's own cost.

Times are ``time.perf_counter_ns`` around each call, after a warm-up; figures in
microseconds (n, p50, p99, max). ``ratio_p50``/``ratio_p99`` divide by ours (one token).
"""

from __future__ import annotations

import gc
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from benchstats import percentiles  # tools/ is on sys.path when a tool runs
from jam.music import tokens as tk

WARMUP = 200
WINDOW = 64  # the naive loop's window (tokens recomputed per event)


def event_tokens(events: int, seed: int = 0) -> list[list[int]]:
    """The tokens of ``events`` note-ons of random melodies as jam's listener encodes them
    (eighths and quarters, some rests; 2 to 4 tokens an event: shifts, then the pitch)."""
    rng = np.random.default_rng(seed)
    encoder = tk.Encoder(min_rest=6)
    groups, tick, pitch = [], 0, 67
    while len(groups) < events:
        pitch = int(np.clip(pitch + rng.integers(-4, 5), 48, 84))
        length = int(rng.choice([6, 12, 12, 24]))
        tokens = encoder.note_on(pitch, tick)
        if tokens:
            groups.append(tokens)
        gap = int(rng.choice([0, 0, 0, 6, 12]))
        encoder.note_off(pitch, tick + length)
        tick += length + gap
    return groups


def timed(call: Callable[[object], object], items: list, warmup: int = WARMUP) -> dict:
    """Percentiles (us) of ``call(item)`` over ``items``, the first ``warmup`` not counted.
    Python's garbage collector is off meanwhile, as it is on jam's engine thread (jam
    collects in its scheduler thread between deadlines): a full collection with PyTorch
    loaded took 67 ms, and would land on whichever call allocated last."""
    times = np.empty(len(items), dtype=np.float64)
    clock = time.perf_counter_ns
    gc.collect()
    gc.disable()
    try:
        for i, item in enumerate(items):
            start = clock()
            call(item)
            times[i] = clock() - start
    finally:
        gc.enable()
    return percentiles(times[min(warmup, len(items) // 2):] * 1e-9)


def step_latency(model, steps: int = 5000, seed: int = 0) -> dict[str, float]:
    """Per-call time of ``model.step`` (one token, state kept) on random tokens."""
    tokens = np.random.default_rng(seed).integers(0, tk.BOS, size=steps + WARMUP).tolist()
    model.reset()
    return timed(model.step, tokens)


def ort_rows(model, events: list[list[int]]) -> dict:
    """Ours: one token per run (``Model.step``); one played note's 2-4 tokens in one run
    (``LstmGenerator.feed``, what listening pays per note-on); and the naive loop's
    recompute of the last :data:`WINDOW` tokens from the zero state per event."""
    from jam.generators.lstm import LstmGenerator

    flat = [t for group in events for t in group]
    model.reset()
    step = timed(model.step, flat)
    generator = LstmGenerator(model)
    event = timed(generator.feed, events)
    history = [tk.BOS, *flat]
    windows = [history[max(0, i - WINDOW + 1):i + 1] for i in range(WINDOW, len(history))]
    windows = windows[:len(events)]

    def recompute(window: list[int]) -> None:
        model.reset()
        model.prime(window)

    window = timed(recompute, windows, warmup=20)
    model.reset()
    return {"ort_step": step, "ort_event": event, "ort_window": window}


def onnx_weights(path: Path) -> dict[str, np.ndarray]:
    """The ONNX model's initializers in PyTorch's ``LstmModel`` layout (gate order i, f, g,
    o; ONNX's is i, o, f, c), read from the graph's Gather, LSTM and MatMul/Add nodes."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}

    def torch_gates(x: np.ndarray) -> np.ndarray:  # along axis 0: i, o, f, c -> i, f, c, o
        i, o, f, c = np.split(x, 4, axis=0)
        return np.concatenate([i, f, c, o], axis=0)

    state: dict[str, np.ndarray] = {}
    layer = 0
    for node in graph.node:
        if node.op_type == "Gather" and node.input[0] in init:
            state["embed.weight"] = init[node.input[0]]
        elif node.op_type == "LSTM":
            w, r, b = (init[name][0] for name in node.input[1:4])
            half = b.shape[0] // 2
            state[f"lstm.weight_ih_l{layer}"] = torch_gates(w)
            state[f"lstm.weight_hh_l{layer}"] = torch_gates(r)
            state[f"lstm.bias_ih_l{layer}"] = torch_gates(b[:half])
            state[f"lstm.bias_hh_l{layer}"] = torch_gates(b[half:])
            layer += 1
        elif node.op_type == "MatMul":
            state["head.weight"] = next(init[n] for n in node.input if n in init).T
        elif node.op_type == "Add" and any(n in init for n in node.input):
            state["head.bias"] = next(init[n] for n in node.input if n in init)
    return state


def torch_rows(model, events: list[list[int]], threads: int = 1) -> dict:
    """The same LSTM in PyTorch eager mode (jam.model.network.LstmModel with the ONNX
    model's weights), one token per call with the state carried, with oneDNN (mkldnn) on
    and off; ``max_abs_diff`` is the largest logit difference from onnxruntime over the
    first 200 tokens (the weights are the same if it is ~1e-5)."""
    import torch

    torch.set_num_threads(threads)
    step, restart = _torch_stepper(model, "cpu")
    flat = [t for group in events for t in group]
    with torch.inference_mode():
        model.reset()
        diff = 0.0
        for t in flat[:200]:
            theirs = step(t)[0, 0].numpy()
            diff = max(diff, float(np.abs(theirs - model.step(t)).max()))
        model.reset()
        rows = {"torch_max_abs_diff": diff, "torch_threads": threads,
                "torch_mkldnn_available": bool(torch.backends.mkldnn.is_available())}
        for label, enabled in (("torch_step_mkldnn_off", False), ("torch_step_mkldnn_on", True)):
            restart()
            with warnings.catch_warnings():  # (a note about Intel GPUs, on entering)
                warnings.simplefilter("ignore")
                flags = torch.backends.mkldnn.flags(enabled=enabled)
                flags.__enter__()
            try:
                rows[label] = timed(step, flat)
            finally:
                flags.__exit__(None, None, None)
    return rows


def _torch_stepper(model, device: str) -> tuple[Callable[[int], object], Callable[[], None]]:
    """jam.model.network.LstmModel with the ONNX model's weights on ``device``: a function
    that steps one token with the state carried (returning the logits), and one that
    restarts the state."""
    import torch

    from jam.model.network import LstmModel

    state = onnx_weights(Path(model.path))
    embed = state["embed.weight"].shape[1]
    net = LstmModel(state["embed.weight"].shape[0], embed, model.hidden, model.layers)
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    net.eval().to(device)
    zeros = torch.zeros(model.layers, 1, model.hidden, device=device)
    carried = {"h": zeros, "c": zeros}
    token = torch.zeros(1, 1, dtype=torch.long, device=device)

    def step(t: int) -> torch.Tensor:
        token.fill_(t)
        logits, carried["h"], carried["c"] = net(token, carried["h"], carried["c"])
        return logits

    def restart() -> None:
        carried["h"] = carried["c"] = zeros

    return step, restart


def torch_cuda_rows(model, events: list[list[int]]) -> dict:
    """The same LSTM in PyTorch on the GPU, one token per call with the state carried and
    the logits copied back to the host (a sampler needs them there), beside PyTorch on the
    CPU in the same run; skipped with the reason when PyTorch sees no GPU."""
    try:
        import torch
    except ImportError as err:
        return {"torch_cuda_skipped": f"not importable ({err})"}
    if not torch.cuda.is_available():
        return {"torch_cuda_skipped": "PyTorch sees no CUDA device"}
    flat = [t for group in events for t in group]
    rows: dict = {"torch_cuda_device": torch.cuda.get_device_name(0)}
    with torch.inference_mode():
        for label, device in (("torch_step_cpu", "cpu"), ("torch_step_cuda", "cuda")):
            step, _ = _torch_stepper(model, device)
            rows[label] = timed(lambda t, step=step: step(t).cpu(), flat)
    return rows


def notochord_rows(events: int, threads: int = 1) -> dict:
    """Notochord (Shepardson et al. 2022) at its default size with random weights: one
    ``feed`` (the event just played) plus one ``query`` (the next event) per event, as an
    interactive loop uses it. Skipped with the reason when notochord is not importable."""
    if events <= 0:
        return {"notochord": None, "notochord_skipped": "not run (no events asked for)"}
    try:
        import torch
        from notochord import Notochord
    except Exception as err:  # noqa: BLE001 - optional: any import failure means skip
        return {"notochord": None, "notochord_skipped": f"not importable ({err})"}
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = Notochord()  # default sizes, random weights
    net.eval()
    size = {"kind": net.rnn.__class__.__name__, "layers": net.rnn.num_layers,
            "hidden": net.rnn.hidden_size,
            "parameters": sum(p.numel() for p in net.parameters())}
    rng = np.random.default_rng(0)
    items = [(int(rng.integers(48, 84)), float(rng.choice([0.125, 0.25, 0.5])),
              int(rng.integers(40, 110))) for _ in range(events)]
    net.reset()

    def event(item: tuple[int, float, int]) -> None:
        pitch, delta, velocity = item
        net.feed(1, pitch, delta, velocity)
        net.query()

    with torch.inference_mode():
        row = timed(event, items, warmup=min(50, events // 4))
    return {"notochord": row, "notochord_size": size, "notochord_threads": threads}


def ratios(rows: dict, ours: str = "ort_step") -> dict:
    """p50 and p99 of each row over ours'."""
    base = rows[ours]
    out = {}
    for name, row in rows.items():
        if isinstance(row, dict) and "p50_us" in row and name != ours:
            out[name] = {"p50": round(row["p50_us"] / base["p50_us"], 1),
                         "p99": round(row["p99_us"] / base["p99_us"], 1)}
    return out


def blend_rows(model, events: list[list[int]], answer_tokens: int, seed: int = 0) -> dict:
    """The session-memory blend's own cost. Per listened event: the memory learning the
    event's tokens (``SessionMemory.feed``, what ``BlendGenerator.feed`` adds to the LSTM's
    run). Per answer token: ``next_logits`` + ``feed_own`` of the sampled token, as an
    answer is generated, for the LSTM alone and blended (style auto), after the memory
    learned every event of the run (a session of a few minutes)."""
    from jam.generators.blend import BlendGenerator
    from jam.generators.lstm import LstmGenerator
    from jam.generators.markov import SessionMemory

    memory = SessionMemory()
    learn = timed(lambda group: memory.feed(group, learn=True), events)
    lstm = LstmGenerator(model)
    blend = BlendGenerator(LstmGenerator(model), memory=memory, style="auto", keep_memory=True)
    rng = np.random.default_rng(seed)
    rows = {"blend_learn_per_event": learn, "blend_memory_tokens": memory.learned}
    for label, generator in (("answer_token_lstm", lstm), ("answer_token_blend", blend)):
        generator.reset()
        generator.feed(events[-1])

        def token(_: object, generator=generator) -> None:
            logits = generator.next_logits()
            mask = tk.grammar_mask(generator.last_token)
            p = np.exp(logits - logits.max()) * mask
            choice = int(rng.choice(tk.VOCAB_SIZE, p=p / p.sum()))
            generator.feed_own([choice])

        rows[label] = timed(token, list(range(answer_tokens)), warmup=min(50, answer_tokens // 4))
    rows["blend_added_per_answer_token_p50_us"] = round(
        rows["answer_token_blend"]["p50_us"] - rows["answer_token_lstm"]["p50_us"], 1)
    return rows


def section(model_path: str | None, events: int, notochord_events: int,
            answer_tokens: int, device: str = "cpu") -> dict:
    """The whole model section: ours, PyTorch, the window recompute, Notochord, ratios,
    the blend. ``model_path`` None: the shipped model."""
    from jam.model.runtime import load_model

    start = time.perf_counter()
    model = load_model(model_path, device=device)
    load_ms = (time.perf_counter() - start) * 1e3
    groups = event_tokens(events)
    result: dict = {"model": str(model.path), "layers": model.layers, "hidden": model.hidden,
                    "device": model.device, "load_ms": round(load_ms, 1), "events": events,
                    "tokens_per_event": round(sum(map(len, groups)) / len(groups), 2),
                    "window": WINDOW}
    result.update(ort_rows(model, groups))
    if device == "cpu":
        try:
            result.update(torch_rows(model, groups[: max(events // 2, 100)]))
        except ImportError as err:
            result["torch_skipped"] = f"not importable ({err})"
        result.update(notochord_rows(notochord_events))
    result["ratio_to_ort_step"] = ratios(result)
    result.update(blend_rows(model, groups, answer_tokens))
    return result
