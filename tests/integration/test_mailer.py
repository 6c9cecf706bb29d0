"""The mailer over a real store: who gets the audio, retries with backoff, giving up, dropping
emails that no longer apply. The SMTP side is a recording transport here (the real SMTP
conversation is tested against aiosmtpd in test_smtp_sender and the e2e email tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from sipvm.app import App
from sipvm.config import SmtpSettings
from sipvm.domain.messages import DepositFacts, Message
from sipvm.notify.email import EmailSendError, EmailTemplates
from sipvm.notify.mailer import Mailer
from sipvm.notify.notifier import Notifier
from sipvm.testing.clock import FakeClock
from tests.support.tones import write_tone_wav

from .test_notifier import DIRECTORY, GRANT_CAROL


class Transport:
    """Accepts or refuses, as told; keeps what it accepted."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.fail: EmailSendError | None = None
        self.tries = 0

    async def send(self, message: EmailMessage) -> None:
        self.tries += 1
        if self.fail is not None:
            raise self.fail
        self.sent.append(message)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.sent if address in str(m["To"])]


def down() -> EmailSendError:
    error = EmailSendError("cannot connect to the SMTP server 127.0.0.1:2525: connection refused")
    error.permanent = False
    return error


def refused() -> EmailSendError:
    error = EmailSendError("the SMTP server 127.0.0.1:2525 refused the recipient: 550 no such user")
    error.permanent = True
    return error


@pytest.fixture
async def store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[App]:
    app = await App.open(tmp_path / "data", clock=clock)
    (tmp_path / "dir.toml").write_text(DIRECTORY, encoding="utf-8")
    await app.directory.apply_file(tmp_path / "dir.toml")
    try:
        yield app
    finally:
        await app.close()


def parts(app: App, clock: FakeClock) -> tuple[Notifier, Mailer, Transport]:
    transport = Transport()
    settings = SmtpSettings(host="127.0.0.1", sender="vm@example.test", retry_s=30, give_up_h=1)
    mailer = Mailer(
        settings=settings,
        repo=app.notify_repo,
        messages=app.message_repo,
        files=app.files,
        directory=app.directory,
        templates=EmailTemplates.load(None),
        transport=transport,
        clock=clock,
    )
    notifier = Notifier(
        directory=app.directory, repo=app.notify_repo, mwi=None, email=True, clock=clock
    )
    return notifier, mailer, transport


async def deposit(app: App, clock: FakeClock, tmp_path: Path, inbox: str) -> Message:
    wav = write_tone_wav(tmp_path / "tone.wav", 1000.0, 3.0)
    facts = DepositFacts(inbox=inbox, received_at=clock(), caller="5551234", caller_name="Pat Roe")
    message = await app.deposits.deposit_file(facts, wav)
    assert message is not None
    return message


async def test_audio_only_for_download_and_each_email_audited(
    store: App, clock: FakeClock, tmp_path: Path
) -> None:
    notifier, mailer, transport = parts(store, clock)
    await notifier.start()
    m = await deposit(store, clock, tmp_path, "2001")
    await notifier.poll()
    assert await mailer.send_due() == 3
    (alice,) = transport.to("alice@example.test")
    (bob,) = transport.to("bob@example.test")
    (sales,) = transport.to("sales@example.test")
    assert [a.get_content_type() for a in alice.iter_attachments()] == ["audio/mpeg"]
    assert len(next(alice.iter_attachments()).get_content()) > 5000  # 3 s of MP3
    assert not list(bob.iter_attachments()) and not list(sales.iter_attachments())
    assert "Sales" in str(alice["Subject"])
    trail = await store.message_repo.audit_trail(m.id)
    assert sorted(e.detail for e in trail if e.action == "email") == [
        "to 1001, with the audio",
        "to 1002",
        "to 2001",
    ]
    assert await mailer.send_due() == 0  # nothing sent twice
    assert not (await store.notify_repo.outbox()).pending


