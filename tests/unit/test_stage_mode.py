"""The call mode on stage, on fake time: controls from the instrument, presets, replay,
reroll, reset, echoes, the state CC, the metronome, output latency, the thru and mute
modes, reloads. The mode is built from a config as ``jam`` builds it (rule-based answers,
seeded); the scheduler's logic (no thread) sends to a recording port at the deadlines."""

from __future__ import annotations

import logging
import re
import time

import mido
import pytest

from jam.config import build_config
from jam.engine.live import CLICKS, CallMode
from jam.engine.scheduler import Scheduler
from jam.generators.lstm import LstmGenerator
from jam.generators.rules import RulesGenerator
from recording import FakeClock, RecordingOutput

BEAT = 0.5  # 120 BPM
PHRASE = [60, 62, 64, 65, 67, 65, 64, 62]  # one note a beat: two bars


class Rig:
    """A call mode from ``config.yaml`` text and flags, a recording port, fake time."""

    def __init__(self, tmp_path, text: str = "", **flags) -> None:
        path = tmp_path / "config.yaml"
        path.write_text(text)
        self.config = build_config({"model": "rules", "seed": 1, **flags}, path)
        self.clock = FakeClock(1000.0)
        self.port = RecordingOutput(self.clock)
        self.scheduler = Scheduler(self.port, clock=self.clock)
        self.mode = CallMode.from_config(self.config)
        self.mode.start(self.scheduler)
        self.loop_back = 0.0  # > 0: every note sent comes back to the input this much later
        self._looped = 0

    @property
    def now(self) -> float:
        return self.clock.now

    def run(self, until: float) -> None:
        """The run loop's work up to ``until``: poll when asked (at least every 50 ms),
        send what is due, and loop sent notes back if asked to."""
        clock, mode = self.clock, self.mode
        while True:
            delay = mode.poll(clock.now)
            next_send = self.scheduler.run_due(clock.now)
            if self.loop_back:
                self._echo()
            if clock.now >= until:
                return
            steps = [until, clock.now + 0.05]
            if delay is not None:
                steps.append(clock.now + max(delay, 1e-4))
            if next_send is not None:
                steps.append(next_send)
            if self.loop_back and self._looped < len(self.port.sent):
                steps.append(self.port.sent[self._looped][0] + self.loop_back)
            clock.now = min(steps)

    def _echo(self) -> None:
        sent = self.port.sent
        while self._looped < len(sent) and sent[self._looped][0] + self.loop_back <= \
                self.clock.now:
            t, message = sent[self._looped]
            if message.type in ("note_on", "note_off"):
                self.mode.on_message(message, t + self.loop_back)
            self._looped += 1

    def send(self, message: mido.Message, at: float | None = None) -> None:
        """``message`` arrives at ``at`` (default now); time runs up to it first."""
        if at is not None:
            self.run(at)
        self.mode.on_message(message, self.clock.now)
        self.run(self.clock.now)

    def play(self, pitches=PHRASE, start: float | None = None, channel: int = 0) -> float:
        """A phrase of one note a beat from ``start`` (default: now + 1 beat); returns the
        time its last note ends."""
        start = self.now + BEAT if start is None else start
        for i, pitch in enumerate(pitches):
            self.send(mido.Message("note_on", note=pitch, velocity=90, channel=channel),
                      start + i * BEAT)
            self.send(mido.Message("note_off", note=pitch, channel=channel),
                      start + (i + 0.8) * BEAT)
        return self.now

    def answered(self, timeout: float = 30.0) -> None:
        """Run until the answer playing (or about to) is over."""
        end = self.now + timeout
        self.run(self.now + 0.1)
        while self.mode.engine.answer is not None or self.mode.engine.listener.in_call:
            assert self.now < end, "no end of the answer"
            self.run(self.now + 0.1)
        self.run(self.now + 0.01)  # its last note-off, due at its end

    def notes(self, since: float = 0.0, channel: int | None = None) -> list[tuple]:
        """(on, off, pitch) of the notes sent since ``since`` (clicks left out unless
        ``channel`` asks for theirs)."""
        sounding, notes = {}, []
        for t, m in self.port.sent:
            if t < since or m.type not in ("note_on", "note_off"):
                continue
            if (channel is None and m.channel == 9) or (channel is not None
                                                         and m.channel != channel):
                continue
            if m.type == "note_on" and m.velocity > 0:
                sounding[m.note] = t
            elif m.note in sounding:
                notes.append((sounding.pop(m.note), t, m.note))
        assert not sounding, f"notes left sounding: {sounding}"
        return sorted(notes)


