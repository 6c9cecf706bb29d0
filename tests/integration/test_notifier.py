"""The notifier over a real store: lamps follow every change, whoever made it; emails are queued
exactly once per event and recipient, across restarts and competing processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from sipvm.app import App
from sipvm.domain.messages import DepositFacts, Message
from sipvm.notify.mwi import MwiNotifier
from sipvm.notify.notifier import Notifier
from sipvm.testing.clock import FakeClock
from tests.support.tones import write_tone_wav

DIRECTORY = """
[[site]]
name = "HQ"
timezone = "America/New_York"

[[user]]
ext = "1001"
name = "Alice"
email = "alice@example.test"
pin = "482916"
phones = ["sip:1001@127.0.0.1:5999"]

[[user]]
ext = "1002"
name = "Bob"
email = "bob@example.test"
pin = "482917"
phones = ["sip:1002@127.0.0.1:5999", "sip:1002b@127.0.0.1:5999"]

[[user]]
ext = "1003"
name = "Carol"
email = "carol@example.test"
pin = "482918"
phones = ["sip:1003@127.0.0.1:5999"]

[[call_queue]]
ext = "2001"
name = "Sales"
email = "sales@example.test"
[[call_queue.members]]
member = "1001"
rights = ["play", "download"]
[[call_queue.members]]
member = "1002"
rights = ["play", "delete"]
"""

GRANT_CAROL = (
    DIRECTORY
    + """
[[call_queue.members]]
member = "1003"
rights = ["play"]
"""
)


class Lamps:
    """Records NOTIFYs instead of sending them."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send_mwi_batch(self, notifies: Sequence[tuple[str, str]]) -> list[str | None]:
        self.sent.extend(notifies)
        return [None] * len(notifies)

    def to(self, phone: str, account: str) -> list[str]:
        return [
            b.split("Voice-Message: ")[1].split(" ")[0]
            for p, b in self.sent
            if p == phone and f"Message-Account: {account}" in b
        ]


@pytest.fixture
async def store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[App]:
    app = await App.open(tmp_path / "data", clock=clock)
    (tmp_path / "dir.toml").write_text(DIRECTORY, encoding="utf-8")
    await app.directory.apply_file(tmp_path / "dir.toml")
    try:
        yield app
    finally:
        await app.close()


def notifier_for(
    app: App, clock: FakeClock, *, email: bool = True
) -> tuple[Notifier, MwiNotifier, Lamps]:
    lamps = Lamps()
    mwi = MwiNotifier(lamps, app.message_repo, coalesce_s=0.0)
    notifier = Notifier(
        directory=app.directory, repo=app.notify_repo, mwi=mwi, email=email, clock=clock
    )
    return notifier, mwi, lamps


async def deposit(app: App, clock: FakeClock, tmp_path: Path, inbox: str) -> Message:
    wav = write_tone_wav(tmp_path / "tone.wav", 1000.0, 3.0)
    clock.advance(seconds=1)
    facts = DepositFacts(inbox=inbox, received_at=clock(), caller="5551234")
    message = await app.deposits.deposit_file(facts, wav)
    assert message is not None
    return message


async def settle(notifier: Notifier, mwi: MwiNotifier) -> None:
    await notifier.poll()
    while mwi.pending:
        await mwi.send_due()


async def test_lamps_follow_deposit_play_and_delete_for_members_only(
    store: App, clock: FakeClock, tmp_path: Path
) -> None:
    notifier, mwi, lamps = notifier_for(store, clock)
    await notifier.start()
    await settle(notifier, mwi)
    assert lamps.to("sip:1001@127.0.0.1:5999", "sip:2001@127.0.0.1:5999") == ["0/0"]
    lamps.sent.clear()

    m = await deposit(store, clock, tmp_path, "2001")
    await settle(notifier, mwi)
    for phone in ("sip:1001@127.0.0.1:5999", "sip:1002@127.0.0.1:5999", "sip:1002b@127.0.0.1:5999"):
        assert lamps.to(phone, "sip:2001@127.0.0.1:5999") == ["1/0"]
    assert not [p for p, _ in lamps.sent if p.startswith("sip:1003@")]  # Carol: not a member

    await store.messages.mark_played(m.id, as_member="1001")
    await settle(notifier, mwi)
    assert lamps.to("sip:1002@127.0.0.1:5999", "sip:2001@127.0.0.1:5999") == ["1/0", "0/1"]

    await store.messages.delete(m.id, as_member="1002")
    await settle(notifier, mwi)
    assert lamps.to("sip:1001@127.0.0.1:5999", "sip:2001@127.0.0.1:5999") == ["1/0", "0/1", "0/0"]
    assert not [p for p, _ in lamps.sent if p.startswith("sip:1003@")]


