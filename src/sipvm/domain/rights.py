"""Who may do what with which inbox: pure functions over the directory.

The rules (CONTRACT.md, "Rights rules"):

1. A member's rights on an inbox are the union of its member-list entry and its roles.
2. Any right implies PLAY.
3. The owner of a user or common-area inbox always has PLAY on it. The owner's other rights on
   their own inbox come from the owner policy alone (member lists and roles do not apply there,
   and a member-list entry naming the owner is a directory error):
   - user: DOWNLOAD if ``download_own``; DELETE if ``delete_own``; SHARE if download is allowed,
     or, where it is not, if ``share_own`` ("share their own voicemail if they are not allowed
     to download it").
   - common area: DELETE if ``delete_own``; SHARE if ``share_own``; never DOWNLOAD (no portal).
4. Admin users have at least PLAY on every call queue, auto receptionist and shared line group.
5. A member that is not a user or common area, or is not in the directory, has no rights.
6. The owner cannot be removed from their own inbox.
7. Only admin users manage the directory (member lists, policies, roles), hours, the
   greetings of queues, auto receptionists and groups, deleted messages and audit trails.
"""

from __future__ import annotations

from dataclasses import dataclass

from sipvm.domain.model import (
    ADMIN_VISIBLE_KINDS,
    Directory,
    Extension,
    Kind,
    Right,
    ext_sort_key,
)
from sipvm.errors import NotPermittedError

NO_RIGHTS: frozenset[Right] = frozenset()


def with_play(rights: frozenset[Right] | set[Right]) -> frozenset[Right]:
    """Rule 2: any right implies PLAY; no rights stay no rights."""
    return frozenset(rights) | {Right.PLAY} if rights else NO_RIGHTS


def owner_rights(owner: Extension) -> frozenset[Right]:
    """Rule 3: what the owner of a user or common-area inbox may do with it."""
    policy = owner.policy
    rights = {Right.PLAY}
    if owner.kind is Kind.USER:
        if policy.download_own:
            rights.add(Right.DOWNLOAD)
        if policy.delete_own:
            rights.add(Right.DELETE)
        if policy.download_own or policy.share_own:
            rights.add(Right.SHARE)
    elif owner.kind is Kind.COMMON_AREA:
        if policy.delete_own:
            rights.add(Right.DELETE)
        if policy.share_own:
            rights.add(Right.SHARE)
    return frozenset(rights)


def is_owner(member: str, inbox: Extension) -> bool:
    """Whether ``member`` owns ``inbox`` (users and common areas own the inbox of their number)."""
    return inbox.kind.has_owner and inbox.ext == member


def rights_on(
    directory: Directory, member: str, inbox_ext: str, *, oversight: bool = True
) -> frozenset[Right]:
    """The rights ``member`` has on the inbox ``inbox_ext`` (empty when none or unknown).

    ``oversight=False`` leaves out rule 4 (an admin's PLAY on every queue, auto receptionist
    and group): what the member was *granted*, as notifications see it.
    """
    inbox = directory.get(inbox_ext)
    who = directory.get(member)
    if inbox is None or who is None or not who.kind.has_owner:
        return NO_RIGHTS
    if is_owner(member, inbox):
        return owner_rights(inbox)
    rights: set[Right] = set()
    for grant in inbox.members:
        if grant.member == member:
            rights |= grant.rights
    for role in directory.roles_by_member.get(member, ()):
        if role.covers(inbox):
            rights |= role.rights
    if oversight and who.kind is Kind.USER and who.admin and inbox.kind in ADMIN_VISIBLE_KINDS:
        rights.add(Right.PLAY)
    return with_play(rights)


@dataclass(frozen=True)
class InboxAccess:
    """One inbox a member may reach, with the rights there."""

    inbox: Extension
    rights: frozenset[Right]
    own: bool


def accessible_inboxes(directory: Directory, member: str) -> list[InboxAccess]:
    """Every inbox ``member`` may play: its own first, then the others by extension."""
    who = directory.get(member)
    if who is None or not who.kind.has_owner:
        return []
    candidates: set[str] = {member} | directory.granted_inboxes.get(member, frozenset())
    for role in directory.roles_by_member.get(member, ()):
        candidates.update(e.ext for e in directory.extensions.values() if role.covers(e))
    if who.kind is Kind.USER and who.admin:
        candidates.update(
            e.ext for e in directory.extensions.values() if e.kind in ADMIN_VISIBLE_KINDS
        )
    found: list[InboxAccess] = []
    for ext in candidates:
        rights = rights_on(directory, member, ext)
        if rights:
            found.append(InboxAccess(directory.extensions[ext], rights, own=ext == member))
    found.sort(key=lambda a: (not a.own, ext_sort_key(a.inbox.ext)))
    return found


def members_of(directory: Directory, inbox_ext: str, *, oversight: bool = True) -> list[str]:
    """Every user or common area with any right on the inbox (owner first, then by extension).

    Notifications and message-waiting lamps go to ``oversight=False``: the owner, the member
    list and role members. An admin's oversight view of every queue lights no lamp and sends no
    email (it would light every admin's lamp for every queue).
    """
    found = [
        ext
        for ext, who in directory.extensions.items()
        if who.kind.has_owner and rights_on(directory, ext, inbox_ext, oversight=oversight)
    ]
    found.sort(key=lambda ext: (ext != inbox_ext, ext_sort_key(ext)))
    return found


def require(directory: Directory, member: str, inbox_ext: str, right: Right) -> None:
    """Raise NotPermittedError unless ``member`` has ``right`` on the inbox."""
    if right not in rights_on(directory, member, inbox_ext):
        raise NotPermittedError(
            f"{member} does not have the {right.value} right on inbox {inbox_ext}; "
            "ask an admin to grant it in the inbox's member list or a role"
        )


def check_removable(directory: Directory, member: str, inbox_ext: str) -> None:
    """Rule 6: refuse removing an inbox's owner from its access."""
    inbox = directory.get(inbox_ext)
    if inbox is not None and is_owner(member, inbox):
        raise NotPermittedError(
            f"{member} owns inbox {inbox_ext} and cannot be removed from it; "
            "change the owner policy instead"
        )


def require_admin(directory: Directory, member: str, doing: str) -> Extension:
    """Rule 7: the admin user ``member``, or NotPermittedError saying what needs an admin."""
    who = directory.get(member)
    if who is None or who.kind is not Kind.USER or not who.admin:
        raise NotPermittedError(
            f"only an admin user may {doing} and {member} is not one; "
            "an admin sets admin = true for a user in the directory"
        )
    return who
