"""``jam learn ACTION``: bind the next control moved or pressed on the input to an action,
in the config file.

:func:`binding_for` (pure) says which messages can bind an action: a CC for every action;
a note-on for a trigger (a pad, a key); a Program Change for ``next_preset`` and
``previous_preset`` (a footswitch that sends one). The binding keeps the message's channel.
:func:`bind` (pure) puts it into the file's mapping, taking it away from any other action
that had the same control. :func:`learn` opens the input, waits (``timeout`` seconds at
most) and writes the file atomically, keeping its other keys; a file that does not parse
or validate is left as it is (one-line :class:`~jam.errors.JamError`).
"""

from __future__ import annotations

import difflib
import logging
import queue
import time
from pathlib import Path
from typing import Any

import mido
import yaml

from jam.config import check_value
from jam.errors import JamError
from jam.fileio import atomic_write_bytes
from jam.midi.controls import ACTIONS, CONTINUOUS, Binding, parse_binding

log = logging.getLogger(__name__)

PRESET_STEPS = ("next_preset", "previous_preset")


def check_action(action: str) -> str:
    if action in ACTIONS:
        return action
    close = difflib.get_close_matches(action, ACTIONS, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else f"actions: {', '.join(ACTIONS)}"
    raise JamError(f"unknown action '{action}' ({hint})")


def binding_for(action: str, message: Any) -> Binding | None:
    """The binding ``message`` gives ``action``, or None if it cannot bind it."""
    kind = message.type
    if kind == "control_change":
        return Binding("cc", message.control, message.channel)
    if action in CONTINUOUS:
        return None
    if kind == "note_on" and message.velocity > 0:
        return Binding("note", message.note, message.channel)
    if kind == "program_change" and action in PRESET_STEPS:
        return Binding("program", None, message.channel)
    return None


def bind(data: dict[str, Any], action: str, binding: Binding) -> tuple[dict[str, Any], list[str]]:
    """``data`` (a config file's mapping) with ``action`` bound to ``binding``, and the
    actions that lose that control. The other keys and bindings stay as they are."""
    controls = dict(data.get("controls") or {})
    taken = [other for other, text in controls.items()
             if other != action and _same_control(text, binding)]
    for other in taken:
        del controls[other]
    controls[action] = str(binding)
    return {**data, "controls": controls}, taken


def _same_control(text: Any, binding: Binding) -> bool:
    try:
        return parse_binding(text) == binding
    except ValueError:
        return False


def read_mapping(path: Path) -> dict[str, Any]:
    """The config file's mapping as written (``{}`` if it does not exist), after checking
    that it parses and that every option in it is valid; JamError otherwise."""
    if not path.exists():
        return {}
    where = f"{path} (left as it is)"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise JamError(f"cannot read config file {where}: {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise JamError(f"config file {where} is not valid YAML{at}; fix it first") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise JamError(f"config file {where} must be a mapping of option: value, "
                       f"got a {type(data).__name__}")
    for key, value in data.items():
        check_value(str(key), value, f"in {where}")
    return data


def write_binding(path: Path, action: str, binding: Binding) -> str:
    """Bind ``action`` in the file at ``path`` (created, with its folder, if missing);
    returns the line to print."""
    data, taken = bind(read_mapping(path), action, binding)
    check_value("controls", data["controls"], f"in {path}")
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, text.encode("utf-8"), overwrite=True)
    except OSError as err:  # a read-only folder, a file where the folder should be
        raise JamError(f"cannot write config file {path}: {err.strerror or err}") from None
    moved = f" (taken from {', '.join(taken)})" if taken else ""
    return f"{action}: {binding}{moved}, written to {path}"


def learn(config: Any, action: str, path: Path, timeout: float) -> str:
    """Wait for a control on the input (``config.in_``, else the virtual port ``jam in``)
    that can bind ``action``, then write it to ``path``; returns the line to print."""
    from jam.midi.ports import RtMidiSystem

    check_action(action)
    read_mapping(path)  # a broken file is refused before anything is moved
    received: queue.Queue[mido.Message] = queue.Queue()
    with RtMidiSystem.connect(config.api) as system:
        port = system.open_input(config.in_, callback=received.put)
        try:
            kinds = ("a controller (CC)" if action in CONTINUOUS else
                     "a controller, pad, key" + (" or Program Change"
                                                 if action in PRESET_STEPS else ""))
            log.info("learning %s: move or press %s on '%s' (within %g s)", action, kinds,
                     port.name, timeout)
            binding = _wait(received, action, timeout)
        finally:
            port.close()
    if binding is None:
        raise JamError(f"nothing that can control {action} came from '{port.name}' in "
                       f"{timeout:g} s; {path} is unchanged (check the connection, or give "
                       f"--timeout)")
    return write_binding(path, action, binding)


def _wait(received: queue.Queue[mido.Message], action: str,
          timeout: float) -> Binding | None:
    end = time.monotonic() + timeout
    while (left := end - time.monotonic()) > 0:
        try:
            message = received.get(timeout=left)
        except queue.Empty:
            return None
        binding = binding_for(action, message)
        if binding is not None:
            return binding
    return None
