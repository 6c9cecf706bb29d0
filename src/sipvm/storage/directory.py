"""The directory in force, kept as numbered revisions of its canonical document.

The store keeps documents (what ``provisioning.directory_file`` exports and validates); the
directory service turns them into a ``Directory`` and back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sipvm.errors import ConflictError
from sipvm.storage.db import Database


@dataclass(frozen=True)
class AppliedDirectory:
    """The result of applying a directory."""

    rev: int
    changed: bool
    """False when the new directory equals the one in force (nothing was written)."""


class SqliteDirectoryRepo:
    """Directory revisions in the SQLite store; the highest revision is in force."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def current(self) -> tuple[int, dict[str, Any]] | None:
        """The revision number and document in force, or None before the first apply."""
        async with self._db.read() as conn:
            cursor = await conn.execute(
                "SELECT rev, document FROM directory_revisions ORDER BY rev DESC LIMIT 1"
            )
            row = await cursor.fetchone()
        if row is None:
            return None
        return int(row[0]), _decoded(row[1])

    async def revision(self, rev: int) -> dict[str, Any] | None:
        """The document of an earlier revision (None when there is no such revision)."""
        async with self._db.read() as conn:
            cursor = await conn.execute(
                "SELECT document FROM directory_revisions WHERE rev = ?", (rev,)
            )
            row = await cursor.fetchone()
        if row is None:
            return None
        return _decoded(row[0])

    async def current_rev(self) -> int:
        """The revision in force (0 before the first apply): cheap, for noticing changes."""
        async with self._db.read() as conn:
            cursor = await conn.execute("SELECT COALESCE(MAX(rev), 0) FROM directory_revisions")
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def apply(
        self,
        document: Mapping[str, Any],
        *,
        source: str,
        at: datetime,
        expected_rev: int | None = None,
    ) -> AppliedDirectory:
        """Make ``document`` the one in force, in one transaction; no-op when unchanged.

        With ``expected_rev`` (the revision an edit was made on), a newer revision in force
        refuses the edit with ConflictError and nothing is written: an edit never silently
        undoes what someone else applied meanwhile.
        """
        encoded = json.dumps(document, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(encoded.encode()).hexdigest()
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "SELECT rev, digest FROM directory_revisions ORDER BY rev DESC LIMIT 1"
            )
            row = await cursor.fetchone()
            in_force = int(row[0]) if row is not None else 0
            if expected_rev is not None and in_force != expected_rev:
                raise ConflictError(
                    f"the directory changed while you edited it (revision {in_force} is in "
                    f"force, the edit was made on revision {expected_rev}); nothing was "
                    "changed: load it again and redo the edit"
                )
            if row is not None and row[1] == digest:
                return AppliedDirectory(rev=int(row[0]), changed=False)
            cursor = await conn.execute(
                "INSERT INTO directory_revisions (applied_at, source, digest, document)"
                " VALUES (?, ?, ?, ?)",
                (at.astimezone(UTC).isoformat(), source, digest, encoded),
            )
            rev = cursor.lastrowid
        assert rev is not None
        return AppliedDirectory(rev=rev, changed=True)


def _decoded(document: str) -> dict[str, Any]:
    decoded = json.loads(document)
    assert isinstance(decoded, dict), "a stored directory document is a JSON object"
    return decoded
