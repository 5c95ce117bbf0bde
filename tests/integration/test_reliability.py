"""jam attacked the way a stage does, over a real JACK server with jam as a subprocess:
signals in the middle of an answer (SIGINT, SIGTERM, SIGHUP, SIGKILL then ``jam panic``),
streams of random and malformed bytes, a flood of messages, and a soak. The test synth is
the checker: every note-on and note-off it receives is tracked per channel
(``stagerig.check_notes``), and no test ends with a note still sounding there.

Thru-mode SIGINT/SIGTERM with held keys is in test_thru.py, errors inside the run loop in
test_runner.py, pulled cables in test_pulled_cable.py, a fixed list of malformed input in
test_malformed_input.py; these are the call mode's answers under the same attacks.

The tests that count exactly (the streams, the flood, the soak) run on a private JACK
server in sync mode (:class:`SyncRig`). Their size is set for CI and can be raised:
``JAM_FUZZ_EXAMPLES`` (hypothesis streams, 25), ``JAM_FUZZ_RANDOM_EVENTS`` (1500),
``JAM_FUZZ_SEED``, ``JAM_FLOOD_SECONDS`` (2; ``tools/flood.py`` runs 10),
``JAM_SOAK_SECONDS`` (60; ``tools/soak.py --seconds 600`` is the 10-minute soak).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import mido
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flood import PHRASE as FLOOD_PHRASE
from flood import flood_then_call, stop_figures
from jackrig import JackServer, JamProcess, Synth, wait_for
from jackrig import keyboard as open_keyboard
from jam.midi.ports import decode_event
from soak import soak
from stagerig import all_notes_ended, check_notes, jack_clients, raw_output

CALL = [60, 62, 64, 65]  # quarter notes at 120 BPM
BEAT = 0.5


def _at(deadline: float) -> None:
    while (left := deadline - time.monotonic()) > 0.002:
        time.sleep(left - 0.002)
    while time.monotonic() < deadline:
        pass


def play(keyboard, pitches=CALL, start: float | None = None) -> None:
    """Quarter notes at 120 BPM from ``start`` (default: 0.1 s from now), keys held 90 %."""
    start = time.monotonic() + 0.1 if start is None else start
    for i, pitch in enumerate(pitches):
        _at(start + i * BEAT)
        keyboard.send(mido.Message("note_on", note=pitch, velocity=90))
        _at(start + (i + 0.9) * BEAT)
        keyboard.send(mido.Message("note_off", note=pitch, velocity=0))


def is_note_on(message) -> bool:
    return message.type == "note_on" and message.velocity > 0


def sounding_note(synth, timeout: float = 10.0) -> bool:
    """Wait until a note is sounding at ``synth`` (a note-on without its note-off yet)."""
    return wait_for(lambda: bool(check_notes(synth.received).stuck), timeout, interval=0.001)


def final_panic(synth, count: int = 1, timeout: float = 5.0) -> bool:
    """Wait for ``count`` all-sound-off messages (CC120: the last of a shutdown)."""
    return synth.wait_count(count, timeout=timeout,
                            where=lambda m: m.type == "control_change" and m.control == 120)


def no_traceback(jam) -> None:
    assert not [line for line in jam.lines if "Traceback" in line], jam.stderr
    assert not [line for line in jam.lines if "internal error" in line], jam.stderr


@pytest.fixture
def answering_jam(start_jam):
    """jam in call mode with the rule-based responder: two-bar answers (4 s at 120 BPM)."""
    return lambda *extra: start_jam("--model", "rules", "--seed", "1", "--bpm", "120",
                                    "--answer-bars", "2", *extra)


# --- signals in the middle of an answer ----------------------------------------------------


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_signal_mid_answer_ends_every_note_and_exits_0(answering_jam, keyboard, synth,
                                                              stop):
    jam = answering_jam()
    play(keyboard)
    assert sounding_note(synth), jam.stderr  # the answer plays: a note is sounding now
    jam.process.send_signal(stop)
    signalled = time.monotonic()
    assert jam.wait() == 0, jam.stderr
    assert final_panic(synth), synth.received
    at_signal = check_notes(synth.received, until=signalled)
    assert at_signal.stuck, "no note was sounding when the signal was sent"
    report = check_notes(synth.received)
    assert report.clean, report.summary()  # every note got its own note-off
    late = [t - signalled for t, m in synth.received if is_note_on(m) and t > signalled + 0.05]
    assert late == [], late  # nothing new started after the stop
    assert [line for line in jam.lines if f"stopping ({stop.name})" in line], jam.stderr
    no_traceback(jam)


def test_sighup_mid_answer_reloads_and_jam_answers_on_then_stops_clean(
        keyboard, synth, jam_env, tmp_path):
    config = tmp_path / "jam.yaml"
    ports = f"api: jack\nin: {keyboard.full_name}\nout: {synth.full_name}\nmodel: rules\n"
    config.write_text(ports + "seed: 1\nanswer_bars: 2\n")
    jam = JamProcess(["--config", str(config)], jam_env)
    try:
        jam.wait_ready()
        play(keyboard)
        assert sounding_note(synth), jam.stderr
        config.write_text(ports + "seed: 1\nanswer_bars: 1\n")
        jam.process.send_signal(signal.SIGHUP)
        reloaded = time.monotonic()
        assert wait_for(lambda: any("reload (SIGHUP): applied" in e for e in jam.lines), 5), \
            jam.stderr
        assert jam.process.poll() is None, jam.stderr  # SIGHUP does not stop jam
        assert all_notes_ended(synth), check_notes(synth.received).summary()
        first = check_notes(synth.received)
        assert first.clean and first.note_ons >= 1, first.summary()
        heard = len(synth.received)
        play(keyboard, [67, 65, 64, 62])  # the next call: answered with the new length
        assert synth.wait_count(heard + 1, timeout=10, where=lambda m: True), jam.stderr
        assert all_notes_ended(synth), check_notes(synth.received).summary()
        second = [(t, m) for t, m in synth.received[heard:]]
        ons = [t for t, m in second if is_note_on(m)]
        assert ons, jam.stderr
        ends = [t for t, m in second if m.type in ("note_on", "note_off")]
        assert max(ends) - ons[0] <= 4 * BEAT + 0.1, "the answer after the reload is not 1 bar"
        jam.process.send_signal(signal.SIGTERM)
        assert jam.wait() == 0, jam.stderr
    finally:
        jam.kill()
    assert final_panic(synth), synth.received
    report = check_notes(synth.received)
    assert report.clean, report.summary()
    assert any(t > reloaded for t, m in synth.received if is_note_on(m))
    reloads = [line for line in jam.lines if "reload (SIGHUP)" in line]
    assert len(reloads) == 1, jam.stderr
    assert reloads[0].endswith(f"applied from {config}: answer_bars 2 -> 1"), jam.stderr
    no_traceback(jam)


def jam_gone(env) -> bool:
    """Whether the JACK server answers and no longer lists jam's ports (after a SIGKILL
    the server takes a moment to remove the dead client)."""
    ports = jack_clients(env)
    return ports is not None and not any(p.startswith(("jam:", "jam ports:")) for p in ports)


def test_sigkill_mid_answer_then_jam_panic_leaves_nothing_sounding(answering_jam, keyboard,
                                                                   synth, jam_env):
    jam = answering_jam()
    play(keyboard)
    assert sounding_note(synth), jam.stderr
    jam.process.kill()  # SIGKILL: no cleanup at all
    killed = time.monotonic()
    jam.wait()
    assert wait_for(lambda: jam_gone(jam_env), 15, interval=0.25)
    left = check_notes(synth.received)
    assert left.stuck, "no note was sounding when jam was killed"
    assert all(t <= killed + 0.05 for t, _ in synth.received)  # nothing came from the dead
    panic = subprocess.run([sys.executable, "-m", "jam", "panic", "--api", "jack", "--out",
                            synth.full_name], env=jam_env, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=60)
    assert panic.returncode == 0, panic.stderr
    assert panic.stdout == f"sent all-notes-off on 16 channels to '{synth.full_name}'\n"
    assert final_panic(synth, 16), synth.received
    report = check_notes(synth.received)
    assert report.stuck == [] and report.pedal_down == [], report.summary()
    assert report.lost_note_offs == left.stuck  # the panic ended exactly those


# --- random and malformed bytes into jam's input --------------------------------------------

DATA = st.integers(0, 0x7F)
CHANNEL_STATUS = st.integers(0x80, 0xEF)


@st.composite
def channel_message(draw) -> list[int]:
    status = draw(CHANNEL_STATUS)
    size = 2 if 0xC0 <= status < 0xE0 else 3
    return [status, *draw(st.lists(DATA, min_size=size - 1, max_size=size - 1))]


@st.composite
def running_status(draw) -> list[int]:
    """Running status can only reach rtmidi inside a sysex-started event (python-rtmidi sends
    more than 3 bytes only after F0), as when rtmidi glues events to an unterminated sysex."""
    status = draw(st.integers(0x80, 0xBF))
    pairs = draw(st.lists(st.tuples(DATA, DATA), min_size=1, max_size=6))
    tail = [0xF7] if draw(st.booleans()) else []
    return [0xF0, *draw(st.lists(DATA, max_size=3)), status,
            *[byte for pair in pairs for byte in pair], *tail]


EVENT = st.one_of(
    channel_message(),
    st.tuples(CHANNEL_STATUS, DATA).map(list) | CHANNEL_STATUS.map(lambda s: [s]),  # truncated
    st.tuples(st.sampled_from([0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6]),
              st.lists(DATA, max_size=2)).map(lambda t: [t[0], *t[1]]),  # system common
    st.integers(0xF8, 0xFF).map(lambda b: [b]),  # real-time, the undefined F9 and FD too
    st.tuples(st.lists(st.integers(0, 0xFF), max_size=48), st.booleans())
      .map(lambda t: [0xF0, *t[0], *([0xF7] if t[1] else [])]),  # sysex, ended or not
    running_status(),
    st.tuples(CHANNEL_STATUS, st.integers(0x80, 0xFF), st.integers(0, 0xFF)).map(list),
    st.lists(DATA, min_size=1, max_size=3),  # stray data bytes
    st.just([0xF7]),  # an end of sysex with no start
    st.lists(st.integers(0, 0xFF), min_size=1, max_size=3),  # anything rtmidi sends
)


def random_events(rng: random.Random, count: int) -> list[list[int]]:
    """Random bytes as python-rtmidi can send them (1-3 bytes, or F0 and up to 40 more)."""
    events = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.6:
            events.append([rng.randrange(256) for _ in range(rng.randint(1, 3))])
        elif roll < 0.8:
            body = [rng.randrange(256) for _ in range(rng.randint(0, 40))]
            events.append([0xF0, *body, *([0xF7] if rng.random() < 0.5 else [])])
        else:
            status = rng.randrange(0x80, 0xF0)
            size = 2 if 0xC0 <= status < 0xE0 else 3
            events.append([status, *(rng.randrange(128) for _ in range(size - 1))])
    return events


def rtmidi_jack_input(events: list[list[int]]) -> list[list[int]]:
    """What rtmidi's JACK input (RtMidi 5, as in python-rtmidi 1.5) makes of ``events`` with
    jam's ignore flags (sysex and timing kept, active sensing ignored): after an event that
    starts with F0 and does not end with F7, the following events are appended to it until
    an event that starts with neither F0, F1, F8 nor FE ends with F7; an event starting with
    FE is not delivered (its bytes stay in a sysex being glued)."""
    delivered: list[list[int]] = []
    message: list[int] = []
    glue = False
    for event in events:
        if not glue:
            message = []
        message = message + event
        first = event[0]
        if first == 0xF0:
            glue = event[-1] != 0xF7
        elif first in (0xF1, 0xF8):
            pass
        elif first == 0xFE:
            continue
        elif glue:
            glue = event[-1] != 0xF7
        if not glue:
            delivered.append(message)
    return delivered


def expected_drops(events: list[list[int]]) -> list[str]:
    """The runs of bytes jam drops (as its debug log writes them) from ``events``."""
    return [junk.hex(" ") for message in rtmidi_jack_input(events)
            for junk in decode_event(message)[1]]


def dropped_logged(jam) -> list[str]:
    marker = "dropped malformed MIDI bytes "
    return [line.split(marker, 1)[1] for line in jam.lines if marker in line]


def send_events(port, events: list[list[int]], pause: float = 0.0005) -> None:
    for event in events:
        port.send_message(event)
        time.sleep(pause)


FUZZ_EXAMPLES = int(os.environ.get("JAM_FUZZ_EXAMPLES", "25"))
RANDOM_EVENTS = int(os.environ.get("JAM_FUZZ_RANDOM_EVENTS", "1500"))


class SyncRig:
    """A private JACK server in sync mode (-S) with a keyboard, a synth and jam's
    environment. An async server loses or repeats an event now and then when a client is
    starved of CPU (in 1 run of 5 at load 4, 4 of 4,000 events), which an exact count
    cannot tell from jam's faults; the sync server lost none in 17 runs. ``use(name)``
    points this process's JACK clients at the server (before any is opened)."""

    def __init__(self, tmp_path, use) -> None:
        self._opened: list = []
        self._started: list[JamProcess] = []
        self.server = JackServer(sync=True).start()
        try:
            use(self.server.name)
            self.env = {**self.server.env(), "XDG_CONFIG_HOME": str(tmp_path / "config-home")}
            self.keyboard = self._open(open_keyboard())
            self.synth = self._open(Synth())
        except BaseException:
            self.close()
            raise

    def _open(self, port):
        self._opened.append(port)
        return port

    def monitor(self) -> Synth:
        """A recorder connected to the keyboard: what JACK delivers from it."""
        recorder = self._open(Synth("monitor"))
        subprocess.run(["jack_connect", self.keyboard.full_name, recorder.full_name],
                       env=self.env, check=True, capture_output=True)
        return recorder

    def jam(self, *args: str) -> JamProcess:
        """jam (call mode) from the keyboard to the synth, ready."""
        process = JamProcess(["--api", "jack", "--in", self.keyboard.full_name, "--out",
                              self.synth.full_name, *args], self.env)
        self._started.append(process)
        process.wait_ready(60)
        return process

    def close(self) -> None:
        for process in self._started:
            process.kill()
        for port in reversed(self._opened):
            port.close()
        self.server.stop()


