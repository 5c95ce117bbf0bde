"""``jam doctor`` as a subprocess: over a real JACK server with the test keyboard and synth
(nothing blocks: exit 0, a report with the model's step times, the timer, real-time
scheduling and the ports), with an --out that matches nothing (exit 2, says what), and
with no MIDI system at all (no JACK server: exit 2, a clear line)."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid

import pytest


def doctor(env, *args):
    return subprocess.run([sys.executable, "-m", "jam", "doctor", *args], env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)


def test_a_ready_machine(jam_env, keyboard, synth):
    done = doctor(jam_env, "--api", "jack", "--in", keyboard.full_name, "--out",
                  synth.full_name)
    out = done.stdout
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "jam: doctor" not in done.stderr, done.stderr
    assert re.search(r"^ok +MIDI +jack API works$", out, re.M), out
    assert re.search(rf"^ok +--in +'{keyboard.full_name}' -> '{keyboard.full_name}'$", out,
                     re.M), out
    assert re.search(rf"^ok +--out +'{synth.full_name}' -> '{synth.full_name}'$", out,
                     re.M), out
    step = re.search(r"model +default\.onnx on cpu: step p50 (\d+) us, p99 (\d+) us "
                     r"\(300 steps\)", out)
    assert step and 0 < int(step[1]) <= int(step[2]), out
    assert re.search(r"clock +monotonic: .*resolution [\d.]+ ns", out), out
    assert re.search(r"timer +a 1 ms timed wait overshoots by p50 -?\d+ us, p99 -?\d+ us", out)
    assert re.search(r"real-time +SCHED_FIFO priority 50 (allowed|refused \(.+\)); "
                     r"RLIMIT_RTPRIO \S+ \(hard \S+\)", out), out
    assert re.search(r"^ok +config +no config file", out, re.M), out
    assert out.rstrip().endswith("nothing blocks playing")
    print(step[0], re.search(r"timer .*", out)[0], sep="\n")


def test_an_output_that_matches_nothing_blocks(jam_env, keyboard):
    done = doctor(jam_env, "--api", "jack", "--in", keyboard.full_name, "--out",
                  "no such synth", "--model", "rules")
    assert done.returncode == 2, done.stdout + done.stderr
    assert re.search(r"^BLOCKS +--out +'no such synth' matches no single output$",
                     done.stdout, re.M), done.stdout
    assert "no MIDI output matches --out 'no such synth'" in done.stdout, done.stdout
    assert "1 problem blocks playing" in done.stdout, done.stdout
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("jam: doctor: cannot play: --out"), (
        done.stdout + done.stderr)


def test_no_midi_system(jam_env):
    env = {**jam_env, "JACK_DEFAULT_SERVER": f"absent-{uuid.uuid4().hex[:8]}",
           "JACK_NO_START_SERVER": "1"}
    done = doctor(env, "--api", "jack", "--model", "rules")
    assert done.returncode == 2, done.stdout + done.stderr
    assert re.search(r"^BLOCKS +MIDI +no usable MIDI system \(--api jack\)$", done.stdout,
                     re.M), done.stdout
    assert "start a JACK server" in done.stdout, done.stdout  # the hint, in the fixes
    assert "Traceback" not in done.stdout + done.stderr
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("jam: doctor: cannot play: MIDI"), (
        done.stdout + done.stderr)


@pytest.mark.parametrize("bad", ["--in", "--out"])
def test_the_flag_that_does_not_match_is_named(jam_env, keyboard, synth, bad):
    ports = {"--in": keyboard.full_name, "--out": synth.full_name, bad: "zzz"}
    done = doctor(jam_env, "--api", "jack", "--model", "rules", "--in", ports["--in"],
                  "--out", ports["--out"])
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"doctor: cannot play: {bad}: 'zzz' matches no single" in done.stderr, done.stderr
