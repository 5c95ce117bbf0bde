"""Profiles: the session memory saved and read back, and bad files set aside."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jam.errors import JamError
from jam.generators.markov import SessionMemory
from jam.music import tokens as tk
from jam.profiles import load_profile, profile_path, save_profile

TUNE = tk.encode([tk.Note(p, 6 * i, 6) for i, p in enumerate([60, 62, 64, 66, 68, 70] * 3)])


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    return tmp_path


def test_a_profile_round_trips(data_home):
    memory = SessionMemory()
    memory.feed(TUNE)
    path = save_profile("alice", memory)
    assert path == data_home / "jam" / "profiles" / "alice.npz"
    again = SessionMemory()
    assert load_profile("alice", again)
    assert again.learned == memory.learned == len(TUNE)
    memory.restart()  # same context on both sides
    np.testing.assert_array_equal(again.probabilities(), memory.probabilities())


def test_a_missing_profile_is_an_empty_memory():
    memory = SessionMemory()
    assert not load_profile("nobody", memory) and memory.learned == 0


@pytest.mark.parametrize("content", [b"", b"not a zip", b"PK\x03\x04broken"])
def test_a_corrupt_profile_is_set_aside_with_one_warning(content, caplog):
    path = profile_path("bob")
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    memory = SessionMemory()
    with caplog.at_level(logging.WARNING):
        assert not load_profile("bob", memory)
    assert memory.learned == 0 and not path.exists()
    assert len(list(path.parent.glob("bob.npz.unreadable-*"))) == 1
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_a_foreign_npz_is_set_aside():
    path = profile_path("carol")
    path.parent.mkdir(parents=True)
    np.savez(path, something=np.arange(3))
    assert not load_profile("carol", SessionMemory())
    assert not path.exists()


def test_a_memory_of_another_order_is_refused_as_foreign():
    memory = SessionMemory(order=3)
    memory.feed(TUNE)
    save_profile("dave", memory)
    assert not load_profile("dave", SessionMemory(order=12))


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".hidden", "x.npz", "a" * 80])
def test_profile_names_are_names_not_paths(name):
    with pytest.raises(JamError):
        profile_path(name)


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=300))
def test_no_file_content_stops_the_load(content):
    path = profile_path("fuzz")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PK\x03\x04" + content)
    load_profile("fuzz", SessionMemory())
    assert not path.exists()
    for aside in path.parent.glob("fuzz.npz.unreadable-*"):
        aside.unlink()
