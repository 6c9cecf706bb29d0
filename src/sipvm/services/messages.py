"""Listing inboxes and messages, and every action on a message, each checked against rights.

A message's inbox never changes, so checking the right on it and then making the change with a
conditional UPDATE is atomic with respect to other members: whoever comes second is told what
happened (already deleted, already played) instead of getting an error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Literal

from sipvm.audio.convert import export_audio, join_recordings
from sipvm.domain.caller_id import CONTROL_CHARACTERS
from sipvm.domain.messages import (
    ActionResult,
    InboxSummary,
    MenuPlace,
    Message,
    NewMessage,
    Outcome,
)
from sipvm.domain.model import Extension, Right, sorted_rights
from sipvm.domain.rights import accessible_inboxes, require
from sipvm.errors import InvalidInputError, NotFoundError, NotPermittedError
from sipvm.services.directory import DirectoryService
from sipvm.storage.audio_files import AudioFiles, new_uid
from sipvm.storage.messages import SqliteMessageRepo

log = logging.getLogger(__name__)

#: The longest note a share may carry, in characters.
MAX_NOTE = 500


def note_problem(note: str) -> str | None:
    """Why a share's note cannot be kept, or None."""
    if len(note) > MAX_NOTE:
        return f"a note may be at most {MAX_NOTE} characters long, not {len(note)}"
    if CONTROL_CHARACTERS.search(note):
        return "a note must be one line of text, without control characters"
    return None


