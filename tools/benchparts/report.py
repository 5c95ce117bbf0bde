"""The aims a benchmark run is compared with, and its one Markdown table."""

from __future__ import annotations

from typing import Any

PERIOD_US = 1e6 * 64 / 48000  # the JACK period of the timing runs (64 frames at 48 kHz)

# (key, what, path to the figure, unit, aim as "<= value", how it is read)
AIMS = (
    ("send_idle", "send - deadline p99, idle", ("timing", "idle", "send_minus_deadline",
                                                "p99_us"), "us", 200),
    ("send_stress", "send - deadline p99, stress-ng --cpu 2",
     ("timing", "stress", "send_minus_deadline", "p99_us"), "us", 200),
    ("listen", "listening p99 per note-on (wall)", ("engine", "listen", "note_on_wall",
                                                    "p99_us"), "us", 150),
    ("response_fixed", "call end -> first note computed p99, fixed tempo",
     ("engine", "response_fixed", "wall", "p99_us"), "us", 2000),
    ("response_follow", "call end -> first note computed p99, follow tempo",
     ("engine", "response_follow", "wall", "p99_us"), "us", 2000),
    ("timing_idle", "answer timing error p99 (arrival - grid), idle",
     ("timing", "idle", "arrival_minus_grid", "p99_us"), "us", PERIOD_US + 1000),
    ("timing_stress", "answer timing error p99 (arrival - grid), stress-ng --cpu 2",
     ("timing", "stress", "arrival_minus_grid", "p99_us"), "us", PERIOD_US + 2000),
    ("idle_cpu", "idle CPU (call mode, nothing played)",
     ("process", "idle_cpu", "percent_of_one_core"), "% of a core", 1.0),
    ("memory", "private memory after warm-up", ("process", "memory_after_ready",
                                                "private_mb"), "MB", 120),
    ("cold_start", "cold start (start -> READY=1), median",
     ("process", "cold_start_ms", "p50_ms"), "ms", 1000),
)


def _get(result: dict, path: tuple[str, ...]) -> Any:
    node: Any = result
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def aims(result: dict) -> list[dict]:
    """Each aim with its figure from ``result`` (None: not measured in this run), the
    1-minute load average of its section, and whether it was met."""
    rows = []
    for key, what, path, unit, limit in AIMS:
        value = _get(result, path)
        section = result.get(path[0], {})
        sub = section.get(path[1], {}) if isinstance(section, dict) else {}
        load = (sub if isinstance(sub, dict) and "load_before" in sub else section)
        rows.append({"aim": key, "what": what, "value": value, "unit": unit,
                     "limit": round(limit, 1), "met": None if value is None else value <= limit,
                     "load_1min": [_get(load, ("load_before",)), _get(load, ("load_after",))]})
    return rows


def _number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _load(section: Any) -> str:
    if not isinstance(section, dict):
        return ""
    before, after = section.get("load_before"), section.get("load_after")
    if not before:
        return ""
    first = before[0] if isinstance(before, list) else before
    last = after[0] if isinstance(after, list) else after
    return f"{first:.1f}-{last:.1f}" if last is not None else f"{first:.1f}"


