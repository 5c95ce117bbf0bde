"""The shipped systemd unit: `systemd-analyze verify` accepts it and its security exposure
(`systemd-analyze security --offline=true`) stays low. Needs systemd's tools (CI installs
them); the unit's `/usr/local/bin/jam` is replaced by the `jam` this test runs with."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "jam.service"
EXPOSURE_AIM = 2.5


@pytest.fixture
def analyze():
    tool = shutil.which("systemd-analyze")
    if tool is None:
        reason = "systemd-analyze is not installed (apt-get install systemd)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return tool


@pytest.fixture
def unit(tmp_path):
    jam = shutil.which("jam")
    assert jam, "the jam console script is not installed (pip install -e .)"
    path = tmp_path / "jam.service"
    path.write_text(UNIT.read_text().replace("/usr/local/bin/jam", jam))
    return path


def test_the_unit_verifies(analyze, unit):
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_unit_is_hardened(analyze, unit):
    done = subprocess.run([analyze, "security", "--offline=true", str(unit)],
                          capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for jam\.service: ([\d.]+)", done.stdout)
    assert match, done.stdout[-500:] + done.stderr
    print(f"systemd-analyze security exposure: {match[1]}")
    assert float(match[1]) <= EXPOSURE_AIM


def test_the_unit_notifies_stops_with_a_panic_and_runs_unprivileged():
    text = UNIT.read_text()
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "DynamicUser=yes",
                 "SupplementaryGroups=audio", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 "ProtectHome=yes", "PrivateTmp=yes", "RestrictAddressFamilies=AF_UNIX",
                 "LimitRTPRIO=", "SystemCallFilter=", "StateDirectory=jam"):
        assert line in text, line
    assert re.search(r"^ExecStopPost=-?\S+ panic ", text, re.MULTILINE)
