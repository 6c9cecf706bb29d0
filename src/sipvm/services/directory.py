"""Applying directory files and knowing which directory is in force.

Every process that serves calls or pages runs ``DirectoryService.follow``: a directory applied
by another process (``sipvm directory apply``, the pool's supervisor, a web edit) is in force
there within ``FOLLOW_S`` — a revoked right must not linger on a worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sipvm.domain.model import Directory
from sipvm.provisioning.directory_file import (
    directory_document,
    parse_directory,
    read_directory_file,
)
from sipvm.storage.directory import AppliedDirectory, SqliteDirectoryRepo

log = logging.getLogger(__name__)

#: How often a serving process looks for a new directory revision (one indexed read).
FOLLOW_S = 0.5


@dataclass
class DirectoryService:
    """Holds the directory in force and applies new ones (validate whole, then one transaction)."""

    repo: SqliteDirectoryRepo
    clock: Callable[[], datetime]
    current: Directory
    rev: int = 0

    @classmethod
    async def load(
        cls, repo: SqliteDirectoryRepo, clock: Callable[[], datetime]
    ) -> DirectoryService:
        """The service with the stored directory in force (an empty one before the first apply)."""
        found = await repo.current()
        if found is None:
            return cls(repo=repo, clock=clock, current=Directory(), rev=0)
        rev, document = found
        return cls(repo=repo, clock=clock, current=_stored(document, rev), rev=rev)

    async def apply_file(self, path: Path) -> AppliedDirectory:
        """Validate ``path`` whole and make it the directory in force, or change nothing."""
        directory = read_directory_file(path, existing=self.current)
        return await self.apply(directory, source=str(path))

    async def apply(
        self, directory: Directory, *, source: str, expected_rev: int | None = None
    ) -> AppliedDirectory:
        """Make an already validated directory the one in force.

        ``expected_rev``: the revision the new directory was edited from; ConflictError (and
        no change) when another revision was applied since.
        """
        document = directory_document(directory)
        applied = await self.repo.apply(
            document, source=source, at=self.clock(), expected_rev=expected_rev
        )
        self.current, self.rev = directory, applied.rev
        return applied

    async def in_force(self) -> tuple[int, dict[str, Any]]:
        """The revision number and document in force, read from the store (an edit starts from
        it, not from this process's copy, which may be up to ``FOLLOW_S`` old)."""
        found = await self.repo.current()
        return found if found is not None else (0, directory_document(Directory()))

    async def refresh(self) -> bool:
        """Pick up a directory another process applied; True when it changed."""
        if await self.repo.current_rev() == self.rev:
            return False
        found = await self.repo.current()
        if found is None:
            return False
        rev, document = found
        self.current, self.rev = _stored(document, rev), rev
        log.info("directory revision %d in force", self.rev)
        return True

    async def revision(self, rev: int) -> Directory | None:
        """The directory of an earlier revision (None when there is no such revision)."""
        document = await self.repo.revision(rev)
        return _stored(document, rev) if document is not None else None

    async def follow(self, every_s: float = FOLLOW_S) -> None:
        """Pick up directories other processes apply, every ``every_s``, until cancelled.

        Each round is one indexed read of the newest revision number; the directory itself is
        read only when that number changed. A failed round is logged and the next one tries
        again (a busy store must not stop a worker from serving calls)."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.refresh()
            except Exception:
                log.exception("reading the directory in force failed; trying again")


def _stored(document: Mapping[str, Any], rev: int) -> Directory:
    """The directory of a stored revision (validated again, as any document is)."""
    return parse_directory(document, source=f"store revision {rev}")
