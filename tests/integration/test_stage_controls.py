"""Controls from the instrument, presets, feedback, output latency and MIDI loops, over a
real JACK server: a test keyboard plays into ``jam`` (a subprocess, with a config file in
the test's folder), a test synth records what jam sends with arrival times.

The pure logic has unit tests (tests/unit/test_engine_controls.py, test_stage_mode.py);
these check that it holds end to end, through real ports and jam's threads.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time

import mido
import pytest

from jackrig import JamProcess, wait_for

BPM = 120.0
BEAT = 60.0 / BPM
TOLERANCE = 0.010  # s: arrival jitter through JACK (128-frame periods) and the scheduler
SAME_TICK = 0.020  # s: half a grid tick at 120 BPM; notes this close are on the same tick
# a 2-bar phrase, one note a beat, C major: (beat, pitch)
PHRASE = [(0, 60), (1, 62), (2, 64), (3, 65), (4, 67), (5, 65), (6, 64), (7, 62)]
PAD_CHANNEL = 9  # the controls' pads: "ch 10" in the config


def _at(deadline: float) -> None:
    """Wait until ``deadline`` (sleep, then spin the last 2 ms): the player's timing."""
    while (left := deadline - time.monotonic()) > 0.002:
        time.sleep(left - 0.002)
    while time.monotonic() < deadline:
        pass


def play(keyboard, start: float | None = None, phrase=PHRASE) -> float:
    """Play ``phrase`` (keys down 90 % of a beat) from ``start`` (default: in 0.3 s);
    returns its start."""
    start = time.monotonic() + 0.3 if start is None else start
    events = sorted([(start + b * BEAT, 1, p) for b, p in phrase]
                    + [(start + (b + 0.9) * BEAT, 0, p) for b, p in phrase])
    for when, is_on, pitch in events:
        _at(when)
        keyboard.send(mido.Message("note_on" if is_on else "note_off", note=pitch,
                                   velocity=90 if is_on else 0))
    return start


def press(keyboard, note: int) -> None:
    """A pad on channel 10: note-on, then note-off 50 ms later."""
    keyboard.send(mido.Message("note_on", note=note, velocity=100, channel=PAD_CHANNEL))
    time.sleep(0.05)
    keyboard.send(mido.Message("note_off", note=note, channel=PAD_CHANNEL))


def answer_notes(synth, since: float = 0.0, channel: int = 0,
                 ended: bool = True) -> list[tuple[float, float, int]]:
    """(on, off, pitch) of the notes received on ``channel`` since ``since``, in order;
    with ``ended``, every note must have ended."""
    sounding, notes = {}, []
    for when, m in synth.received:
        if when < since or m.type not in ("note_on", "note_off") or m.channel != channel:
            continue
        if m.type == "note_on" and m.velocity > 0:
            assert m.note not in sounding, \
                f"note {m.note} started twice (recorder's late cycles: {synth.late})"
            sounding[m.note] = when
        elif m.note in sounding:
            notes.append((sounding.pop(m.note), when, m.note))
    assert not (ended and sounding), f"notes left sounding: {sounding}"
    return sorted(notes)


def quiet(synth, seconds: float, timeout: float, since: float = 0.0) -> bool:
    """Wait until a note arrived after ``since``, every note has ended and nothing more
    came for ``seconds`` (an answer's last note can be longer than that)."""
    def done() -> bool:
        got = [(t, m) for t, m in synth.received if t >= since and m.channel != PAD_CHANNEL
               and m.type in ("note_on", "note_off")]
        sounding = set()
        for _, m in got:
            (sounding.add if m.type == "note_on" and m.velocity > 0 else sounding.discard)(
                m.note)
        return bool(got) and not sounding and time.monotonic() - got[-1][0] >= seconds
    return wait_for(done, timeout, interval=0.05)


