"""Who gets which email: pure decisions over the directory.

- A new message in an inbox: every member (owner, member list, roles; not an admin's oversight
  view) with an ``email`` and ``notify_email`` on, and the inbox's own address for queues, auto
  receptionists and groups (a shared mailbox address is told, without the audio). Each address
  once.
- The audio is attached only for a recipient with the download right, decided when the email
  is sent (rights may change while it waits).
- Access granted: a member who can reach inboxes it could not reach before, on inboxes whose
  owner policy has ``email_on_grant`` (queues, auto receptionists and groups: on), gets one
  email listing them. The very first directory is provisioning, not a grant: nobody is emailed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sipvm.domain.model import Directory, Right, sorted_rights
from sipvm.domain.rights import accessible_inboxes, members_of, rights_on


@dataclass(frozen=True)
class EmailTarget:
    """One address to email about an inbox."""

    recipient: str
    """The member's extension, or the inbox's own for its shared address."""
    address: str


@dataclass(frozen=True)
class NewAccess:
    """An inbox a member can newly reach, with its rights there."""

    inbox: str
    name: str
    rights: tuple[str, ...]


def new_message_targets(directory: Directory, inbox_ext: str) -> list[EmailTarget]:
    """Who is emailed about a new message in ``inbox_ext`` (members first, each address once)."""
    targets: list[EmailTarget] = []
    seen: set[str] = set()
    for member in members_of(directory, inbox_ext, oversight=False):
        who = directory.extensions[member]
        if who.email and who.notify_email and who.email.lower() not in seen:
            seen.add(who.email.lower())
            targets.append(EmailTarget(member, who.email))
    inbox = directory.get(inbox_ext)
    shared = inbox.email if inbox is not None and not inbox.kind.has_owner else None
    if shared and shared.lower() not in seen:
        targets.append(EmailTarget(inbox_ext, shared))
    return targets


def attach_audio(directory: Directory, recipient: str, inbox_ext: str) -> bool | None:
    """Whether ``recipient``'s email about ``inbox_ext`` carries the audio.

    None: the recipient should no longer be emailed (it lost its access, or its address).
    """
    inbox = directory.get(inbox_ext)
    if inbox is None:
        return None
    if recipient == inbox_ext and not inbox.kind.has_owner:
        return False if inbox.email else None  # the shared address: never the audio
    who = directory.get(recipient)
    if who is None or not who.email or not who.notify_email:
        return None
    rights = rights_on(directory, recipient, inbox_ext, oversight=False)
    if not rights:
        return None
    return Right.DOWNLOAD in rights


def new_grants(before: Directory, after: Directory) -> dict[str, list[NewAccess]]:
    """For each member with an address: the inboxes it can reach in ``after`` but not ``before``.

    Only inboxes whose policy has ``email_on_grant``; never the member's own inbox.
    """
    found: dict[str, list[NewAccess]] = {}
    for member in after.extensions.values():
        if not member.kind.has_owner or not member.email or not member.notify_email:
            continue
        for access in accessible_inboxes(after, member.ext):
            inbox = access.inbox
            if access.own or not inbox.policy.email_on_grant:
                continue
            rights = rights_on(after, member.ext, inbox.ext, oversight=False)
            if not rights or rights_on(before, member.ext, inbox.ext, oversight=False):
                continue
            found.setdefault(member.ext, []).append(
                NewAccess(inbox.ext, inbox.name, tuple(r.value for r in sorted_rights(rights)))
            )
    return found