class MessageService:
    """Every use case on messages that a member (or the local admin) can ask for."""

    def __init__(
        self,
        directory: DirectoryService,
        repo: SqliteMessageRepo,
        files: AudioFiles,
        clock: Callable[[], datetime],
    ) -> None:
        self._directory = directory
        self._repo = repo
        self._files = files
        self._clock = clock

    # -- listings --------------------------------------------------------------------------

    async def inboxes(self, member: str) -> list[InboxSummary]:
        """Every inbox ``member`` may play, own first, with shared new/old counts."""
        directory = self._directory.current
        who = directory.get(member)
        if who is None or not who.kind.has_owner:
            raise NotFoundError(
                f"no user or common area has extension {member}; "
                "list extensions with `sipvm directory export`"
            )
        access = accessible_inboxes(directory, member)
        counts = await self._repo.counts(a.inbox.ext for a in access)
        return [
            InboxSummary(
                ext=a.inbox.ext,
                kind=a.inbox.kind,
                name=a.inbox.name,
                rights=tuple(sorted_rights(a.rights)),
                new=counts[a.inbox.ext].new,
                old=counts[a.inbox.ext].old,
                urgent_new=counts[a.inbox.ext].urgent_new,
                urgent_old=counts[a.inbox.ext].urgent_old,
                own=a.own,
            )
            for a in access
        ]

    async def messages(
        self,
        inbox: str,
        *,
        as_member: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        after: MenuPlace | None = None,
    ) -> list[Message]:
        """The inbox's messages in menu order; with ``as_member``, only if it may play them.
        A page is ``limit`` messages from ``offset``, or — as fast at the end of a long inbox
        as at its start — after the ``MenuPlace`` of the previous page's last message."""
        self.inbox(inbox)
        if as_member is not None:
            require(self._directory.current, as_member, inbox, Right.PLAY)
        if after is not None and offset:
            raise InvalidInputError("page either by offset or after a message, not both")
        return await self._repo.list_inbox(inbox, limit=limit, offset=offset, after=after)

    def inbox(self, ext: str) -> Extension:
        """The extension whose inbox is ``ext``; NotFoundError when there is none."""
        found = self._directory.current.get(ext)
        if found is None:
            raise NotFoundError(
                f"there is no inbox {ext}; list inboxes with `sipvm inboxes --member EXT`"
            )
        return found

    # -- actions ---------------------------------------------------------------------------

    async def listen(self, message_id: int, *, as_member: str) -> tuple[Message, Path] | None:
        """Start playing a message to a member: it is played for every member from now on.

        Returns the message and its audio file, or None when it was deleted meanwhile (by
        another member). A replay of a played message is audited as ``listen``.
        """
        try:
            await self._checked(message_id, as_member, Right.PLAY)
        except NotFoundError:
            return None
        result = await self._repo.mark_played(message_id, by=as_member, at=self._clock())
        if result.outcome is Outcome.GONE or result.message is None:
            return None
        if result.outcome is Outcome.ALREADY:
            await self._repo.record(
                actor=as_member, action="listen", message=result.message, at=self._clock()
            )
        return result.message, self._files.path(result.message.audio)

    async def audio(self, message_id: int, *, as_member: str) -> tuple[Message, Path]:
        """The message and its audio file, for a member with the play right, without marking
        it played (the rest of a playback already started with ``listen``)."""
        message = await self._checked(message_id, as_member, Right.PLAY)
        return message, self._files.path(message.audio)

    async def mark_played(self, message_id: int, *, as_member: str) -> ActionResult:
        """Played for every member (the state is shared)."""
        await self._checked(message_id, as_member, Right.PLAY)
        return await self._repo.mark_played(message_id, by=as_member, at=self._clock())

    async def mark_new(self, message_id: int, *, as_member: str) -> ActionResult:
        """Unplayed again for every member."""
        await self._checked(message_id, as_member, Right.PLAY)
        return await self._repo.mark_new(message_id, by=as_member, at=self._clock())

    async def delete(self, message_id: int, *, as_member: str) -> ActionResult:
        """Deleted for everyone with access, the owner included (restorable by an admin)."""
        await self._checked(message_id, as_member, Right.DELETE, allow_deleted=True)
        return await self._repo.delete(message_id, by=as_member, at=self._clock())

    async def restore(self, message_id: int, *, as_member: str) -> ActionResult:
        """Undelete a message for everyone; admins only."""
        who = self._directory.current.get(as_member)
        if who is None or not who.admin:
            raise NotPermittedError(
                f"only an admin user may restore deleted messages and {as_member} is not one; "
                "set admin = true for a user in the directory"
            )
        message = await self._repo.get(message_id)
        if message is None:
            raise NotFoundError(
                f"message {message_id} does not exist (deleted messages are purged after "
                "their restore window)"
            )
        return await self._repo.restore(message_id, by=as_member, at=self._clock())

    async def share(
        self,
        message_id: int,
        *,
        as_member: str,
        to: str,
        comment: Path | None = None,
        note: str = "",
    ) -> Message:
        """Give inbox ``to`` a copy with its own played state; audited as a share.

        With ``comment`` (a recording), the copy plays the comment first, then the original
        (Asterisk's "forward with prepend"). A ``note`` (one line of text, from the portal)
        travels with the copy for its recipients to read, beside who shared it; an empty note
        is none. The audit trail keeps it with the share too.
        """
        note = note.strip()
        problem = note_problem(note)
        if problem is not None:
            raise InvalidInputError(f"the note was refused: {problem}")
        message = await self._checked(message_id, as_member, Right.SHARE)
        target = self._directory.current.get(to)
        if target is None:
            raise NotFoundError(f"there is no inbox {to} to share with; check the extension")
        if not target.voicemail_enabled:
            raise InvalidInputError(
                f"inbox {to} has voicemail turned off and cannot receive messages"
            )
        if to == message.inbox:
            raise InvalidInputError(f"message {message_id} is already in inbox {to}")
        uid = new_uid()
        duration_ms = message.duration_ms
        if comment is None:
            audio = await asyncio.to_thread(self._files.link_copy, message.audio, to, uid)
        else:
            spooled = self._files.spool_wav(uid)
            original = self._files.path(message.audio)
            duration_ms = await asyncio.to_thread(join_recordings, comment, original, spooled)
            audio = await asyncio.to_thread(self._files.commit, spooled, to, uid)
        copy = NewMessage(
            uid=uid,
            inbox=to,
            received_at=self._clock(),
            duration_ms=duration_ms,
            audio=audio,
            caller=message.caller,
            caller_name=message.caller_name,
            called=message.called,
            reason=message.reason,
            urgent=message.urgent,
            source_id=message.id,
            shared_by=as_member,
            note=note or None,
        )
        shared = await self._repo.insert_share(copy, source=message, by=as_member)
        extras = [w for w, given in (("a comment", comment), ("a note", note)) if given]
        log.info(
            "message %s shared by %s to inbox %s as %s%s",
            message.id,
            as_member,
            to,
            shared.id,
            f" with {' and '.join(extras)}" if extras else "",
        )
        return shared

    async def export(
        self, message_id: int, *, as_member: str, fmt: Literal["mp3", "wav"], dst: Path
    ) -> Path:
        """Write the message's audio to ``dst`` (download right); audited as a download."""
        message = await self._checked(message_id, as_member, Right.DOWNLOAD)
        src = self._files.path(message.audio)
        await asyncio.to_thread(export_audio, src, dst, fmt)
        await self._repo.record(
            actor=as_member, action="download", message=message, at=self._clock(), detail=fmt
        )
        return dst

    async def _checked(
        self, message_id: int, as_member: str, right: Right, *, allow_deleted: bool = False
    ) -> Message:
        """The message, after checking ``as_member`` has ``right`` on its inbox."""
        message = await self._repo.get(message_id)
        if message is None:
            raise NotFoundError(f"message {message_id} does not exist")
        require(self._directory.current, as_member, message.inbox, right)
        if message.deleted and not allow_deleted:
            raise NotFoundError(
                f"message {message_id} was deleted by {message.deleted_by}; "
                f"an admin can restore it with `sipvm message restore {message_id} --as ADMIN`"
            )
        return message