@pytest.fixture
def sync_rig(jack_server, tmp_path, monkeypatch):
    """A :class:`SyncRig` (``jack_server``: skipped or failed as the other MIDI tests when
    there is no jackd)."""
    rig = SyncRig(tmp_path, lambda name: monkeypatch.setenv("JACK_DEFAULT_SERVER", name))
    yield rig
    rig.close()


def test_random_and_malformed_streams_never_stop_jam_and_are_counted(sync_rig):
    jam = sync_rig.jam("--model", "rules", "--seed", "1", "--answer-bars", "1", "--debug")
    fuzz(jam, sync_rig.keyboard, sync_rig.synth)


def fuzz(jam, keyboard, synth) -> None:
    raw = raw_output("jam", [0xFD], lambda: any(e.endswith(" fd") for e in jam.lines))
    sent: list[list[int]] = []
    try:
        time.sleep(0.2)  # a probe still on its way arrives
        probes = dropped_logged(jam)
        assert probes and set(probes) == {"fd"}, probes

        @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(st.lists(EVENT, min_size=1, max_size=30))
        def stream_keeps_jam_running(events):
            send_events(raw, events)
            sent.extend(events)
            assert jam.process.poll() is None, jam.stderr

        stream_keeps_jam_running()
        seed = int(os.environ.get("JAM_FUZZ_SEED", str(random.randrange(1 << 30))))
        print(f"random stream: seed {seed} (JAM_FUZZ_SEED), {RANDOM_EVENTS} events")
        events = random_events(random.Random(seed), RANDOM_EVENTS)
        send_events(raw, events)
        sent.extend(events)
        ending = [[0xF7]]  # ends a sysex still being glued (README: JACK input)
        send_events(raw, ending)
        sent.extend(ending)
        # all of it decoded before the keyboard plays (JACK would merge the keyboard's
        # events into a sysex that the F7 has not ended yet)
        total = len(probes) + len(expected_drops(sent))
        assert wait_for(lambda: len(dropped_logged(jam)) >= total, 10), (
            f"{len(dropped_logged(jam))} runs of malformed bytes logged, {total} expected")
        # the player lifts every key and the pedal the streams left down, then plays a call
        for pitch in range(128):
            keyboard.send(mido.Message("note_off", note=pitch, velocity=0))
        keyboard.send(mido.Message("control_change", control=64, value=0))
        assert jam.process.poll() is None, jam.stderr
        start = time.monotonic() + 0.2
        play(keyboard, start=start)
        call_end = start + 3 * BEAT + 0.9 * BEAT
        assert wait_for(lambda: any(is_note_on(m) and t > call_end for t, m in synth.received),
                        10), "the call after the streams was not answered: " + jam.stderr[-3000:]
        jam.process.send_signal(signal.SIGTERM)
        assert jam.wait() == 0, jam.stderr[-3000:]
    finally:
        raw.close_port()
        raw.delete()
    assert final_panic(synth)
    report = check_notes(synth.received)
    assert report.clean, report.summary()
    expected = expected_drops(sent)
    logged = dropped_logged(jam)
    assert logged[len(probes):] == expected
    last = [line for line in jam.lines if "stopping (SIGTERM)" in line]
    assert len(last) == 1, jam.stderr[-3000:]
    assert last[0].endswith(f"; dropped {len(probes) + len(expected)} malformed input messages")
    print(f"fuzz: {len(sent)} events, {len(expected)} runs of malformed bytes dropped and "
          f"counted, {report.note_ons} answer notes, all ended")
    no_traceback(jam)