async def test_changes_made_by_another_process_light_lamps(
    store: App, clock: FakeClock, tmp_path: Path
) -> None:
    notifier, mwi, lamps = notifier_for(store, clock)
    await notifier.start()
    await settle(notifier, mwi)
    lamps.sent.clear()
    other = await App.open(store.data_dir, clock=clock)  # e.g. `sipvm message ...` or a worker
    try:
        await deposit(other, clock, tmp_path, "1003")
    finally:
        await other.close()
    await settle(notifier, mwi)
    assert lamps.sent and {p for p, _ in lamps.sent} == {"sip:1003@127.0.0.1:5999"}


async def test_emails_queued_once_per_recipient_and_survive_a_restart(
    store: App, clock: FakeClock, tmp_path: Path
) -> None:
    notifier, _, _ = notifier_for(store, clock)
    await notifier.start()
    m = await deposit(store, clock, tmp_path, "2001")
    await notifier.poll()
    await notifier.poll()
    outbox = await store.notify_repo.outbox()
    assert sorted((e.recipient, e.address, e.message_id) for e in outbox.pending) == [
        ("1001", "alice@example.test", m.id),
        ("1002", "bob@example.test", m.id),
        ("2001", "sales@example.test", m.id),
    ]
    # While no notifier runs (server down), a message arrives; the next start queues it.
    m2 = await deposit(store, clock, tmp_path, "1003")
    restarted, _, _ = notifier_for(store, clock)
    await restarted.start()
    outbox = await store.notify_repo.outbox()
    assert [(e.recipient, e.message_id) for e in outbox.pending][-1] == ("1003", m2.id)
    assert len(outbox.pending) == 4


async def test_two_processes_polling_queue_each_email_once(
    store: App, clock: FakeClock, tmp_path: Path
) -> None:
    other = await App.open(store.data_dir, clock=clock)
    try:
        first, _, _ = notifier_for(store, clock)
        second, _, _ = notifier_for(other, clock)
        await first.start()
        await second.start()
        for _ in range(5):
            await deposit(store, clock, tmp_path, "2001")
        await asyncio.gather(*(n.poll() for n in (first, second, first, second)))
        outbox = await store.notify_repo.outbox()
        assert len(outbox.pending) == 5 * 3
        assert len({(e.recipient, e.message_id) for e in outbox.pending}) == 15
    finally:
        await other.close()


async def test_no_emails_when_email_is_off_and_none_later(
    store: App, clock: FakeClock, tmp_path: Path
) -> None:
    notifier, _, _ = notifier_for(store, clock, email=False)
    await notifier.start()
    await deposit(store, clock, tmp_path, "2001")
    await notifier.poll()
    assert not (await store.notify_repo.outbox()).pending
    turned_on, _, _ = notifier_for(store, clock, email=True)
    await turned_on.start()  # SMTP configured later: old messages are not emailed
    assert not (await store.notify_repo.outbox()).pending


async def test_a_grant_emails_the_new_member_and_lights_its_phone(
    store: App, clock: FakeClock, tmp_path: Path
) -> None:
    notifier, mwi, lamps = notifier_for(store, clock)
    await notifier.start()
    await deposit(store, clock, tmp_path, "2001")
    await settle(notifier, mwi)
    lamps.sent.clear()
    (tmp_path / "grant.toml").write_text(GRANT_CAROL, encoding="utf-8")
    other = await App.open(store.data_dir, clock=clock)  # `sipvm directory apply` elsewhere
    try:
        await other.directory.apply_file(tmp_path / "grant.toml")
    finally:
        await other.close()
    await settle(notifier, mwi)
    assert store.directory.rev == 2  # the notifier reloaded the directory in force
    assert lamps.to("sip:1003@127.0.0.1:5999", "sip:2001@127.0.0.1:5999") == ["1/0"]
    granted = [e for e in (await store.notify_repo.outbox()).pending if e.kind == "access-granted"]
    assert [(e.recipient, e.detail) for e in granted] == [
        ("1003", [{"inbox": "2001", "name": "Sales", "rights": ["play"]}])
    ]
    # Taking the access away again clears Carol's lamp for 2001 (no counts).
    lamps.sent.clear()
    await store.directory.apply_file(tmp_path / "dir.toml")
    await settle(notifier, mwi)
    assert lamps.to("sip:1003@127.0.0.1:5999", "sip:2001@127.0.0.1:5999") == ["0/0"]


async def test_the_first_directory_is_not_a_grant(tmp_path: Path, clock: FakeClock) -> None:
    app = await App.open(tmp_path / "fresh", clock=clock)
    try:
        notifier, _, _ = notifier_for(app, clock)
        await notifier.start()
        (tmp_path / "dir.toml").write_text(GRANT_CAROL, encoding="utf-8")
        await app.directory.apply_file(tmp_path / "dir.toml")
        await notifier.poll()
        assert not (await app.notify_repo.outbox()).pending
    finally:
        await app.close()
