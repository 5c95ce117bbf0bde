"""The user unit (systemd/jam-user.service): `systemd-analyze verify --user` accepts it, and
it keeps what the system unit promises that a user service can have (notify with a
watchdog, reload by SIGHUP, a panic after any stop). Needs systemd's tools (CI installs
them); %h/.local/bin/jam is replaced by the `jam` this test runs with."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "jam-user.service"


@pytest.fixture
def analyze():
    tool = shutil.which("systemd-analyze")
    if tool is None:
        reason = "systemd-analyze is not installed (apt-get install systemd)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return tool


def test_the_user_unit_verifies(analyze, tmp_path):
    jam = shutil.which("jam")
    assert jam, "the jam console script is not installed (pip install -e .)"
    unit = tmp_path / "jam.service"
    unit.write_text(UNIT.read_text().replace("%h/.local/bin/jam", jam))
    runtime = tmp_path / "runtime"  # the user manager's runtime folder, which CI lacks
    runtime.mkdir(mode=0o700)
    done = subprocess.run([analyze, "verify", "--user", str(unit)], capture_output=True,
                          text=True, timeout=60,
                          env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)})
    # verify exits 0 even for a line it ignores ("Failed to parse ..."): nothing may be said
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), (
        done.stdout + done.stderr)


def test_the_user_unit_notifies_reloads_and_panics():
    text = UNIT.read_text()
    for line in ("Type=notify", "NotifyAccess=main", "WatchdogSec=", "Restart=on-failure",
                 "ExecReload=/bin/kill -HUP $MAINPID", "WantedBy=default.target"):
        assert line in text, line
    assert re.search(r"^ExecStopPost=-?\S+ panic ", text, re.MULTILINE)
    assert "DynamicUser" not in text  # a user manager runs it as the user
