"""The shipped systemd units: `systemd-analyze verify` accepts them (and says nothing: it
exits 0 even for a line it ignores), the system unit's security exposure
(`systemd-analyze security --offline=true`) stays low, and both keep the service's
promises (notify with a watchdog, a panic after any stop). Needs systemd's tools (CI
installs them); the units' path of `jam` is replaced by the `jam` this test runs with."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).resolve().parents[2] / "systemd"
# unit file -> (the path of jam it names, extra arguments of `systemd-analyze verify`)
UNITS = {"jam.service": ("/usr/local/bin/jam", []),
         "jam-user.service": ("%h/.local/bin/jam", ["--user"])}
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


def installed(name: str, folder: Path) -> Path:
    """The unit as installed for this test: naming the jam this test runs with."""
    jam = shutil.which("jam")
    assert jam, "the jam console script is not installed (pip install -e .)"
    path = folder / name
    path.write_text((SYSTEMD / name).read_text().replace(UNITS[name][0], jam))
    return path


@pytest.mark.parametrize("name", sorted(UNITS))
def test_the_unit_verifies_without_a_word(analyze, tmp_path, name):
    runtime = tmp_path / "runtime"  # a user manager's runtime folder, which CI lacks
    runtime.mkdir(mode=0o700)
    done = subprocess.run([analyze, "verify", *UNITS[name][1], str(installed(name, tmp_path))],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)})
    said = (done.stdout + done.stderr).strip()
    assert done.returncode == 0 and not said, said


def test_the_system_unit_is_hardened(analyze, tmp_path):
    unit = installed("jam.service", tmp_path)
    done = subprocess.run([analyze, "security", "--offline=true", str(unit)],
                          capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for jam\.service: ([\d.]+)", done.stdout)
    assert match, done.stdout[-500:] + done.stderr
    print(f"systemd-analyze security exposure: {match[1]}")
    assert float(match[1]) <= EXPOSURE_AIM


@pytest.mark.parametrize("name", sorted(UNITS))
def test_the_unit_notifies_reloads_and_panics_after_any_stop(name):
    text = (SYSTEMD / name).read_text()
    for line in ("Type=notify", "NotifyAccess=main", "WatchdogSec=", "Restart=on-failure",
                 "ExecReload=/bin/kill -HUP $MAINPID", "NoNewPrivileges=yes"):
        assert line in text, line
    assert re.search(r"^ExecStopPost=-\S+ panic ", text, re.MULTILINE)


def test_the_system_unit_runs_unprivileged_and_confined():
    text = (SYSTEMD / "jam.service").read_text()
    for line in ("DynamicUser=yes", "SupplementaryGroups=audio", "ProtectSystem=strict",
                 "ProtectHome=yes", "PrivateTmp=yes", "RestrictAddressFamilies=AF_UNIX",
                 "LimitRTPRIO=", "SystemCallFilter=", "StateDirectory=jam"):
        assert line in text, line