def relative(notes):
    first = notes[0][0]
    return [(round(on - first, 6), round(off - first, 6), pitch) for on, off, pitch in notes]


def cc(control, value, channel=0):
    return mido.Message("control_change", control=control, value=value, channel=channel)


def pad(pitch, channel=0):
    return mido.Message("note_on", note=pitch, velocity=100, channel=channel)


def program(number, channel=0):
    return mido.Message("program_change", program=number, channel=channel)


def sampling_lines(caplog):
    return [r.getMessage() for r in caplog.records if "sampling with" in r.getMessage()]


def test_a_knob_bound_to_temperature_sets_the_next_answers_sampling_once_logged(
        tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="jam")
    rig = Rig(tmp_path, "controls:\n  temperature: cc 74\n  top_p: cc 75 ch 2\n")
    caplog.clear()  # the warm-up's answer is not one of these
    rig.play()
    rig.answered()
    rig.send(cc(74, 0))
    rig.send(cc(74, 0))  # the same value again: no change, no line
    rig.send(cc(75, 127, channel=1))
    rig.play()
    rig.answered()
    lines = sampling_lines(caplog)
    assert "temperature 1, top_p 0.95" in lines[0]
    assert "temperature 0.1, top_p 1" in lines[1]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert infos.count("temperature 0.1 (cc 74)") == 1 and "top_p 1 (cc 75)" in infos
    assert not [m for _, m in rig.port.sent if m.type == "control_change"]


def test_bound_notes_and_ccs_reach_neither_the_model_nor_the_synth(tmp_path):
    rig = Rig(tmp_path, "controls:\n  tap: note 40 ch 10\n  temperature: cc 74\n"
                        "  reroll: cc 64\n")
    for i in range(3):
        rig.send(pad(40, channel=9), rig.now + BEAT)
        rig.send(mido.Message("note_off", note=40, channel=9), rig.now + 0.1)
        rig.send(cc(74, 20 * i))
        rig.send(cc(64, 127 * (i % 2)))
    rig.run(rig.now + 4.0)
    assert rig.mode.engine.stats.calls == 0  # the pad's notes were no call
    assert rig.port.sent == []
    rig.send(pad(41, channel=9))  # an unbound note is the player's
    rig.send(mido.Message("note_off", note=41, channel=9), rig.now + 0.2)
    rig.run(rig.now + 4.0)
    assert rig.mode.engine.stats.calls == 1


def test_end_call_hands_over_at_once_and_end_call_cc_is_its_alias(tmp_path):
    rig = Rig(tmp_path, "controls:\n  end_call: note 36\n", end_call_cc=20,
              listen_silence=4)
    for control in (pad(36), cc(20, 127)):
        rig.send(pad(60), rig.now + BEAT)
        rig.send(mido.Message("note_off", note=60), rig.now + 0.2)
        pressed = rig.now + 0.1
        rig.send(control, pressed)
        rig.run(rig.now + 0.05)
        assert rig.mode.engine.answer is not None  # long before 4 beats of silence
        first = rig.mode.engine.answer.start
        assert rig.mode.engine.clock.seconds(first) - pressed <= BEAT + 0.011
        rig.answered()
    assert rig.mode.engine.stats.answers == 2


