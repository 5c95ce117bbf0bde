"""The status line: its text (a pure function), when it is shown, and that log records are
never mangled by it (a real logging handler writing to the same stream)."""

from __future__ import annotations

import io
import logging

import pytest

from jam.service.statusline import CLEAR, StatusLine, format_status, wanted

CALL = {"mode": "call", "state": "answering", "bpm": 96.0, "key": "D minor",
        "last_answer": {"bars": 2, "notes": 14, "late": 1}, "echoes": 3}
COUNTERS = {"dropped_in": 2, "dropped_out": 5, "late": 0, "gone": []}


def test_the_line_says_state_tempo_key_last_answer_echoes_and_drops():
    line = format_status("call", CALL, COUNTERS, width=200)
    assert line == ("call | answering | 96 BPM | D minor | last answer 2 bars, 14 notes, "
                    "1 late | echoes 3 | dropped 2 in, 5 out")


def test_missing_keys_are_left_out_and_unknown_scalars_shown():
    line = format_status("thru", {"preset": "ballad", "grid": [1, 2]}, {}, width=200)
    assert line == "thru | preset ballad | dropped 0 in, 0 out"


def test_a_sub_mode_a_free_key_late_sends_and_gone_ports_are_shown():
    status = {"mode": "mute", "bpm": 120.456, "key": None,
              "last_answer": {"bars": 1, "notes": 1, "late": 0}}
    counters = {"late": 4, "gone": ["output 'FLUID'"]}
    line = format_status("call", status, counters, width=200)
    assert line == ("mute | 120.5 BPM | no key | last answer 1 bar, 1 note | dropped 0 in, "
                    "0 out | 4 late sends | output 'FLUID' GONE")


@pytest.mark.parametrize("width", [1, 10, 40, 79])
def test_the_line_never_reaches_the_last_column(width):
    line = format_status("call", CALL, COUNTERS, width=width)
    assert 1 <= len(line) <= max(width - 1, 1)
    assert "\n" not in line and "\r" not in line


class Terminal(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("tty, environ, expected", [
    (True, {"TERM": "xterm"}, True),
    (False, {"TERM": "xterm"}, False),  # a pipe or a file
    (True, {"TERM": "xterm", "INVOCATION_ID": "abc"}, False),  # a systemd service
    (True, {"TERM": "xterm", "NOTIFY_SOCKET": "/run/systemd/notify"}, False),
    (True, {"TERM": "dumb"}, False),  # no ESC [ K
])
def test_shown_only_on_a_terminal_outside_systemd(tty, environ, expected):
    assert wanted(Terminal(tty), environ) is expected


def test_a_closed_stream_means_no_line(tmp_path):
    stream = open(tmp_path / "out", "w")
    stream.close()  # isatty() now raises ValueError
    assert wanted(stream, {}) is False


def test_updates_rewrite_the_line_in_place_and_skip_repeats():
    out = Terminal(True)
    line = StatusLine(out)
    line.show("a")
    line.show("a")
    line.show("b")
    line.close()
    assert out.getvalue() == f"{CLEAR}a{CLEAR}b{CLEAR}"
    assert line.updates == 2


def test_a_log_record_clears_the_line_first_and_the_line_comes_back_after():
    out = Terminal(True)
    logger = logging.getLogger("jam.test.statusline")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("jam: %(message)s"))
    logger.addHandler(handler)
    line = StatusLine(out)
    try:
        with line.guard_logging(logger):
            line.show("call | listening")
            logger.info("output 'synth' is gone")
            line.show("call | listening | output 'synth' GONE")
        logger.info("after")  # the guard is gone: the original handler again
        assert logger.handlers == [handler]
    finally:
        logger.removeHandler(handler)
    assert out.getvalue() == (f"{CLEAR}call | listening{CLEAR}jam: output 'synth' is gone\n"
                              f"{CLEAR}call | listening{CLEAR}call | listening | output "
                              f"'synth' GONE" "jam: after\n")