# --- a flood of input, and a soak -----------------------------------------------------------

FLOOD_SECONDS = float(os.environ.get("JAM_FLOOD_SECONDS", "2"))  # 10: tools/flood.py
FLOOD_RATE = 10000.0  # messages per second
TOLERANCE = 0.010  # s: "on the beat" and "on the grid", as in test_call_response.py
MEMORY_BOUND_KB = 64 * 1024  # what a flood may add to jam's private memory at most


def test_a_flood_of_input_is_counted_and_the_next_call_is_answered_on_the_beat(sync_rig):
    monitor = sync_rig.monitor()
    jam = sync_rig.jam("--seed", "1", "--answer-bars", "2")  # the shipped model
    result = flood_then_call(jam, sync_rig.keyboard, sync_rig.synth, monitor, FLOOD_SECONDS,
                             FLOOD_RATE, after=1.0)
    jam.process.send_signal(signal.SIGTERM)
    assert jam.wait() == 0, jam.stderr
    assert final_panic(sync_rig.synth)
    result["jam"] = stop_figures(jam)
    result["notes_at_the_synth"] = check_notes(sync_rig.synth.received).summary()
    print("flood " + json.dumps(result))
    sent = result["flood"]["sent"]
    assert result["warm_up_answered"] and result["answer_ended"], jam.stderr
    # every message is accounted for: what jam received, plus what its input counted as
    # lost on the way in and what an rtmidi queue refused
    calls = 2 * 2 * len(FLOOD_PHRASE)  # the warm-up call and the call after the flood
    assert result["arrived_at_a_recorder_on_the_keyboard"] == sent  # the wire lost nothing
    counted = (result["jam"]["input_received"] + result["jam"]["input_lost"]
               + result["rtmidi_queue_full_lines"])
    assert counted == sent + calls, result["jam"]
    memory = result["memory_kb"]
    grown = memory["peak_during_flood"]["private_kb"] - memory["after_warm_up"]["private_kb"]
    assert grown < MEMORY_BOUND_KB, memory
    answer = result["answer"]
    assert "error" not in answer, (answer, jam.stderr)
    assert answer["first_note_off_beat_ms"] <= TOLERANCE * 1e3, (answer, jam.stderr)
    assert answer["worst_note_off_grid_ms"] <= TOLERANCE * 1e3, (answer, jam.stderr)
    assert 8.5 < answer["first_note_beats_after_call_start"] < 10.5, answer  # after the call
    report = check_notes(sync_rig.synth.received)
    assert report.clean, report.summary()
    no_traceback(jam)


