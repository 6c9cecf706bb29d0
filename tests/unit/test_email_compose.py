"""Email templates and composing: placeholders, site-local times, attachments, no header
injection, overrides checked when loaded."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sipvm.errors import InvalidInputError
from sipvm.notify.email import (
    EmailTemplates,
    GrantedInbox,
    NewMessageFacts,
    Recipient,
    caller_display,
    compose,
    retry_delay,
)

ALICE = Recipient("1001", "Alice Smith", "alice@example.test")
SENT_AT = datetime(2026, 11, 2, 15, 0, 7, tzinfo=UTC)


def facts(**kw: object) -> NewMessageFacts:
    base: dict[str, object] = {
        "message_id": 12,
        "inbox": "2001",
        "inbox_name": "Sales",
        "caller": "5551234",
        "caller_name": "Jane Roe",
        "received_at": datetime(2026, 1, 15, 19, 5, tzinfo=UTC),
        "duration_s": 67.4,
        "timezone": "America/New_York",
    }
    return NewMessageFacts(**(base | kw))  # type: ignore[arg-type]


def test_new_message_fills_every_placeholder_in_the_site_zone() -> None:
    subject, body = EmailTemplates.load().new_message(facts(), ALICE, with_audio=True)
    assert subject == "New voicemail in Sales (2001) from Jane Roe <5551234>"
    assert "Hello Alice Smith," in body
    assert "Thu 15 Jan 2026 14:05 EST" in body  # 19:05 UTC is 14:05 in New York in winter
    assert "1:07" in body and "attached as an MP3" in body and "$" not in body
    _, summer = EmailTemplates.load().new_message(
        facts(received_at=datetime(2026, 7, 15, 19, 5, tzinfo=UTC)), ALICE, with_audio=False
    )
    assert "15:05 EDT" in summer and "desk phone" in summer and "MP3" not in summer


def test_a_shared_copy_says_who_shared_it_and_their_note() -> None:
    templates = EmailTemplates.load()
    _, deposited = templates.new_message(facts(), ALICE, with_audio=False)
    assert "left a message in Sales (2001).\n\n  Received:" in deposited
    _, noted = templates.new_message(
        facts(shared_by="Bob Jones (1002)", note="Call back today"), ALICE, with_audio=False
    )
    said = "Bob Jones (1002) shared it with you: Call back today"
    assert f"left a message in Sales (2001).\n{said}\n\n  Received:" in noted
    _, plain = templates.new_message(facts(shared_by="1002"), ALICE, with_audio=False)
    assert "(2001).\n1002 shared it with you.\n\n" in plain


@pytest.mark.parametrize(
    ("name", "number", "shown"),
    [
        ("Jane Roe", "5551234", "Jane Roe <5551234>"),
        ("", "5551234", "5551234"),
        ("Jane Roe", "", "Jane Roe"),
        ("", "", "an unknown caller"),
        ("x\r\nBcc: evil@example.com", "1", "x Bcc: evil@example.com <1>"),
    ],
)
def test_caller_display(name: str, number: str, shown: str) -> None:
    assert caller_display(name, number) == shown


def test_access_granted_lists_inboxes_and_rights() -> None:
    inboxes = [
        GrantedInbox("2001", "Sales", ("play", "download")),
        GrantedInbox("1900", "Lobby", ("play",)),
    ]
    subject, body = EmailTemplates.load().access_granted(ALICE, inboxes)
    assert subject == "You now have access to voicemail: Sales, Lobby"
    assert "  2001 Sales: play, download\n  1900 Lobby: play" in body


def test_compose_with_attachment_round_trips_and_encodes_names() -> None:
    who = Recipient("1001", "Zoë Ñuñez", "zoe@example.test")
    message = compose(
        sender="vm@example.test", recipient=who, subject="Hi", body="Body\n", sent_at=SENT_AT,
        attachment=("voicemail-2001-12.mp3", b"ID3\x00" + bytes(range(256))),
    )  # fmt: skip
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert parsed["To"] == "Zoë Ñuñez <zoe@example.test>"
    assert parsed["Message-ID"].endswith("@example.test>")
    assert parsed["Date"].datetime == SENT_AT  # the caller's clock, not the wall clock
    (attachment,) = parsed.iter_attachments()  # type: ignore[attr-defined]
    assert attachment.get_content_type() == "audio/mpeg"
    assert attachment.get_filename() == "voicemail-2001-12.mp3"
    assert attachment.get_content() == b"ID3\x00" + bytes(range(256))
    plain = compose(
        sender="vm@example.test", recipient=ALICE, subject="Hi", body="Body\n", sent_at=SENT_AT
    )
    assert not list(plain.iter_attachments()) and plain.get_content_type() == "text/plain"


def test_no_header_injection_through_subject_or_name() -> None:
    evil = Recipient("1", "Eve\r\nBcc: evil@example.com", "eve@example.test")
    message = compose(
        sender="vm@example.test",
        recipient=evil,
        subject="New\r\nBcc: evil@example.com",
        body="x",
        sent_at=SENT_AT,
    )
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert parsed["Bcc"] is None
    assert "evil@example.com" not in str(parsed["To"]).split("<")[-1]


def test_an_override_replaces_the_default(tmp_path: Path) -> None:
    (tmp_path / "new_message.txt").write_text(
        "Subject: VM for $inbox\n\nFrom $caller.\n", encoding="utf-8"
    )
    subject, body = EmailTemplates.load(tmp_path).new_message(facts(), ALICE, with_audio=False)
    assert (subject, body) == ("VM for 2001", "From 5551234.\n")
    assert EmailTemplates.load(tmp_path).access_granted(ALICE, [])[0].startswith("You now have")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("Subject: x $colour\n\nbody\n", "unknown placeholder $colour; known: $inbox"),
        ("Subject: x\n\nbody $nope\n", "unknown placeholder $nope"),
        ("Hello\n\nbody\n", "the first line must be 'Subject: ...'"),
        ("Subject: costs $5\n\nbody\n", "write $$ for a dollar sign"),
    ],
)
def test_a_bad_override_is_refused_naming_the_file(
    tmp_path: Path, text: str, fragment: str
) -> None:
    (tmp_path / "new_message.txt").write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInputError) as info:
        EmailTemplates.load(tmp_path)
    assert fragment in str(info.value) and str(tmp_path / "new_message.txt") in str(info.value)


def test_a_non_utf8_override_is_refused(tmp_path: Path) -> None:
    (tmp_path / "access_granted.txt").write_bytes(b"Subject: \xff\n\nx\n")
    with pytest.raises(InvalidInputError, match="cannot be read"):
        EmailTemplates.load(tmp_path)


def test_retry_delay_doubles_and_is_capped() -> None:
    assert [retry_delay(n, 30) for n in range(1, 8)] == [30, 60, 120, 240, 480, 900, 900]
