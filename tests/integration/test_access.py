"""Editing the directory in place (member lists, policies, admin flag, roles) over a real store:
each save is a new revision through the file's validation, all or nothing, refused when stale;
the notifier emails newly granted members as it does for a file."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from sipvm.app import App
from sipvm.domain.model import Right
from sipvm.errors import ConflictError, InvalidFieldsError, NotFoundError, NotPermittedError
from sipvm.notify.notifier import Notifier
from sipvm.provisioning.directory_file import dump_directory
from sipvm.services.access import AccessService
from sipvm.testing.clock import FakeClock

ADMIN = "1001"  # Alice, admin in the example directory


@pytest.fixture
def access(app: App) -> AccessService:
    return app.access


def exported_members(app: App, inbox: str) -> list[dict[str, object]]:
    """The member list of ``inbox`` as `sipvm directory export` writes it."""
    doc = tomllib.loads(dump_directory(app.directory.current))
    for kind in ("user", "common_area", "call_queue", "auto_receptionist", "shared_line_group"):
        for entry in doc.get(kind, []):
            if entry["ext"] == inbox:
                return list(entry.get("members", []))
    raise AssertionError(f"no entry {inbox}")


async def test_the_access_list_of_a_queue(access: AccessService, app: App) -> None:
    listed = await access.access_list("2001", by=ADMIN)
    assert listed.rev == app.directory.rev
    assert [(m.member, m.name, m.rights) for m in listed.members] == [
        ("1002", "Bob Jones", (Right.PLAY, Right.DOWNLOAD, Right.DELETE, Right.SHARE)),
        ("1004", "Dan Brown", (Right.PLAY, Right.SHARE)),
        ("1900", "Lobby phone", (Right.PLAY,)),
    ]
    assert listed.owner is None and listed.policy == {} and listed.email_on_grant
    assert [r.name for r in listed.roles] == ["Queue supervisors"]
    own = await access.access_list("1002", by=ADMIN)
    assert own.owner == "1002" and [m.member for m in own.members] == ["1003"]
    assert own.policy == {
        "voicemail": True,
        "download_own": True,
        "delete_own": True,
        "share_own": False,
        "email_on_grant": True,
    }


async def test_only_admins_see_and_edit(access: AccessService, app: App) -> None:
    rev = app.directory.rev
    with pytest.raises(NotPermittedError, match="only an admin user may see access member lists"):
        await access.access_list("2001", by="1002")
    with pytest.raises(NotPermittedError, match="1900 is not one"):
        await access.set_members("2001", [], by="1900")
    with pytest.raises(NotPermittedError):
        await access.set_policy("1002", {"share_own": True}, by="1099")
    assert app.directory.rev == rev


async def test_a_member_added_is_a_new_revision_that_export_writes(
    access: AccessService, app: App
) -> None:
    before = await access.access_list("2001", by=ADMIN)
    entries = [{"member": m.member, "rights": [r.value for r in m.rights]} for m in before.members]
    entries.append({"member": "1003", "rights": ["delete", "play"]})
    after = await access.set_members("2001", entries, by=ADMIN, rev=before.rev)
    assert after.rev == before.rev + 1 == app.directory.rev
    assert ("1003", (Right.PLAY, Right.DELETE)) in [(m.member, m.rights) for m in after.members]
    assert {"member": "1003", "rights": ["play", "delete"]} in exported_members(app, "2001")
    # The new revision is what the store holds: a fresh load sees the same.
    rev, document = await app.directory.in_force()
    assert rev == after.rev
    assert {"member": "1003", "rights": ["play", "delete"]} in document["call_queue"][0]["members"]
    # Saving the same list again changes nothing (no new revision).
    same = await access.set_members("2001", entries, by=ADMIN, rev=after.rev)
    assert same.rev == after.rev


async def test_bad_entries_name_their_field_and_nothing_is_applied(
    access: AccessService, app: App
) -> None:
    rev, document = await app.directory.in_force()
    with pytest.raises(InvalidFieldsError) as caught:
        await access.set_members(
            "2001",
            [
                {"member": "1002", "rights": ["play"]},
                {"member": "1099", "rights": ["play"]},
                {"member": "3001", "rights": ["play"]},
                {"member": "1002", "rights": ["fly"]},
                {"member": "1003", "rights": []},
                "1004",
                {"member": "1004", "rights": ["play"], "note": "x"},
            ],
            by=ADMIN,
        )
    assert caught.value.fields == {
        "members[1].member": "1099 is not in the directory",
        "members[2].member": (
            "3001 is an auto receptionist; only users and common areas can be members"
        ),
        "members[3].member": "1002 is listed twice; give its rights once",
        "members[3].rights": "unknown right 'fly'; rights are play, download, delete, share",
        "members[4].rights": (
            "give at least one of play, download, delete, share "
            "(remove the member to take its access away)"
        ),
        "members[5]": 'must be an object with "member" and "rights"',
        "members[6].note": 'unknown field; an entry has "member" and "rights"',
    }
    assert "members[1].member: 1099 is not in the directory" in str(caught.value)
    assert await app.directory.in_force() == (rev, document)


async def test_the_owner_is_never_listed_nor_removed(access: AccessService, app: App) -> None:
    with pytest.raises(InvalidFieldsError) as caught:
        await access.set_members("1002", [{"member": "1002", "rights": ["play"]}], by=ADMIN)
    assert caught.value.fields == {
        "members[0].member": "1002 owns this inbox and always has access; "
        "its rights follow the owner policy"
    }
    with pytest.raises(NotPermittedError, match="1002 owns inbox 1002 and cannot be removed"):
        await access.remove_member("1002", "1002", by=ADMIN)
    with pytest.raises(NotFoundError, match="1004 is not on the access member list of inbox 1002"):
        await access.remove_member("1002", "1004", by=ADMIN)
    removed = await access.remove_member("1002", "1003", by=ADMIN)
    assert removed.members == () and exported_members(app, "1002") == []
    # An empty list is fine too: the owner keeps its access through the policy.
    emptied = await access.set_members("2001", [], by=ADMIN)
    assert emptied.members == () and exported_members(app, "2001") == []


async def test_an_edit_on_a_stale_revision_is_refused(
    access: AccessService, app: App, clock: FakeClock, example_directory_file: Path
) -> None:
    seen = await access.access_list("2001", by=ADMIN)
    # Someone else applies a change meanwhile (another process: the file, another admin).
    other = await App.open(app.data_dir, clock=clock)
    try:
        await other.access.remove_member("2001", "1900", by=ADMIN)
    finally:
        await other.close()
    with pytest.raises(ConflictError, match="the directory changed since you read it"):
        await access.set_members("2001", [], by=ADMIN, rev=seen.rev)
    now = await access.access_list("2001", by=ADMIN)
    assert now.rev == seen.rev + 1 and [m.member for m in now.members] == ["1002", "1004"]


async def test_the_store_refuses_an_edit_overtaken_while_it_was_made(app: App) -> None:
    rev, _ = await app.directory.in_force()
    await app.directory.apply(app.directory.current, source="unchanged", expected_rev=rev)
    with pytest.raises(ConflictError, match=f"the edit was made on revision {rev - 1}"):
        await app.directory.apply(app.directory.current, source="stale", expected_rev=rev - 1)
    assert (await app.directory.in_force())[0] == rev


async def test_owner_policy_and_email_on_grant(access: AccessService, app: App) -> None:
    changed = await access.set_policy("1004", {"download_own": True}, by=ADMIN)
    assert changed.policy["download_own"] and changed.policy["share_own"]  # others kept
    assert Right.DOWNLOAD in (await app.messages.inboxes("1004"))[0].rights
    off = await access.set_email_on_grant("1002", False, by=ADMIN)
    assert not off.email_on_grant and not off.policy["email_on_grant"]
    with pytest.raises(InvalidFieldsError) as caught:
        await access.set_policy("1900", {"download_own": True, "delete_own": "yes"}, by=ADMIN)
    assert caught.value.fields == {
        "policy.download_own": "not a setting of a common area's policy; "
        "settings: voicemail, delete_own, share_own",
        "policy.delete_own": "must be true or false",
    }
    with pytest.raises(InvalidFieldsError, match="a call queue has no owner policy"):
        await access.set_email_on_grant("2001", False, by=ADMIN)


async def test_a_policy_the_rest_of_the_directory_forbids_is_refused_whole(
    access: AccessService, app: App
) -> None:
    rev = app.directory.rev
    # The main number's menu key 3 leaves messages in 1002: its voicemail must stay on.
    with pytest.raises(InvalidFieldsError) as caught:
        await access.set_policy("1002", {"voicemail": False, "share_own": True}, by=ADMIN)
    assert list(caught.value.fields) == ["policy"]
    assert "1002" in caught.value.fields["policy"]
    assert app.directory.rev == rev
    assert not app.directory.current.extensions["1002"].policy.share_own


async def test_the_admin_flag(access: AccessService, app: App) -> None:
    bob = await access.set_admin("1002", True, by=ADMIN)
    assert bob.admin and app.directory.current.extensions["1002"].admin
    await access.access_list("2001", by="1002")  # Bob may now
    with pytest.raises(NotPermittedError, match="cannot take away its own admin flag"):
        await access.set_admin(ADMIN, False, by=ADMIN)
    alice = await access.set_admin(ADMIN, False, by="1002")
    assert not alice.admin
    with pytest.raises(InvalidFieldsError, match="admin: 1900 is a common area"):
        await access.set_admin("1900", True, by="1002")
    with pytest.raises(InvalidFieldsError, match="admin: must be true or false"):
        await access.set_admin("1003", "yes", by="1002")


async def test_role_members(access: AccessService, app: App) -> None:
    role = await access.set_role_members("Queue supervisors", ["1003", "1900"], by=ADMIN)
    assert role.members == ("1003", "1900")
    assert (
        Right.DELETE
        in next(i for i in await app.messages.inboxes("1003") if i.ext == "3001").rights
    )
    with pytest.raises(InvalidFieldsError) as caught:
        await access.set_role_members("Queue supervisors", ["1003", "2001", "1003"], by=ADMIN)
    assert caught.value.fields == {
        "members[1]": "2001 is a call queue; only users and common areas can be members",
        "members[2]": "1003 is listed twice",
    }
    with pytest.raises(NotFoundError, match="there is no role 'Nobody'"):
        await access.set_role_members("Nobody", [], by=ADMIN)


async def test_a_grant_from_an_edit_is_emailed_like_one_from_a_file(
    access: AccessService, app: App, clock: FakeClock
) -> None:
    notifier = Notifier(
        directory=app.directory, repo=app.notify_repo, mwi=None, email=True, clock=clock
    )
    await notifier.start()
    await access.set_members(
        "4001",
        [
            {"member": "1101", "rights": ["play", "download", "delete"]},
            {"member": "1003", "rights": ["play"]},
        ],
        by=ADMIN,
    )
    await notifier.poll()
    granted = [e for e in (await app.notify_repo.outbox()).pending if e.kind == "access-granted"]
    assert [(e.recipient, e.address, e.detail) for e in granted] == [
        (
            "1003",
            "carol@example.com",
            [{"inbox": "4001", "name": "Branch front desk", "rights": ["play"]}],
        )
    ]
