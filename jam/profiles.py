"""Player profiles: the session memory kept across sessions (``--profile NAME``).

A profile is ``$XDG_DATA_HOME/jam/profiles/NAME.npz`` (default ``~/.local/share/jam/...``):
numpy arrays only (loaded with ``allow_pickle=False``), with a format tag and the token
representation it was learned in. It is written atomically (a crash leaves the old file or
the new one). A file that cannot be read, or that belongs to another format or
representation, is renamed aside (``NAME.npz.unreadable-TIME``) with one warning, and the
session starts with an empty memory: a profile never stops ``jam``.
"""

from __future__ import annotations

import io
import logging
import os
import re
import time
from pathlib import Path

import numpy as np

from jam.errors import JamError
from jam.fileio import atomic_write_bytes
from jam.generators.blend import BlendGenerator
from jam.generators.markov import SessionMemory
from jam.music import tokens as tk

log = logging.getLogger(__name__)

FORMAT = "jam-profile-1"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def profile_path(name: str) -> Path:
    """Where the profile ``name`` lives; JamError for a name that is not a plain word."""
    if not _NAME_RE.fullmatch(name) or name.endswith(".npz"):
        raise JamError(f"profile name {name!r}: use letters, digits, '-', '_' or '.' "
                       f"(a name, not a path), e.g. --profile alice")
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"),
                                                           ".local", "share")
    return Path(base) / "jam" / "profiles" / f"{name}.npz"


def load_profile(name: str, memory: SessionMemory) -> bool:
    """Fill ``memory`` from the profile; False (memory empty) when it does not exist or
    was set aside."""
    path = profile_path(name)
    if not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        if str(arrays["format"].reshape(-1)[0]) != FORMAT or \
                str(arrays["representation"].reshape(-1)[0]) != tk.REPRESENTATION:
            raise ValueError("another format or token representation")
        memory.load_arrays(arrays)
    except Exception as err:  # noqa: BLE001 - any unreadable file is set aside, never fatal
        aside = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            path.rename(aside)
            where = f"moved to {aside}"
        except OSError:
            where = "left in place"
        log.warning("profile %s could not be read (%s); %s, starting with an empty memory",
                    path, err, where)
        memory.reset()
        return False
    log.info("profile %s: %d tokens learned before", name, memory.learned)
    return True


def attach_profile(generator: BlendGenerator, name: str) -> None:
    """Let ``generator``'s memory start from profile ``name`` and keep it across resets
    (a new song forgets the phrase, not the player)."""
    generator.keep_memory = True
    load_profile(name, generator.memory)


def save_profile(name: str, memory: SessionMemory) -> Path:
    """Write the memory as profile ``name`` (atomically; the folder is created)."""
    path = profile_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, format=np.array([FORMAT]), representation=np.array([tk.REPRESENTATION]),
             **memory.to_arrays())
    return atomic_write_bytes(path, buffer.getvalue(), overwrite=True)