def answer_after(keyboard, synth, process, bars: int) -> list[tuple[float, float, int]]:
    """Play the phrase and wait for the whole answer; its notes."""
    start = play(keyboard)
    assert quiet(synth, 1.0, timeout=6 + bars * 4 * BEAT, since=start), \
        (process.stderr, [(round(t - start, 3), m) for t, m in synth.received if t >= start])
    return answer_notes(synth, since=start)


def relative(notes) -> list[tuple[float, int]]:
    first = notes[0][0]
    return [(on - first, pitch) for on, _, pitch in notes]


def same_notes(a, b) -> bool:
    """The same pitches on the same grid ticks (from the first note): the same answer."""
    return len(a) == len(b) and all(pa == pb and abs(ta - tb) <= SAME_TICK
                                    for (ta, pa), (tb, pb) in zip(relative(a), relative(b)))


def theil_sen(times: list[float]) -> tuple[float, float]:
    """Interval and first time of evenly spaced events, robust to a late one: the median
    of the pairwise slopes, then the median offset."""
    slopes = [(times[j] - times[i]) / (j - i) for i in range(len(times))
              for j in range(i + 1, len(times))]
    slopes.sort()
    interval = slopes[len(slopes) // 2]
    offsets = sorted(t - i * interval for i, t in enumerate(times))
    return interval, offsets[len(offsets) // 2]


def stop(process) -> str:
    process.process.send_signal(signal.SIGTERM)
    assert process.wait() == 0, process.stderr
    return process.stderr


def after_start(process) -> list[str]:
    """jam's log lines after its start-up line (the warm-up answers before it)."""
    lines = process.lines
    ready = next(i for i, line in enumerate(lines) if JamProcess.READY in line)
    return lines[ready + 1:]


@pytest.fixture
def stage(start_jam, tmp_path):
    """``stage(config_text, *args)``: jam with that config file, rule-based answers,
    seeded."""
    def start(text: str = "", *args: str) -> JamProcess:
        path = tmp_path / "jam.yaml"
        path.write_text(text)
        return start_jam("--config", str(path), "--seed", "1", "--model", "rules", *args)
    return start


def test_a_knob_bound_to_temperature_changes_the_next_answers_sampling(stage, keyboard, synth):
    process = stage("controls:\n  temperature: cc 74\n", "--debug")
    answer_after(keyboard, synth, process, 2)
    keyboard.send(mido.Message("control_change", control=74, value=0))
    keyboard.send(mido.Message("control_change", control=74, value=127))
    keyboard.send(mido.Message("control_change", control=74, value=32))
    answer_after(keyboard, synth, process, 2)
    stop(process)
    lines = after_start(process)
    sampling = [re.search(r"sampling with temperature ([\d.]+)", line) for line in lines]
    assert [m[1] for m in sampling if m] == ["1", "0.579"], process.stderr
    changes = [line for line in lines if re.fullmatch(r"jam: temperature [\d.]+ \(cc 74\)", line)]
    assert changes == ["jam: temperature 0.1 (cc 74)", "jam: temperature 2 (cc 74)",
                       "jam: temperature 0.579 (cc 74)"]
    assert not [m for m in synth.messages()  # the knob never reached the synth
                if m.type == "control_change" and m.control == 74]


def test_a_program_change_switches_presets_between_phrases(stage, keyboard, synth):
    process = stage("presets:\n  - {answer_bars: 1}\n  - {answer_bars: 2}\n")
    lengths = []
    for number in (0, 1):
        keyboard.send(mido.Message("program_change", program=number))
        start = play(keyboard)
        if number == 0:  # preset 1 while this answer plays: this one stays 1 bar long
            assert wait_for(lambda: answer_notes(synth, since=start, ended=False), 6), \
                process.stderr
            keyboard.send(mido.Message("program_change", program=1))
        assert quiet(synth, 1.0, timeout=12, since=start), process.stderr
        notes = answer_notes(synth, since=start)
        lengths.append((notes[-1][1] - notes[0][0]) / (4 * BEAT))
        if number == 0:
            keyboard.send(mido.Message("program_change", program=0))
    stop(process)
    # the rule-based answer's last note lasts to its end: 1 bar, then 2 bars
    assert [round(x, 2) for x in lengths] == [1.0, 2.0], (lengths, process.stderr)
    assert "jam: preset 1 (program 1)" in process.lines


@pytest.mark.parametrize("tapped", [93.0, 180.0])
def test_tapped_beats_set_the_tempo_within_1_percent(stage, keyboard, synth, tapped):
    process = stage("controls:\n  tap: note 40 ch 10\n", "--metronome", "on")
    beat = 60.0 / tapped
    first = time.monotonic() + 0.3
    for i in range(4):
        _at(first + i * beat)
        keyboard.send(mido.Message("note_on", note=40, velocity=100, channel=PAD_CHANNEL))
        keyboard.send(mido.Message("note_off", note=40, channel=PAD_CHANNEL))
    assert wait_for(lambda: len(answer_notes(synth, channel=PAD_CHANNEL, ended=False)) >= 12,
                    12), process.stderr
    stop(process)
    clicks = [on for on, _, _ in answer_notes(synth, channel=PAD_CHANNEL)][:12]
    interval, click_zero = theil_sen(clicks)
    measured = 60.0 / interval
    assert abs(measured / tapped - 1) <= 0.01, (measured, process.stderr)
    assert abs(click_zero - (first + 4 * beat)) <= TOLERANCE  # the taps' beat goes on
    assert 40 not in {m.note for m in synth.messages() if m.type == "note_on"}
    print(f"tapped {tapped} BPM: clicks at {measured:.2f} BPM "
          f"({100 * (measured / tapped - 1):+.2f} %)")


def test_replay_plays_the_same_notes_again_from_the_next_beat(stage, keyboard, synth):
    process = stage("controls:\n  replay: cc 80\n", "--answer-bars", "2")
    first = answer_after(keyboard, synth, process, 2)
    pressed = time.monotonic()
    keyboard.send(mido.Message("control_change", control=80, value=127))
    assert quiet(synth, 1.0, timeout=8, since=pressed), process.stderr
    again = answer_notes(synth, since=pressed)
    stop(process)
    assert same_notes(again, first), (relative(first), relative(again), process.lines[-2:])
    beats = (again[0][0] - first[0][0]) / BEAT  # on the beat of the answer it repeats
    assert abs(beats - round(beats)) * BEAT <= TOLERANCE
    assert again[0][0] - pressed <= BEAT + 0.02


def test_reset_starts_afresh_and_a_seeded_session_answers_as_at_its_start(stage, keyboard,
                                                                           synth):
    process = stage("controls:\n  reset: note 36 ch 10\n", "--answer-bars", "2")
    first = answer_after(keyboard, synth, process, 2)
    second = answer_after(keyboard, synth, process, 2)
    press(keyboard, 36)
    time.sleep(0.5)
    third = answer_after(keyboard, synth, process, 2)
    stop(process)
    assert not same_notes(second, first)  # the session went on
    assert same_notes(third, first), (relative(first), relative(third), process.lines[-2:])
    assert "reset (note 36)" in process.stderr


def _port_connected_to(env, name: str) -> str:
    """The JACK port connected to ``name`` (jack_lsp -c lists each port, then its
    connections indented)."""
    listing = subprocess.run(["jack_lsp", "-c"], env=env, capture_output=True, text=True,
                             check=True).stdout.splitlines()
    port = None
    for line in listing:
        if not line.startswith(" "):
            port = line
        elif line.strip() == name and port != name:
            return port
    raise AssertionError(f"nothing is connected to {name}: {listing}")


@pytest.mark.parametrize("window", ["30", "0"])
def test_the_echo_of_the_answer_through_a_midi_loop_is_not_the_player(
        stage, keyboard, synth, jack_server, window):
    """jam's output is also connected to its own input, as a synth's MIDI thru looped
    back would be: every note jam sends comes back a JACK period or two later."""
    process = stage("", "--answer-bars", "2", "--echo-window", window)
    env = jack_server.env()
    jam_out = _port_connected_to(env, synth.full_name)
    jam_in = _port_connected_to(env, keyboard.full_name)
    subprocess.run(["jack_connect", jam_out, jam_in], env=env, check=True,
                   capture_output=True)
    start = play(keyboard)
    _at(start + 8 * BEAT + 5.0)  # the call, its silence and the 2-bar answer (4 s)
    stderr = stop(process)
    summary = re.search(r"(\d+) answers, (\d+) barge-ins, \d+ answers ended early "
                        r"\(generation behind\), (\d+) echoes ignored", stderr)
    assert summary, stderr
    answers, barge_ins, echoes = map(int, summary.groups())
    if window == "0":  # no suppression: the first echo stops the answer (the test can fail)
        assert barge_ins >= 1, stderr
        return
    sent = [m for m in synth.messages() if m.type == "note_on" and m.velocity > 0]
    assert (answers, barge_ins) == (1, 0), stderr
    assert echoes == len(sent) >= 4, stderr
    notes = answer_notes(synth)
    assert notes[-1][1] - notes[0][0] >= 8 * BEAT - TOLERANCE  # it played to its end


def test_bound_notes_and_ccs_never_reach_the_model_or_the_synth(stage, keyboard, synth):
    process = stage("controls:\n  mode: note 36 ch 10\n  tap: note 40 ch 10\n"
                    "  temperature: cc 74\n")
    for _ in range(3):  # bound pads and a knob in call mode: no call, nothing sent
        press(keyboard, 40)
        keyboard.send(mido.Message("control_change", control=74, value=10))
        time.sleep(0.3)
    time.sleep(1.5)  # a call would have ended after a beat of silence, and been answered
    assert synth.messages() == [], synth.messages()
    press(keyboard, 36)  # to thru: the player's notes go through, the bound ones do not
    time.sleep(0.2)
    for message in (mido.Message("note_on", note=64, velocity=80),
                    mido.Message("control_change", control=74, value=99),
                    mido.Message("control_change", control=1, value=50),
                    mido.Message("note_off", note=64)):
        keyboard.send(message)
    press(keyboard, 40)
    press(keyboard, 36)  # to mute: nothing at all
    time.sleep(0.2)
    keyboard.send(mido.Message("note_on", note=65, velocity=80))
    keyboard.send(mido.Message("note_off", note=65))
    time.sleep(0.5)
    stderr = stop(process)
    got = [(m.type, getattr(m, "note", getattr(m, "control", None)))
           for m in synth.messages() if m.type in ("note_on", "note_off", "control_change")
           and not (m.type == "control_change" and m.control in (64, 120, 123))]
    assert got == [("note_on", 64), ("control_change", 1), ("note_off", 64)], got
    assert "call mode: 0 calls" in stderr
    assert "jam: mode thru (note 36)" in stderr and "jam: mode mute (note 36)" in stderr


def test_state_cc_and_output_latency(stage, keyboard, synth, jack_server):
    """The state CC goes 0 (idle), 32 (a call), 127 (the answer), 0; with 40 ms of output
    latency the answer's first note arrives 40 ms before its beat (the call's grid as
    the keyboard played it)."""
    process = stage("state_cc: 20\n", "--output-latency", "40", "--answer-bars", "1")
    start = play(keyboard)
    assert quiet(synth, 1.0, timeout=8, since=start), process.stderr
    stop(process)
    states = [(t, m.value) for t, m in synth.received
              if m.type == "control_change" and m.control == 20]
    assert [v for _, v in states] == [0, 32, 127, 0], states
    notes = answer_notes(synth)
    assert states[2][0] <= notes[0][0] and states[3][0] >= notes[-1][1] - TOLERANCE
    beats = (notes[0][0] + 0.040 - start) / BEAT
    assert beats > 8 and abs(beats - round(beats)) * BEAT <= TOLERANCE + 0.003, beats


REFUSED = "JACK server not running"  # a busy JACK server refused the new client


def start_learn(args: list[str], env: dict[str, str]) -> JamProcess:
    """``jam learn`` listening (its prompt logged), or exited; started again (3 tries)
    when the JACK server, busy with the clients of the test before, refused it."""
    for _ in range(3):
        learn = JamProcess(args, env)
        assert wait_for(lambda: any(line.startswith("jam: learning") for line in learn.lines)
                        or learn.process.poll() is not None, 15), learn.stderr
        if learn.process.poll() is None or REFUSED not in learn.stderr:
            return learn
        learn.wait()
        time.sleep(0.5)
    return learn


def test_jam_learn_writes_the_control_moved_into_the_config_file(keyboard, jam_env,
                                                                  tmp_path):
    path = tmp_path / "stage.yaml"
    path.write_text("bpm: 96\ncontrols:\n  reset: note 36 ch 10\n")
    learn = start_learn(["learn", "temperature", "--config", str(path), "--api", "jack",
                         "--in", keyboard.full_name, "--timeout", "20"], jam_env)
    try:
        keyboard.send(mido.Message("note_on", note=60, velocity=90))  # a key: not a knob
        while learn.process.poll() is None:  # the knob turns until jam has it
            keyboard.send(mido.Message("control_change", control=74, value=64, channel=1))
            time.sleep(0.1)
        assert learn.wait() == 0, learn.stderr
        out = learn.process.stdout.read()
    finally:
        learn.kill()
    assert out == f"temperature: cc 74 ch 2, written to {path}\n"
    assert path.read_text() == ("bpm: 96\ncontrols:\n  reset: note 36 ch 10\n"
                                "  temperature: cc 74 ch 2\n")


def test_jam_learn_gives_up_after_its_timeout_on_one_line(keyboard, jam_env, tmp_path):
    path = tmp_path / "stage.yaml"
    began = time.monotonic()
    learn = start_learn(["learn", "reroll", "--config", str(path), "--api", "jack",
                         "--in", keyboard.full_name, "--timeout", "1"], jam_env)
    try:
        assert learn.wait(timeout=15) == 2
        took = time.monotonic() - began
    finally:
        learn.kill()
    errors = [line for line in learn.lines if not line.startswith("jam: learning")]
    assert len(errors) == 1 and "nothing that can control reroll" in errors[0], learn.stderr
    assert 1.0 <= took < 10 and not path.exists()


def test_sighup_reloads_the_config_file_through_the_same_path_as_the_controls(
        stage, keyboard, synth, tmp_path):
    process = stage("controls:\n  temperature: cc 74\npresets:\n  - {answer_bars: 1}\n",
                    "--debug")
    keyboard.send(mido.Message("control_change", control=74, value=127))  # 2.0
    (tmp_path / "jam.yaml").write_text(
        "controls:\n  temperature: cc 74\npresets:\n  - {answer_bars: 2}\ntop_p: 0.5\n")
    process.process.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "jam: top_p 0.5 (reload)" in process.lines, 5), process.stderr
    keyboard.send(mido.Message("program_change", program=0))
    notes = answer_after(keyboard, synth, process, 2)
    stop(process)
    lines = after_start(process)
    sampling = [line for line in lines if "sampling with" in line]
    assert len(sampling) == 1 and "temperature 2, top_p 0.5; 2 bars" in sampling[0], lines
    assert "jam: presets (1 entry) (reload)" in lines
    assert round((notes[-1][1] - notes[0][0]) / (4 * BEAT), 2) == 2.0  # the reloaded preset
