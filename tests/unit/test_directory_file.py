"""The directory file: validation (every problem, named), parsing, idempotent import, export."""

from __future__ import annotations

import dataclasses
import json
import re
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipvm.domain.model import (
    COMMON_AREA_POLICY,
    Defaults,
    Directory,
    Extension,
    Grant,
    Kind,
    OwnerPolicy,
    Right,
    Role,
    Site,
)
from sipvm.domain.pins import hash_pin, is_pin_hash, verify_pin
from sipvm.errors import DirectoryError, InvalidInputError
from sipvm.provisioning.directory_file import (
    directory_document,
    dump_directory,
    parse_directory,
    read_directory_file,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "provisioning" / "examples" / "small-office.toml"

#: The clear PINs of the shipped example, by extension.
EXAMPLE_PINS = {
    "1001": "482916",
    "1002": "739164",
    "1003": "315972",
    "1004": "604825",
    "1101": "927361",
    "1102": "258147",
    "1900": "739201",
    "1901": "846203",
}

P, DL, DE, SH = Right.PLAY, Right.DOWNLOAD, Right.DELETE, Right.SHARE

#: A valid directory without PINs (so it is quick); the error cases append one entry to it.
BASE = """\
[[site]]
name = "HQ"
timezone = "America/New_York"

[[user]]
ext = "1001"
name = "Alice"
site = "HQ"

[[user]]
ext = "1002"
name = "Bob"
site = "HQ"

[[common_area]]
ext = "1900"
name = "Lobby"
site = "HQ"

[[call_queue]]
ext = "2001"
name = "Sales"
site = "HQ"
"""


# -- helpers ---------------------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "directory.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(DirectoryError) as info:
        read_directory_file(path)
    assert info.value.problems, "a DirectoryError must list its problems"
    return info.value.problems


def find_problem(problems: list[str], path: Path, entry: str, *fragments: str) -> str:
    """The one problem naming ``path`` and exactly ``entry`` and containing every fragment."""
    prefix = f"{path}: {entry}: "
    hits = [p for p in problems if p.startswith(prefix) and all(f in p for f in fragments)]
    assert hits, f"no problem {prefix!r} with {fragments!r} in:\n" + "\n".join(problems)
    return hits[0]


@pytest.fixture(scope="module")
def example() -> Directory:
    return read_directory_file(EXAMPLE)


@pytest.fixture(scope="module")
def a_pin_hash() -> str:
    """One real hash (of "582914"), computed once: hashing costs ~45 ms."""
    return hash_pin("582914")


# -- the shipped example ---------------------------------------------------------------------


def test_example_has_the_expected_entries(example: Directory) -> None:
    by_kind: dict[Kind, list[str]] = {}
    for e in example.extensions.values():
        by_kind.setdefault(e.kind, []).append(e.ext)
    assert {k: sorted(v) for k, v in by_kind.items()} == {
        Kind.USER: ["1001", "1002", "1003", "1004", "1101", "1102"],
        Kind.COMMON_AREA: ["1900", "1901"],
        Kind.CALL_QUEUE: ["2001"],
        Kind.AUTO_RECEPTIONIST: ["3001"],
        Kind.SHARED_LINE_GROUP: ["4001"],
    }
    assert example.sites == {
        "HQ": Site("HQ", "America/New_York"),
        "Branch": Site("Branch", "Europe/London"),
    }
    assert example.defaults == Defaults(
        operator="0", max_message_s=180, min_message_s=2, language="en"
    )
    assert example.roles == (
        Role(
            name="Queue supervisors",
            members=("1002",),
            kinds=frozenset({Kind.CALL_QUEUE, Kind.AUTO_RECEPTIONIST}),
            rights=frozenset({P, DE}),
            sites=frozenset({"HQ"}),
        ),
    )
    assert example.roles_by_member == {"1002": example.roles}


def test_example_users_and_policies(example: Directory) -> None:
    alice = example.extensions["1001"]
    assert (alice.name, alice.site, alice.email, alice.admin) == (
        "Alice Smith",
        "HQ",
        "alice@example.com",
        True,
    )
    assert alice.phones == ("sip:1001@pbx.example.com",)
    assert alice.policy == OwnerPolicy()
    assert example.extensions["1002"].admin is False

    dan = example.extensions["1004"]
    assert dan.email is None
    assert dan.policy == OwnerPolicy(
        voicemail=True, download_own=False, delete_own=False, share_own=True, email_on_grant=True
    )
    frank = example.extensions["1102"]
    assert frank.site == "Branch"
    assert frank.phones == ("sip:1102@pbx.example.com", "sip:1102-desk2@pbx.example.com")
    assert frank.policy == OwnerPolicy(email_on_grant=False)

    lobby = example.extensions["1900"]
    assert lobby.policy == COMMON_AREA_POLICY
    assert (lobby.policy.delete_own, lobby.policy.download_own) == (False, False)
    kitchen = example.extensions["1901"]
    assert kitchen.policy == dataclasses.replace(COMMON_AREA_POLICY, delete_own=True)
    assert kitchen.policy.download_own is False  # never for a common area


def test_example_member_lists(example: Directory) -> None:
    ext = example.extensions
    assert ext["1002"].members == (Grant("1003", frozenset({P})),)
    assert ext["1900"].members == (Grant("1003", frozenset({P, DE})),)
    assert ext["2001"].members == (
        Grant("1002", frozenset({P, DL, DE, SH})),
        Grant("1004", frozenset({P, SH})),
        Grant("1900", frozenset({P})),
    )
    assert ext["2001"].email == "sales@example.com"
    assert ext["3001"].members == (Grant("1003", frozenset({P, DE})),)
    assert ext["4001"].members == (
        Grant("1101", frozenset({P, DL, DE})),
        Grant("1102", frozenset({P, DL})),
        Grant("1901", frozenset({P})),
    )
    for e in ("1001", "1003", "1004", "1101", "1102", "1901"):
        assert ext[e].members == ()
    assert example.granted_inboxes["1003"] == frozenset({"1002", "1900", "3001"})


def test_example_pins_are_hashed_and_verify(example: Directory) -> None:
    for ext, pin in EXAMPLE_PINS.items():
        stored = example.extensions[ext].pin_hash
        assert stored is not None and is_pin_hash(stored), ext
        assert pin not in stored
        assert verify_pin(pin, stored), ext
    assert not verify_pin(EXAMPLE_PINS["1002"], example.extensions["1001"].pin_hash)
    for ext in ("2001", "3001", "4001"):
        assert example.extensions[ext].pin_hash is None


def test_the_packaged_copy_of_the_example_is_the_same_file() -> None:
    packaged = Path(__file__).resolve().parents[2] / "src/sipvm/provisioning/examples"
    assert (packaged / "small-office.toml").read_bytes() == EXAMPLE.read_bytes()


def test_any_right_implies_play(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BASE
        + textwrap.dedent("""\
            [[call_queue.members]]
            member = "1001"
            rights = ["delete"]
            [[call_queue.members]]
            member = "1900"
            rights = ["share", "download"]

            [[role]]
            name = "Sharers"
            members = ["1002"]
            kinds = ["call_queue"]
            rights = ["share"]
            """),
    )
    d = read_directory_file(path)
    assert d.extensions["2001"].members == (
        Grant("1001", frozenset({P, DE})),
        Grant("1900", frozenset({P, SH, DL})),
    )
    assert d.roles[0].rights == frozenset({P, SH})
    assert d.roles[0].sites is None  # no sites: every site
    # exported in canonical order, play included
    doc = directory_document(d)
    assert doc["call_queue"][0]["members"][1]["rights"] == ["play", "download", "share"]


def test_base_document_is_valid(tmp_path: Path) -> None:
    d = read_directory_file(write(tmp_path, BASE))
    assert sorted(d.extensions) == ["1001", "1002", "1900", "2001"]
    assert d.defaults == Defaults()
    assert d.extensions["1001"].policy == OwnerPolicy()
    assert d.extensions["1900"].policy == COMMON_AREA_POLICY
    assert d.extensions["1001"].pin_hash is None


# -- every validation rule -------------------------------------------------------------------

USER_1003 = '[[user]]\next = "1003"\nname = "Carol"\nsite = "HQ"\n'
QUEUE_2002 = '[[call_queue]]\next = "2002"\nname = "Support"\nsite = "HQ"\n'


def _role(**fields: str) -> str:
    base = {
        "name": '"X"',
        "members": '["1001"]',
        "kinds": '["call_queue"]',
        "rights": '["play"]',
    }
    base.update(fields)
    return "[[role]]\n" + "".join(f"{k} = {v}\n" for k, v in base.items())


# (id, text appended to BASE, entry named, fragments of the problem)
RULE_CASES: list[tuple[str, str, str, tuple[str, ...]]] = [
    (
        "unknown top-level key",
        '[[voicemail_box]]\next = "5000"\n',
        "top level",
        ("unknown key 'voicemail_box'", "allowed keys:", "call_queue"),
    ),
    ("unknown user key", USER_1003 + 'mobile = "555"\n', "user 1003", ("unknown key 'mobile'",)),
    (
        "unknown call_queue key",
        QUEUE_2002 + 'pin = "482916"\n',
        "call_queue 2002",
        ("unknown key 'pin'",),
    ),
    (
        "unknown shared_line_group key",
        '[[shared_line_group]]\next = "4001"\nname = "G"\nsite = "HQ"\nadmin = true\n',
        "shared_line_group 4001",
        ("unknown key 'admin'",),
    ),
    (
        "unknown common_area key",
        '[[common_area]]\next = "1901"\nname = "K"\nadmin = false\n',
        "common_area 1901",
        ("unknown key 'admin'",),
    ),
    (
        "unknown policy key",
        USER_1003 + "[user.policy]\nvoicemail_to_email = true\n",
        "user 1003 policy",
        ("unknown key 'voicemail_to_email'",),
    ),
    (
        "common area policy with download_own",
        '[[common_area]]\next = "1901"\nname = "K"\n[common_area.policy]\ndownload_own = true\n',
        "common_area 1901 policy",
        ("unknown key 'download_own'", "allowed keys: delete_own, share_own, voicemail"),
    ),
    (
        "unknown member key",
        QUEUE_2002
        + '[[call_queue.members]]\nmember = "1001"\nrights = ["play"]\nexpires = "2025"\n',
        "call_queue 2002 members #1",
        ("unknown key 'expires'",),
    ),
    (
        "ext as a number",
        '[[user]]\next = 1003\nname = "Carol"\n',
        "user #3",
        ("'ext' must be a string, not a number", 'write it in quotes, e.g. "1001"'),
    ),
    (
        "ext with letters",
        '[[user]]\next = "10a3"\nname = "Carol"\n',
        "user #3",
        ("'ext' must be 1 to 15 digits",),
    ),
    (
        "ext too long",
        '[[call_queue]]\next = "1234567890123456"\nname = "Q"\n',
        "call_queue #2",
        ("'ext' must be 1 to 15 digits",),
    ),
    (
        "ext with a trailing newline",
        '[[user]]\next = "1003\\n"\nname = "Carol"\n',
        "user #3",
        ("'ext' must be 1 to 15 digits",),
    ),
    ("ext missing", '[[user]]\nname = "Carol"\n', "user #3", ("'ext' is required",)),
    ("name empty", '[[user]]\next = "1003"\nname = "  "\n', "user 1003", ("'name' must not",)),
    (
        "duplicate extension across kinds",
        '[[call_queue]]\next = "1001"\nname = "Q"\n',
        "call_queue 1001",
        ("extension 1001 is already used by user 1001",),
    ),
    (
        "duplicate extension within a kind",
        '[[user]]\next = "1002"\nname = "Bobby"\n',
        "user 1002",
        ("extension 1002 is already used by user 1002",),
    ),
    (
        "member unknown",
        QUEUE_2002 + '[[call_queue.members]]\nmember = "1999"\nrights = ["play"]\n',
        "call_queue 2002 members #1",
        ("member 1999 is not a user or common area",),
    ),
    (
        "member is a call queue",
        QUEUE_2002 + '[[call_queue.members]]\nmember = "2001"\nrights = ["play"]\n',
        "call_queue 2002 members #1",
        ("member 2001 is not a user or common area",),
    ),
    (
        "member given as a number",
        QUEUE_2002 + '[[call_queue.members]]\nmember = 1001\nrights = ["play"]\n',
        "call_queue 2002 members #1",
        ("'member' must be a string, not a number", "in quotes"),
    ),
    (
        "owner listed as a member",
        USER_1003 + '[[user.members]]\nmember = "1003"\nrights = ["play", "download"]\n',
        "user 1003 members #1",
        ("1003 owns this inbox", "owner policy"),
    ),
    (
        "common area owner listed as a member",
        '[[common_area]]\next = "1901"\nname = "K"\n'
        '[[common_area.members]]\nmember = "1901"\nrights = ["delete"]\n',
        "common_area 1901 members #1",
        ("1901 owns this inbox",),
    ),
    (
        "same member twice",
        QUEUE_2002 + '[[call_queue.members]]\nmember = "1001"\nrights = ["play"]\n'
        '[[call_queue.members]]\nmember = "1001"\nrights = ["delete"]\n',
        "call_queue 2002 members #2",
        ("member 1001 is listed twice",),
    ),
    (
        "unknown right",
        QUEUE_2002 + '[[call_queue.members]]\nmember = "1001"\nrights = ["play", "erase"]\n',
        "call_queue 2002 members #1",
        ("unknown right 'erase'", "play, download, delete, share"),
    ),
    (
        "empty rights",
        QUEUE_2002 + '[[call_queue.members]]\nmember = "1001"\nrights = []\n',
        "call_queue 2002 members #1",
        ("'rights' must be a non-empty list",),
    ),
    (
        "missing rights",
        QUEUE_2002 + '[[call_queue.members]]\nmember = "1001"\n',
        "call_queue 2002 members #1",
        ("'rights' must be a non-empty list",),
    ),
    (
        "rights as a string",
        QUEUE_2002 + '[[call_queue.members]]\nmember = "1001"\nrights = "play"\n',
        "call_queue 2002 members #1",
        ("'rights' must be a non-empty list",),
    ),
    (
        "unknown site",
        '[[user]]\next = "1003"\nname = "Carol"\nsite = "Paris"\n',
        "user 1003",
        ("site 'Paris' is not defined in [[site]]", "'HQ'"),
    ),
    (
        "bad time zone",
        '[[site]]\nname = "Mars"\ntimezone = "Mars/Olympus_Mons"\n',
        "site 'Mars'",
        ("'timezone' is not a known time zone",),
    ),
    (
        "time zone as a path",
        '[[site]]\nname = "Etc"\ntimezone = "/etc/passwd"\n',
        "site 'Etc'",
        ("'timezone' is not a known time zone",),
    ),
    (
        "duplicate site",
        '[[site]]\nname = "HQ"\ntimezone = "UTC"\n',
        "site 'HQ'",
        ("a site of that name is already defined",),
    ),
    (
        "site without a time zone",
        '[[site]]\nname = "Lab"\n',
        "site 'Lab'",
        ("'timezone' is required",),
    ),
    (
        "role with unknown member",
        _role(members='["1999"]'),
        "role 'X'",
        ("member '1999' is not a user or common area",),
    ),
    (
        "role with a call queue as member",
        _role(members='["1001", "2001"]'),
        "role 'X'",
        ("member '2001' is not a user or common area",),
    ),
    (
        "role member as a number",
        _role(members="[1001]"),
        "role 'X'",
        ("'members' must list extensions in quotes", "not a number"),
    ),
    (
        "role members as tables",
        _role(members='[{ member = "1001" }]'),
        "role 'X'",
        ("'members' must list extensions in quotes", "not a table"),
    ),
    (
        "role with unknown kind",
        _role(kinds='["call_queue", "voicemail"]'),
        "role 'X'",
        ("unknown kind 'voicemail'", "kinds are user, common_area, call_queue"),
    ),
    ("role with no kinds", _role(kinds="[]"), "role 'X'", ("'kinds' must name at least one",)),
    (
        "role with unknown site",
        _role(sites='["Paris"]'),
        "role 'X'",
        ("site 'Paris' is not defined in [[site]]",),
    ),
    (
        "role site as a list",
        _role(sites='[["HQ"]]'),
        "role 'X'",
        ("'sites' must list site names, not a list",),
    ),
    (
        "role with unknown right",
        _role(rights='["listen"]'),
        "role 'X'",
        ("unknown right 'listen'",),
    ),
    (
        "role with an unknown key",
        _role(expires='"2030-01-01"'),
        "role 'X'",
        ("unknown key 'expires'",),
    ),
    (
        "duplicate role",
        _role() + "\n" + _role(),
        "role 'X'",
        ("a role of that name is already defined",),
    ),
    (
        "pin as a number",
        USER_1003 + "pin = 482916\n",
        "user 1003",
        ("'pin' must be a string of digits in quotes, not a number",),
    ),
    (
        "malformed pin_hash",
        USER_1003 + 'pin_hash = "sha1$deadbeef"\n',
        "user 1003",
        ("'pin_hash' is not a hash sipvm wrote",),
    ),
    (
        "hostile pin_hash cost",
        USER_1003 + 'pin_hash = "scrypt$1048576$32$1$c2FsdHNhbHQ=$' + "A" * 44 + '"\n',
        "user 1003",
        ("'pin_hash' is not a hash sipvm wrote",),
    ),
    (
        "bad email",
        USER_1003 + 'email = "carol.example.com"\n',
        "user 1003",
        ("'email' is not an email address",),
    ),
    (
        "email with a trailing newline",
        QUEUE_2002 + 'email = "support@example.com\\n"\n',
        "call_queue 2002",
        ("'email' is not an email address",),
    ),
    (
        "bad phone AOR",
        USER_1003 + 'phones = ["1003@pbx.example.com"]\n',
        "user 1003",
        ("phone '1003@pbx.example.com' is not a SIP URI",),
    ),
    (
        "phone AOR with a trailing newline",
        USER_1003 + 'phones = ["sip:1003@pbx.example.com\\n"]\n',
        "user 1003",
        ("is not a SIP URI",),
    ),
    (
        "phones as a string",
        USER_1003 + 'phones = "sip:1003@pbx.example.com"\n',
        "user 1003",
        ("'phones' must be a list of SIP URIs",),
    ),
    (
        "admin not a boolean",
        USER_1003 + 'admin = "yes"\n',
        "user 1003",
        ("'admin' must be true or false, not a string",),
    ),
    (
        "policy value not a boolean",
        USER_1003 + "[user.policy]\nvoicemail = 1\n",
        "user 1003 policy",
        ("'voicemail' must be true or false, not a number",),
    ),
    (
        "min_message_s not below max_message_s",
        "[defaults]\nmin_message_s = 30\nmax_message_s = 30\n",
        "defaults",
        ("'min_message_s' must be below 'max_message_s'",),
    ),
    (
        "boolean where a number is expected",
        "[defaults]\nmax_message_s = true\n",
        "defaults",
        ("'max_message_s' must be a whole number, not true/false",),
    ),
    (
        "number out of range",
        "[defaults]\nmax_message_s = 4\n",
        "defaults",
        ("'max_message_s' must be 5 to 3600 seconds",),
    ),
    (
        "bad operator",
        '[defaults]\noperator = "reception"\n',
        "defaults",
        ("'operator' must be an extension or number",),
    ),
    (
        "bad language",
        '[defaults]\nlanguage = "English"\n',
        "defaults",
        ("'language' must be a language code",),
    ),
    (
        "unknown defaults key",
        "[defaults]\ntimeout = 5\n",
        "defaults",
        ("unknown key 'timeout'",),
    ),
]


@pytest.mark.parametrize(
    ("appended", "entry", "fragments"),
    [pytest.param(text, entry, frags, id=name) for name, text, entry, frags in RULE_CASES],
)
def test_each_rule_names_file_entry_and_problem(
    tmp_path: Path, appended: str, entry: str, fragments: tuple[str, ...]
) -> None:
    path = write(tmp_path, BASE + "\n" + appended)
    problems = problems_of(path)
    find_problem(problems, path, entry, *fragments)
    # nothing else in the (otherwise valid) file is blamed
    assert all(p.startswith(f"{path}: {entry}") for p in problems), problems


@pytest.mark.parametrize(
    ("pin", "fragment"),
    [
        ("123", "4 to 10 digits"),
        ("12345678901", "4 to 10 digits"),
        ("12a4", "digits only"),
        ("1111", "one digit repeated"),
        ("1234", "ascending or descending"),
        ("9876", "ascending or descending"),
        ("8901", "ascending or descending"),
        ("1003", "the extension number"),
    ],
)
def test_pin_rules(tmp_path: Path, pin: str, fragment: str) -> None:
    path = write(tmp_path, BASE + USER_1003 + f'pin = "{pin}"\n')
    problems = problems_of(path)
    assert len(problems) == 1, problems
    found = find_problem(problems, path, "user 1003", "'pin' is not acceptable", fragment)
    if pin != "1003":  # the entry name is the extension itself
        assert pin not in found.removeprefix(f"{path}: ")  # the PIN is never quoted back


def test_pin_rules_apply_to_common_areas(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + '[[common_area]]\next = "1901"\nname = "K"\npin = "5555"\n')
    find_problem(problems_of(path), path, "common_area 1901", "one digit repeated")


def test_pin_and_pin_hash_together(tmp_path: Path, a_pin_hash: str) -> None:
    path = write(tmp_path, BASE + USER_1003 + f'pin = "482916"\npin_hash = "{a_pin_hash}"\n')
    problems = problems_of(path)
    assert len(problems) == 1
    find_problem(problems, path, "user 1003", "give either 'pin' or 'pin_hash', not both")
    assert "482916" not in problems[0]


def test_a_valid_pin_hash_is_kept_as_is(tmp_path: Path, a_pin_hash: str) -> None:
    path = write(tmp_path, BASE + USER_1003 + f'pin_hash = "{a_pin_hash}"\n')
    assert read_directory_file(path).extensions["1003"].pin_hash == a_pin_hash


def test_two_nameless_roles_are_not_called_duplicates(tmp_path: Path) -> None:
    role = '[[role]]\nmembers = ["1001"]\nkinds = ["call_queue"]\nrights = ["play"]\n'
    path = write(tmp_path, BASE + role + role)
    problems = problems_of(path)
    assert problems == [
        f"{path}: role #1: 'name' is required",
        f"{path}: role #2: 'name' is required",
    ]


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[[user]]\next = "1001\nname = "Alice"\n')
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}: not valid TOML")
    assert "line 2" in problems[0]


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(BASE.encode() + '[[user]]\next = "1003"\nname = "René"\n'.encode("latin-1"))
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}: not UTF-8 text")
    assert "save it as UTF-8" in problems[0]


