"""Pure parts of the port layer: API choice and port-name matching."""

import pytest
import rtmidi

from jam.errors import JamError
from jam.midi.ports import RtMidiSystem, choose_api, match_port

NAMES = ["USB Keyboard MIDI 1", "Midi Through Port-0", "FLUID Synth (1234):Synth input"]


def test_auto_api_per_platform():
    assert choose_api("auto", "linux", alsa_sequencer=True) == "alsa"
    assert choose_api("auto", "linux", alsa_sequencer=False) == "jack"
    assert choose_api("auto", "darwin") == "coremidi"
    assert choose_api("auto", "win32") == "winmm"
    assert choose_api("jack", "linux", alsa_sequencer=True) == "jack"


def test_exact_name_then_case_insensitive_substring():
    assert match_port("Midi Through Port-0", NAMES, "input") == "Midi Through Port-0"
    assert match_port("keyboard", NAMES, "input") == "USB Keyboard MIDI 1"
    assert match_port("fluid", NAMES, "output") == "FLUID Synth (1234):Synth input"


def test_exact_name_wins_over_a_longer_match():
    assert match_port("Synth", ["Synth", "Synth 2"], "output") == "Synth"


def test_no_match_lists_the_candidates():
    with pytest.raises(JamError) as err:
        match_port("piano", NAMES, "input")
    text = str(err.value)
    assert "--in 'piano'" in text and all(name in text for name in NAMES)


def test_ambiguous_match_lists_only_the_matches():
    with pytest.raises(JamError) as err:
        match_port("midi", NAMES, "output")
    text = str(err.value)
    assert "--out" in text and "several" in text
    assert "USB Keyboard MIDI 1" in text and "FLUID" not in text


def test_no_ports_at_all():
    with pytest.raises(JamError, match="available outputs: none"):
        match_port("x", [], "output")


def test_an_api_missing_from_the_rtmidi_build_is_named_with_the_ones_it_has(monkeypatch):
    monkeypatch.setattr(rtmidi, "get_compiled_api",
                        lambda: [rtmidi.API_LINUX_ALSA, rtmidi.API_UNIX_JACK])
    with pytest.raises(JamError, match=r"no coremidi support \(it has: alsa, jack\)"):
        RtMidiSystem.connect("coremidi")
