"""Greetings: upload (converted, stored durably, then made active), list, remove, look up.

Files live at ``DATA/greetings/<inbox>/<kind>-<uid>.wav``; the ``greetings`` row of an inbox
and kind names the one in force. An upload converts into a new file (a fresh uid, so the file
in force is never written to), makes it durable, and only then commits the row that points at
it; the file it replaced is deleted after the commit. A refused, failed or crashed upload
therefore leaves the old greeting in force. A crash can leave an unreferenced file behind; the
next upload to the same inbox deletes such files once they are :data:`ORPHAN_AGE_S` old (young
ones may belong to an upload still running in another process).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Final

from sipvm.audio.greeting import GreetingInfo, GreetingRejectedError, convert_greeting
from sipvm.domain.greetings import Greeting, managed_greetings
from sipvm.errors import InvalidFieldsError, InvalidInputError, NotFoundError, NotPermittedError
from sipvm.fsutil import fsync_dir
from sipvm.services.directory import DirectoryService
from sipvm.storage.audio_files import new_uid
from sipvm.storage.greetings import SqliteGreetingRepo

log = logging.getLogger(__name__)

KINDS: Final = ("unavailable", "busy", "temporary", "name", "business", "closed", "holiday")
"""Greeting kinds, in the order listings show them. ``business``, ``closed`` and ``holiday``
are what an auto receptionist (or a queue whose route is a message) plays in that period;
an auto receptionist's submenu may also have a prompt of kind ``menu-<submenu name>``."""

MENU_KIND_PREFIX: Final = "menu-"


def is_greeting_kind(kind: str) -> bool:
    """Whether ``kind`` is one of :data:`KINDS` or ``menu-<name>``."""
    if kind in KINDS:
        return True
    name = kind.removeprefix(MENU_KIND_PREFIX)
    return kind.startswith(MENU_KIND_PREFIX) and name.replace("_", "").replace("-", "").isalnum()


GREETINGS_DIR: Final = "greetings"
"""Directory under the data directory that holds greeting files."""

ORPHAN_AGE_S: Final = 3600.0
"""Age after which an unreferenced file is swept: its modification time against the service's
clock (the wall clock in production, which is what the file system stamps)."""

Converter = Callable[[Path, Path], GreetingInfo]
"""``convert(src, dst)``: writes the greeting at ``dst`` durably, or raises and leaves none."""


