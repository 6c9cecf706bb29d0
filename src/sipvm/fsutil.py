"""File system steps for durable writes, shared by storage/ and audio/ (neither owns the other).

A file is durable when its contents were fsynced, it was renamed into place, and the directory
holding it was fsynced too: without the last step a crash can undo the rename.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a rename or new file in ``path`` durable (fsync the directory itself)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