async def test_a_shared_copys_email_says_who_shared_it_and_their_note(
    store: App, clock: FakeClock, tmp_path: Path
) -> None:
    notifier, mailer, transport = parts(store, clock)
    await notifier.start()
    m = await deposit(store, clock, tmp_path, "1002")
    await notifier.poll()
    assert await mailer.send_due() == 1
    (deposited,) = transport.to("bob@example.test")
    assert "shared it" not in text_of(deposited)
    await store.messages.share(m.id, as_member="1002", to="1003", note="Call Pat back today")
    await notifier.poll()
    assert await mailer.send_due() == 1
    (carol,) = transport.to("carol@example.test")
    said = "Bob (1002) shared it with you: Call Pat back today"
    assert f"left a message in Carol (1003).\n{said}\n" in text_of(carol)


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


async def test_server_down_backs_off_and_the_rest_wait_without_a_knock(
    store: App, clock: FakeClock, tmp_path: Path
) -> None:
    notifier, mailer, transport = parts(store, clock)
    await notifier.start()
    await deposit(store, clock, tmp_path, "2001")
    await notifier.poll()
    transport.fail = down()
    assert await mailer.send_due() == 0
    assert transport.tries == 1  # one knock; the other two emails were postponed untried
    pending = (await store.notify_repo.outbox()).pending
    assert [e.attempts for e in pending] == [1, 1, 1]
    assert "connection refused" in pending[0].last_error
    assert all("not tried" in e.last_error for e in pending[1:])
    assert {(e.next_at - clock()).total_seconds() for e in pending} == {30.0}
    clock.advance(seconds=29)
    assert await mailer.send_due() == 0 and transport.tries == 1  # not due yet
    clock.advance(seconds=1)
    await mailer.send_due()
    assert {
        (e.next_at - clock()).total_seconds() for e in (await store.notify_repo.outbox()).pending
    } == {60.0}
    transport.fail = None
    clock.advance(seconds=60)
    assert await mailer.send_due() == 3
    assert not (await store.notify_repo.outbox()).pending


async def test_a_refusal_or_old_age_gives_up_and_retry_requeues(
    store: App, clock: FakeClock, tmp_path: Path
) -> None:
    notifier, mailer, transport = parts(store, clock)
    await notifier.start()
    await deposit(store, clock, tmp_path, "1001")
    await notifier.poll()
    transport.fail = refused()
    assert await mailer.send_due() == 0
    outbox = await store.notify_repo.outbox()
    assert [(e.recipient, e.status) for e in outbox.failed] == [("1001", "failed")]
    assert "550 no such user" in outbox.failed[0].last_error
    transport.fail = None
    clock.advance(seconds=1)
    assert await store.notify_repo.retry_failed(clock()) == 1
    assert await mailer.send_due() == 1
    # Old age: transient failures for longer than give_up_h end in "failed" too.
    await deposit(store, clock, tmp_path, "1001")
    await notifier.poll()
    transport.fail = down()
    await mailer.send_due()
    clock.advance(hours=2)
    await mailer.send_due()
    assert [e.recipient for e in (await store.notify_repo.outbox()).failed] == ["1001"]


async def test_deleted_message_or_lost_access_drops_the_email(
    store: App, clock: FakeClock, tmp_path: Path
) -> None:
    notifier, mailer, transport = parts(store, clock)
    await notifier.start()
    m = await deposit(store, clock, tmp_path, "2001")
    await notifier.poll()
    await store.messages.delete(m.id, as_member="1002")
    assert await mailer.send_due() == 0
    assert transport.tries == 0
    assert not (await store.notify_repo.outbox()).pending


async def test_access_granted_email_lists_the_inbox_and_rights(
    store: App, clock: FakeClock, tmp_path: Path
) -> None:
    notifier, mailer, transport = parts(store, clock)
    await notifier.start()
    (tmp_path / "grant.toml").write_text(GRANT_CAROL, encoding="utf-8")
    await store.directory.apply_file(tmp_path / "grant.toml")
    await notifier.poll()
    assert await mailer.send_due() == 1
    (carol,) = transport.to("carol@example.test")
    body = carol.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "2001" in text and "Sales" in text and "play" in text
    assert not list(carol.iter_attachments())
