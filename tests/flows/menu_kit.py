"""A directory, a store and a runner for desk-phone menu flow tests.

The directory has Ann (1001, PIN 482916) and Ben (1002, PIN 739164) on HQ (New York) and a
call queue 2001 whose member list gives Ann the rights a test asks for. Ben owns 2001's other
seat with every right. Messages are tone WAVs, one frequency per message, so a test can tell
which message played.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sipvm.app import App
from sipvm.domain.messages import DepositFacts, Message
from sipvm.flows.menu import voicemail_menu
from sipvm.flows.session import MenuServices
from sipvm.storage.messages import SqliteMessageRepo
from sipvm.testing.clock import FakeClock
from sipvm.testing.fake_channel import FakeChannel, Step
from tests.flows.conftest import IdPrompts
from tests.support.tones import write_tone_wav

ANN, ANN_PIN = "1001", "482916"
BEN, BEN_PIN = "1002", "739164"
PEER = "127.0.0.2"

DIRECTORY = """
[[site]]
name = "HQ"
timezone = "America/New_York"

[[user]]
ext = "1001"
name = "Ann"
site = "HQ"
pin = "482916"
phones = ["sip:1001@pbx.example.com"]

[[user]]
ext = "1002"
name = "Ben"
site = "HQ"
pin = "739164"
phones = ["sip:1002@pbx.example.com"]

[[user]]
ext = "1003"
name = "Cleo"
site = "HQ"
pin = "315972"

[[user]]
ext = "1005"
name = "Voicemail off"
site = "HQ"
pin = "315973"
[user.policy]
voicemail = false

[[call_queue]]
ext = "2001"
name = "Sales"
site = "HQ"
[[call_queue.members]]
member = "1001"
rights = {ann_rights}
[[call_queue.members]]
member = "1002"
rights = ["play", "download", "delete", "share"]
{extra}
"""


def directory_text(ann_rights: Sequence[str] = ("play",), extra: str = "") -> str:
    """The test directory with Ann's rights on queue 2001."""
    quoted = "[" + ", ".join(f'"{r}"' for r in ann_rights) + "]"
    return DIRECTORY.format(ann_rights=quoted, extra=extra)


@dataclass
class MenuKit:
    """An app with the test directory applied, and helpers to fill inboxes and call in."""

    app: App
    clock: FakeClock
    tmp: Path
    prompts: IdPrompts = field(default_factory=IdPrompts)
    envelope: str = "before"
    """The ``[menu] envelope`` mode of :meth:`services`: "before" lets a script hear each
    message as two prompts (``LISTEN``: announcement and envelope, then the message)."""

    async def use_directory(self, ann_rights: Sequence[str] = ("play",), extra: str = "") -> None:
        path = self.tmp / f"directory-{len(list(self.tmp.glob('directory-*')))}.toml"
        path.write_text(directory_text(ann_rights, extra))
        await self.app.directory.apply_file(path)

    async def deposit(
        self,
        inbox: str,
        freq_hz: float,
        *,
        seconds: float = 6.0,
        caller: str = "5551234",
        at: datetime | None = None,
    ) -> int:
        """Store a message of a ``freq_hz`` tone; returns its id."""
        wav = write_tone_wav(self.tmp / f"tone-{freq_hz:.0f}.wav", freq_hz, seconds)
        facts = DepositFacts(inbox=inbox, received_at=at or self.clock(), caller=caller)
        stored = await self.app.deposits.deposit_file(facts, wav)
        assert stored is not None
        return stored.id

    def services(self) -> MenuServices:
        return self.app.menu_services(self.prompts, self.clock, envelope=self.envelope)

    async def call(
        self,
        script: list[Step],
        *,
        hint: str | None = ANN,
        direct: str | None = None,
        caller_id: str = ANN,
        services: MenuServices | None = None,
    ) -> FakeChannel:
        """Run the whole menu dialog over a fake channel following ``script``."""
        channel = FakeChannel(list(script))
        await voicemail_menu(
            channel,
            services or self.services(),
            hint=hint,
            direct=direct,
            peer=PEER,
            caller_id=caller_id,
        )
        return channel

    @property
    def repo(self) -> SqliteMessageRepo:
        """The message table, read directly (deleted messages and audit trails included)."""
        return SqliteMessageRepo(self.app.db)

    async def message(self, message_id: int) -> Message:
        found = await self.repo.get(message_id)
        assert found is not None
        return found

    async def audio_stem(self, message_id: int) -> str:
        """The stem of a message's audio file, as ``played_messages`` reports it."""
        return Path((await self.message(message_id)).audio).stem


def played_messages(channel: FakeChannel) -> list[tuple[str, float]]:
    """(audio file stem, start second) of every ``play_message``, in order."""
    return [
        (Path(detail[0]).stem, detail[1])  # type: ignore[index]
        for op, detail in channel.transcript
        if op == "play_message"
    ]
