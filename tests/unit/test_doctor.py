"""jam doctor's pieces that need no MIDI system: percentiles, the report, the real-time
probe (checked against what this process may really do) and the config line."""

from __future__ import annotations

import io
import os
import threading

import pytest

from jam.config import build_config
from jam.service.doctor import Finding, check_config, check_realtime, percentile, report


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0


def test_the_report_lists_fixes_one_line_each_and_the_blocking_ones():
    out = io.StringIO()
    findings = [Finding("MIDI", "jack API works"),
                Finding("real-time", "SCHED_FIFO refused", "grant it:\n  ulimit -r 50"),
                Finding("--out", "'x' matches no single output", "no MIDI output matches",
                        blocking=True)]
    blocking = report(findings, out)
    assert blocking == [findings[2]]
    assert out.getvalue().splitlines() == [
        "ok      MIDI       jack API works",
        "fix     real-time  SCHED_FIFO refused",
        "BLOCKS  --out      'x' matches no single output",
        "",
        "to fix:",
        "  - real-time: grant it: ulimit -r 50",
        "  - --out: no MIDI output matches",
        "1 problem blocks playing"]


@pytest.mark.skipif(not hasattr(os, "sched_setscheduler"), reason="no SCHED_FIFO here")
def test_the_real_time_line_agrees_with_what_this_process_may_do():
    outcome = []

    def probe():
        try:
            os.sched_setscheduler(threading.get_native_id(), os.SCHED_FIFO, os.sched_param(50))
        except OSError as err:
            outcome.append(err.strerror)
        else:
            outcome.append(None)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    finding = check_realtime()
    if outcome[0] is None:
        assert "allowed" in finding.text and not finding.fix
    else:
        assert f"refused ({outcome[0]})" in finding.text and "LimitRTPRIO" in finding.fix
    assert "RLIMIT_RTPRIO" in finding.text and not finding.blocking


def test_the_config_line_names_the_file_in_use(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home"))
    path = tmp_path / "config.yaml"
    path.write_text("bpm: 96\n")
    assert check_config(build_config({}, path)).text == str(path)
    assert check_config(build_config({})).text.startswith("no config file")