def test_program_changes_switch_presets_between_phrases(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="jam")
    rig = Rig(tmp_path, "presets:\n  - {answer_bars: 1}\n  - {answer_bars: 2, "
                        "temperature: 0.5}\n")
    lengths = []
    for number in (1, 0, 1):
        rig.send(program(number))
        start = rig.now
        rig.play()
        if number == 0:  # during this answer: the next preset is for the next one
            rig.run(rig.now + 2 * BEAT)
            assert rig.mode.engine.answer is not None
            rig.send(program(1))
        rig.answered()
        notes = rig.notes(since=start)
        lengths.append(round((notes[-1][1] - notes[0][0]) / (4 * BEAT), 2))
    assert lengths == [2, 1, 2]  # the rule-based answer's last note lasts to its end
    rig.send(program(7))
    rig.send(program(7))
    messages = [r.getMessage() for r in caplog.records]
    assert sum("no preset 7" in m for m in messages) == 1
    assert "answer_bars 2 (preset 1)" in messages and "temperature 0.5 (preset 1)" in messages
    assert rig.mode.status()["preset"] == 1


def test_next_and_previous_preset_step_through_the_list(tmp_path):
    rig = Rig(tmp_path, "controls:\n  next_preset: note 50\n  previous_preset: note 48\n"
                        "presets:\n  - {answer_bars: 1}\n  - {answer_bars: 2}\n"
                        "  - {answer_bars: 3}\n")
    seen = []
    for note in (50, 50, 50, 50, 48, 48):
        rig.send(pad(note))
        seen.append((rig.mode.preset, rig.mode.engine.settings.answer_bars))
    assert seen == [(0, 1), (1, 2), (2, 3), (0, 1), (2, 3), (1, 2)]


def test_replay_plays_the_last_answer_again_from_the_next_beat(tmp_path):
    rig = Rig(tmp_path, "controls:\n  replay: note 36\n")
    rig.play()
    rig.answered()
    first = rig.notes()
    pressed = rig.now + 0.73
    rig.send(pad(36), pressed)
    rig.answered()
    again = rig.notes(since=pressed)
    assert relative(again) == relative(first)
    origin = rig.mode.engine.clock.origin
    beats = (again[0][0] - origin) / BEAT
    assert abs(beats - round(beats)) < 1e-6 and 0 < again[0][0] - pressed <= BEAT + 0.011
    assert rig.mode.engine.stats.answers == 2
    rig.play()  # the model goes on after the replay
    rig.answered()
    assert rig.mode.engine.stats.answers == 3


def test_reroll_stops_the_answer_and_answers_the_same_call_anew(tmp_path):
    rig = Rig(tmp_path, "controls:\n  reroll: cc 80\n", answer_bars=2)
    rig.play()
    rig.run(rig.now + 2 * BEAT)
    engine = rig.mode.engine
    assert engine.answer is not None
    pressed = rig.now
    rig.send(cc(80, 127), pressed)
    rig.answered()
    before = rig.notes()
    cut = [n for n in before if n[0] < pressed]
    assert all(off <= pressed + 1e-6 for _, off, _ in cut)  # the first one stopped
    rerolled = [n for n in before if n[0] > pressed]
    assert rerolled and relative(rerolled) != relative(cut)
    assert rerolled[-1][1] - rerolled[0][0] == pytest.approx(8 * BEAT)  # 2 bars again
    assert engine.stats.answers == 2 and engine.stats.barge_ins == 0


def test_reset_forgets_the_session_a_seeded_one_answers_as_at_the_start(tmp_path):
    rig = Rig(tmp_path, "controls:\n  reset: note 36\n")
    start = rig.now
    rig.play()
    rig.answered()
    first = relative(rig.notes(since=start))
    start = rig.now
    rig.play(start=rig.now + 1.37)  # off the first phrase's grid
    rig.answered()
    without = relative(rig.notes(since=start))
    rig.send(pad(36))
    assert rig.mode.engine.clock.anchored is False  # the next first note sets the beat
    start = rig.now
    rig.play(start=rig.now + 1.37)
    rig.answered()
    after = relative(rig.notes(since=start))
    assert after == first  # the same call answered as the first one of the session
    assert without != first  # without the reset the session went on


