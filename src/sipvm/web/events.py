"""Live updates for open pages: the ``EventHub`` fans changes out to server-sent event streams.

Every change to a message, from any channel (phone, CLI, another browser, another worker), is
an audit line in the store. The process that serves HTTP follows the audit log (the notifier
does, or an ``AuditFollower`` where the notifier runs elsewhere) and hands each line to
``EventHub.publish``. Each open stream (``GET /api/v1/events``) gets the changes to the inboxes
its viewer may see: members those they may play, admins every inbox. A new directory revision
is sent to every stream (``{"action": "directory", "rev": N}``): what each viewer may see may
have changed.

Publishing never waits: a stream whose client does not keep up has its queue cut short and is
told to reload (``{"action": "reload"}``) instead of holding the server's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sipvm.domain.model import Directory
from sipvm.domain.rights import accessible_inboxes
from sipvm.services.directory import DirectoryService
from sipvm.storage.notify import AuditEvent, SqliteNotifyRepo
from sipvm.web.viewer import Viewer

log = logging.getLogger(__name__)

#: Events a stream may hold before it is cut short and told to reload.
QUEUE_LIMIT = 1000
#: A comment line this often keeps proxies from closing an idle stream and lets the server
#: notice a client that went away or a session that ended.
KEEPALIVE_S = 15.0
#: How often the ``AuditFollower`` reads the audit log.
FOLLOW_S = 0.25


@dataclass(eq=False)  # kept in a set: each stream is itself
class _Stream:
    viewer: Viewer
    queue: asyncio.Queue[dict[str, Any] | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_LIMIT)
    )
    directory: Directory | None = None
    visible: frozenset[str] = frozenset()

    def sees(self, directory: Directory, inbox: str) -> bool:
        if self.viewer.admin:
            return True
        if directory is not self.directory:
            self.directory = directory
            self.visible = frozenset(
                a.inbox.ext for a in accessible_inboxes(directory, self.viewer.ext)
            )
        return inbox in self.visible

    def put(self, event: dict[str, Any] | None) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            # Too far behind: drop what is queued and ask the page to reload instead.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait({"action": "reload"})


class EventHub:
    """Fans store changes out to the open event streams of the portal and the API."""

    def __init__(self, directory: DirectoryService) -> None:
        self._directory = directory
        self._streams: set[_Stream] = set()
        self._rev = directory.rev
        self._closed = False

    @property
    def streams(self) -> int:
        """How many streams are open."""
        return len(self._streams)

    def publish(self, events: Iterable[AuditEvent]) -> None:
        """Hand audit lines (in order) to the streams whose viewer sees their inbox."""
        self._directory_changed()
        directory = self._directory.current
        for event in events:
            body = {
                "id": event.id,
                "inbox": event.inbox,
                "message": event.message_id,
                "action": event.action,
            }
            for stream in self._streams:
                if stream.sees(directory, event.inbox):
                    stream.put(body)

    def _directory_changed(self) -> None:
        rev = self._directory.rev
        if rev != self._rev:
            self._rev = rev
            for stream in self._streams:
                stream.put({"action": "directory", "rev": rev})

    @contextlib.asynccontextmanager
    async def subscribe(
        self, viewer: Viewer
    ) -> AsyncIterator[asyncio.Queue[dict[str, Any] | None]]:
        """A queue of the events ``viewer`` sees, while the block runs (None: the hub closed)."""
        stream = _Stream(viewer)
        if self._closed:
            stream.put(None)
        self._streams.add(stream)
        try:
            yield stream.queue
        finally:
            self._streams.discard(stream)

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        self._closed = True
        for stream in self._streams:
            stream.put(None)


async def event_stream(
    hub: EventHub,
    viewer: Viewer,
    *,
    still_signed_in: Callable[[], Awaitable[bool]],
    keepalive_s: float = KEEPALIVE_S,
) -> AsyncIterator[str]:
    """The text of a server-sent event stream for ``viewer``, until the hub closes or the
    viewer's sign-in ends (checked at each keepalive)."""
    async with hub.subscribe(viewer) as queue:
        yield f"retry: 2000\n: {hub.streams} streams open\n\n"
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), keepalive_s)
            except TimeoutError:
                if not await still_signed_in():
                    yield 'data: {"action": "signed-out"}\n\n'
                    return
                yield ": keepalive\n\n"
                continue
            if event is None:
                return
            head = f"id: {event['id']}\n" if "id" in event else ""
            yield f"{head}data: {json.dumps(event)}\n\n"


class AuditFollower:
    """Reads new audit lines and hands them to ``EventHub`` — for a process that serves HTTP
    but does not run the notifier (the pool's supervisor)."""

    def __init__(self, repo: SqliteNotifyRepo, hub: EventHub, *, poll_s: float = FOLLOW_S):
        self._repo = repo
        self._hub = hub
        self._poll_s = poll_s
        self._seen = 0

    async def start(self) -> None:
        """Start from the newest audit line (earlier ones are no news to an open page)."""
        self._seen, _ = await self._repo.newest()

    async def run(self) -> None:
        """Follow until cancelled; a failed round is logged and the next one tries again."""
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                await self.poll()
            except Exception:
                log.exception("reading the audit log for open pages failed; trying again")

    async def poll(self) -> None:
        """Hand every audit line since the last round to the hub."""
        newest, _ = await self._repo.newest()
        while self._seen < newest:
            events = await self._repo.audit_since(self._seen, 500)
            if not events:
                break
            self._hub.publish(events)
            self._seen = events[-1].id
        self._hub.publish(())  # a directory revision alone is news too
