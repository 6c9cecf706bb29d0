"""Email notifications from a live `sipvm serve` to a real SMTP server (aiosmtpd, 127.0.0.1).

A pjsua2 caller leaves a message (a 1300 Hz tone) in queue 2001: every member with an address
is emailed, the MP3 attached exactly for the member with the download right (it decodes, and
the tone is in it), the queue's own address is told without audio, a non-member gets nothing.
With the SMTP server down the email waits in the store — across a restart of sipvm — and is
delivered once the server is back; the message itself is intact throughout.
"""

from __future__ import annotations

import email
import email.policy
import json
import shutil
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.support.tones import read_pcm_mono, seconds_with_tone, write_tone_wav

from .conftest import Kit, Server, free_sip_port, seed_message, start_server, stored_message
from .test_deposit_sip import caller_script, messages, skip_greeting_then_speak

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg missing"),
]

DIRECTORY = """
[[site]]
name = "HQ"
timezone = "America/New_York"

[[user]]
ext = "1001"
name = "Alice Smith"
email = "alice@example.test"
pin = "482916"

[[user]]
ext = "1002"
name = "Bob Jones"
email = "bob@example.test"
pin = "482917"

[[user]]
ext = "1003"
name = "Carol White"
email = "carol@example.test"
pin = "482918"

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


class Inbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], EmailMessage]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.received.append((list(envelope.rcpt_tos), parsed))  # type: ignore[arg-type]
        return "250 OK"

    def wait(self, count: int, timeout: float = 30) -> list[tuple[list[str], EmailMessage]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.1)
        raise AssertionError(f"{len(self.received)} emails arrived, expected {count}")

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for rcpt, m in self.received if address in rcpt]


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_sip_port()  # free on 127.0.0.1
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def start(tmp_path: Path, port: int) -> Server:
    directory = tmp_path / "dir.toml"
    directory.write_text(DIRECTORY, encoding="utf-8")
    smtp = f'\n[smtp]\nhost = "127.0.0.1"\nport = {port}\nretry_s = 1\nsender = "vm@example.test"\n'
    return start_server(tmp_path, directory=directory, settings=smtp)


def tone_in_mp3(data: bytes, tmp: Path, freq: float) -> float:
    mp3 = tmp / "attached.mp3"
    mp3.write_bytes(data)
    assert data[:3] == b"ID3" or data[0] == 0xFF, "not an MP3"
    return seconds_with_tone(read_pcm_mono(mp3), 8000, freq, window_s=0.1)


def test_members_are_emailed_the_audio_only_with_the_download_right(
    tmp_path: Path, kit: Kit, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    server = start(tmp_path, port)
    try:
        write_tone_wav(kit.tmp / "tone.wav", 1300, 3.0)
        steps = [*skip_greeting_then_speak("tone.wav"), {"hangup": True}]
        kit.peer("caller", caller_script(server, "2001", steps)).report(60)
        (m,) = messages(server, "2001", 1)
        inbox.wait(3)
        time.sleep(1.0)  # nothing more may come (Carol is not a member)
    finally:
        assert server.stop() == 0, "\n".join(server.log[-30:])
    assert sorted(a for rcpt, _ in inbox.received for a in rcpt) == [
        "alice@example.test",
        "bob@example.test",
        "sales@example.test",
    ]
    (alice,) = inbox.to("alice@example.test")
    (bob,) = inbox.to("bob@example.test")
    (sales,) = inbox.to("sales@example.test")
    for sent in (alice, bob, sales):
        assert (
            "Sales" in sent["Subject"]
            and "5551234" in sent["Subject"] + sent.get_body(("plain",)).get_content()
        )  # type: ignore[union-attr,operator]
        assert sent["From"] == "vm@example.test"
    assert alice["To"] == "Alice Smith <alice@example.test>"
    attachments = list(alice.iter_attachments())
    assert [a.get_content_type() for a in attachments] == ["audio/mpeg"]
    assert attachments[0].get_filename() == f"voicemail-2001-{m['id']}.mp3"
    assert tone_in_mp3(attachments[0].get_content(), kit.tmp, 1300) == pytest.approx(3.0, abs=0.6)
    assert not list(bob.iter_attachments()) and not list(sales.iter_attachments())
    # Each email is audited on the message, with or without the audio.
    _, trail = stored_message(server, m["id"])
    assert sorted(e.detail for e in trail if e.action == "email") == [
        "to 1001, with the audio",
        "to 1002",
        "to 2001",
    ]


def test_smtp_down_the_email_waits_across_a_restart_and_arrives_later(
    tmp_path: Path, kit: Kit
) -> None:
    inbox, port = Inbox(), free_sip_port()
    server = start(tmp_path, port)  # nothing listens on the SMTP port yet
    try:
        message_id = seed_message(server, tmp_path, "1001", freq_hz=900.0)
        server.wait_log("not sent (attempt 1)", timeout=10)
        queued = json.loads(server.cli("email", "queue", "--json").stdout)
        assert [(e["recipient"], e["message_id"], e["status"]) for e in queued] == [
            ("1001", message_id, "pending")
        ]
        assert queued[0]["attempts"] >= 1 and f"127.0.0.1:{port}" in queued[0]["last_error"]
    finally:
        assert server.stop() == 0, "\n".join(server.log[-30:])
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        server = start(tmp_path, port)  # same data directory: the outbox survived
        try:
            (sent,) = [m for _, m in inbox.wait(1, timeout=40)]
            assert sent["To"] == "Alice Smith <alice@example.test>"
            (attachment,) = sent.iter_attachments()
            assert tone_in_mp3(attachment.get_content(), tmp_path, 900) == pytest.approx(
                3.0, abs=0.6
            )
            assert json.loads(server.cli("email", "queue", "--json").stdout) == []
            listed = json.loads(server.cli("messages", "--inbox", "1001", "--json").stdout)
            assert [x["id"] for x in listed] == [message_id] and not listed[0]["played"]
        finally:
            assert server.stop() == 0, "\n".join(server.log[-30:])
    finally:
        controller.stop()
