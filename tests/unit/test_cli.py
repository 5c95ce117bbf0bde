"""The CLI as a process: exit codes and one-line errors (no MIDI system needed)."""

import subprocess
import sys

import pytest

from jam import __version__


def jam(*args, tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "jam", *args], capture_output=True, text=True,
                          env=env, stdin=subprocess.DEVNULL, timeout=60)


@pytest.mark.parametrize("args, expected", [
    (["--bpm", "500"], "'bpm'"),
    (["--tempo-follow"], "unknown option --tempo-follow"),
    (["panic"], "needs --out"),
    (["config", "--config", "/nonexistent/jam.yaml"], "does not exist"),
    (["--mode", "jazz"], "'mode'"),
])
def test_user_errors_exit_2_with_one_line(tmp_path, args, expected):
    result = jam(*args, tmp_path=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr
    assert result.stderr.startswith("jam: ")


def test_version_and_config_succeed(tmp_path):
    assert jam("--version", tmp_path=tmp_path).stdout.strip() == f"jam {__version__}"
    result = jam("config", "--mode", "thru", tmp_path=tmp_path)
    assert result.returncode == 0 and "mode: thru" in result.stdout
