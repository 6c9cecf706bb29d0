"""Editing the directory in place: access member lists, owner policies, the admin flag and
roles, each saved as a new directory revision (the portal's admin pages use it).

An edit starts from the document in force (read from the store, not this process's copy),
changes one entry and goes through the same validation as ``sipvm directory apply``
(``parse_directory``) before it is applied in one transaction: all of it or nothing. Problems
name the field they are about (``members[2].member``), so a page can show each one next to its
field. An edit made on a revision that is no longer in force is refused (ConflictError): an
admin never silently undoes what someone else applied meanwhile. The new revision is followed
like any other: lamps follow the new membership, newly granted members are emailed, and
``sipvm directory export`` writes it out.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sipvm.domain.model import Directory, Extension, Kind, Right, Role, ext_sort_key, sorted_rights
from sipvm.domain.rights import check_removable, require_admin
from sipvm.errors import (
    ConflictError,
    DirectoryError,
    InvalidFieldsError,
    NotFoundError,
    NotPermittedError,
)
from sipvm.provisioning.directory_file import POLICY_KEYS, parse_directory
from sipvm.services.directory import DirectoryService

Document = dict[str, Any]
_RIGHTS = ", ".join(r.value for r in Right)


@dataclass(frozen=True)
class Member:
    """One entry of an access member list, with the member's name for people."""

    member: str
    name: str
    kind: Kind
    rights: tuple[Right, ...]


@dataclass(frozen=True)
class AccessList:
    """Who may reach one inbox, and its settings, as of directory revision ``rev``."""

    inbox: Extension
    rev: int
    """The revision this was read from: give it back with an edit to refuse a stale one."""
    members: tuple[Member, ...]
    """The access member list (the owner is never listed)."""
    policy: Mapping[str, bool]
    """The owner policy settings this kind has (``voicemail``, ``download_own``, ...); empty
    for call queues, auto receptionists and shared line groups."""
    email_on_grant: bool
    """Whether a member given access is emailed (always on where there is no owner policy)."""
    roles: tuple[Role, ...]
    """The roles that also reach this inbox."""

    @property
    def owner(self) -> str | None:
        """The owning user or common area (None for queues, auto receptionists, groups)."""
        return self.inbox.ext if self.inbox.kind.has_owner else None