class GreetingService:
    """The greetings of every inbox (the admin uploads them; the deposit flow plays them)."""

    def __init__(
        self,
        directory: DirectoryService,
        repo: SqliteGreetingRepo,
        data_dir: Path,
        clock: Callable[[], datetime],
        *,
        convert: Converter = convert_greeting,
    ) -> None:
        self._directory = directory
        self._repo = repo
        self._data_dir = data_dir
        self._clock = clock
        self._convert = convert

    async def upload(
        self,
        inbox: str,
        kind: str,
        src: Path,
        *,
        by: str = "admin",
        as_member: str | None = None,
        shown_as: str | None = None,
    ) -> Greeting:
        """Convert ``src`` and make it the inbox's ``kind`` greeting.

        With ``as_member`` (the portal, the phone), only a greeting that member may record
        (``domain.greetings.managed_greetings``), uploaded by it. ``shown_as`` names the file
        in a refusal instead of ``src`` (an upload's scratch path is nobody's business).

        The old greeting stays in force (row and file) until the new file is durable and its row
        committed; then the old file is deleted. A refused or failed upload changes nothing.

        Raises:
            NotFoundError: there is no inbox ``inbox``.
            InvalidInputError: ``kind`` is not a greeting kind, or ``src`` cannot be a greeting
                (``GreetingRejectedError``, with the reason).
            NotPermittedError: ``as_member`` may not record the inbox's greetings.
        """
        self._check(inbox, kind)
        if as_member is not None:
            kinds = self.kinds_for(inbox, as_member=as_member)
            if kind not in kinds:
                raise InvalidFieldsError(
                    {
                        "kind": f"inbox {inbox} has no {kind} greeting to record; its greetings: "
                        + ", ".join(kinds)
                    }
                )
            by = as_member
        rel = f"{GREETINGS_DIR}/{inbox}/{kind}-{new_uid()}.wav"
        dst = self._path(rel)
        await asyncio.to_thread(self._make_dir, dst.parent)
        try:
            try:
                info = await asyncio.to_thread(self._convert, src, dst)
            except GreetingRejectedError as exc:
                if shown_as is None:
                    raise
                raise GreetingRejectedError(str(exc).replace(str(src), shown_as)) from None
            greeting = Greeting(
                inbox=inbox,
                kind=kind,
                audio=rel,
                duration_ms=round(info.duration_s * 1000),
                uploaded_at=self._clock(),
                uploaded_by=by,
            )
            replaced = await self._repo.put(greeting)
        except Exception:
            # No row points at the new file: drop it, the old greeting is still the one in force.
            # (Not on cancellation: the commit may have gone through; an unused file is swept.)
            dst.unlink(missing_ok=True)
            raise
        if replaced is not None and replaced != rel:
            await asyncio.to_thread(self._delete, replaced)
        await self._sweep_orphans(inbox)
        log.info(
            "inbox %s: %s greeting uploaded by %s (%.1f s, peak %.1f dBFS)",
            inbox,
            kind,
            by,
            info.duration_s,
            info.peak_dbfs,
        )
        return greeting

    def kinds_for(self, inbox: str, *, as_member: str) -> tuple[str, ...]:
        """The greeting kinds ``as_member`` may record for ``inbox``; NotPermittedError when
        none (the owner records a user's or common area's, an admin a queue's, AR's or
        group's)."""
        self._check(inbox, None)
        kinds = managed_greetings(self._directory.current, as_member, inbox)
        if not kinds:
            raise NotPermittedError(
                f"{as_member} may not manage the greetings of inbox {inbox}: owners record "
                "their own, admins those of call queues, auto receptionists and shared line "
                "groups"
            )
        return kinds

    async def list(self, inbox: str, *, as_member: str | None = None) -> list[Greeting]:
        """The inbox's greetings in force, in :data:`KINDS` order (with ``as_member``: only
        for a member who manages them)."""
        self._check(inbox, None)
        if as_member is not None:
            self.kinds_for(inbox, as_member=as_member)
        found = await self._repo.list(inbox)
        return sorted(found, key=lambda g: KINDS.index(g.kind) if g.kind in KINDS else len(KINDS))

    async def remove(self, inbox: str, kind: str, *, as_member: str | None = None) -> Greeting:
        """Remove a greeting (callers hear the system greeting again); returns what was removed.

        Raises:
            NotFoundError: no such inbox, or it has no greeting of that kind.
            InvalidInputError: ``kind`` is not a greeting kind.
            NotPermittedError: ``as_member`` (when given) does not manage its greetings.
        """
        self._check(inbox, kind)
        if as_member is not None:
            self.kinds_for(inbox, as_member=as_member)  # any kind: also a submenu's gone since
        removed = await self._repo.remove(inbox, kind)
        if removed is None:
            raise NotFoundError(
                f"inbox {inbox} has no {kind} greeting; "
                f"see its greetings with `sipvm greeting list --inbox {inbox}`"
            )
        await asyncio.to_thread(self._delete, removed.audio)
        log.info("inbox %s: %s greeting removed", inbox, kind)
        return removed

    async def file_for(self, inbox: str, kind: str, *, as_member: str) -> Path:
        """The file of a greeting in force, for a member who manages it to listen to."""
        self._check(inbox, kind)
        self.kinds_for(inbox, as_member=as_member)
        path = await self.path_for(inbox, kind)
        if path is None:
            raise NotFoundError(f"inbox {inbox} has no {kind} greeting")
        return path

    async def path_for(self, inbox: str, kind: str) -> Path | None:
        """The file of the inbox's ``kind`` greeting in force, or None (the deposit flow asks)."""
        found = await self._repo.get(inbox, kind)
        if found is None:
            return None
        path = self._path(found.audio)
        if not path.is_file():
            log.warning("inbox %s: %s greeting file %s is missing", inbox, kind, path)
            return None
        return path

    # -- helpers ---------------------------------------------------------------------------

    def _check(self, inbox: str, kind: str | None) -> None:
        if self._directory.current.get(inbox) is None:
            raise NotFoundError(
                f"there is no inbox {inbox}; list inboxes with `sipvm inboxes --member EXT`"
            )
        if kind is not None and not is_greeting_kind(kind):
            raise InvalidInputError(
                f"unknown greeting kind {kind!r}: use one of {', '.join(KINDS)}, "
                "or menu-<submenu name> for an auto receptionist's submenu"
            )

    def _path(self, rel: str) -> Path:
        target = (self._data_dir / rel).resolve()
        if not target.is_relative_to(self._data_dir.resolve()):
            raise ValueError(f"greeting path {rel!r} leaves the data directory")
        return target

    def _make_dir(self, path: Path) -> None:
        """Create ``path`` (and missing parents), fsyncing each parent so the entries last."""
        missing = [p for p in (path.parent, path) if not p.is_dir()]
        for p in missing:
            p.mkdir(exist_ok=True)
            fsync_dir(p.parent)

    def _delete(self, rel: str) -> None:
        self._path(rel).unlink(missing_ok=True)

    async def _sweep_orphans(self, inbox: str) -> None:
        in_force = {self._path(g.audio) for g in await self._repo.list(inbox)}
        folder = self._path(f"{GREETINGS_DIR}/{inbox}")
        before = self._clock().timestamp() - ORPHAN_AGE_S
        await asyncio.to_thread(_delete_old_files, folder, in_force, before)


def _delete_old_files(folder: Path, keep: set[Path], before: float) -> None:
    """Delete files in ``folder`` not in ``keep`` whose modification time is before ``before``."""
    for entry in os.scandir(folder):
        path = Path(entry.path).resolve()
        if path in keep or not entry.is_file(follow_symlinks=False):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_mtime < before:
                path.unlink()
                log.info("deleted %s: no greeting uses it (left by an interrupted upload)", path)
        except FileNotFoundError:
            pass  # another process swept it first