def _rows(result: dict) -> list[tuple[str, str, dict | None, str, str]]:
    """(section, measurement, percentiles dict, unit suffix of its keys, load)."""
    rows = []
    m = result.get("model")
    if isinstance(m, dict):
        load = _load(m)
        size = f"LSTM {m.get('layers')}x{m.get('hidden')}"
        for key, label in (
                ("ort_step", f"ours: onnxruntime step, 1 token ({size})"),
                ("ort_event", f"ours: one note-on's tokens in one run "
                              f"({m.get('tokens_per_event')} tokens avg)"),
                ("torch_step_mkldnn_off", "PyTorch eager step, same weights, oneDNN off"),
                ("torch_step_mkldnn_on", "PyTorch eager step, same weights, oneDNN on"),
                ("ort_window", f"onnxruntime recomputing a {m.get('window')}-token window"),
                ("notochord", "Notochord feed + query (default size, random weights)"),
                ("blend_learn_per_event", "session memory: learning one listened event"),
                ("answer_token_lstm", "answer token: LSTM alone (logits, sample, feed)"),
                ("answer_token_blend", "answer token: LSTM + session memory (style auto)")):
            ratio = m.get("ratio_to_ort_step", {}).get(key)
            suffix = f" [x{ratio['p50']} / x{ratio['p99']}]" if ratio else ""
            rows.append(("model", label + suffix, m.get(key), "us", load))
    e = result.get("engine")
    if isinstance(e, dict):
        load = _load(e)
        rows += [("engine", "listening: engine time per note-on, wall",
                  _get(e, ("listen", "note_on_wall")), "us", load),
                 ("engine", "listening: the same, thread CPU time",
                  _get(e, ("listen", "note_on_cpu")), "us", load),
                 ("engine", "call end -> first note computed, fixed tempo",
                  _get(e, ("response_fixed", "wall")), "us", load),
                 ("engine", "call end -> first note computed, follow tempo",
                  _get(e, ("response_follow", "wall")), "us", load)]
    t = result.get("thru")
    if isinstance(t, dict):
        for cond in ("idle", "stress"):
            row = t.get(cond)
            if isinstance(row, dict):
                load = _load(row)
                rows += [(f"thru, {cond}", "keyboard -> synth, direct",
                          row.get("latency_ms_direct"), "ms", load),
                         (f"thru, {cond}", "keyboard -> jam -> synth",
                          row.get("latency_ms_jam"), "ms", load),
                         (f"thru, {cond}", "added by jam (note by note)",
                          row.get("added_by_jam_ms"), "ms", load)]
    g = result.get("timing")
    if isinstance(g, dict):
        for cond in ("idle", "stress"):
            row = g.get(cond)
            if isinstance(row, dict):
                load = _load(row)
                counts = (f" (late sends {row.get('late_sends_over_1ms')}, late arrivals "
                          f"{row.get('arrivals_late')}, lost {row.get('lost')}, answers "
                          f"ended early {row.get('answers_ended_early')})")
                rows += [(f"timing, {cond}", "send - deadline",
                          row.get("send_minus_deadline"), "us", load),
                         (f"timing, {cond}", "arrival - grid time" + counts,
                          row.get("arrival_minus_grid"), "us", load)]
    p = result.get("process")
    if isinstance(p, dict):
        rows.append(("process", "cold start: start -> READY=1", p.get("cold_start_ms"), "ms",
                     _load(p)))
    c = result.get("cuda")
    if isinstance(c, dict):
        for key, label in (("ort_step", "ours: onnxruntime step on CUDA, 1 token"),
                           ("torch_step_cpu", "PyTorch eager step on the CPU, logits on host"),
                           ("torch_step_cuda", f"PyTorch eager step on "
                                               f"{c.get('torch_cuda_device')}, logits to host")):
            if key in c:
                rows.append(("cuda", label, c[key], "us", _load(c)))
    return rows


