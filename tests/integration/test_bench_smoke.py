"""The benchmark runs: ``python tools/bench.py --smoke`` (a few hundred events per section,
no load generator) prints one JSON object with every section's keys and writes the
Markdown table. Only the keys are checked, never the values: timing belongs to the
benchmark's figures (docs/performance.md), not to pass/fail tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jackrig import jackd_path

ROOT = Path(__file__).resolve().parents[2]
FIGURES = {"n", "p50_us", "p99_us", "max_us"}
FIGURES_MS = {"n", "p50_ms", "p99_ms", "max_ms"}
AIMS = {"send_idle", "send_stress", "listen", "response_fixed", "response_follow",
        "timing_idle", "timing_stress", "idle_cpu", "memory", "cold_start"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    markdown = tmp_path_factory.mktemp("bench") / "bench.md"
    env = {**os.environ, "XDG_CONFIG_HOME": str(markdown.parent / "config-home")}
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "bench.py"), "--smoke",
                           "--markdown", str(markdown)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout), markdown.read_text(), done.stderr


def jack_section(result, name):
    section = result[name]
    if "skipped" in section:
        reason = f"{name}: {section['skipped']}"
        if jackd_path() is None and os.environ.get("JAM_REQUIRE_JACK") != "1":
            pytest.skip(reason)
        pytest.fail(reason)
    return section


def test_the_run_says_where_and_when_it_ran(run):
    result, markdown, _ = run
    assert {"started", "command", "smoke", "sizes", "model_file", "machine", "load_start",
            "load_end", "aims"} <= result.keys()
    assert result["smoke"] is True
    assert {"cpu", "cpus", "virtual_machine", "kernel", "python", "packages", "jackd",
            "commit"} <= result["machine"].keys()
    assert {"numpy", "onnxruntime", "torch", "mido", "python-rtmidi"} <= \
        result["machine"]["packages"].keys()
    for name in ("spin", "model", "engine", "thru", "timing", "input", "process", "cuda"):
        assert {"load_before", "load_after", "seconds"} <= result[name].keys(), name
    assert {row["aim"] for row in result["aims"]} == AIMS
    for row in result["aims"]:
        assert {"what", "value", "unit", "limit", "met", "load_1min"} <= row.keys()
    assert "| section | measurement | n | p50 | p99 | max |" in markdown
    assert "| aim | measured | aim | met |" in markdown


def test_spin_and_model_sections(run):
    result, _, _ = run
    assert {"policy", "bursts", "gaps_over_100us", "gaps_over_200us", "gaps_over_500us",
            "max_gap_us"} <= result["spin"].keys()
    model = result["model"]
    for key in ("ort_step", "ort_event", "ort_window", "blend_learn_per_event",
                "answer_token_lstm", "answer_token_blend"):
        assert FIGURES <= model[key].keys(), key
    if "torch_skipped" not in model:
        assert FIGURES <= model["torch_step_mkldnn_off"].keys()
        assert FIGURES <= model["torch_step_mkldnn_on"].keys()
        assert {"torch_max_abs_diff", "torch_threads"} <= model.keys()
    assert "notochord" in model  # None (with notochord_skipped) in a smoke run
    assert {"ort_event", "ort_window"} <= model["ratio_to_ort_step"].keys()
    assert {"p50", "p99"} <= model["ratio_to_ort_step"]["ort_window"].keys()
    assert {"layers", "hidden", "tokens_per_event", "window",
            "blend_added_per_answer_token_p50_us"} <= model.keys()


def test_engine_section(run):
    engine = run[0]["engine"]
    assert FIGURES <= engine["listen"]["note_on_wall"].keys()
    assert FIGURES <= engine["listen"]["note_on_cpu"].keys()
    for tempo in ("response_fixed", "response_follow"):
        assert FIGURES <= engine[tempo]["wall"].keys()
        assert FIGURES <= engine[tempo]["cpu"].keys()


def test_cuda_section_says_whether_it_ran(run):
    cuda = run[0]["cuda"]
    assert "available" in cuda
    assert ("reason" in cuda) if not cuda["available"] else ("ort_step" in cuda)
    if "torch_cuda_skipped" not in cuda:  # PyTorch saw a GPU: both of its rows are there
        assert FIGURES <= cuda["torch_step_cpu"].keys()
        assert FIGURES <= cuda["torch_step_cuda"].keys()


def test_thru_section(run):
    thru = jack_section(run[0], "thru")
    assert {"jack", "idle", "jam_scheduler", "jam_stop_line", "irregular_cycles"} <= thru.keys()
    idle = thru["idle"]
    assert {"received_direct", "received_jam", "load_before", "load_after"} <= idle.keys()
    for key in ("latency_ms_direct", "latency_ms_jam", "added_by_jam_ms"):
        assert FIGURES_MS <= idle[key].keys(), key


def test_timing_section(run):
    timing = jack_section(run[0], "timing")
    assert {"jack", "bpm", "generator", "idle", "irregular_cycles"} <= timing.keys()
    idle = timing["idle"]
    assert FIGURES <= idle["send_minus_deadline"].keys()
    assert FIGURES <= idle["arrival_minus_grid"].keys()
    assert {"notes_sent", "late_sends_over_1ms", "arrivals_late", "lost",
            "answers_ended_early", "scheduler", "load_before", "load_after"} <= idle.keys()


def test_input_section(run):
    section = jack_section(run[0], "input")
    assert {"jack", "messages", "runs", "idle"} <= section.keys()
    for kind in ("callback", "polled", "piped"):
        assert len(section["idle"][kind]) == section["runs"], kind
        for row in section["idle"][kind]:
            assert {"received", "repeated", "missing", "exact"} <= row.keys()


def test_process_section(run):
    process = jack_section(run[0], "process")
    assert FIGURES_MS <= process["cold_start_ms"].keys()
    assert {"private_mb", "jack_shm_mb", "rss_mb", "jam_process_private_mb",
            "helper_processes"} <= process["memory_after_ready"].keys()
    assert {"seconds", "cpu_seconds", "percent_of_one_core", "jam_process_percent",
            "first_jack_client_percent"} <= process["idle_cpu"].keys()
    assert process["exit"] == 0
