"""Rights rules (CONTRACT.md "Rights rules"): a table of cases, then invariants by hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
from sipvm.domain.rights import (
    accessible_inboxes,
    check_removable,
    members_of,
    require,
    rights_on,
)
from sipvm.errors import NotPermittedError

P, DL, D, S = Right.PLAY, Right.DOWNLOAD, Right.DELETE, Right.SHARE
ALL = frozenset({P, DL, D, S})


def user(ext: str, site: str = "HQ", **kw: object) -> Extension:
    return Extension(ext=ext, kind=Kind.USER, name=f"User {ext}", site=site, **kw)  # type: ignore[arg-type]


def ext_of(kind: Kind, ext: str, site: str = "HQ", **kw: object) -> Extension:
    return Extension(ext=ext, kind=kind, name=f"{kind} {ext}", site=site, **kw)  # type: ignore[arg-type]


def directory(*exts: Extension, roles: tuple[Role, ...] = ()) -> Directory:
    return Directory(
        sites={"HQ": Site("HQ", "UTC"), "Branch": Site("Branch", "UTC")},
        extensions={e.ext: e for e in exts},
        roles=roles,
    )


def grant(member: str, *rights: Right) -> Grant:
    return Grant(member=member, rights=frozenset(rights) | {P})


CQ, AR, SLG, CA = Kind.CALL_QUEUE, Kind.AUTO_RECEPTIONIST, Kind.SHARED_LINE_GROUP, Kind.COMMON_AREA

# (description, directory, member, inbox, expected rights)
CASES = [
    ("owner, default policy: everything", directory(user("1")), "1", "1", ALL),
    (
        "owner may not download: share only via share_own",
        directory(user("1", policy=OwnerPolicy(download_own=False))),
        "1",
        "1",
        {P, D},
    ),
    (
        "share_own applies when download is not allowed",
        directory(user("1", policy=OwnerPolicy(download_own=False, share_own=True))),
        "1",
        "1",
        {P, D, S},
    ),
    (
        "owner may download, so may share even with share_own off",
        directory(user("1", policy=OwnerPolicy(share_own=False))),
        "1",
        "1",
        ALL,
    ),
    (
        "owner with every policy off still plays",
        directory(
            user("1", policy=OwnerPolicy(download_own=False, delete_own=False, share_own=False))
        ),
        "1",
        "1",
        {P},
    ),
    (
        "common area: play, never download, delete/share per policy",
        directory(ext_of(CA, "9", policy=COMMON_AREA_POLICY)),
        "9",
        "9",
        {P},
    ),
    (
        "common area with delete and share on (download_own ignored)",
        directory(
            ext_of(CA, "9", policy=OwnerPolicy(download_own=True, delete_own=True, share_own=True))
        ),
        "9",
        "9",
        {P, D, S},
    ),
    (
        "member list entry gives its rights",
        directory(user("1"), ext_of(CQ, "2", members=(grant("1", D),))),
        "1",
        "2",
        {P, D},
    ),
    (
        "no entry, no role: nothing",
        directory(user("1"), ext_of(CQ, "2")),
        "1",
        "2",
        set(),
    ),
    (
        "member of a colleague's inbox",
        directory(user("1", members=(grant("3", DL),)), user("3")),
        "3",
        "1",
        {P, DL},
    ),
    (
        "role on the inbox's kind and site",
        directory(
            user("1"),
            ext_of(CQ, "2"),
            roles=(Role("r", ("1",), frozenset({CQ}), frozenset({P, S}), frozenset({"HQ"})),),
        ),
        "1",
        "2",
        {P, S},
    ),
    (
        "role for another site does not reach",
        directory(
            user("1"),
            ext_of(CQ, "2", site="Branch"),
            roles=(Role("r", ("1",), frozenset({CQ}), frozenset({P}), frozenset({"HQ"})),),
        ),
        "1",
        "2",
        set(),
    ),
    (
        "role for another kind does not reach",
        directory(
            user("1"),
            ext_of(SLG, "2"),
            roles=(Role("r", ("1",), frozenset({CQ}), frozenset({P}), None),),
        ),
        "1",
        "2",
        set(),
    ),
    (
        "member list and role are a union",
        directory(
            user("1"),
            ext_of(AR, "2", members=(grant("1", DL),)),
            roles=(Role("r", ("1",), frozenset({AR}), frozenset({D}), None),),
        ),
        "1",
        "2",
        {P, DL, D},
    ),
    (
        "roles do not override the owner policy on the owner's inbox",
        directory(
            user("1", policy=OwnerPolicy(delete_own=False)),
            roles=(Role("r", ("1",), frozenset({Kind.USER}), frozenset({D}), None),),
        ),
        "1",
        "1",
        {P, DL, S},
    ),
    (
        "admin plays every call queue",
        directory(user("1", admin=True), ext_of(CQ, "2")),
        "1",
        "2",
        {P},
    ),
    (
        "admin plays every shared line group and AR",
        directory(user("1", admin=True), ext_of(SLG, "2")),
        "1",
        "2",
        {P},
    ),
    (
        "admin is not a member of other users' inboxes",
        directory(user("1", admin=True), user("2")),
        "1",
        "2",
        set(),
    ),
    (
        "admin plus a grant: the grant's rights",
        directory(user("1", admin=True), ext_of(CQ, "2", members=(grant("1", D, S),))),
        "1",
        "2",
        {P, D, S},
    ),
    (
        "common area as member of a queue",
        directory(ext_of(CA, "9"), ext_of(CQ, "2", members=(grant("9"),))),
        "9",
        "2",
        {P},
    ),
    (
        "a call queue is never a member",
        directory(ext_of(CQ, "2"), ext_of(CQ, "3", members=(grant("2"),))),
        "2",
        "3",
        set(),
    ),
    ("unknown member", directory(ext_of(CQ, "2")), "7", "2", set()),
    ("unknown inbox", directory(user("1")), "1", "7", set()),
]


@pytest.mark.parametrize(
    ("why", "d", "member", "inbox", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_rights_table(
    why: str, d: Directory, member: str, inbox: str, expected: set[Right]
) -> None:
    assert rights_on(d, member, inbox) == frozenset(expected), why


def test_accessible_inboxes_own_first_then_by_extension() -> None:
    d = directory(
        user("1001"),
        ext_of(CQ, "20", members=(grant("1001"),)),
        ext_of(CQ, "2001", members=(grant("1001", D),)),
        ext_of(CQ, "300", members=(grant("1001"),)),
        ext_of(CQ, "400"),
    )
    found = accessible_inboxes(d, "1001")
    assert [a.inbox.ext for a in found] == ["1001", "20", "300", "2001"]
    assert found[0].own and not any(a.own for a in found[1:])
    assert found[3].rights == {P, D}


def test_members_of_includes_owner_grants_roles_and_admins() -> None:
    d = directory(
        user("1", admin=True),
        user("2"),
        user("3"),
        user("4"),
        ext_of(CA, "9"),
        ext_of(CQ, "50", members=(grant("2"), grant("9"))),
        roles=(Role("r", ("3",), frozenset({CQ}), frozenset({P}), None),),
    )
    assert members_of(d, "50") == ["1", "2", "3", "9"]
    assert members_of(d, "2") == ["2"]
    # Notifications: the admin's oversight view is not a grant.
    assert members_of(d, "50", oversight=False) == ["2", "3", "9"]
    assert members_of(d, "1", oversight=False) == ["1"]


def test_require_names_member_right_and_inbox() -> None:
    d = directory(user("1"), ext_of(CQ, "2", members=(grant("1"),)))
    require(d, "1", "2", P)
    with pytest.raises(NotPermittedError, match=r"1 does not have the delete right on inbox 2"):
        require(d, "1", "2", D)


def test_owner_cannot_be_removed() -> None:
    d = directory(user("1", members=(grant("3"),)), user("3"))
    with pytest.raises(NotPermittedError, match="owns inbox 1"):
        check_removable(d, "1", "1")
    check_removable(d, "3", "1")  # an ordinary member can be removed


# -- invariants ---------------------------------------------------------------------------

rights_sets = st.frozensets(st.sampled_from(list(Right)))
policies = st.builds(
    OwnerPolicy,
    voicemail=st.booleans(),
    download_own=st.booleans(),
    delete_own=st.booleans(),
    share_own=st.booleans(),
    email_on_grant=st.booleans(),
)
owner_kinds = st.sampled_from([Kind.USER, Kind.COMMON_AREA])
all_kinds = st.sampled_from(list(Kind))


@st.composite
def directories(draw: st.DrawFn) -> Directory:
    n = draw(st.integers(2, 8))
    kinds = [draw(all_kinds) for _ in range(n)]
    exts = [str(100 + i) for i in range(n)]
    owners = [e for e, k in zip(exts, kinds, strict=True) if k.has_owner]
    built = []
    for ext, kind in zip(exts, kinds, strict=True):
        others = [o for o in owners if o != ext]
        chosen = draw(st.lists(st.sampled_from(others), unique=True)) if others else []
        members = tuple(Grant(m, frozenset(draw(rights_sets)) | {P}) for m in chosen)
        built.append(
            Extension(
                ext=ext,
                kind=kind,
                name=ext,
                site=draw(st.sampled_from(["HQ", "Branch"])),
                admin=kind is Kind.USER and draw(st.booleans()),
                policy=draw(policies),
                members=members,
            )
        )
    roles = tuple(
        Role(
            name=f"r{i}",
            members=tuple(draw(st.lists(st.sampled_from(owners), unique=True))) if owners else (),
            kinds=draw(st.frozensets(all_kinds, min_size=1)),
            rights=draw(rights_sets) | {P},
            sites=draw(st.none() | st.just(frozenset({"HQ"}))),
        )
        for i in range(draw(st.integers(0, 2)))
    )
    return directory(*built, roles=roles)


@settings(max_examples=300, deadline=None)
@given(directories())
def test_invariants(d: Directory) -> None:
    for member in d.extensions:
        for inbox in d.extensions:
            rights = rights_on(d, member, inbox)
            # no right without play
            assert not rights or P in rights
            # the owner never loses play, and never downloads a common area's messages
            owner = d.extensions[inbox]
            if owner.kind.has_owner and member == inbox:
                assert P in rights
                if owner.kind is Kind.COMMON_AREA:
                    assert DL not in rights
            # queues, ARs and groups have no rights of their own anywhere
            if not d.extensions[member].kind.has_owner:
                assert rights == frozenset()
        # the listing agrees with rights_on
        listed = {a.inbox.ext: a.rights for a in accessible_inboxes(d, member)}
        expected = {i: rights_on(d, member, i) for i in d.extensions if rights_on(d, member, i)}
        assert listed == expected


@settings(max_examples=200, deadline=None)
@given(directories(), st.data())
def test_revoked_member_has_nothing(d: Directory, data: st.DataObject) -> None:
    """Taking a member off an inbox's list and out of every role leaves it with no rights there
    (unless it is the owner or an admin looking at a queue/AR/group)."""
    inbox = data.draw(st.sampled_from(sorted(d.extensions)))
    member = data.draw(st.sampled_from(sorted(d.extensions)))
    target = d.extensions[inbox]
    revoked = Directory(
        sites=d.sites,
        extensions={
            **d.extensions,
            inbox: Extension(
                **{
                    **target.__dict__,
                    "members": tuple(g for g in target.members if g.member != member),
                }
            ),
        },
        roles=tuple(
            Role(r.name, tuple(m for m in r.members if m != member), r.kinds, r.rights, r.sites)
            for r in d.roles
        ),
    )
    rights = rights_on(revoked, member, inbox)
    who = d.extensions[member]
    if member == inbox and target.kind.has_owner:
        assert P in rights
    elif who.kind is Kind.USER and who.admin and target.kind in (CQ, AR, SLG):
        assert rights == {P}
    else:
        assert rights == frozenset()