def test_missing_file_is_invalid_input_not_a_directory_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(InvalidInputError) as info:
        read_directory_file(path)
    assert not isinstance(info.value, DirectoryError)
    assert str(path) in str(info.value)
    assert info.value.exit_code == 2


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        colour = "blue"

        [[site]]
        name = "HQ"
        timezone = "Atlantis/Capital"

        [[site]]
        name = "Branch"
        timezone = "Europe/London"

        [[user]]
        ext = "1001"
        name = "Alice"
        site = "Branch"
        pin = "123"

        [[user]]
        ext = "10O2"
        name = "Bob"
        site = "Branch"

        [[user]]
        ext = "1003"
        name = "Carol"
        site = "Branch"
        email = "carol at example.com"

        [[call_queue]]
        ext = "2001"
        name = "Sales"
        site = "Branch"
        [[call_queue.members]]
        member = "1999"
        rights = ["play"]

        [[role]]
        name = "Sup"
        members = ["1001"]
        kinds = ["queue"]
        rights = ["play"]
        """,
    )
    problems = problems_of(path)
    expected = [
        ("top level", "unknown key 'colour'"),
        ("site 'HQ'", "not a known time zone"),
        ("user 1001", "4 to 10 digits"),
        ("user #2", "'ext' must be 1 to 15 digits"),
        ("user 1003", "'email' is not an email address"),
        ("call_queue 2001 members #1", "member 1999 is not a user or common area"),
        ("role 'Sup'", "unknown kind 'queue'"),
    ]
    for entry, fragment in expected:
        find_problem(problems, path, entry, fragment)
    assert len(problems) >= len(expected)
    # the error's message lists them all too
    with pytest.raises(DirectoryError) as info:
        read_directory_file(path)
    assert str(info.value).startswith(f"{len(problems)} problems in the directory:")


# -- site may be omitted with a single site --------------------------------------------------


def test_site_may_be_omitted_with_one_site(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        [[site]]
        name = "Only"
        timezone = "UTC"

        [[user]]
        ext = "1001"
        name = "Alice"

        [[call_queue]]
        ext = "2001"
        name = "Sales"
        """,
    )
    d = read_directory_file(path)
    assert d.extensions["1001"].site == "Only"
    assert d.extensions["2001"].site == "Only"


