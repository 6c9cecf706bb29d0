"""The directory: sites, extensions of five kinds, owner policies, access member lists, roles.

Everything here is a frozen dataclass built once from a validated directory file (see
``sipvm.provisioning.directory_file``) and shared read-only by every part of the server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

from sipvm.domain.routing import Routing


class Kind(StrEnum):
    """What an extension is; the directory file's table name for each kind."""

    USER = "user"
    COMMON_AREA = "common_area"
    CALL_QUEUE = "call_queue"
    AUTO_RECEPTIONIST = "auto_receptionist"
    SHARED_LINE_GROUP = "shared_line_group"

    @property
    def has_owner(self) -> bool:
        """Users and common areas own their inbox; queues, ARs and groups have members only."""
        return self in (Kind.USER, Kind.COMMON_AREA)

    @property
    def has_routing(self) -> bool:
        """Queues, auto receptionists and shared line groups have hours and routes."""
        return not self.has_owner


#: Kinds an admin user may play without being granted (CONTRACT.md "admin").
EXT_MAX_DIGITS = 15
"""The longest extension a directory may hold (E.164's 15 digits): what the file accepts and
what every keypad prompt for an extension reads."""

ADMIN_VISIBLE_KINDS = frozenset({Kind.CALL_QUEUE, Kind.AUTO_RECEPTIONIST, Kind.SHARED_LINE_GROUP})


class Right(StrEnum):
    """What a member may do with the messages of an inbox. Any right implies PLAY."""

    PLAY = "play"
    DOWNLOAD = "download"
    DELETE = "delete"
    SHARE = "share"


#: Rights in the order they are listed to people and in files.
RIGHT_ORDER = (Right.PLAY, Right.DOWNLOAD, Right.DELETE, Right.SHARE)


def ext_sort_key(ext: str) -> tuple[int, str]:
    """Sort key for extensions: numerically where they are numbers (shorter first, then by
    digits), which is what a person reading a list of extensions expects."""
    return (len(ext), ext)


def sorted_rights(rights: frozenset[Right]) -> list[Right]:
    """The rights in their canonical order (play, download, delete, share)."""
    return [r for r in RIGHT_ORDER if r in rights]


@dataclass(frozen=True)
class Defaults:
    """Directory-wide defaults (the ``[defaults]`` table)."""

    operator: str = "0"
    """Extension or number that "reach an operator" transfers to."""
    max_message_s: int = 180
    """Longest message a caller may leave, in seconds."""
    min_message_s: int = 2
    """Messages shorter than this are discarded as hang-ups."""
    language: str = "en"
    """Prompt language."""


@dataclass(frozen=True)
class Site:
    """A place with a time zone; hours and envelope times are in it."""

    name: str
    timezone: str


@dataclass(frozen=True)
class OwnerPolicy:
    """What the owner of a user or common-area inbox may do with their own messages."""

    voicemail: bool = True
    """Callers may leave messages in this inbox."""
    download_own: bool = True
    """The owner may download their messages (never for common areas)."""
    delete_own: bool = True
    """The owner may delete their messages."""
    share_own: bool = False
    """The owner may share their messages even though download is not allowed."""
    email_on_grant: bool = True
    """Email a member when they are granted access to this inbox."""


#: Policy defaults for common areas: they have no portal login, so no download, and deleting or
#: sharing is off until the admin turns it on.
COMMON_AREA_POLICY = OwnerPolicy(download_own=False, delete_own=False, share_own=False)


class PhoneModel(StrEnum):
    """Desk-phone families sipvm writes configuration files for."""

    YEALINK = "yealink"
    POLYCOM = "polycom"
    GRANDSTREAM = "grandstream"


@dataclass(frozen=True)
class DeskPhone:
    """A desk phone given as a table in the directory: its AOR and what provisioning needs."""

    uri: str
    """The AOR (also in the extension's ``phones``: lamps and caller identification)."""
    mac: str | None = None
    """12 lower-case hex digits; with ``model``, sipvm writes this phone's file."""
    model: PhoneModel | None = None
    label: str | None = None

    @property
    def provisioned(self) -> bool:
        """Whether sipvm writes a configuration file for this phone."""
        return self.mac is not None and self.model is not None


@dataclass(frozen=True)
class Grant:
    """One entry of an inbox's access member list."""

    member: str
    """Extension of a user or common area."""
    rights: frozenset[Right]
    """Always contains PLAY (any right implies it)."""


@dataclass(frozen=True)
class Extension:
    """A directory entry of any kind; every extension has an inbox of the same number."""

    ext: str
    kind: Kind
    name: str
    site: str
    email: str | None = None
    pin_hash: str | None = None
    """Salted scrypt hash (see ``domain.pins``); users and common areas only."""
    admin: bool = False
    """Users only: sees every AR, CQ and SLG inbox (play unless granted more)."""
    phones: tuple[str, ...] = ()
    """AORs of the desk phones (MWI, caller identification); users and common areas."""
    desk_phones: tuple[DeskPhone, ...] = ()
    """The phones given as tables (``[[user.phone]]``), with MAC and model for provisioning;
    their AORs are in ``phones`` too."""
    notify_email: bool = True
    """Users and common areas with an ``email``: send new-message and access emails."""
    policy: OwnerPolicy = field(default_factory=OwnerPolicy)
    """Owner policy; meaningful for users and common areas."""
    members: tuple[Grant, ...] = ()
    """The access member list of this extension's inbox."""
    routing: Routing | None = None
    """Hours, holidays and routes: call queues, auto receptionists and shared line groups
    (None: always open, voicemail)."""

    @property
    def voicemail_enabled(self) -> bool:
        """Whether callers may leave messages here."""
        return self.policy.voicemail


@dataclass(frozen=True)
class Role:
    """Grants rights on every inbox of some kinds (optionally only at some sites)."""

    name: str
    members: tuple[str, ...]
    kinds: frozenset[Kind]
    rights: frozenset[Right]
    sites: frozenset[str] | None = None
    """None: every site."""

    def covers(self, inbox: Extension) -> bool:
        """Whether this role reaches that inbox."""
        return inbox.kind in self.kinds and (self.sites is None or inbox.site in self.sites)


@dataclass(frozen=True)
class Directory:
    """The whole validated directory. Lookups are by extension string."""

    defaults: Defaults = field(default_factory=Defaults)
    sites: Mapping[str, Site] = field(default_factory=dict)
    extensions: Mapping[str, Extension] = field(default_factory=dict)
    roles: tuple[Role, ...] = ()

    def get(self, ext: str) -> Extension | None:
        """The extension with that number, or None."""
        return self.extensions.get(ext)

    @cached_property
    def granted_inboxes(self) -> Mapping[str, frozenset[str]]:
        """For each member extension, the inboxes whose member list names it."""
        index: dict[str, set[str]] = {}
        for inbox in self.extensions.values():
            for grant in inbox.members:
                index.setdefault(grant.member, set()).add(inbox.ext)
        return {member: frozenset(exts) for member, exts in index.items()}

    @cached_property
    def roles_by_member(self) -> Mapping[str, tuple[Role, ...]]:
        """For each member extension, the roles it belongs to."""
        index: dict[str, list[Role]] = {}
        for role in self.roles:
            for member in role.members:
                index.setdefault(member, []).append(role)
        return {member: tuple(roles) for member, roles in index.items()}
