"""Turning recordings into durable messages; startup recovery; purging old deletions.

A message exists only when its audio is durable and its row committed. The order is: sidecar
JSON (facts) → recording → fsync + rename into ``audio/`` → row committed → sidecar removed.
A crash at any point leaves either nothing, or a spool entry that ``recover()`` adopts (header
repaired) or quarantines — never a silent loss.

A recording that is silence from end to end (see ``audio.wav.is_silent``) never becomes a
message, from a call or from recovery: a caller who said nothing (a scanner's ghost call, a
dead media path, a pocket dial) must not light every member's lamp. It is measured here, where
the file is read anyway, so the call flows stay free of file I/O.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sipvm.audio.wav import SILENCE_DBFS, is_silent, read_wav_info, repair_wav_header
from sipvm.domain.messages import DepositFacts, Message, NewMessage
from sipvm.errors import CorruptAudioError, NotFoundError
from sipvm.services.directory import DirectoryService
from sipvm.storage.audio_files import AudioFiles, new_uid
from sipvm.storage.db import retry_when_locked
from sipvm.storage.messages import SqliteMessageRepo

log = logging.getLogger(__name__)

#: How long a deleted message can be restored before it is purged with its audio.
RESTORE_WINDOW = timedelta(days=30)


@dataclass
class RecoveryReport:
    """What startup recovery did."""

    adopted: list[Message] = field(default_factory=list)
    quarantined: list[tuple[Path, str]] = field(default_factory=list)
    cleaned: int = 0


class DepositService:
    """Stores recordings as messages."""

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

    async def begin(self, facts: DepositFacts) -> tuple[str, Path]:
        """Reserve a recording: returns its uid and the WAV path the recorder should write."""
        if self._directory.current.get(facts.inbox) is None:
            raise NotFoundError(f"there is no inbox {facts.inbox}")
        uid = new_uid()
        record = asdict(facts) | {"uid": uid, "received_at": facts.received_at.isoformat()}
        await asyncio.to_thread(self._files.write_sidecar, uid, record)
        return uid, self._files.spool_wav(uid)

    async def finish(self, uid: str, *, urgent: bool | None = None) -> Message | None:
        """Store the finished recording ``uid`` as a message; None when it is too short or
        only silence (discarded, with a log line saying which)."""
        facts = await asyncio.to_thread(self._files.read_sidecar, uid)
        if urgent is not None:
            facts["urgent"] = urgent
        return await self._store(uid, facts, self._files.spool_wav(uid), actor="caller")

    async def deposit_file(self, facts: DepositFacts, wav: Path) -> Message | None:
        """Store an existing WAV as a message (the file is copied; ``wav`` is left as it is)."""
        uid, spool = await self.begin(facts)
        await asyncio.to_thread(shutil.copyfile, wav, spool)
        return await self.finish(uid)

    async def discard(self, uid: str) -> None:
        """Abandon a recording (e.g. the caller chose to re-record)."""
        await asyncio.to_thread(self._files.discard_spool, uid)

    async def recover(self) -> RecoveryReport:
        """Adopt or quarantine every recording a crash left in the spool; log each one."""
        report = RecoveryReport()
        spool = self._files.spool
        for sidecar in sorted(spool.glob("*.json")):
            uid = sidecar.stem
            stored = await self._repo.get_by_uid(uid)
            if stored is not None:  # crashed after commit, before cleanup
                await asyncio.to_thread(self._files.discard_spool, uid)
                report.cleaned += 1
                continue
            try:
                facts = await asyncio.to_thread(self._files.read_sidecar, uid)
                inbox = str(facts["inbox"])
            except (ValueError, KeyError, OSError) as exc:
                await self._quarantine(report, sidecar, f"unreadable sidecar ({exc})", uid)
                continue
            wav = self._files.spool_wav(uid)
            committed = self._files.path(self._files.final_relpath(inbox, uid))
            if not wav.exists() and committed.exists():
                wav = committed  # crashed between the rename and the commit
            if not wav.exists():
                await self._quarantine(report, sidecar, "no recording was written", uid)
                continue
            try:
                info, repaired = await asyncio.to_thread(repair_wav_header, wav)
            except CorruptAudioError as exc:
                await self._quarantine(report, wav, str(exc), uid)
                continue
            minimum = self._directory.current.defaults.min_message_s
            if info.duration_s < minimum:
                await self._quarantine(
                    report, wav, f"{info.duration_s:.1f} s is shorter than {minimum} s", uid
                )
                continue
            if await asyncio.to_thread(is_silent, wav):
                await self._quarantine(
                    report, wav, f"{info.duration_s:.1f} s of only silence, no message", uid
                )
                continue
            message = await self._store(uid, facts, wav, actor="system", action="recover")
            if message is not None:
                log.warning(
                    "recovered an interrupted recording as message %s in inbox %s "
                    "(%.1f s, header %s)",
                    message.id,
                    inbox,
                    info.duration_s,
                    "repaired" if repaired else "intact",
                )
                report.adopted.append(message)
        for orphan in sorted(spool.glob("*.wav")):
            if not self._files.sidecar(orphan.stem).exists():
                await self._quarantine(report, orphan, "recording without its facts", None)
        return report

    async def purge(self) -> int:
        """Remove messages deleted longer ago than the restore window, with their audio."""
        now = self._clock()
        purged = await self._repo.purge_deleted(deleted_before=now - RESTORE_WINDOW, at=now)
        for message in purged:
            if not await self._repo.audio_in_use(message.audio):
                await asyncio.to_thread(self._files.remove, message.audio)
        if purged:
            log.info("purged %d messages deleted over %s ago", len(purged), RESTORE_WINDOW.days)
        return len(purged)

    async def _store(
        self, uid: str, facts: dict[str, object], wav: Path, *, actor: str, action: str = "deposit"
    ) -> Message | None:
        inbox = str(facts["inbox"])
        info = await asyncio.to_thread(read_wav_info, wav)
        minimum = self._directory.current.defaults.min_message_s
        if info.duration_s < minimum:
            log.info(
                "discarded a %.1f s recording for inbox %s (shorter than %s s)",
                info.duration_s,
                inbox,
                minimum,
            )
            await asyncio.to_thread(self._files.discard_spool, uid)
            return None
        if await asyncio.to_thread(is_silent, wav):
            log.info(
                "inbox %s: not stored: the caller sent only silence (%.1f s, nothing above "
                "%.0f dBFS)",
                inbox,
                info.duration_s,
                SILENCE_DBFS,
            )
            await asyncio.to_thread(self._files.discard_spool, uid)
            return None
        audio = await asyncio.to_thread(self._files.commit, wav, inbox, uid)
        new = NewMessage(
            uid=uid,
            inbox=inbox,
            received_at=datetime.fromisoformat(str(facts["received_at"])),
            duration_ms=round(info.duration_s * 1000),
            audio=audio,
            caller=str(facts.get("caller", "")),
            caller_name=str(facts.get("caller_name", "")),
            called=str(facts.get("called", "")),
            reason=str(facts.get("reason", "")),
            urgent=bool(facts.get("urgent", False)),
        )
        # Many workers ending calls at once may hold the store past its busy timeout: wait and
        # try again rather than leave the message to the next start's recovery.
        message = await retry_when_locked(
            lambda: self._repo.insert(new, actor=actor, action=action),
            what=f"storing message {uid} for inbox {inbox}",
        )
        await asyncio.to_thread(self._files.sidecar(uid).unlink, True)
        return message

    async def _quarantine(
        self, report: RecoveryReport, path: Path, reason: str, uid: str | None
    ) -> None:
        moved = await asyncio.to_thread(self._files.to_quarantine, path)
        if uid is not None:
            for leftover in (self._files.sidecar(uid), self._files.spool_wav(uid)):
                if leftover.exists():
                    await asyncio.to_thread(self._files.to_quarantine, leftover)
        log.warning("quarantined %s: %s (kept in %s for an admin)", path.name, reason, moved)
        report.quarantined.append((moved, reason))
