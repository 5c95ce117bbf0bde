"""jam as a subprocess over a real JACK server: thru mode, shutdown, ports, errors."""

from __future__ import annotations

import signal
import subprocess
import sys

import mido
import pytest

from jackrig import JamProcess, Synth, jack_backend, wait_for
from jam.midi.ports import PolledInput


def note_on(note, velocity=100, channel=0):
    return mido.Message("note_on", note=note, velocity=velocity, channel=channel)


def note_off(note, channel=0):
    return mido.Message("note_off", note=note, velocity=0, channel=channel)


def run_jam(args, env, timeout=30):
    return subprocess.run([sys.executable, "-m", "jam", *args], env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=timeout)


@pytest.fixture
def thru(start_jam):
    """jam --mode thru from the test keyboard to the test synth, started and ready."""
    return lambda *extra: start_jam("--mode", "thru", *extra)


def test_thru_delivers_1000_notes_in_order_without_loss(thru, keyboard, synth, jack_server):
    control = Synth()  # wired straight to the keyboard: tells jam's faults from JACK's
    subprocess.run(["jack_connect", keyboard.full_name, control.full_name],
                   env=jack_server.env(), check=True)
    jam = thru()
    sent = []
    for i in range(1000):
        pitch, velocity = 30 + i % 70, 1 + (i * 7) % 127
        sent += [note_on(pitch, velocity), note_off(pitch)]
    for index, message in enumerate(sent):
        keyboard.send(message)
        if index % 50 == 49:  # pace the burst like fast playing, not like a flood
            wait_for(lambda: len(synth.messages()) >= index - 100, 5)
    synth.wait_count(2000, timeout=20)
    control.wait_count(2000, timeout=5)
    jam.process.send_signal(signal.SIGTERM)
    assert jam.wait() == 0, jam.stderr
    control.close()
    expected = [m.bytes() for m in sent]
    direct_ok = [m.bytes() for m in control.messages()] == expected
    received = synth.messages()
    assert [m.bytes() for m in received[:2000]] == expected, (
        f"through jam: {len(received)} messages (2000 + 3 at shutdown expected); the "
        f"direct connection {'was exact' if direct_ok else 'lost or repeated some too'}")
    # nothing was sounding at the end: the shutdown adds only the controller resets
    assert [m.control for m in received[2000:]] == [64, 123, 120]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_releases_every_held_note(thru, keyboard, synth, stop_signal):
    jam = thru()
    held = list(range(60, 70))
    for pitch in held:
        keyboard.send(note_on(pitch))
    assert synth.wait_count(10)
    jam.process.send_signal(stop_signal)
    assert jam.wait() == 0, jam.stderr
    assert synth.wait_count(1, where=lambda m: m.type == "control_change" and m.control == 120)
    after = synth.messages()[10:]
    offs = [m.note for m in after if m.type == "note_off"]
    controls = [m.control for m in after if m.type == "control_change"]
    assert sorted(offs) == held
    assert controls == [64, 123, 120]
    assert after.index(next(m for m in after if m.type == "control_change")) == 10  # offs first


def test_channel_remap_applies_to_notes_and_to_the_shutdown(thru, keyboard, synth):
    jam = thru("--channel", "10")
    keyboard.send(note_on(50, channel=0))
    keyboard.send(mido.Message("control_change", channel=3, control=1, value=64))
    assert synth.wait_count(2)
    jam.process.send_signal(signal.SIGTERM)
    assert jam.wait() == 0, jam.stderr
    assert synth.wait_count(6)
    assert {m.channel for m in synth.messages()} == {9}
    assert [m.type for m in synth.messages()][2] == "note_off"


def test_ports_lists_the_test_ports(keyboard, synth, jam_env):
    result = run_jam(["ports", "--api", "jack"], jam_env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    inputs, outputs = result.stdout.split("outputs")
    assert keyboard.full_name in inputs and synth.full_name not in inputs
    assert synth.full_name in outputs and keyboard.full_name not in outputs


def test_wrong_input_name_exits_2_with_one_line_listing_the_ports(keyboard, synth, jam_env):
    result = run_jam(["--api", "jack", "--in", "no such keyboard", "--out", synth.full_name,
                      "--mode", "thru"], jam_env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "no such keyboard" in lines[0] and keyboard.full_name in lines[0]


def test_ambiguous_output_substring_names_the_candidates(keyboard, synth, jam_env):
    result = run_jam(["panic", "--api", "jack", "--out", "synth-"], jam_env)
    assert result.returncode == 0, result.stderr  # one synth: the substring is unique
    second = PolledInput("jack", "synth", True, lambda m: None, client_name="synth-second")
    try:
        result = run_jam(["panic", "--api", "jack", "--out", "synth-"], jam_env)
    finally:
        second.close()
    assert result.returncode == 2, result.stderr
    assert "several" in result.stderr and "synth-second:synth" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_panic_sends_all_notes_off_on_16_channels(synth, jam_env):
    result = run_jam(["panic", "--api", "jack", "--out", synth.full_name], jam_env)
    assert result.returncode == 0, result.stderr
    assert synth.wait_count(48)
    messages = synth.messages()
    assert [(m.channel, m.control) for m in messages] == [
        (c, cc) for c in range(16) for cc in (64, 123, 120)]


def test_virtual_ports_pass_notes(jack_server, jam_env):
    jam = JamProcess(["--api", "jack", "--mode", "thru"], jam_env)
    try:
        jam.wait_ready()
        assert "jam in" in jam.stderr and "jam out" in jam.stderr
        backend = jack_backend()
        into = [n for n in backend.get_output_names() if n.endswith(":jam in")]
        out_of = [n for n in backend.get_input_names() if n.endswith(":jam out")]
        assert len(into) == 1 and len(out_of) == 1, (into, out_of)
        received = []
        listener = PolledInput("jack", out_of[0], False, received.append)
        player = backend.open_output(into[0])
        try:
            for pitch in (60, 64, 67):
                player.send(note_on(pitch))
                player.send(note_off(pitch))
            assert wait_for(lambda: len(received) >= 6, 10), received
        finally:
            player.close()
            listener.close()
        assert [(m.type, m.note) for m in received[:6]] == [
            ("note_on", 60), ("note_off", 60), ("note_on", 64), ("note_off", 64),
            ("note_on", 67), ("note_off", 67)]
        jam.process.send_signal(signal.SIGTERM)
        assert jam.wait() == 0, jam.stderr
    finally:
        jam.kill()


def test_no_jack_server_is_a_one_line_error_with_a_hint(jam_env):
    env = {**jam_env, "JACK_DEFAULT_SERVER": "jamtest-no-such-server"}
    result = run_jam(["ports", "--api", "jack"], env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "JACK" in lines[0] and "jackd" in lines[0]