@pytest.mark.parametrize("window", [30, 0])
def test_the_echo_of_the_answer_is_not_the_player(tmp_path, window):
    rig = Rig(tmp_path, echo_window=window, answer_bars=2)
    rig.loop_back = 0.004  # a synth's MIDI thru back into jam's input, 4 ms later
    rig.play()
    rig.run(rig.now + 8 * BEAT)
    engine = rig.mode.engine
    if window:
        sent = [m for _, m in rig.port.sent if m.type == "note_on" and m.velocity > 0]
        assert engine.stats.barge_ins == 0 and engine.stats.calls == 1
        assert rig.mode.echo.echoes == len(sent) > 3
        assert rig.mode.status()["echoes"] == len(sent)
    else:  # echo suppression off: the first note of the answer stops it
        assert engine.stats.barge_ins >= 1


def test_the_state_cc_follows_idle_listening_answering(tmp_path):
    rig = Rig(tmp_path, state_cc=20, channel=3)
    rig.run(rig.now + 0.1)
    rig.play()
    rig.answered()
    rig.run(rig.now + 0.5)
    states = [(t, m.value) for t, m in rig.port.sent
              if m.type == "control_change" and m.control == 20]
    assert [v for _, v in states] == [0, 32, 127, 0]
    assert {m.channel for _, m in rig.port.sent if m.type == "control_change"} == {2}
    notes = rig.notes(channel=2)
    assert states[2][0] <= notes[0][0] and states[3][0] >= notes[-1][1] - 1e-6


def test_metronome_clicks_the_beats_accents_downbeats_and_stops_on_mode_change(tmp_path):
    rig = Rig(tmp_path, "controls:\n  mode: note 36 ch 16\n  panic: note 37 ch 16\n",
              metronome=True, metronome_channel=10, answer_bars=1)
    rig.run(rig.now + 2.0)
    assert rig.port.sent == []  # no beat yet: the clock is not anchored
    rig.play()
    rig.answered()
    panic = rig.now + 0.01
    rig.send(pad(37, channel=15), panic)  # a panic: the clicks go on after it
    rig.run(rig.now + 2.0)
    rig.run(rig.now + 0.1 - (rig.now - rig.mode.engine.clock.origin) % BEAT)  # between
    clicks = rig.notes(channel=9)
    origin = rig.mode.engine.clock.origin
    assert len(clicks) >= 12
    for on, off, note in clicks:
        beats = (on - origin) / BEAT
        assert abs(beats - round(beats)) < 1e-6
        assert note == (CLICKS[0] if round(beats) % 4 == 0 else CLICKS[1])
        assert 0 < off - on <= 0.03 + 1e-6
    assert sum(off - on == pytest.approx(0.03) for on, off, _ in clicks) >= len(clicks) - 1
    gaps = {round(b[0] - a[0], 6) for a, b in zip(clicks, clicks[1:])}
    assert gaps == {BEAT}  # none missing, the panic's neither
    rig.send(pad(36, channel=15))  # to thru: no more clicks
    stopped = rig.now
    rig.run(rig.now + 2.0)
    assert not [t for t, m in rig.port.sent if t > stopped + 1e-6 and m.channel == 9]


def test_output_latency_sends_answers_and_clicks_that_much_earlier(tmp_path):
    times = {}
    for latency in (0, 40):
        rig = Rig(tmp_path, output_latency=latency, metronome=True)
        rig.play(start=1001.0)
        rig.answered()
        origin = rig.mode.engine.clock.origin
        times[latency] = [(round(t - origin, 6), m.note) for t, m in rig.port.sent
                          if m.type == "note_on"]
    assert len(times[0]) > 10
    assert times[40] == [(round(t - 0.04, 6), n) for t, n in times[0]]