class AccessService:
    """Admin edits of the directory in force; every method checks that ``by`` is an admin."""

    def __init__(self, directory: DirectoryService) -> None:
        self._directory = directory

    # -- reading ---------------------------------------------------------------------------

    async def access_list(self, inbox: str, *, by: str) -> AccessList:
        """The access member list and settings of ``inbox``."""
        directory, rev = await self._in_force(by, "see access member lists")
        return _access_list(directory, rev, inbox)

    async def directory(self, *, by: str) -> tuple[int, Directory]:
        """The directory revision in force and its directory (to export it)."""
        directory, rev = await self._in_force(by, "see the directory")
        return rev, directory

    async def roles(self, *, by: str) -> tuple[int, tuple[Role, ...]]:
        """The directory revision and its roles."""
        directory, rev = await self._in_force(by, "see roles")
        return rev, directory.roles

    # -- editing ---------------------------------------------------------------------------

    async def set_members(
        self, inbox: str, members: Any, *, by: str, rev: int | None = None
    ) -> AccessList:
        """Replace the access member list of ``inbox``.

        ``members`` is a list of ``{"member": EXT, "rights": [...]}`` (the file's and the
        API's shape), checked here field by field. The owner is never listed (its rights
        follow the owner policy), so replacing the list never removes it.
        """

        def change(doc: Document) -> None:
            kind, table = _entry(doc, inbox)
            grants = _grants(doc, inbox, kind, members)
            if grants:
                table["members"] = grants
            else:
                table.pop("members", None)

        directory, applied = await self._edit(
            by, rev, f"members of inbox {inbox}", "members", change
        )
        return _access_list(directory, applied, inbox)

    async def remove_member(
        self, inbox: str, member: str, *, by: str, rev: int | None = None
    ) -> AccessList:
        """Take ``member`` off the access member list of ``inbox``; never its owner."""
        current, _ = await self._in_force(by, "change access member lists")
        if current.get(inbox) is None:
            raise _no_inbox(inbox)
        check_removable(current, member, inbox)

        def change(doc: Document) -> None:
            _, table = _entry(doc, inbox)
            kept = [g for g in table.get("members", []) if g.get("member") != member]
            if len(kept) == len(table.get("members", [])):
                raise NotFoundError(
                    f"{member} is not on the access member list of inbox {inbox} "
                    "(it may reach it through a role; roles are edited apart)"
                )
            if kept:
                table["members"] = kept
            else:
                table.pop("members", None)

        directory, applied = await self._edit(
            by, rev, f"member {member} removed from inbox {inbox}", "members", change
        )
        return _access_list(directory, applied, inbox)

    async def set_policy(
        self, inbox: str, settings: Any, *, by: str, rev: int | None = None
    ) -> AccessList:
        """Change some owner policy settings of a user's or common area's inbox.

        ``settings`` maps setting names (``voicemail``, ``download_own``, ``delete_own``,
        ``share_own``, ``email_on_grant`` for users) to true or false; the others keep their
        value.
        """

        def change(doc: Document) -> None:
            kind, table = _entry(doc, inbox)
            table["policy"] = {**table.get("policy", {}), **_policy(kind, settings)}

        directory, applied = await self._edit(
            by, rev, f"owner policy of inbox {inbox}", "policy", change
        )
        return _access_list(directory, applied, inbox)

    async def set_email_on_grant(
        self, inbox: str, on: Any, *, by: str, rev: int | None = None
    ) -> AccessList:
        """Whether members given access to ``inbox`` (a user's) are emailed."""
        return await self.set_policy(inbox, {"email_on_grant": on}, by=by, rev=rev)

    async def set_admin(
        self, user: str, admin: Any, *, by: str, rev: int | None = None
    ) -> Extension:
        """Make ``user`` an admin or not. An admin cannot take its own flag away (so there is
        always one left who can give it back)."""
        if not isinstance(admin, bool):
            raise InvalidFieldsError({"admin": "must be true or false"})
        if user == by and not admin:
            raise NotPermittedError(
                f"{by} cannot take away its own admin flag; another admin must do it"
            )

        def change(doc: Document) -> None:
            kind, table = _entry(doc, user)
            if kind is not Kind.USER:
                raise InvalidFieldsError(
                    {"admin": f"{user} is {_a(kind)}; only users can be admins"}
                )
            table["admin"] = admin

        verb = "made an admin" if admin else "no longer an admin"
        directory, _ = await self._edit(by, rev, f"{user} {verb}", "admin", change)
        return directory.extensions[user]

    async def set_role_members(
        self, name: str, members: Any, *, by: str, rev: int | None = None
    ) -> Role:
        """Replace the members of the role ``name`` (a list of extensions)."""

        def change(doc: Document) -> None:
            for table in doc.get("role", []):
                if table.get("name") == name:
                    table["members"] = _role_members(doc, members)
                    return
            raise NotFoundError(f"there is no role {name!r}; roles are defined in the directory")

        directory, _ = await self._edit(by, rev, f"members of role {name!r}", "members", change)
        return next(r for r in directory.roles if r.name == name)

    # -- helpers ---------------------------------------------------------------------------

    async def _in_force(self, by: str, doing: str) -> tuple[Directory, int]:
        await self._directory.refresh()
        directory = self._directory.current
        require_admin(directory, by, doing)
        return directory, self._directory.rev

    async def _edit(
        self,
        by: str,
        rev: int | None,
        what: str,
        field: str,
        change: Callable[[Document], None],
    ) -> tuple[Directory, int]:
        """Apply ``change`` to the document in force as one new revision; the directory and
        revision now in force (unchanged when the edit changed nothing)."""
        await self._in_force(by, "change the directory")
        found_rev, document = await self._directory.in_force()
        if rev is not None and rev != found_rev:
            raise ConflictError(
                f"the directory changed since you read it (revision {found_rev} is in force, "
                f"you edited revision {rev}); nothing was changed: load it again and redo "
                "the edit"
            )
        edited = copy.deepcopy(document)
        change(edited)
        try:
            directory = parse_directory(edited, source="the edited directory")
        except DirectoryError as exc:
            raise InvalidFieldsError({field: "; ".join(exc.problems)}) from exc
        applied = await self._directory.apply(
            directory, source=f"{what} by {by}", expected_rev=found_rev
        )
        return directory, applied.rev


def _access_list(directory: Directory, rev: int, ext: str) -> AccessList:
    inbox = directory.get(ext)
    if inbox is None:
        raise _no_inbox(ext)
    members = tuple(
        Member(
            member=g.member,
            name=directory.extensions[g.member].name,
            kind=directory.extensions[g.member].kind,
            rights=tuple(sorted_rights(g.rights)),
        )
        for g in sorted(inbox.members, key=lambda g: ext_sort_key(g.member))
    )
    keys = POLICY_KEYS.get(inbox.kind, ())
    return AccessList(
        inbox=inbox,
        rev=rev,
        members=members,
        policy={key: getattr(inbox.policy, key) for key in keys},
        email_on_grant=inbox.policy.email_on_grant,
        roles=tuple(r for r in directory.roles if r.covers(inbox)),
    )