def test_site_is_required_with_two_sites(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        [[site]]
        name = "HQ"
        timezone = "UTC"

        [[site]]
        name = "Branch"
        timezone = "Europe/London"

        [[user]]
        ext = "1001"
        name = "Alice"
        site = "HQ"

        [[user]]
        ext = "1002"
        name = "Bob"
        """,
    )
    problems = problems_of(path)
    assert problems == [f"{path}: user 1002: 'site' is required"]


def test_site_is_required_with_no_sites(tmp_path: Path) -> None:
    path = write(tmp_path, '[[user]]\next = "1001"\nname = "Alice"\n')
    find_problem(problems_of(path), path, "user 1001", "'site' is required")


# -- idempotent import -----------------------------------------------------------------------


def test_applying_the_same_file_twice_changes_nothing(example: Directory) -> None:
    again = read_directory_file(EXAMPLE, existing=example)
    assert again == example
    for ext in EXAMPLE_PINS:
        assert again.extensions[ext].pin_hash == example.extensions[ext].pin_hash


def test_without_existing_the_hashes_are_fresh(example: Directory) -> None:
    fresh = read_directory_file(EXAMPLE)
    assert fresh != example  # salted: every hash differs
    assert fresh.extensions["1001"].pin_hash != example.extensions["1001"].pin_hash
    strip = {e: dataclasses.replace(x, pin_hash=None) for e, x in fresh.extensions.items()}
    same = {e: dataclasses.replace(x, pin_hash=None) for e, x in example.extensions.items()}
    assert strip == same


def test_a_changed_pin_gets_a_new_hash(tmp_path: Path, example: Directory) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert text.count('pin = "482916"') == 1
    path = write(tmp_path, text.replace('pin = "482916"', 'pin = "592817"'))
    changed = read_directory_file(path, existing=example)
    new_hash = changed.extensions["1001"].pin_hash
    assert new_hash != example.extensions["1001"].pin_hash
    assert verify_pin("592817", new_hash)
    assert not verify_pin("482916", new_hash)
    # everyone else keeps their hash
    for ext in EXAMPLE_PINS.keys() - {"1001"}:
        assert changed.extensions[ext].pin_hash == example.extensions[ext].pin_hash
    assert changed != example
    assert dataclasses.replace(changed.extensions["1001"], pin_hash=None) == dataclasses.replace(
        example.extensions["1001"], pin_hash=None
    )


# -- export ----------------------------------------------------------------------------------


def test_export_round_trip(example: Directory) -> None:
    text = dump_directory(example)
    assert parse_directory(tomllib.loads(text), source="x") == example
    # stable: exporting the re-read directory gives the same text
    assert dump_directory(parse_directory(tomllib.loads(text), source="x")) == text


def test_export_has_no_clear_pins(example: Directory) -> None:
    text = dump_directory(example)
    for pin in EXAMPLE_PINS.values():
        assert pin not in text
    assert not re.search(r"^pin\s*=", text, re.MULTILINE)
    assert len(re.findall(r"^pin_hash = ", text, re.MULTILINE)) == len(EXAMPLE_PINS)
    assert text.startswith("# sipvm directory")


def test_exported_file_reads_back(tmp_path: Path, example: Directory) -> None:
    path = tmp_path / "export.toml"
    path.write_text(dump_directory(example), encoding="utf-8")
    assert read_directory_file(path) == example
    assert read_directory_file(path, existing=example) == example


def test_stored_json_document_round_trips(example: Directory) -> None:
    doc = json.loads(json.dumps(directory_document(example)))
    assert parse_directory(doc, source="store") == example


def test_export_of_common_area_policy_has_no_download(example: Directory) -> None:
    doc = directory_document(example)
    lobby = next(e for e in doc["common_area"] if e["ext"] == "1900")
    assert lobby["policy"] == {"voicemail": True, "delete_own": False, "share_own": False}
    assert "admin" not in lobby
    queue = doc["call_queue"][0]
    assert set(queue) == {"ext", "name", "site", "email", "members", "hours", "business", "closed"}


# -- random directories ----------------------------------------------------------------------

_SITE_NAMES = ["HQ", "Branch", "Lab", "Zürich office"]
_ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo"]
_NAMES = st.text(
    st.characters(categories=("L", "N", "P", "Zs"), exclude_characters="\x85"),
    min_size=1,
    max_size=12,
).filter(lambda s: s.strip() != "")
_RIGHTS = st.lists(st.sampled_from(list(Right)), min_size=1, max_size=4, unique=True)


@st.composite
def random_directories(draw: st.DrawFn, pin_hash: str) -> tuple[dict[str, Any], Directory]:
    """A random valid directory document and the Directory it must give."""
    site_names = draw(st.lists(st.sampled_from(_SITE_NAMES), min_size=1, max_size=2, unique=True))
    sites = {n: Site(n, draw(st.sampled_from(_ZONES))) for n in site_names}
    doc: dict[str, Any] = {
        "site": [{"name": s.name, "timezone": s.timezone} for s in sites.values()]
    }

    defaults = Defaults()
    if draw(st.booleans()):
        max_s = draw(st.integers(5, 3600))
        min_s = draw(st.integers(0, min(60, max_s - 1)))
        operator = draw(st.from_regex(r"\+?[0-9*#]{1,6}", fullmatch=True))
        defaults = Defaults(operator=operator, max_message_s=max_s, min_message_s=min_s)
        doc["defaults"] = {"operator": operator, "max_message_s": max_s, "min_message_s": min_s}

    exts = draw(
        st.lists(st.text("0123456789", min_size=1, max_size=6), min_size=1, max_size=8, unique=True)
    )
    kinds = {e: draw(st.sampled_from(list(Kind))) for e in exts}
    owners = [e for e in exts if kinds[e].has_owner]

    built: dict[str, Extension] = {}
    for ext in exts:
        kind = kinds[ext]
        entry: dict[str, Any] = {"ext": ext, "name": draw(_NAMES)}
        if len(sites) == 1 and draw(st.booleans()):
            site = next(iter(sites))  # omitted: the only site
        else:
            site = draw(st.sampled_from(site_names))
            entry["site"] = site
        email = draw(st.none() | st.from_regex(r"[a-z]{1,5}@[a-z]{1,5}\.com", fullmatch=True))
        if email is not None:
            entry["email"] = email
        fields: dict[str, Any] = {}
        if kind.has_owner:
            if draw(st.booleans()):
                entry["pin_hash"] = fields["pin_hash"] = pin_hash
            if kind is Kind.USER and draw(st.booleans()):
                entry["admin"] = fields["admin"] = draw(st.booleans())
            phones = draw(st.lists(st.sampled_from(["", "-a", "-b"]), max_size=2, unique=True))
            if phones or draw(st.booleans()):
                entry["phones"] = [f"sip:{ext}{s}@pbx.example.com" for s in phones]
            fields["phones"] = tuple(f"sip:{ext}{s}@pbx.example.com" for s in phones)
            allowed = (
                ["voicemail", "download_own", "delete_own", "share_own", "email_on_grant"]
                if kind is Kind.USER
                else ["voicemail", "delete_own", "share_own"]
            )
            given = {k: draw(st.booleans()) for k in draw(st.lists(st.sampled_from(allowed)))}
            if given or draw(st.booleans()):
                entry["policy"] = given
            base = OwnerPolicy() if kind is Kind.USER else COMMON_AREA_POLICY
            fields["policy"] = dataclasses.replace(base, **given)
        candidates = [o for o in owners if o != ext]  # never the owner itself
        members = draw(st.lists(st.sampled_from(candidates), unique=True)) if candidates else []
        grants = []
        member_docs = []
        for m in members:
            rights = draw(_RIGHTS)
            member_docs.append({"member": m, "rights": [r.value for r in rights]})
            grants.append(Grant(m, frozenset(rights) | {Right.PLAY}))
        if member_docs:
            entry["members"] = member_docs
        doc.setdefault(kind.value, []).append(entry)
        built[ext] = Extension(
            ext=ext,
            kind=kind,
            name=entry["name"],
            site=site,
            email=email,
            members=tuple(grants),
            **fields,
        )

    roles = []
    for i in range(draw(st.integers(0, 2))):
        name = f"Role {i}"
        members = draw(st.lists(st.sampled_from(owners), unique=True)) if owners else []
        role_kinds = draw(st.lists(st.sampled_from(list(Kind)), min_size=1, unique=True))
        rights = draw(_RIGHTS)
        role_doc: dict[str, Any] = {
            "name": name,
            "members": members,
            "kinds": [k.value for k in role_kinds],
            "rights": [r.value for r in rights],
        }
        role_sites = None
        if draw(st.booleans()):
            picked = draw(st.lists(st.sampled_from(site_names), min_size=1, unique=True))
            role_doc["sites"] = picked
            role_sites = frozenset(picked)
        doc.setdefault("role", []).append(role_doc)
        roles.append(
            Role(
                name=name,
                members=tuple(members),
                kinds=frozenset(role_kinds),
                rights=frozenset(rights) | {Right.PLAY},
                sites=role_sites,
            )
        )
    expected = Directory(defaults=defaults, sites=sites, extensions=built, roles=tuple(roles))
    return doc, expected


# Generation does many draws per example; on a loaded machine the too_slow check can trip.
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_directories_parse_and_round_trip(data: st.DataObject, a_pin_hash: str) -> None:
    doc, expected = data.draw(random_directories(a_pin_hash))
    text = tomli_w.dumps(doc)
    parsed = parse_directory(tomllib.loads(text), source="random.toml")
    assert parsed == expected
    exported = dump_directory(parsed)
    again = parse_directory(tomllib.loads(exported), source="export")
    assert again == parsed
    assert dump_directory(again) == exported


def test_bad_time_zone_is_one_problem_not_a_cascade(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("America/New_York", "Mars/Olympus"))
    problems = problems_of(path)
    assert len(problems) == 1, problems
    find_problem(problems, path, "site 'HQ'", "not a known time zone")


def test_empty_role_sites_is_a_problem(tmp_path: Path) -> None:
    role = '\n[[role]]\nname = "R"\nmembers = ["1001"]\nkinds = ["call_queue"]\nsites = []\n'
    role += 'rights = ["play"]\n'
    path = write(tmp_path, BASE + role)
    find_problem(problems_of(path), path, "role 'R'", "'sites' must name at least one site")


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + BASE.encode())
    assert len(read_directory_file(path).extensions) == 4


# -- notification preference -----------------------------------------------------------------


def test_notify_email_defaults_on_can_be_turned_off_and_round_trips(tmp_path: Path) -> None:
    text = BASE.replace('name = "Bob"\n', 'name = "Bob"\nnotify_email = false\n')
    d = read_directory_file(write(tmp_path, text))
    assert d.extensions["1001"].notify_email is True
    assert d.extensions["1002"].notify_email is False
    exported = dump_directory(d)
    assert exported.count("notify_email = false") == 1  # written only when off
    assert (
        parse_directory(tomllib.loads(exported), source="x").extensions["1002"].notify_email
        is False
    )


def test_notify_email_is_for_users_and_common_areas_and_a_boolean(tmp_path: Path) -> None:
    text = BASE.replace('name = "Sales"\n', 'name = "Sales"\nnotify_email = true\n').replace(
        'name = "Alice"\n', 'name = "Alice"\nnotify_email = "no"\n'
    )
    path = write(tmp_path, text)
    found = problems_of(path)
    find_problem(found, path, "call_queue 2001", "notify_email")
    find_problem(found, path, "user 1001", "notify_email")
