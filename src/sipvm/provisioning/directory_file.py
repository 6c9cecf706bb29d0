"""The directory file (TOML, CONTRACT.md): validate it whole, build a ``Directory``, write it back.

Validation collects every problem before failing, so an admin fixes a file in one pass. Each
problem names the file, the entry and what is wrong. The same code reads the canonical document
the store keeps (with ``pin_hash`` only), so there is one parser for both.

Hand-written rather than a schema library: the schema is small, cross-references (members,
roles, sites) need custom checks anyway, and the messages can name entries by extension.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w

from sipvm.domain.model import (
    COMMON_AREA_POLICY,
    EXT_MAX_DIGITS,
    Defaults,
    DeskPhone,
    Directory,
    Extension,
    Grant,
    Kind,
    OwnerPolicy,
    Right,
    Role,
    Site,
    ext_sort_key,
    sorted_rights,
)
from sipvm.domain.pins import hash_pin, is_pin_hash, pin_problem, verify_pin
from sipvm.errors import DirectoryError, InvalidInputError
from sipvm.provisioning.checks import non_empty, type_name
from sipvm.provisioning.phone_tables import AOR_RE, PhoneChecks, phone_document
from sipvm.provisioning.routing_file import (
    ROUTING_KEYS,
    RoutingReader,
    Targets,
    key_hints,
    routing_document,
)

_TOP_KEYS = {"defaults", "site", "role", *(k.value for k in Kind)}
# \Z, not $: $ also matches before a trailing newline, so "1001\n" would pass as an extension.
_EXT_RE = re.compile(rf"^[0-9]{{1,{EXT_MAX_DIGITS}}}\Z")
_OPERATOR_RE = re.compile(r"^\+?[0-9*#]{1,20}\Z")
_LANG_RE = re.compile(r"^[a-z]{2}(_[A-Z]{2})?\Z")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+\Z")

_COMMON_KEYS = {"ext", "name", "site", "email", "members"}
_OWNER_KEYS = {"pin", "pin_hash", "phones", "phone", "notify_email", "policy"}
_EXT_KEYS: Mapping[Kind, set[str]] = {
    Kind.USER: _COMMON_KEYS | _OWNER_KEYS | {"admin"},
    Kind.COMMON_AREA: _COMMON_KEYS | _OWNER_KEYS,
    Kind.CALL_QUEUE: _COMMON_KEYS | ROUTING_KEYS[Kind.CALL_QUEUE],
    Kind.AUTO_RECEPTIONIST: _COMMON_KEYS | ROUTING_KEYS[Kind.AUTO_RECEPTIONIST],
    Kind.SHARED_LINE_GROUP: _COMMON_KEYS | ROUTING_KEYS[Kind.SHARED_LINE_GROUP],
}
POLICY_KEYS: Mapping[Kind, tuple[str, ...]] = {  # the owner policy settings of each kind
    Kind.USER: ("voicemail", "download_own", "delete_own", "share_own", "email_on_grant"),
    Kind.COMMON_AREA: ("voicemail", "delete_own", "share_own"),
}
_DEFAULT_POLICY: Mapping[Kind, OwnerPolicy] = {
    Kind.USER: OwnerPolicy(),
    Kind.COMMON_AREA: COMMON_AREA_POLICY,
}


def read_directory_file(path: Path, *, existing: Directory | None = None) -> Directory:
    """Read, validate and build the directory in ``path``.

    ``existing`` is the directory in force: a clear ``pin`` that still matches the stored hash
    keeps that hash, so applying the same file twice changes nothing.
    Raises DirectoryError listing every problem, or InvalidInputError when unreadable.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read directory file {path}: {exc.strerror}; check the path"
        ) from exc
    try:
        doc = tomllib.loads(raw.decode("utf-8-sig"))  # editors may add a BOM
    except UnicodeDecodeError as exc:
        raise DirectoryError([f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise DirectoryError([f"{path}: not valid TOML: {exc}"]) from exc
    return parse_directory(doc, source=str(path), existing=existing)


def parse_directory(
    doc: Mapping[str, Any], *, source: str, existing: Directory | None = None
) -> Directory:
    """Validate a directory document (already decoded TOML or stored JSON) and build it."""
    parser = _Parser(source, existing)
    directory = parser.parse(doc)
    if parser.problems:
        raise DirectoryError(parser.problems)
    return directory


def directory_document(directory: Directory) -> dict[str, Any]:
    """The canonical document for ``directory``: what export writes and the store keeps."""
    doc: dict[str, Any] = {}
    d = directory.defaults
    doc["defaults"] = {
        "operator": d.operator,
        "max_message_s": d.max_message_s,
        "min_message_s": d.min_message_s,
        "language": d.language,
    }
    doc["site"] = [{"name": s.name, "timezone": s.timezone} for s in directory.sites.values()]
    for kind in Kind:
        entries = [e for e in directory.extensions.values() if e.kind is kind]
        entries.sort(key=lambda e: ext_sort_key(e.ext))
        if entries:
            doc[kind.value] = [_extension_document(e) for e in entries]
    if directory.roles:
        doc["role"] = [_role_document(r) for r in directory.roles]
    return doc


def dump_directory(directory: Directory) -> str:
    """The directory as directory-file TOML (PINs as ``pin_hash``)."""
    header = "# sipvm directory (exported; PINs are stored as hashes)\n"
    return header + tomli_w.dumps(directory_document(directory))


def _extension_document(e: Extension) -> dict[str, Any]:
    out: dict[str, Any] = {"ext": e.ext, "name": e.name, "site": e.site}
    if e.email:
        out["email"] = e.email
    if e.kind.has_owner:
        if e.pin_hash:
            out["pin_hash"] = e.pin_hash
        if e.kind is Kind.USER:
            out["admin"] = e.admin
        tables = {d.uri for d in e.desk_phones}
        out["phones"] = [aor for aor in e.phones if aor not in tables]
        if e.desk_phones:  # written only when given: older documents keep their digest
            out["phone"] = [phone_document(d) for d in e.desk_phones]
        if not e.notify_email:  # written only when off: older documents keep their digest
            out["notify_email"] = False
        out["policy"] = {key: getattr(e.policy, key) for key in POLICY_KEYS[e.kind]}
    if e.members:
        out["members"] = [
            {"member": g.member, "rights": [r.value for r in sorted_rights(g.rights)]}
            for g in e.members
        ]
    if e.routing is not None:
        out.update(routing_document(e.routing))
    return out


def _role_document(r: Role) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": r.name,
        "members": list(r.members),
        "kinds": [k.value for k in Kind if k in r.kinds],
        "rights": [x.value for x in sorted_rights(r.rights)],
    }
    if r.sites is not None:
        out["sites"] = sorted(r.sites)
    return out


class _Parser(PhoneChecks):
    """One validation pass; ``problems`` collects every problem found."""

    def __init__(self, source: str, existing: Directory | None) -> None:
        super().__init__(source)
        self.existing = existing

    def rights(self, value: Any, where: str) -> frozenset[Right]:
        if not isinstance(value, list) or not value:
            self.problem(
                where,
                "'rights' must be a non-empty list of: play, download, delete, share",
            )
            return frozenset()
        out: set[Right] = set()
        for item in value:
            try:
                out.add(Right(item))
            except ValueError:
                self.problem(
                    where, f"unknown right {item!r}; rights are play, download, delete, share"
                )
        return frozenset(out | {Right.PLAY}) if out else frozenset()

    # -- the document ---------------------------------------------------------------------

    def parse(self, doc: Mapping[str, Any]) -> Directory:
        self.keys(doc, _TOP_KEYS, "top level")
        defaults = self.defaults(doc.get("defaults", {}))
        sites = self.sites(doc.get("site", []))
        entries: dict[str, tuple[Kind, dict[str, Any], str]] = {}
        for kind in Kind:
            for i, table in enumerate(self.tables(doc.get(kind.value, []), kind.value), 1):
                ext = table.get("ext")
                where = f"{kind.value} #{i}"
                if isinstance(ext, str) and _EXT_RE.match(ext):
                    where = f"{kind.value} {ext}"
                    if ext in entries:
                        _, _, other_where = entries[ext]
                        self.problem(where, f"extension {ext} is already used by {other_where}")
                        continue
                entries_key = ext if isinstance(ext, str) and _EXT_RE.match(ext) else where
                entries[entries_key] = (kind, table, where)
        owners = {
            ext for ext, (kind, _, _) in entries.items() if kind.has_owner and _EXT_RE.match(ext)
        }
        extensions: dict[str, Extension] = {}
        for _ext, (kind, table, where) in entries.items():
            built = self.extension(kind, table, where, sites, owners, defaults)
            if built is not None:
                extensions[built.ext] = built
        # Routes name other entries (and whether they take messages): read them once all are.
        targets = Targets(
            extensions=frozenset(ext for ext in entries if _EXT_RE.match(ext)),
            voicemail_off=frozenset(e.ext for e in extensions.values() if not e.voicemail_enabled),
            operator=defaults.operator,
        )
        reader = RoutingReader(self, targets)
        for ext, (kind, table, where) in entries.items():
            if kind.has_routing:
                routing = reader.read(kind, table, where, ext if _EXT_RE.match(ext) else None)
                if routing is not None and ext in extensions:
                    extensions[ext] = dataclasses.replace(extensions[ext], routing=routing)
        roles = self.roles(doc.get("role", []), sites, owners)
        return Directory(defaults=defaults, sites=sites, extensions=extensions, roles=roles)

    def defaults(self, value: Any) -> Defaults:
        table = self.table(value, "defaults")
        if table is None:
            return Defaults()
        w = "defaults"
        self.keys(table, {"operator", "max_message_s", "min_message_s", "language"}, w)
        base = Defaults()
        operator = self.get(
            table,
            "operator",
            str,
            w,
            base.operator,
            check=lambda v: None if _OPERATOR_RE.match(v) else "must be an extension or number",
        )
        max_s = self.get(
            table,
            "max_message_s",
            int,
            w,
            base.max_message_s,
            check=lambda v: None if 5 <= v <= 3600 else "must be 5 to 3600 seconds",
        )
        min_s = self.get(
            table,
            "min_message_s",
            int,
            w,
            base.min_message_s,
            check=lambda v: None if 0 <= v <= 60 else "must be 0 to 60 seconds",
        )
        if min_s >= max_s:
            self.problem(w, "'min_message_s' must be below 'max_message_s'")
        language = self.get(
            table,
            "language",
            str,
            w,
            base.language,
            check=lambda v: None if _LANG_RE.match(v) else "must be a language code like en or fr",
        )
        return Defaults(
            operator=operator, max_message_s=max_s, min_message_s=min_s, language=language
        )

    def sites(self, value: Any) -> dict[str, Site]:
        sites: dict[str, Site] = {}
        for i, table in enumerate(self.tables(value, "site"), 1):
            name = table.get("name")
            where = f"site {name!r}" if isinstance(name, str) and name else f"site #{i}"
            self.keys(table, {"name", "timezone"}, where)
            name = self.get(table, "name", str, where, required=True, check=non_empty)
            tz = self.get(table, "timezone", str, where, required=True, check=_timezone_problem)
            if name is None:
                continue
            if name in sites:
                self.problem(where, "a site of that name is already defined")
                continue
            # A bad time zone is reported above; the site stays known so that entries naming
            # it are not blamed as well (the directory is refused either way).
            sites[name] = Site(name=name, timezone=tz or "UTC")
        return sites

    def extension(
        self,
        kind: Kind,
        table: dict[str, Any],
        where: str,
        sites: Mapping[str, Site],
        owners: set[str],
        defaults: Defaults,
    ) -> Extension | None:
        self.keys(table, _EXT_KEYS[kind], where, key_hints(kind))
        before = len(self.problems)
        ext = self.get(
            table,
            "ext",
            str,
            where,
            required=True,
            check=lambda v: None if _EXT_RE.match(v) else f"must be 1 to {EXT_MAX_DIGITS} digits",
        )
        name = self.get(table, "name", str, where, required=True, check=non_empty)
        site = self.site_of(table, where, sites)
        email = self.get(
            table,
            "email",
            str,
            where,
            check=lambda v: None if _EMAIL_RE.match(v) else "is not an email address",
        )
        members = self.members(table.get("members", []), where, ext, owners)
        admin = phones = None
        desk: list[DeskPhone] = []
        notify_email = True
        policy = _DEFAULT_POLICY.get(kind, OwnerPolicy())
        pin_hash = None
        if kind.has_owner:
            admin = self.get(table, "admin", bool, where, False)
            phones = self.phones(table.get("phones", []), where)
            desk = self.desk_phones(table.get("phone", []), where)
            phones = self.all_phones(phones, desk, where)
            notify_email = self.get(table, "notify_email", bool, where, True)
            policy = self.policy(kind, table.get("policy", {}), where)
            pin_hash = self.pin_hash(table, where, ext)
        if len(self.problems) != before or ext is None or name is None or site is None:
            return None
        return Extension(
            ext=ext,
            kind=kind,
            name=name,
            site=site,
            email=email,
            pin_hash=pin_hash,
            admin=bool(admin),
            phones=tuple(phones or ()),
            desk_phones=tuple(desk),
            notify_email=notify_email is not False,
            policy=policy,
            members=members,
        )

    def site_of(
        self, table: Mapping[str, Any], where: str, sites: Mapping[str, Site]
    ) -> str | None:
        if "site" not in table and len(sites) == 1:
            return next(iter(sites))
        site = self.get(table, "site", str, where, required=True)
        if site is not None and site not in sites:
            known = ", ".join(repr(s) for s in sites) or "none defined"
            self.problem(where, f"site {site!r} is not defined in [[site]] (sites: {known})")
            return None
        return site  # type: ignore[no-any-return]

    def phones(self, value: Any, where: str) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(
                where, "'phones' must be a list of SIP URIs like \"sip:1001@pbx.example.com\""
            )
            return []
        for aor in value:
            if not AOR_RE.match(aor):
                self.problem(where, f"phone {aor!r} is not a SIP URI (sip:user@host)")
        return list(value)

    def policy(self, kind: Kind, value: Any, where: str) -> OwnerPolicy:
        base = _DEFAULT_POLICY[kind]
        w = f"{where} policy"
        table = self.table(value, w)
        if table is None:
            return base
        self.keys(table, set(POLICY_KEYS[kind]), w)
        values = {
            key: self.get(table, key, bool, w, getattr(base, key)) for key in POLICY_KEYS[kind]
        }
        return OwnerPolicy(**{**base.__dict__, **values})

    def pin_hash(self, table: Mapping[str, Any], where: str, ext: str | None) -> str | None:
        if "pin" in table and "pin_hash" in table:
            self.problem(where, "give either 'pin' or 'pin_hash', not both")
            return None
        if "pin_hash" in table:
            value = self.get(table, "pin_hash", str, where)
            if value is not None and not is_pin_hash(value):
                self.problem(where, "'pin_hash' is not a hash sipvm wrote; give 'pin' instead")
                return None
            return value  # type: ignore[no-any-return]
        if "pin" not in table:
            return None
        pin = table["pin"]
        if not isinstance(pin, str):
            self.problem(where, f"'pin' must be a string of digits in quotes, not {type_name(pin)}")
            return None
        complaint = pin_problem(pin, ext or "")
        if complaint:
            self.problem(where, f"'pin' is not acceptable: {complaint}")
            return None
        old = self.existing.get(ext) if self.existing is not None and ext else None
        if old is not None and old.pin_hash and verify_pin(pin, old.pin_hash):
            return old.pin_hash
        return hash_pin(pin)

    def members(
        self, value: Any, where: str, owner: str | None, owners: set[str]
    ) -> tuple[Grant, ...]:
        grants: list[Grant] = []
        seen: set[str] = set()
        for i, table in enumerate(self.tables(value, f"{where} members"), 1):
            w = f"{where} members #{i}"
            self.keys(table, {"member", "rights"}, w)
            member = self.get(table, "member", str, w, required=True)
            rights = self.rights(table.get("rights"), w)
            if member is None:
                continue
            if member == owner:
                self.problem(
                    w,
                    f"{member} owns this inbox and always has access; "
                    "set its rights with the owner policy instead",
                )
            elif member not in owners:
                self.problem(w, f"member {member} is not a user or common area in this directory")
            elif member in seen:
                self.problem(w, f"member {member} is listed twice; merge the rights into one entry")
            elif rights:
                grants.append(Grant(member=member, rights=rights))
            seen.add(member)
        return tuple(grants)

    def roles(self, value: Any, sites: Mapping[str, Site], owners: set[str]) -> tuple[Role, ...]:
        roles: list[Role] = []
        names: set[str] = set()
        for i, table in enumerate(self.tables(value, "role"), 1):
            name = table.get("name")
            where = f"role {name!r}" if isinstance(name, str) and name else f"role #{i}"
            self.keys(table, {"name", "members", "kinds", "sites", "rights"}, where)
            before = len(self.problems)
            name = self.get(table, "name", str, where, required=True, check=non_empty)
            if name is not None and name in names:
                self.problem(where, "a role of that name is already defined")
            names.add(name)
            members = self.get(table, "members", list, where, required=True) or []
            for m in members:
                if not isinstance(m, str):
                    self.problem(
                        where,
                        "'members' must list extensions in quotes (e.g. \"1001\"), "
                        f"not {type_name(m)}",
                    )
                elif m not in owners:
                    self.problem(
                        where, f"member {m!r} is not a user or common area in this directory"
                    )
            kinds: set[Kind] = set()
            for k in self.get(table, "kinds", list, where, required=True) or []:
                try:
                    kinds.add(Kind(k))
                except ValueError:
                    self.problem(
                        where, f"unknown kind {k!r}; kinds are {', '.join(x.value for x in Kind)}"
                    )
            if not kinds and "kinds" in table:
                self.problem(where, "'kinds' must name at least one kind")
            role_sites = None
            if "sites" in table:
                listed = self.get(table, "sites", list, where) or []
                role_sites = frozenset(s for s in listed if isinstance(s, str))
                if not listed and "sites" in table and isinstance(table["sites"], list):
                    self.problem(where, "'sites' must name at least one site (leave it out: all)")
                for s in listed:
                    if not isinstance(s, str):
                        self.problem(where, f"'sites' must list site names, not {type_name(s)}")
                    elif s not in sites:
                        self.problem(where, f"site {s!r} is not defined in [[site]]")
            rights = self.rights(table.get("rights"), where)
            if len(self.problems) == before:
                roles.append(
                    Role(
                        name=name,
                        members=tuple(members),
                        kinds=frozenset(kinds),
                        rights=rights,
                        sites=role_sites,
                    )
                )
        return tuple(roles)


def _timezone_problem(value: str) -> str | None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "is not a known time zone (use an IANA name like America/New_York)"
    return None