def _entry(doc: Document, ext: str) -> tuple[Kind, Document]:
    """The kind and table of ``ext`` in a directory document."""
    for kind in Kind:
        for table in doc.get(kind.value, []):
            if table.get("ext") == ext:
                return kind, table
    raise _no_inbox(ext)


def _no_inbox(ext: str) -> NotFoundError:
    return NotFoundError(
        f"there is no inbox {ext}; see the directory with `sipvm directory export`"
    )


def _kinds_of(doc: Document) -> dict[str, Kind]:
    return {t.get("ext"): kind for kind in Kind for t in doc.get(kind.value, [])}


def _kind_name(kind: Kind) -> str:
    return kind.value.replace("_", " ")


def _a(kind: Kind) -> str:
    """The kind's name with its article ("an auto receptionist")."""
    return ("an " if kind is Kind.AUTO_RECEPTIONIST else "a ") + _kind_name(kind)


def _member_problem(kinds: Mapping[str, Kind], member: Any) -> tuple[str | None, str]:
    """The member's extension, or None and what is wrong with it."""
    if not isinstance(member, str) or not member.strip():
        return None, "give the extension of a user or common area"
    member = member.strip()
    kind = kinds.get(member)
    if kind is None:
        return None, f"{member} is not in the directory"
    if not kind.has_owner:
        return None, f"{member} is {_a(kind)}; only users and common areas can be members"
    return member, ""


def _grants(doc: Document, inbox: str, kind: Kind, value: Any) -> list[Document]:
    """The member list ``value`` as document entries, or InvalidFieldsError naming each field."""
    if not isinstance(value, list):
        raise InvalidFieldsError({"members": 'must be a list of {"member", "rights"} entries'})
    kinds = _kinds_of(doc)
    problems: dict[str, str] = {}
    grants: list[Document] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        at = f"members[{i}]"
        if not isinstance(item, Mapping):
            problems[at] = 'must be an object with "member" and "rights"'
            continue
        for key in sorted(set(item) - {"member", "rights"}):
            problems[f"{at}.{key}"] = 'unknown field; an entry has "member" and "rights"'
        member, problem = _member_problem(kinds, item.get("member"))
        if member is not None and kind.has_owner and member == inbox:
            problem = (
                f"{member} owns this inbox and always has access; "
                "its rights follow the owner policy"
            )
        elif member is not None and member in seen:
            problem = f"{member} is listed twice; give its rights once"
        if problem:
            problems[f"{at}.member"] = problem
        else:
            assert member is not None
            seen.add(member)
        rights = _rights(item.get("rights"))
        if isinstance(rights, str):
            problems[f"{at}.rights"] = rights
        elif member is not None and not problem:
            grants.append({"member": member, "rights": rights})
    if problems:
        raise InvalidFieldsError(problems)
    return grants


def _rights(value: Any) -> list[str] | str:
    """Rights in the file's canonical order, or what is wrong with them."""
    if not isinstance(value, list) or not value:
        return f"give at least one of {_RIGHTS} (remove the member to take its access away)"
    names = {r.value for r in Right}
    unknown = [v for v in value if not isinstance(v, str) or v not in names]
    if unknown:
        return f"unknown right {unknown[0]!r}; rights are {_RIGHTS}"
    rights = frozenset(Right(v) for v in value) | {Right.PLAY}
    return [r.value for r in sorted_rights(rights)]


def _policy(kind: Kind, value: Any) -> dict[str, bool]:
    """Owner policy settings for ``kind``, or InvalidFieldsError naming each bad one."""
    keys = POLICY_KEYS.get(kind)
    if keys is None:
        raise InvalidFieldsError(
            {
                "policy": f"{_a(kind)} has no owner policy: its members are set in "
                "its member list and every member given access is emailed"
            }
        )
    if not isinstance(value, Mapping):
        raise InvalidFieldsError({"policy": "must be an object of settings set to true or false"})
    problems: dict[str, str] = {}
    for key, setting in value.items():
        if key not in keys:
            problems[f"policy.{key}"] = (
                f"not a setting of {_a(kind)}'s policy; settings: {', '.join(keys)}"
            )
        elif not isinstance(setting, bool):
            problems[f"policy.{key}"] = "must be true or false"
    if problems:
        raise InvalidFieldsError(problems)
    return dict(value)


def _role_members(doc: Document, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise InvalidFieldsError({"members": "must be a list of extensions"})
    kinds = _kinds_of(doc)
    problems: dict[str, str] = {}
    members: list[str] = []
    for i, item in enumerate(value):
        member, problem = _member_problem(kinds, item)
        if member is not None and member in members:
            problem = f"{member} is listed twice"
        if problem:
            problems[f"members[{i}]"] = problem
        elif member is not None:
            members.append(member)
    if problems:
        raise InvalidFieldsError(problems)
    return members
