"""Log lines: ``jam: message`` on a terminal or in a file; under journald (``$JOURNAL_STREAM``
names the very stream) no prefix but the syslog priority journald reads."""

from __future__ import annotations

import logging
import os

from jam.service.logs import JournalFormatter, formatter_for, to_journal


def record(level, message):
    return logging.LogRecord("jam", level, __file__, 1, message, None, None)


def test_the_journal_is_recognised_by_device_and_inode_only(tmp_path):
    with open(tmp_path / "stream", "w") as stream, open(tmp_path / "other", "w") as other:
        info = os.fstat(stream.fileno())
        environ = {"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}
        assert to_journal(stream, environ)
        assert not to_journal(other, environ)  # stderr redirected: not the journal's
        assert not to_journal(stream, {})
        assert not to_journal(stream, {"JOURNAL_STREAM": "junk"})


def test_formats(tmp_path):
    with open(tmp_path / "stream", "w") as stream:
        info = os.fstat(stream.fileno())
        journal = formatter_for(stream, {"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"})
        plain = formatter_for(stream, {})
    assert isinstance(journal, JournalFormatter)
    assert journal.format(record(logging.WARNING, "output 'x' is gone")) == \
        "<4>output 'x' is gone"
    assert journal.format(record(logging.INFO, "two\nlines")) == "<6>two\n<6>lines"
    assert journal.format(record(logging.DEBUG, "d")) == "<7>d"
    assert journal.format(record(logging.ERROR, "e")) == "<3>e"
    assert plain.format(record(logging.WARNING, "output 'x' is gone")) == \
        "jam: output 'x' is gone"
