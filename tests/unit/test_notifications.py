"""Who is emailed about a new message or a grant, and who gets the audio (pure rules)."""

from __future__ import annotations

from sipvm.domain.model import (
    COMMON_AREA_POLICY,
    Directory,
    Extension,
    Grant,
    Kind,
    OwnerPolicy,
    Right,
    Role,
    Site,
)
from sipvm.domain.notifications import (
    EmailTarget,
    NewAccess,
    attach_audio,
    new_grants,
    new_message_targets,
)

P, DL, D = Right.PLAY, Right.DOWNLOAD, Right.DELETE
CQ = Kind.CALL_QUEUE


def user(ext: str, email: str | None = None, **kw: object) -> Extension:
    return Extension(ext=ext, kind=Kind.USER, name=f"U{ext}", site="HQ", email=email, **kw)  # type: ignore[arg-type]


def queue(ext: str, *grants: Grant, email: str | None = None) -> Extension:
    return Extension(ext=ext, kind=CQ, name=f"Q{ext}", site="HQ", members=grants, email=email)


def grant(member: str, *rights: Right) -> Grant:
    return Grant(member, frozenset(rights) | {P})


def directory(*exts: Extension, roles: tuple[Role, ...] = ()) -> Directory:
    return Directory(
        sites={"HQ": Site("HQ", "UTC")}, extensions={e.ext: e for e in exts}, roles=roles
    )


BASE = (
    user("1", "a@x.org"),
    user("2", "b@x.org"),
    user("3"),  # no address
    user("4", "d@x.org", notify_email=False),
    user("5", "e@x.org", admin=True),  # oversight only
    user("6", "f@x.org"),  # role member
    Extension(
        ext="9",
        kind=Kind.COMMON_AREA,
        name="Lobby",
        site="HQ",
        email="lobby@x.org",
        policy=COMMON_AREA_POLICY,
    ),
)
ROLE = Role("sup", ("6",), frozenset({CQ}), frozenset({P, DL}), None)


def test_new_message_targets_members_with_address_and_notifications_then_shared_address() -> None:
    d = directory(
        *BASE,
        queue("50", grant("2", DL), grant("3"), grant("4"), grant("9"), email="sales@x.org"),
        roles=(ROLE,),
    )
    assert new_message_targets(d, "50") == [
        EmailTarget("2", "b@x.org"),
        EmailTarget("6", "f@x.org"),
        EmailTarget("9", "lobby@x.org"),
        EmailTarget("50", "sales@x.org"),
    ]
    assert new_message_targets(d, "1") == [EmailTarget("1", "a@x.org")]


def test_an_address_is_emailed_once() -> None:
    d = directory(user("1", "Team@x.org"), queue("50", grant("1"), email="team@x.org"))
    assert new_message_targets(d, "50") == [EmailTarget("1", "Team@x.org")]


def test_audio_only_for_the_download_right_decided_now() -> None:
    d = directory(
        *BASE,
        user("7", "g@x.org", policy=OwnerPolicy(download_own=False)),
        queue("50", grant("2", DL), grant("9", D), email="sales@x.org"),
        roles=(ROLE,),
    )
    assert attach_audio(d, "2", "50") is True
    assert attach_audio(d, "9", "50") is False  # delete, no download
    assert attach_audio(d, "6", "50") is True  # by role
    assert attach_audio(d, "50", "50") is False  # the queue's shared address: never audio
    assert attach_audio(d, "1", "1") is True  # owner, download_own on
    assert attach_audio(d, "7", "7") is False  # owner, download_own off
    assert attach_audio(d, "1", "50") is None  # not a member (any more)
    assert attach_audio(d, "5", "50") is None  # admin oversight is not membership
    assert attach_audio(d, "4", "4") is None  # notifications off
    assert attach_audio(d, "3", "3") is None  # no address


def test_new_grants_list_newly_reachable_inboxes_with_email_on_grant() -> None:
    before = directory(*BASE, queue("50", grant("2")), queue("51"))
    after = directory(
        *BASE,
        queue("50", grant("2", DL), grant("1")),  # 2 only gained a right: not new access
        queue("51", grant("1", DL, D), grant("3"), grant("4")),  # 3 has no address, 4 opted out
        Extension(
            ext="8",
            kind=Kind.USER,
            name="U8",
            site="HQ",
            email="h@x.org",
            members=(grant("1"), grant("2")),
            policy=OwnerPolicy(email_on_grant=False),
        ),
        roles=(ROLE,),
    )
    found = new_grants(before, after)
    assert found == {
        "1": [
            NewAccess("50", "Q50", ("play",)),
            NewAccess("51", "Q51", ("play", "download", "delete")),
        ],
        "6": [
            NewAccess("50", "Q50", ("play", "download")),
            NewAccess("51", "Q51", ("play", "download")),
        ],
    }


def test_no_grants_when_nothing_changed() -> None:
    d = directory(*BASE, queue("50", grant("2")), roles=(ROLE,))
    assert new_grants(d, d) == {}
