"""SmtpSender against a real SMTP server (aiosmtpd on 127.0.0.1): delivery, refusals that are
final, failures worth retrying, and logging in."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from sipvm.config import SmtpSettings
from sipvm.notify.email import EmailSendError, Recipient, SmtpSender, compose
from tests.support.ports import free_ports

ALICE = Recipient("1001", "Alice Smith", "alice@example.test")
SENT_AT = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


class Handler:
    def __init__(self, answer: str = "250 OK") -> None:
        self.answer = answer
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.answer.startswith("250"):
            self.envelopes.append(envelope)
        return self.answer


def free_port() -> int:
    return free_ports("127.0.0.1", tcp=True)


@pytest.fixture
def server() -> Iterator[tuple[Handler, int]]:
    handler, port = Handler(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def message(attachment: bytes | None = None) -> Any:
    return compose(
        sender="vm@example.test",
        recipient=ALICE,
        subject="New voicemail",
        body="Hello\n",
        sent_at=SENT_AT,
        attachment=("m.mp3", attachment) if attachment is not None else None,
    )


async def test_delivers_with_the_attachment_intact(server: tuple[Handler, int]) -> None:
    handler, port = server
    data = bytes(range(256)) * 400
    await SmtpSender(SmtpSettings(host="127.0.0.1", port=port)).send(message(data))
    (envelope,) = handler.envelopes
    assert envelope.rcpt_tos == ["alice@example.test"]
    assert envelope.mail_from == "vm@example.test"
    parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
    (attachment,) = parsed.iter_attachments()  # type: ignore[attr-defined]
    assert attachment.get_content() == data


@pytest.mark.parametrize(
    ("answer", "permanent"), [("550 no such user", True), ("451 try again later", False)]
)
async def test_refusals_say_whether_retrying_helps(
    server: tuple[Handler, int], answer: str, permanent: bool
) -> None:
    handler, port = server
    handler.answer = answer
    with pytest.raises(EmailSendError) as info:
        await SmtpSender(SmtpSettings(host="127.0.0.1", port=port)).send(message())
    assert info.value.permanent is permanent
    assert answer in str(info.value) and f"127.0.0.1:{port}" in str(info.value)


async def test_nothing_listening_is_worth_retrying() -> None:
    port = free_port()
    with pytest.raises(EmailSendError) as info:
        await SmtpSender(SmtpSettings(host="127.0.0.1", port=port, timeout_s=5)).send(message())
    assert info.value.permanent is False
    assert f"127.0.0.1:{port}" in str(info.value) and "check [smtp] host and port" in str(
        info.value
    )


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"vm", b"s3cret")
    return AuthResult(success=ok, handled=False)


# Loopback only: aiosmtpd warns about AUTH without TLS, which is the point of this server.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize(("password", "delivered"), [("s3cret", True), ("wrong-pass", False)])
async def test_login(password: str, delivered: bool) -> None:
    handler, port = Handler(), free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, authenticator=authenticator,
        auth_require_tls=False, auth_required=True,
    )  # fmt: skip
    controller.start()
    try:
        settings = SmtpSettings(host="127.0.0.1", port=port, username="vm", password=password)
        if delivered:
            await SmtpSender(settings).send(message())
            assert len(handler.envelopes) == 1
        else:
            with pytest.raises(EmailSendError) as info:
                await SmtpSender(settings).send(message())
            assert info.value.permanent is True
            assert "check [smtp] username and password" in str(info.value)
            assert password not in str(info.value)
            assert not handler.envelopes
    finally:
        controller.stop()


def test_the_password_is_never_shown(server: tuple[Handler, int]) -> None:
    settings = SmtpSettings(host="127.0.0.1", username="vm", password="s3cret-Pa55")
    assert "s3cret-Pa55" not in repr(settings) and "s3cret-Pa55" not in str(settings)


async def test_a_server_quoting_the_password_does_not_put_it_in_the_error(
    server: tuple[Handler, int],
) -> None:
    handler, port = server
    handler.answer = "554 rejected: credentials s3cret-Pa55 are not valid here"
    settings = SmtpSettings(host="127.0.0.1", port=port, username="", password="s3cret-Pa55")
    with pytest.raises(EmailSendError) as info:
        await SmtpSender(settings).send(message())
    assert "s3cret-Pa55" not in str(info.value)
    assert "554 rejected: credentials ******** are not valid here" in str(info.value)
    assert info.value.permanent is True