def test_mode_cycles_call_thru_mute_thru_forwards_mute_sends_nothing(tmp_path):
    rig = Rig(tmp_path, "controls:\n  mode: note 36 ch 16\n  temperature: cc 74\n")
    rig.send(pad(36, channel=15))
    assert rig.mode.status()["mode"] == "thru"
    rig.send(pad(60))
    rig.send(cc(64, 127))
    rig.send(cc(74, 3))  # a control: not forwarded
    rig.send(pad(62))
    forwarded = [m for _, m in rig.port.sent]
    assert [(m.type, getattr(m, "note", None)) for m in forwarded] == \
        [("note_on", 60), ("control_change", None), ("note_on", 62)]
    rig.send(pad(36, channel=15))  # to mute: the held notes end, the pedal goes up
    assert rig.mode.status()["mode"] == "mute"
    ended = [m for _, m in rig.port.sent[3:]]
    assert sorted(m.note for m in ended if m.type == "note_off") == [60, 62]
    assert [m.value for m in ended if m.type == "control_change"] == [0]
    count = len(rig.port.sent)
    rig.play(start=rig.now + 0.1)
    rig.run(rig.now + 4.0)
    assert len(rig.port.sent) == count  # mute: nothing at all
    rig.send(pad(36, channel=15))
    assert rig.mode.status()["mode"] == "call"
    rig.play()
    rig.answered()
    assert rig.mode.engine.stats.answers == 1  # only the call in call mode


def test_key_lock_toggles_between_auto_and_the_key_estimated_last(tmp_path):
    rig = Rig(tmp_path, "controls:\n  key_lock: note 36\n")
    rig.send(pad(36))  # nothing estimated yet
    assert rig.mode.options["key"] == "auto"
    rig.play()
    rig.answered()
    estimated = rig.mode.engine.last_key.name
    rig.send(pad(36))
    assert rig.mode.engine.settings.key == estimated
    rig.play(pitches=[61, 63, 66, 68, 70, 68, 66, 63])  # F# major: still the locked key
    rig.answered()
    assert rig.mode.engine.last_key.name == estimated
    rig.send(pad(36))
    assert rig.mode.engine.settings.key == "auto"


def test_tapped_beats_set_the_tempo_and_the_beat(tmp_path):
    rig = Rig(tmp_path, "controls:\n  tap: note 40 ch 10\n", metronome=True)
    first = rig.now + 0.3
    for i in range(4):
        rig.send(pad(40, channel=9), first + i * 0.645)  # 93.02 BPM
    rig.run(rig.now + 3.0)
    clock = rig.mode.engine.clock
    assert clock.bpm == pytest.approx(93.02, abs=0.01)
    assert clock.origin == pytest.approx(first)
    clicks = rig.notes(channel=9)
    assert len(clicks) >= 4 and clicks[0][2] == CLICKS[0]  # the taps' next downbeat
    for on, _, _ in clicks:
        beats = (on - first) / (60 / clock.bpm)
        assert abs(beats - round(beats)) < 1e-6


def test_a_preset_model_loads_in_the_background_and_swaps_in_between_phrases(
        tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="jam")
    rig = Rig(tmp_path, f"presets:\n  - {{model: null}}\n  - {{model: {tmp_path}/none.onnx}}\n",
              answer_bars=2)
    rig.play()
    rig.run(rig.now + BEAT)
    assert rig.mode.engine.answer is not None
    rig.send(program(0))  # the shipped LSTM, while the rule-based answer plays
    deadline = time.monotonic() + 60
    while not rig.mode._swap and time.monotonic() < deadline:  # the loader thread's work
        time.sleep(0.05)
        rig.run(rig.now + 0.01)
    assert isinstance(rig.mode.engine.generator, RulesGenerator)  # not under the answer
    rig.answered()
    rig.run(rig.now + 0.1)
    swapped = rig.mode.engine.generator  # the LSTM, blended with the session memory
    assert isinstance(getattr(swapped, "base", swapped), LstmGenerator)
    assert rig.mode.status()["model"] == "default"
    rig.send(program(1))  # a missing file: one line, the LSTM stays
    deadline = time.monotonic() + 10
    while not [r for r in caplog.records if "not loaded" in r.getMessage()] and \
            time.monotonic() < deadline:
        time.sleep(0.05)
        rig.run(rig.now + 0.01)
    failed = [r.getMessage() for r in caplog.records if "not loaded" in r.getMessage()]
    assert len(failed) == 1 and "\n" not in failed[0] and "keeping default" in failed[0]
    rig.play()
    rig.answered()
    swapped = rig.mode.engine.generator  # the LSTM, blended with the session memory
    assert isinstance(getattr(swapped, "base", swapped), LstmGenerator)
    assert rig.mode.engine.stats.answers == 2


