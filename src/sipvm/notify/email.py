"""Notification emails: editable templates, composing (with the MP3 when allowed), SMTP sending.

Templates are text files: a first line ``Subject: ...``, a blank line, then the body, with
``$placeholders`` (``string.Template``). The defaults live in ``templates/`` beside this module;
a file of the same name in the override directory (``DATA/templates/``) replaces one. An unknown
placeholder is an error when the templates are loaded (at server start), not when mail goes out.

Sending uses the standard library's ``smtplib`` in a thread; errors say whether retrying can
help (``EmailSendError.permanent``).
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import string
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from sipvm.config import SmtpSettings
from sipvm.errors import InvalidInputError, SipvmError

#: Longest wait between two attempts to send one email.
MAX_RETRY_S = 900.0

NEW_MESSAGE = "new_message.txt"
ACCESS_GRANTED = "access_granted.txt"
PLACEHOLDERS = {
    NEW_MESSAGE: (
        "inbox",
        "inbox_name",
        "caller",
        "caller_name",
        "caller_display",
        "received_at",
        "date",
        "time",
        "duration",
        "duration_s",
        "message_id",
        "recipient_name",
        "recipient_ext",
        "attachment_note",
        "shared_note",
    ),
    ACCESS_GRANTED: ("recipient_name", "recipient_ext", "count", "inboxes", "inbox_names"),
}
WITH_AUDIO = "The message is attached as an MP3 file."
WITHOUT_AUDIO = "Listen to it from your desk phone: dial the voicemail pilot."


@dataclass(frozen=True)
class NewMessageFacts:
    """What a new-message email tells."""

    message_id: int
    inbox: str
    inbox_name: str
    caller: str
    caller_name: str
    received_at: datetime
    duration_s: float
    timezone: str
    """The inbox's site zone: times are shown in it."""
    shared_by: str = ""
    """A shared copy: who shared it (``Bob Jones (1002)``); empty for a deposit."""
    note: str = ""
    """A shared copy: the note its sharer wrote, if any."""


@dataclass(frozen=True)
class Recipient:
    """Who an email goes to."""

    ext: str
    name: str
    address: str


@dataclass(frozen=True)
class GrantedInbox:
    """An inbox someone can now reach, for the access-granted email."""

    ext: str
    name: str
    rights: tuple[str, ...]


@dataclass(frozen=True)
class _Template:
    subject: string.Template
    body: string.Template


class EmailTemplates:
    """The subject and body templates of both emails."""

    def __init__(self, templates: dict[str, _Template]) -> None:
        self._templates = templates

    @classmethod
    def load(cls, overrides_dir: Path | None = None) -> EmailTemplates:
        """The packaged templates, each replaced by a file of its name in ``overrides_dir``."""
        found: dict[str, _Template] = {}
        defaults = resources.files("sipvm.notify") / "templates"
        for name, known in PLACEHOLDERS.items():
            override = overrides_dir / name if overrides_dir is not None else None
            if override is not None and override.is_file():
                where = str(override)
                try:
                    text = override.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    raise InvalidInputError(
                        f"email template {where} cannot be read ({exc}); "
                        "fix it (UTF-8 text) or remove it to use the default"
                    ) from exc
            else:
                where = f"the default {name}"
                text = (defaults / name).read_text(encoding="utf-8")
            found[name] = _parse(where, text, known)
        return cls(found)

    def new_message(
        self, facts: NewMessageFacts, recipient: Recipient, *, with_audio: bool
    ) -> tuple[str, str]:
        """Subject and body of the email about a new message."""
        when = facts.received_at.astimezone(ZoneInfo(facts.timezone))
        seconds = round(facts.duration_s)
        values = {
            "inbox": facts.inbox,
            "inbox_name": facts.inbox_name,
            "caller": facts.caller,
            "caller_name": facts.caller_name,
            "caller_display": caller_display(facts.caller_name, facts.caller),
            "received_at": when.strftime("%a %d %b %Y %H:%M %Z"),
            "date": when.strftime("%a %d %b %Y"),
            "time": when.strftime("%H:%M %Z"),
            "duration": f"{seconds // 60}:{seconds % 60:02d}",
            "duration_s": str(seconds),
            "message_id": str(facts.message_id),
            "recipient_name": recipient.name,
            "recipient_ext": recipient.ext,
            "attachment_note": WITH_AUDIO if with_audio else WITHOUT_AUDIO,
            "shared_note": shared_note(facts.shared_by, facts.note),
        }
        return self._fill(NEW_MESSAGE, values)

    def access_granted(self, recipient: Recipient, inboxes: list[GrantedInbox]) -> tuple[str, str]:
        """Subject and body of the email telling a member which inboxes it can now reach."""
        values = {
            "recipient_name": recipient.name,
            "recipient_ext": recipient.ext,
            "count": str(len(inboxes)),
            "inboxes": "\n".join(f"  {i.ext} {i.name}: {', '.join(i.rights)}" for i in inboxes),
            "inbox_names": ", ".join(i.name for i in inboxes),
        }
        return self._fill(ACCESS_GRANTED, values)

    def _fill(self, name: str, values: dict[str, str]) -> tuple[str, str]:
        template = self._templates[name]
        subject = _one_line(template.subject.substitute(values))
        return subject, template.body.substitute(values)