def markdown(result: dict) -> str:
    """The run as one Markdown table (figures with p50/p99/max), then the aims."""
    mach = result.get("machine", {})
    packages = ", ".join(f"{k} {v}" for k, v in mach.get("packages", {}).items() if v)
    lines = [f"Run {result.get('started')}: `{result.get('command')}`", "",
             f"Machine: {mach.get('cpu')}, {mach.get('cpus')} CPUs"
             f"{' (virtual machine)' if mach.get('virtual_machine') else ''}, "
             f"Linux {mach.get('kernel')}, Python {mach.get('python')}; {packages}; "
             f"{mach.get('jackd') or 'no jackd'}; commit {mach.get('commit')}. "
             f"Load average (1, 5, 15 min) at the start {result.get('load_start')}, "
             f"at the end {result.get('load_end')}.", "",
             "| section | measurement | n | p50 | p99 | max | unit | load (1 min) |",
             "|---|---|---|---|---|---|---|---|"]
    for section, label, figures, unit, load in _rows(result):
        if not isinstance(figures, dict):
            lines.append(f"| {section} | {label} | | not measured | | | | {load} |")
            continue
        lines.append(f"| {section} | {label} | {_number(figures.get('n'))} | "
                     f"{_number(figures.get(f'p50_{unit}'))} | "
                     f"{_number(figures.get(f'p99_{unit}'))} | "
                     f"{_number(figures.get(f'max_{unit}'))} | {unit} | {load} |")
    p = result.get("process")
    if isinstance(p, dict) and isinstance(p.get("memory_after_ready"), dict):
        mem, cpu = p["memory_after_ready"], p.get("idle_cpu", {})
        lines += ["", f"Process (call mode, default model, virtual ports): private memory "
                      f"{mem['private_mb']} MB (RssAnon {mem['rss_anon_mb']} + RssFile "
                      f"{mem['rss_file_mb']}), JACK shared memory {mem['jack_shm_mb']} MB, "
                      f"RSS {mem['rss_mb']} MB; idle CPU {cpu.get('percent_of_one_core')} % "
                      f"of a core over {cpu.get('seconds')} s ({cpu.get('threads')} threads; "
                      f"jam's process {cpu.get('jam_process_percent')} %, its input helper "
                      f"the rest), with another JACK client started before it, which used "
                      f"{cpu.get('first_jack_client_percent')} % (JACK's first client); "
                      f"load {_load(p)}."]
    s = result.get("spin")
    if isinstance(s, dict) and "bursts" in s:
        lines += ["", f"Machine stalls (a lone {s['policy']} thread spinning {s['spin_ms']} ms "
                      f"every {s['every_ms']} ms): {s['gaps_over_100us']} gaps > 100 us, "
                      f"{s['gaps_over_200us']} > 200 us, {s['gaps_over_500us']} > 500 us in "
                      f"{s['bursts']} bursts, the largest {s['max_gap_us']} us; load "
                      f"{_load(s)}."]
    i = result.get("input")
    if isinstance(i, dict) and "idle" in i:
        lines += ["", f"Reading a JACK input while another thread runs Python ({i['jack']}, "
                      f"{i['messages']:,} note-ons per run; received / repeated / missing):",
                  "", "| input | " + " | ".join(
                      c for c in ("idle", "stress") if c in i) + " |",
                  "|---|" + "---|" * sum(c in i for c in ("idle", "stress"))]
        for kind, what in (("callback", "python-rtmidi callback in the process"),
                           ("polled", "polling rtmidi's queue (jam before)"),
                           ("piped", "helper process, pipe (jam now)")):
            cells = []
            for cond in ("idle", "stress"):
                if cond in i:
                    cells.append(", ".join(f"{r['received']}/{r['repeated']}/{r['missing']}"
                                           for r in i[cond][kind]) +
                                 f" (load {_load(i[cond])})")
            lines.append(f"| {what} | " + " | ".join(cells) + " |")
    c = result.get("cuda")
    if isinstance(c, dict) and not c.get("available", True):
        lines += ["", f"onnxruntime on CUDA: not measured: {c.get('reason')}."]
    if isinstance(c, dict) and "torch_cuda_skipped" in c:
        lines += ["", f"PyTorch on CUDA: not measured: {c['torch_cuda_skipped']}."]
    lines += ["", "| aim | measured | aim | met | load (1 min) |", "|---|---|---|---|---|"]
    for row in result.get("aims", []):
        load = row["load_1min"]
        shown = "-".join(f"{x[0]:.1f}" if isinstance(x, list) else f"{x:.1f}"
                         for x in load if x is not None)
        lines.append(f"| {row['what']} | {_number(row['value'])} {row['unit']} | <= "
                     f"{_number(row['limit'])} {row['unit']} | {_number(row['met'])} | "
                     f"{shown} |")
    return "\n".join(lines) + "\n"
