"""Sends the queued emails, retrying with backoff; a call never waits for it.

Each queued email is built when it is sent, from the directory in force then: a recipient who
lost access is not emailed, the MP3 is attached only if the recipient has the download right
now, and an email about a message deleted meanwhile is dropped. A failed send stays queued (in
the store, so across restarts) and is retried after ``retry_delay``; a permanent refusal (5xx)
or an email older than ``give_up_h`` is marked failed for the admin (``sipvm email queue``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from sipvm.audio.convert import export_audio
from sipvm.config import SmtpSettings
from sipvm.domain.messages import Message
from sipvm.domain.model import Directory
from sipvm.domain.notifications import attach_audio
from sipvm.notify.email import (
    EmailSendError,
    EmailTemplates,
    GrantedInbox,
    NewMessageFacts,
    Recipient,
    compose,
    retry_delay,
)
from sipvm.services.directory import DirectoryService
from sipvm.storage.audio_files import AudioFiles
from sipvm.storage.messages import SqliteMessageRepo
from sipvm.storage.notify import QueuedEmail, SqliteNotifyRepo

log = logging.getLogger(__name__)

#: Longest sleep between looks at the outbox (another process may have queued emails).
IDLE_S = 30.0


class EmailTransport(Protocol):
    """Delivers one email (``SmtpSender``)."""

    async def send(self, message: EmailMessage) -> None:
        """Send it or raise ``EmailSendError``."""


class Mailer:
    """Works through the email outbox until cancelled."""

    def __init__(
        self,
        *,
        settings: SmtpSettings,
        repo: SqliteNotifyRepo,
        messages: SqliteMessageRepo,
        files: AudioFiles,
        directory: DirectoryService,
        templates: EmailTemplates,
        transport: EmailTransport,
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._repo = repo
        self._messages = messages
        self._files = files
        self._directory = directory
        self._templates = templates
        self._transport = transport
        self._clock = clock
        self._wake = asyncio.Event()
        self._mp3: tuple[int, bytes] | None = None

    def wake(self) -> None:
        """Look at the outbox now (emails were queued)."""
        self._wake.set()

    async def run(self) -> None:
        """Send due emails as they come; sleep until the next is due."""
        while True:
            self._wake.clear()
            try:
                await self.send_due()
                next_at = await self._repo.next_due()
            except Exception:
                log.exception("mailer: working through the outbox failed; trying again")
                next_at = None
            wait = IDLE_S
            if next_at is not None:
                wait = min(IDLE_S, max(0.0, (next_at - self._clock()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def send_due(self) -> int:
        """Try every email that is due; returns how many were sent."""
        sent = 0
        while True:
            batch = await self._repo.due(self._clock())
            if not batch:
                return sent
            for i, email in enumerate(batch):
                outcome = await self._deliver(email)
                if outcome == "sent":
                    sent += 1
                elif outcome == "server-down":
                    # Don't knock on a server that is down once per email: the rest wait too.
                    for later in batch[i + 1 :]:
                        await self._postpone(later, "not tried: the SMTP server was unreachable")
                    return sent

    async def _deliver(self, email: QueuedEmail) -> str:
        now = self._clock()
        try:
            message = await self._build(email)
        except Exception as exc:
            log.exception("email %d to %s could not be built", email.id, email.recipient)
            await self._repo.give_up(email, error=f"could not build the email: {exc}")
            return "failed"
        if message is None:
            await self._repo.dropped(email)
            return "dropped"
        try:
            await self._transport.send(message)
        except EmailSendError as exc:
            too_old = now - email.created_at > timedelta(hours=self._settings.give_up_h)
            if exc.permanent or too_old:
                log.warning(
                    "email %d to %s (%s) given up after %d attempts: %s",
                    email.id,
                    email.recipient,
                    email.kind,
                    email.attempts + 1,
                    exc,
                )
                await self._repo.give_up(email, error=str(exc))
                return "failed"
            await self._postpone(email, str(exc))
            return "server-down"
        with_audio = message.get_content_maintype() == "multipart"
        detail = f"to {email.recipient}" + (", with the audio" if with_audio else "")
        await self._repo.sent(email, at=now, detail=detail)
        log.info("emailed %s about %s (%s)", email.recipient, email.inbox or "access", email.kind)
        return "sent"

    async def _postpone(self, email: QueuedEmail, error: str) -> None:
        delay = retry_delay(email.attempts + 1, self._settings.retry_s)
        next_at = self._clock() + timedelta(seconds=delay)
        log.warning(
            "email %d to %s not sent (attempt %d): %s; retrying in %.0f s",
            email.id,
            email.recipient,
            email.attempts + 1,
            error,
            delay,
        )
        await self._repo.retry_later(email, next_at=next_at, error=error)

    async def _build(self, email: QueuedEmail) -> EmailMessage | None:
        """The email as it should go out now, or None when it should no longer be sent."""
        directory = self._directory.current
        who = directory.get(email.recipient)
        name = who.name if who is not None else email.recipient
        address = (who.email if who is not None else None) or email.address
        recipient = Recipient(email.recipient, name, address)
        if email.kind == "access-granted":
            if who is None or not who.email or not who.notify_email:
                return None
            inboxes = [
                GrantedInbox(str(g["inbox"]), str(g["name"]), tuple(g["rights"]))
                for g in email.detail or []
            ]
            subject, body = self._templates.access_granted(recipient, inboxes)
            return compose(
                sender=self._settings.sender,
                recipient=recipient,
                subject=subject,
                body=body,
                sent_at=self._clock(),
            )
        if email.message_id is None:
            return None
        message = await self._messages.get(email.message_id)
        inbox = directory.get(email.inbox)
        if message is None or message.deleted or inbox is None:
            log.info("email %d dropped: message %s was deleted", email.id, email.message_id)
            return None
        with_audio = attach_audio(directory, email.recipient, email.inbox)
        if with_audio is None:
            log.info("email %d dropped: %s no longer has access", email.id, email.recipient)
            return None
        site = directory.sites.get(inbox.site)
        facts = NewMessageFacts(
            message_id=message.id,
            inbox=inbox.ext,
            inbox_name=inbox.name,
            caller=message.caller,
            caller_name=message.caller_name,
            received_at=message.received_at,
            duration_s=message.duration_s,
            timezone=site.timezone if site is not None else "UTC",
            shared_by=_member_name(directory, message.shared_by),
            note=message.note or "",
        )
        subject, body = self._templates.new_message(facts, recipient, with_audio=with_audio)
        attachment = None
        if with_audio:
            filename = f"voicemail-{inbox.ext}-{message.id}.mp3"
            attachment = (filename, await self._audio(message))
        return compose(
            sender=self._settings.sender,
            recipient=recipient,
            subject=subject,
            body=body,
            sent_at=self._clock(),
            attachment=attachment,
        )

    async def _audio(self, message: Message) -> bytes:
        """The message as MP3 (the last one is kept: several members get the same file)."""
        if self._mp3 is not None and self._mp3[0] == message.id:
            return self._mp3[1]
        src = self._files.path(message.audio)
        with tempfile.TemporaryDirectory(prefix="sipvm-mail-") as tmp:
            dst = Path(tmp) / "message.mp3"
            await asyncio.to_thread(export_audio, src, dst, "mp3")
            data = dst.read_bytes()
        self._mp3 = (message.id, data)
        return data


def _member_name(directory: Directory, ext: str | None) -> str:
    """``Bob Jones (1002)``; the extension alone once it left the directory; empty for none."""
    if not ext:
        return ""
    found = directory.get(ext)
    return f"{found.name} ({ext})" if found is not None else ext
