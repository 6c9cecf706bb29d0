"""Composition root of the store: opens it and builds the services over it (the commands use
them as they are; ``sipvm.server`` builds the running server on top)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

from sipvm.domain.lockout import LockoutPolicy
from sipvm.flows.ports import Greetings, Prompts
from sipvm.flows.session import MenuServices
from sipvm.services.access import AccessService
from sipvm.services.admin import AdminService
from sipvm.services.deposits import DepositService
from sipvm.services.directory import DirectoryService
from sipvm.services.greetings import GreetingService
from sipvm.services.logins import LoginService
from sipvm.services.messages import MessageService
from sipvm.services.routing import RoutingService
from sipvm.services.sessions import DEFAULT_IDLE, SessionService
from sipvm.storage.audio_files import AudioFiles
from sipvm.storage.db import Database
from sipvm.storage.directory import SqliteDirectoryRepo
from sipvm.storage.greetings import SqliteGreetingRepo
from sipvm.storage.logins import SqliteLoginRepo
from sipvm.storage.messages import SqliteMessageRepo
from sipvm.storage.notify import SqliteNotifyRepo
from sipvm.storage.schedules import SqliteOverrideRepo
from sipvm.storage.web_auth import SqliteWebAuthRepo

log = logging.getLogger(__name__)

DB_NAME = "sipvm.sqlite3"


def utc_now() -> datetime:
    """The real clock (tests inject their own)."""
    return datetime.now(UTC)


def make_private(data_dir: Path) -> None:
    """Create ``data_dir`` readable by its owner only (recordings, the store, exports are
    private); an existing one that others can enter is made private, with a log line."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = data_dir.stat().st_mode & 0o777
    if mode & 0o077:
        data_dir.chmod(mode & 0o700)
        log.warning(
            "data directory %s was open to other users (%o); made it private (%o)",
            data_dir,
            mode,
            mode & 0o700,
        )


def embedded_directory() -> Path:
    """The example directory the server runs on when none was applied."""
    return Path(str(resources.files("sipvm.provisioning") / "examples" / "small-office.toml"))


@dataclass
class App:
    """Everything a command needs, built over one data directory."""

    data_dir: Path
    db: Database
    files: AudioFiles
    directory: DirectoryService
    messages: MessageService
    deposits: DepositService
    greetings: GreetingService
    logins: LoginService
    routing: RoutingService
    sessions: SessionService
    """Web sign-ins and API tokens."""
    access: AccessService
    """Admins' edits of member lists, policies and roles (new directory revisions)."""
    admin: AdminService
    """Admin-only views and actions: every inbox, deleted messages, audit trails, hours."""
    message_repo: SqliteMessageRepo
    """The messages themselves: the notifier reads counts and audio through it."""
    notify_repo: SqliteNotifyRepo

    @classmethod
    async def open(
        cls,
        data_dir: Path,
        *,
        clock: Callable[[], datetime] = utc_now,
        worker: str = "",
        lockout: LockoutPolicy | None = None,
        session_idle: timedelta = DEFAULT_IDLE,
        migrate: bool = True,
    ) -> App:
        """Open (creating if needed) the store in ``data_dir`` and build the services.

        ``worker`` names a pool worker: its recordings in progress have their own spool.
        ``lockout`` is the lockout policy of PIN logins, phone and web (default: the product's
        thresholds); ``session_idle`` how long a web session may go unused. ``migrate=False``
        (a pool worker) opens the store its supervisor prepared without writing to it: a
        missing or older store is a ``StorageError``.
        """
        make_private(data_dir)
        db = await Database.open(data_dir / DB_NAME, migrate=migrate)
        files = AudioFiles(data_dir, worker)
        message_repo = SqliteMessageRepo(db)
        try:
            directory = await DirectoryService.load(SqliteDirectoryRepo(db), clock)
        except BaseException:
            await db.close()  # its thread would keep the process alive
            raise
        logins = LoginService(directory, SqliteLoginRepo(db), clock, policy=lockout)
        routing = RoutingService(directory, SqliteOverrideRepo(db), clock)
        return cls(
            data_dir=data_dir,
            db=db,
            files=files,
            directory=directory,
            messages=MessageService(directory, message_repo, files, clock),
            deposits=DepositService(directory, message_repo, files, clock),
            greetings=GreetingService(directory, SqliteGreetingRepo(db), data_dir, clock),
            logins=logins,
            routing=routing,
            sessions=SessionService(
                directory, logins, SqliteWebAuthRepo(db), clock, idle=session_idle
            ),
            access=AccessService(directory),
            admin=AdminService(directory, message_repo, routing, clock),
            message_repo=message_repo,
            notify_repo=SqliteNotifyRepo(db),
        )

    def menu_services(
        self,
        prompts: Prompts,
        clock: Callable[[], datetime],
        *,
        envelope: str = "after",
        greetings: Greetings | None = None,
    ) -> MenuServices:
        """What the desk-phone menu flows use, over this app's services (``envelope``: the
        ``[menu] envelope`` setting; ``greetings``: in place of this app's greeting service,
        e.g. wrapped to speak names nobody recorded)."""
        return MenuServices(
            directory=self.directory,
            mailboxes=self.messages,
            greetings=greetings if greetings is not None else self.greetings,
            logins=self.logins,
            prompts=prompts,
            clock=clock,
            scratch=self.files.scratch_file,
            envelope=envelope,
        )

    async def close(self) -> None:
        """Close the store."""
        await self.db.close()