SOAK_SECONDS = float(os.environ.get("JAM_SOAK_SECONDS", "60"))  # 600: docs/performance.md


def test_soak_answers_every_call_and_leaves_no_note_sounding(sync_rig):
    jam = sync_rig.jam("--seed", "1", "--answer-bars", "1")  # the shipped model
    result = soak(jam, sync_rig.keyboard, sync_rig.synth, SOAK_SECONDS)
    print("soak " + json.dumps(result))
    memory = result["memory_kb"]
    print(f"soak memory: private {memory['after_warm_up']['private_kb']} kB after the warm-up"
          f", {memory['end']['private_kb']} kB at the end ({memory['growth_private_kb']:+d} kB)")
    assert result["exit_code"] == 0, jam.stderr
    assert result["lost_note_offs"] == 0, result["notes_at_the_synth"]
    assert result["stuck_notes"] == 0, result["notes_at_the_synth"]
    assert result["calls"] >= SOAK_SECONDS / 8, result
    assert result["calls_without_an_answer"] == [], (result, jam.stderr[-3000:])
    assert result["answers_heard"] == result["calls"], (result, jam.stderr[-3000:])
    assert result["jam"]["input_received"] == result["messages_sent"], result
    assert (result["jam"]["calls"], result["jam"]["barge_ins"]) == (
        result["calls"], result["barge_ins_played"]), result  # jam heard them as played
    assert result["lost_between_jam_and_the_synth"] == 0, result
    no_traceback(jam)
