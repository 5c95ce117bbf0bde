"""Atomic file writes that never overwrite a user's file by accident."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from jam.errors import JamError


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` all at once: readers see the old file or the whole new one.

    Without ``overwrite`` an existing file is left alone and a :class:`JamError` is raised
    (the check and the write are one atomic step: a hard link of the finished temp file).
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise JamError(f"cannot write {path}: folder {folder} does not exist; create it first")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise JamError(
                    f"{path} already exists; choose another name or pass --force to replace it"
                ) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
