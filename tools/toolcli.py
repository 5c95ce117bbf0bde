"""Command-line pieces shared by the training tools (prepare_data, train, export_onnx,
evaluate): argparse that fails in one line with exit code 2, help that shows every default,
and the checks that keep a tool from writing into a folder it was given as input.

Imported as ``toolcli`` (a tool's own folder is on ``sys.path`` when it runs; pytest puts
``tools/`` there too).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from jam.errors import JamError


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The docstring as written, and ``(default: X)`` after every option that has one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "%(default)" in text or default is None or default is False \
                or default is argparse.SUPPRESS or not action.option_strings or default == []:
            return text
        return text + " (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (``TOOL: message (see TOOL --help)``), exit 2."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: {message} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(2)


def nonempty_path(text: str) -> Path:
    """A path argument that may not be empty (an unset shell variable in quotes gives '')."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path (an unset shell variable?)")
    return Path(text).expanduser()


def inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (both resolved, links followed)."""
    try:
        path, folder = Path(path).expanduser().resolve(), Path(folder).expanduser().resolve()
    except OSError:
        return False
    return path == folder or folder in path.parents


def refuse_inside(output: Path, inputs: list[Path], what: str, flag: str) -> None:
    """JamError if ``output`` would land in one of the input folders (never write there)."""
    for folder in inputs:
        if inside(output, folder):
            raise JamError(f"{flag} {output} is inside the input folder {folder}; {what} never "
                           f"writes into its input: choose a folder outside it, e.g. "
                           f"{quote(suggest_outside(folder, 'data'))}")


def quote(path: Path | str) -> str:
    """A path as it would be typed in a shell (``~`` kept for the home folder)."""
    text = str(path)
    home = str(Path.home())
    if text == home or text.startswith(home + os.sep):
        rest = text[len(home):].lstrip(os.sep)
        return "~/" + shlex.quote(rest) if rest else "~"
    return shlex.quote(text)


def suggest_outside(folder: Path, kind: str) -> Path:
    """A place for a tool's output made from ``folder`` that is not inside it:
    ``~/jam/KIND/NAME`` (``NAME-2`` if that would be the folder itself or inside it)."""
    name = Path(folder).expanduser().resolve().name or "mine"
    candidate = Path.home() / "jam" / kind / name
    n = 2
    while inside(candidate, folder) or inside(folder, candidate):
        candidate = Path.home() / "jam" / kind / f"{name}-{n}"
        n += 1
    return candidate
