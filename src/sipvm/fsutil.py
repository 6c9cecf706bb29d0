"""File system steps shared by storage/, audio/ and the rest (neither owns the other).

A file is durable when its contents were fsynced, it was renamed into place, and the directory
holding it was fsynced too: without the last step a crash can undo the rename. Files that can
be made again (the prompt cache, exported phone files) need only be whole: ``replace_file``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a rename or new file in ``path`` durable (fsync the directory itself)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(target: Path, data: bytes) -> None:
    """Write ``data`` to a temporary name beside ``target``, then rename it into place: a
    reader (another process too) sees the old file or the whole new one, never a part."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