def caller_display(name: str, number: str) -> str:
    """ "Jane Roe <5551234>", the number or the name alone, or "an unknown caller"."""
    name, number = _one_line(name), _one_line(number)
    if name and number:
        return f"{name} <{number}>"
    return name or number or "an unknown caller"


def shared_note(shared_by: str, note: str) -> str:
    """For a shared copy, a line of its own (newline first) saying who shared it and their
    note: placed right after a sentence of the template, it adds nothing for a deposit."""
    if not shared_by:
        return ""
    note = _one_line(note)
    return f"\n{_one_line(shared_by)} shared it with you" + (f": {note}" if note else ".")


def compose(
    *,
    sender: str,
    recipient: Recipient,
    subject: str,
    body: str,
    sent_at: datetime,
    attachment: tuple[str, bytes] | None = None,
) -> EmailMessage:
    """A plain-text email (UTF-8) dated ``sent_at`` (shown in the server's time zone, as mail
    programs expect of a ``Date``), with the attachment as ``audio/mpeg`` when given."""
    message = EmailMessage()
    message["From"] = sender
    username, _, domain = recipient.address.rpartition("@")
    message["To"] = Address(_one_line(recipient.name), username, domain)
    message["Subject"] = _one_line(subject)
    message["Date"] = format_datetime(sent_at.astimezone())
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(body)
    if attachment is not None:
        filename, data = attachment
        message.add_attachment(data, maintype="audio", subtype="mpeg", filename=filename)
    return message


class EmailSendError(SipvmError):
    """Sending failed; ``permanent`` says that retrying the same email cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class SmtpSender:
    """Sends emails through the ``[smtp]`` server, one connection per email."""

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    async def send(self, message: EmailMessage) -> None:
        """Send ``message`` or raise ``EmailSendError``."""
        await asyncio.to_thread(self._send, message)

    def _send(self, message: EmailMessage) -> None:
        try:
            self._deliver(message)
        except EmailSendError as exc:
            password = self._settings.password
            text = str(exc)
            if password and password in text:  # a server may quote what it was sent
                raise EmailSendError(
                    text.replace(password, "********"), permanent=exc.permanent
                ) from None
            raise

    def _deliver(self, message: EmailMessage) -> None:
        s = self._settings
        server = f"{s.host}:{s.port}"
        try:
            if s.tls:
                context = ssl.create_default_context()
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout_s, context=context
                )
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
            with smtp:
                if s.starttls and not s.tls:
                    smtp.starttls(context=ssl.create_default_context())
                if s.username:
                    smtp.login(s.username, s.password)
                smtp.send_message(message)
        except smtplib.SMTPAuthenticationError as exc:
            raise EmailSendError(
                f"the SMTP server {server} refused the login ({exc.smtp_code}); "
                "check [smtp] username and password",
                permanent=True,
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise EmailSendError(
                f"the SMTP server {server} refused the recipient: {code} {_text(text)}; "
                "check the address in the directory",
                permanent=code >= 500,
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise EmailSendError(
                f"the SMTP server {server} answered {exc.smtp_code} {_text(exc.smtp_error)}",
                permanent=exc.smtp_code >= 500,
            ) from None
        except (TimeoutError, smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise EmailSendError(
                f"cannot send through the SMTP server {server}: {exc or type(exc).__name__}; "
                "check [smtp] host and port and that the server is up (retrying)"
            ) from None


def retry_delay(attempts: int, first_s: float) -> float:
    """The wait after the ``attempts``-th failed attempt: doubling from ``first_s``, capped."""
    return float(min(MAX_RETRY_S, first_s * 2 ** max(0, attempts - 1)))


def _parse(where: str, text: str, known: tuple[str, ...]) -> _Template:
    head, _, body = text.partition("\n")
    if not head.startswith("Subject:"):
        raise InvalidInputError(
            f"email template {where}: the first line must be 'Subject: ...' "
            "followed by a blank line and the body"
        )
    subject = string.Template(head.removeprefix("Subject:").strip())
    template = string.Template(body.removeprefix("\n"))
    for part in (subject, template):
        if not part.is_valid():
            raise InvalidInputError(
                f"email template {where}: a '$' is not followed by a placeholder name; "
                "write $$ for a dollar sign"
            )
        unknown = sorted(set(part.get_identifiers()) - set(known))
        if unknown:
            raise InvalidInputError(
                f"email template {where}: unknown placeholder ${unknown[0]}; "
                f"known: {', '.join('$' + k for k in known)}"
            )
    return _Template(subject, template)


def _one_line(text: str) -> str:
    """No CR/LF in anything that goes into a header (no header injection)."""
    return " ".join(text.split())


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
