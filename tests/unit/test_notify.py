"""sd_notify by hand, against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import os
import socket

import pytest

from jam.service.notify import Notifier


@pytest.fixture
def manager(tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2.0)
    yield path, sock
    sock.close()


def test_ready_watchdog_stopping_reach_the_socket(manager):
    path, sock = manager
    notifier = Notifier(path)
    assert notifier.enabled
    notifier.ready("listening")
    notifier.watchdog()
    notifier.stopping()
    notifier.close()
    got = [sock.recv(4096).decode() for _ in range(3)]
    assert got == ["READY=1\nSTATUS=listening", "WATCHDOG=1", "STOPPING=1"]


def test_without_notify_socket_nothing_is_sent_and_nothing_fails(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled
    notifier.ready()
    notifier.watchdog()


def test_a_vanished_manager_is_ignored(tmp_path):
    notifier = Notifier(str(tmp_path / "gone.sock"))
    notifier.ready()  # no such socket: ignored, never raised


@pytest.mark.parametrize("usec, pid, expected", [
    ("10000000", None, 5.0), ("10000000", "own", 5.0), ("10000000", "other", None),
    (None, None, None), ("junk", None, None)])
def test_watchdog_interval_is_half_of_what_systemd_set(monkeypatch, usec, pid, expected):
    for name, value in (("WATCHDOG_USEC", usec),
                        ("WATCHDOG_PID", {"own": str(os.getpid()), "other": "1"}.get(pid))):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert Notifier.watchdog_interval() == expected
