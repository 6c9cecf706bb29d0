"""Greetings: upload (converted, stored durably, then made active), list, remove, look up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sipvm.audio.greeting import convert_greeting
from sipvm.errors import InvalidInputError, NotFoundError
from sipvm.services.directory import DirectoryService
from sipvm.storage.audio_files import AudioFiles, new_uid
from sipvm.storage.greetings import Greeting, SqliteGreetingRepo

log = logging.getLogger(__name__)

KINDS = ("unavailable", "busy", "temporary", "name")


class GreetingService:
    """The greetings of every inbox."""

    def __init__(
        self,
        directory: DirectoryService,
        repo: SqliteGreetingRepo,
        files: AudioFiles,
        clock: Callable[[], datetime],
    ) -> None:
        self._directory = directory
        self._repo = repo
        self._files = files
        self._clock = clock

    async def upload(self, inbox: str, kind: str, src: Path, *, by: str = "admin") -> Greeting:
        """Convert ``src`` and make it the inbox's ``kind`` greeting.

        The old greeting stays in force until the new file is durable and its row committed;
        a refused or failed upload changes nothing.
        """
        self._check(inbox, kind)
        if not src.is_file():
            raise InvalidInputError(f"cannot read {src}: no such file")
        rel = f"greetings/{inbox}/{kind}-{new_uid()}.wav"
        dst = self._files.path(rel)
        info = await asyncio.to_thread(convert_greeting, src, dst)
        greeting = Greeting(inbox, kind, rel, round(info.duration_s * 1000), self._clock(), by)
        try:
            replaced = await self._repo.put(greeting)
        except BaseException:
            dst.unlink(missing_ok=True)
            raise
        if replaced:
            await asyncio.to_thread(self._files.remove, replaced)
        log.info("inbox %s: %s greeting uploaded (%.1f s)", inbox, kind, info.duration_s)
        return greeting

    async def list(self, inbox: str) -> list[Greeting]:
        """The inbox's greetings."""
        self._check(inbox, None)
        return await self._repo.list(inbox)

    async def remove(self, inbox: str, kind: str) -> None:
        """Remove a greeting (the system greeting is used again)."""
        self._check(inbox, kind)
        removed = await self._repo.remove(inbox, kind)
        if removed is None:
            raise NotFoundError(f"inbox {inbox} has no {kind} greeting")
        await asyncio.to_thread(self._files.remove, removed)

    async def path_for(self, inbox: str, kind: str) -> Path | None:
        """The file of the greeting in force, or None (the deposit flow asks this)."""
        found = await self._repo.get(inbox, kind)
        if found is None:
            return None
        path = self._files.path(found.audio)
        return path if path.exists() else None

    def _check(self, inbox: str, kind: str | None) -> None:
        if self._directory.current.get(inbox) is None:
            raise NotFoundError(
                f"there is no inbox {inbox}; list inboxes with `sipvm inboxes --member EXT`"
            )
        if kind is not None and kind not in KINDS:
            raise InvalidInputError(
                f"unknown greeting kind {kind!r}: use one of {', '.join(KINDS)}"
            )
