"""Files written whole or not at all, and folders proved writable before long work starts.

Every file the engine leaves (checkpoints, results, maps) is written to a temp file beside its
target, flushed and fsync'd, then renamed over it: a crash, a kill or a full disk leaves either
the old file or the new one, never half of one. A temp file is named ``.<target>.<pid>.<random>.tmp``:
hidden, so no folder listing takes it for an image, a checkpoint or a result; one left by a process
that no longer runs (a kill -9 mid-write) is removed by the next write beside it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from ..errors import EgbadError


def atomic_write(path: Path, write: Callable[[Any], Any]) -> None:
    """Call ``write(handle)`` on a temp file beside ``path``, fsync it, then rename over ``path``."""
    folder = path.parent if str(path.parent) else Path(".")
    ensure_writable_folder(folder)
    remove_stale_temps(folder, path.name)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(error, OSError) and error.errno in FULL:
            raise EgbadError(full_disk(path, error)) from None
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable where the OS allows it
        directory = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # no space, over quota, over the file-size limit


def full_disk(path: Path, error: OSError) -> str:
    """The sentence for a write that ran out of room."""
    return (f"{path} could not be written: {error.strerror or 'no space left'}; the disk (or the quota) is full. "
            "Nothing was replaced; free some space and try again.")


def remove_stale_temps(folder: Path, name: str) -> int:
    """Remove the temp files of earlier writes of ``name`` whose process no longer runs; how many."""
    removed = 0
    for temp in folder.glob(f".{name}.*.tmp"):
        parts = temp.name[len(name) + 2 :].split(".")
        if not parts or not parts[0].isdigit() or _alive(int(parts[0])):
            continue
        with contextlib.suppress(OSError):
            temp.unlink()
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def ensure_writable_folder(folder: str | Path) -> Path:
    """Create ``folder`` if needed and prove it can be written, before any long work starts."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise EgbadError(f"{folder} cannot be written ({error.strerror or error}).") from None
    return folder
