"""The status line on a real terminal: jam (a subprocess over JACK) runs under a pseudo-
terminal (stdout and stderr both on it, as in a shell); the line is drawn and redrawn in
place, and log lines are printed on a cleared line, never glued to it."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import threading

import pytest

from jackrig import wait_for
from jam.service.statusline import CLEAR


@pytest.fixture
def terminal_jam(keyboard, synth, jam_env):
    """jam --mode thru with a pseudo-terminal as its stdout and stderr; yields (process,
    text so far as a callable)."""
    leader, follower = pty.openpty()
    env = {k: v for k, v in jam_env.items() if k not in ("INVOCATION_ID", "NOTIFY_SOCKET")}
    env.update(TERM="xterm", COLUMNS="200")
    process = subprocess.Popen(
        [sys.executable, "-m", "jam", "--api", "jack", "--in", keyboard.full_name, "--out",
         synth.full_name, "--mode", "thru"],
        stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:  # EIO: the other end closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield process, lambda: b"".join(chunks).decode("utf-8", "replace")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        reader.join(5)
        os.close(leader)


def test_the_status_line_is_redrawn_in_place_and_log_lines_stay_whole(terminal_jam,
                                                                       keyboard):
    process, text = terminal_jam
    first = f"{CLEAR}thru | dropped 0 in, 0 out"
    assert wait_for(lambda: first in text(), 15), text()
    keyboard._rt.send_message([0x90, 0x3C])  # a truncated note-on: dropped and counted
    second = f"{CLEAR}thru | dropped 1 in, 0 out"
    assert wait_for(lambda: second in text(), 10), text()
    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0, text()
    assert wait_for(lambda: "jam: stopping (SIGTERM)" in text(), 5), text()
    out = text()
    # redrawn in place: nothing scrolled between the two versions of the line
    between = out[out.index(first):out.index(second)]
    assert "\n" not in between, repr(between)
    # the log line at the end was printed on a cleared line, and the line is gone after it
    stop = out.index("jam: stopping (SIGTERM)")
    assert out[:stop].endswith(CLEAR), repr(out[stop - 80:stop])
    assert out[out.rindex(second):stop].count(CLEAR) >= 2  # drawn, then cleared
    assert "thru | dropped" not in out[stop:], repr(out[stop:])
