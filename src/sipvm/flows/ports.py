"""What the call flows need from the rest of sipvm, as protocols (one of each).

The flows see only these roles (and ``CallChannel``, in ``channel.py``): the services and the
SIP worker implement them, the tests fake them, and nothing here names a technology.
Implementations: ``DirectoryService``, ``PromptSet``, ``GreetingService``, ``DepositService``,
``MessageService``, ``LoginService``, ``RoutingService`` and ``sip.SipWorker``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from sipvm.domain.lockout import LoginOutcome
from sipvm.domain.messages import ActionResult, DepositFacts, InboxSummary, Message
from sipvm.domain.model import Directory
from sipvm.domain.routing import Period, Route
from sipvm.flows.channel import CallChannel


class DirectorySource(Protocol):
    """The directory in force (``services.directory.DirectoryService``)."""

    @property
    def current(self) -> Directory: ...


class Prompts(Protocol):
    """Prompt ids to sound files (``sipvm.prompts.PromptSet``)."""

    def get(self, prompt_id: str, **fill: object) -> list[Path]: ...


class GreetingFiles(Protocol):
    """The greeting files of inboxes, to play (``services.greetings.GreetingService``)."""

    async def path_for(self, inbox: str, kind: str) -> Path | None: ...


class Greetings(GreetingFiles, Protocol):
    """Greetings to play, and to record or remove by phone (the mailbox options)."""

    async def upload(self, inbox: str, kind: str, src: Path, *, by: str = "admin") -> object: ...

    async def remove(self, inbox: str, kind: str) -> object: ...


class MessageSink(Protocol):
    """Where recordings become messages (``services.deposits.DepositService``)."""

    async def begin(self, facts: DepositFacts) -> tuple[str, Path]: ...

    async def finish(self, uid: str, *, urgent: bool | None = None) -> object | None:
        """Store the recording; None when it is not a message (too short, only silence:
        the sink logs which)."""
        ...

    async def discard(self, uid: str) -> None: ...


class Mailboxes(Protocol):
    """Listings and message actions, each checked against the member's rights
    (``services.messages.MessageService``)."""

    async def inboxes(self, member: str) -> list[InboxSummary]: ...

    async def messages(self, inbox: str, *, as_member: str | None = None) -> list[Message]: ...

    async def listen(self, message_id: int, *, as_member: str) -> tuple[Message, Path] | None: ...

    async def mark_new(self, message_id: int, *, as_member: str) -> ActionResult: ...

    async def delete(self, message_id: int, *, as_member: str) -> ActionResult: ...

    async def share(
        self, message_id: int, *, as_member: str, to: str, comment: Path | None = None
    ) -> Message: ...


class Logins(Protocol):
    """PIN checks with lockout, and PIN changes (``services.logins.LoginService``)."""

    def desk_phone(self, identity: str) -> str | None: ...

    async def login(self, ext: str, pin: str, *, peer: str, caller: str = "") -> LoginOutcome: ...

    async def change_pin(self, ext: str, new_pin: str) -> None: ...


class RoutingNow(Protocol):
    """The period and route in force for an entry."""

    @property
    def period(self) -> Period: ...

    @property
    def route(self) -> Route: ...


class RoutingSource(Protocol):
    """Where a routed entry's schedule stands (``services.routing.RoutingService``)."""

    async def now(self, ext: str) -> RoutingNow: ...


class CallControl(Protocol):
    """The SIP side's answer/refuse operations (``sip.SipWorker``)."""

    async def accept(self, key: int, *, refer_host: str) -> CallChannel: ...

    async def reject(
        self, key: int, status: int, headers: tuple[tuple[str, str], ...] = ()
    ) -> None: ...