def test_reload_applies_what_changed_and_names_what_needs_a_restart(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="jam")
    rig = Rig(tmp_path, "controls:\n  temperature: cc 74\n")
    rig.send(cc(74, 127))  # the knob: 2.0
    path = tmp_path / "config.yaml"
    path.write_text("answer_bars: 3\nstate_cc: 21\nout: Other synth\n"
                    "controls:\n  temperature: cc 74\n")
    rig.mode.reload(build_config({"model": "rules", "seed": 1}, path))
    assert rig.mode.engine.settings.answer_bars == 3
    assert rig.mode.engine.settings.sampler.temperature == 2.0  # unchanged in the file
    messages = [r.getMessage() for r in caplog.records]
    assert "answer_bars 3 (reload)" in messages and "state_cc 21 (reload)" in messages
    assert any(re.match(r"reload: out changed; .*restart", m) for m in messages)
    rig.run(rig.now + 0.1)
    assert [m.control for _, m in rig.port.sent] == [21]


def test_apply_checks_values_and_never_raises(tmp_path, caplog):
    rig = Rig(tmp_path)
    assert rig.mode.apply({"temperature": -1, "in": "x", "low": 90, "high": 80}, "test") == {}
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 3
    assert rig.mode.apply({"bpm": 90}, "test") == {"bpm": 90.0}
    rig.run(rig.now + 0.1)
    assert rig.mode.engine.clock.bpm == 90.0


def test_status_says_state_tempo_key_last_answer_echoes_preset(tmp_path):
    rig = Rig(tmp_path, answer_bars=1)
    assert rig.mode.status()["last_answer"] is None
    rig.play()
    rig.run(rig.now + 0.6)  # one beat of silence after the last note: answering
    assert rig.mode.status()["state"] == "answering"
    rig.answered()
    status = rig.mode.status()
    assert status["state"] == "idle" and status["bpm"] == 120.0
    assert status["key"].endswith("(auto)")
    assert status["last_answer"]["bars"] == 1
    assert status["last_answer"]["notes"] == len(rig.notes()) and status["echoes"] == 0


def test_tempo_and_meter_change_only_between_phrases(tmp_path):
    rig = Rig(tmp_path, answer_bars=2)
    rig.play()
    rig.run(rig.now + 0.6)
    engine = rig.mode.engine
    assert engine.answer is not None
    rig.mode.apply({"bpm": 90, "meter": "3/4", "tempo": "follow"}, "test")
    rig.run(rig.now + 1.0)
    assert (engine.clock.bpm, str(engine.settings.meter)) == (120.0, "4/4")  # under the answer
    rig.answered()
    assert (engine.clock.bpm, str(engine.settings.meter)) == (90.0, "3/4")
    assert type(engine.listener.tempo).__name__ == "FollowTempo"
    assert engine.listener.tempo.prior_bpm == 90.0


def test_a_broken_model_in_a_preset_keeps_the_current_one_with_one_line(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="jam")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    rig = Rig(tmp_path, f"presets:\n  - {{model: {broken}}}\n")
    rig.send(program(0))
    deadline = time.monotonic() + 10
    while not [r for r in caplog.records if "not loaded" in r.getMessage()] and \
            time.monotonic() < deadline:
        time.sleep(0.05)
        rig.run(rig.now + 0.01)
    failed = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(failed) == 1 and "not a readable ONNX model" in failed[0], failed
    assert "\n" not in failed[0] and "keeping rules" in failed[0]
    rig.play()
    rig.answered()
    assert isinstance(rig.mode.engine.generator, RulesGenerator)
    assert rig.mode.engine.stats.answers == 1 and rig.mode.status()["model"] == "rules"


def test_a_knob_bound_to_style_sets_the_blend_of_the_next_answer(tmp_path):
    rig = Rig(tmp_path, "controls:\n  style: cc 21\n", model=None)
    generator = rig.mode.engine.generator
    assert generator.style == "auto"
    for value, style in ((0, 0.0), (127, 1.0), (64, 0.504)):
        rig.send(mido.Message("control_change", control=21, value=value))
        rig.run(rig.now + 0.01)
        assert generator.style == style
