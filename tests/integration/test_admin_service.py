"""Admin-only use cases over a real store: every inbox, deleted messages within the restore
window, audit trails, hours overrides and the greetings of queues, ARs and groups."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from sipvm.app import App
from sipvm.domain.routing import Override, Period
from sipvm.errors import InvalidFieldsError, InvalidInputError, NotFoundError, NotPermittedError
from sipvm.services.admin import AdminService
from sipvm.testing.clock import FakeClock
from tests.integration.conftest import Deposit
from tests.support.tones import write_tone_wav

ADMIN = "1001"


@pytest.fixture
def admin(app: App) -> AdminService:
    return app.admin


async def test_non_admins_are_refused_everything(
    admin: AdminService, app: App, deposit: Deposit, tmp_path: Path
) -> None:
    m = await deposit("2001")
    wav = write_tone_wav(tmp_path / "g.wav", 440.0, 1.0)
    calls = [
        admin.inboxes(by="1002"),
        admin.messages("1003", by="1002"),
        admin.deleted("2001", by="1002"),
        admin.audit_trail(m.id, by="1002"),
        admin.hours("2001", by="1002"),
        admin.set_hours("2001", "open", by="1002"),
        app.greetings.list("3001", as_member="1002"),
        app.greetings.upload("3001", "business", wav, as_member="1900"),
        app.greetings.remove("3001", "business", as_member="1099"),
    ]
    for call in calls:
        with pytest.raises(NotPermittedError, match=r"only an admin user may|may not manage"):
            await call


async def test_every_inbox_with_its_counts(admin: AdminService, deposit: Deposit) -> None:
    await deposit("1003")
    await deposit("2001")
    listed = await admin.inboxes(by=ADMIN)
    assert [o.inbox.ext for o in listed] == [
        "1001", "1002", "1003", "1004", "1101", "1102", "1900", "1901", "2001", "3001", "4001",
    ]  # fmt: skip
    counts = {o.inbox.ext: (o.new, o.old) for o in listed}
    assert counts["1003"] == (1, 0) and counts["2001"] == (1, 0) and counts["1002"] == (0, 0)
    # An admin sees what is in a user's inbox, without being given its audio.
    assert [m.inbox for m in await admin.messages("1003", by=ADMIN)] == ["1003"]
    with pytest.raises(NotFoundError, match="there is no inbox 9999"):
        await admin.messages("9999", by=ADMIN)


async def test_deleted_messages_within_the_restore_window(
    admin: AdminService, app: App, deposit: Deposit, clock: FakeClock
) -> None:
    old = await deposit("2001")
    await app.messages.delete(old.id, as_member="1002")
    clock.advance(days=20)
    recent = await deposit("2001")
    await app.messages.delete(recent.id, as_member="1002")
    await deposit("2001")  # not deleted
    listed = await admin.deleted("2001", by=ADMIN)
    assert [d.message.id for d in listed] == [recent.id, old.id]  # latest deleted first
    assert listed[1].restorable_until == old.received_at + timedelta(days=30)
    clock.advance(days=11)  # the first one is past its 30 days (purged at the next sweep)
    assert [d.message.id for d in await admin.deleted("2001", by=ADMIN)] == [recent.id]
    await app.messages.restore(recent.id, as_member=ADMIN)
    assert await admin.deleted("2001", by=ADMIN) == []


async def test_the_audit_trail_of_a_message(
    admin: AdminService, app: App, deposit: Deposit
) -> None:
    m = await deposit("2001", caller="5550100")
    await app.messages.mark_played(m.id, as_member="1004")
    await app.messages.delete(m.id, as_member="1002")
    await app.messages.restore(m.id, as_member=ADMIN)
    trail = await admin.audit_trail(m.id, by=ADMIN)
    assert [(e.actor, e.action) for e in trail] == [
        ("caller", "deposit"),
        ("1004", "play"),
        ("1002", "delete"),
        ("1001", "restore"),
    ]
    with pytest.raises(NotFoundError, match="message 999 does not exist"):
        await admin.audit_trail(999, by=ADMIN)


async def test_hours_override(admin: AdminService, app: App) -> None:
    # The fake clock starts on a Monday 15:00 UTC: 10:00 in New York, Sales is open.
    now = await admin.hours("2001", by=ADMIN)
    assert now.period is Period.BUSINESS and now.override is Override.AUTO
    assert now.until is not None
    closed = await admin.set_hours("2001", "closed", by=ADMIN)
    assert closed.period is Period.CLOSED and closed.override is Override.CLOSED
    assert (await app.routing.now("2001")).period is Period.CLOSED  # calls follow it
    back = await admin.set_hours("2001", "auto", by=ADMIN)
    assert back.period is Period.BUSINESS
    with pytest.raises(InvalidFieldsError, match="override: must be open, closed or auto"):
        await admin.set_hours("2001", "shut", by=ADMIN)
    with pytest.raises(InvalidInputError, match="only call queues, auto receptionists"):
        await admin.hours("1002", by=ADMIN)


async def test_greetings_of_a_receptionist(app: App, tmp_path: Path) -> None:
    greetings = app.greetings
    assert greetings.kinds_for("3001", as_member=ADMIN) == (
        "business", "closed", "holiday", "menu-main", "menu-branch",
        "unavailable", "busy", "temporary", "name",
    )  # fmt: skip
    assert "menu-main" not in greetings.kinds_for("2001", as_member=ADMIN)
    wav = write_tone_wav(tmp_path / "g.wav", 440.0, 1.0)
    greeting = await greetings.upload("3001", "holiday", wav, as_member=ADMIN)
    assert greeting.uploaded_by == ADMIN and greeting.kind == "holiday"
    assert [g.kind for g in await greetings.list("3001", as_member=ADMIN)] == ["holiday"]
    assert (await greetings.file_for("3001", "holiday", as_member=ADMIN)).is_file()
    assert await greetings.path_for("3001", "holiday") is not None  # callers hear it
    with pytest.raises(InvalidFieldsError, match="kind: inbox 2001 has no menu-main greeting"):
        await greetings.upload("2001", "menu-main", wav, as_member=ADMIN)
    removed = await greetings.remove("3001", "holiday", as_member=ADMIN)
    assert removed.kind == "holiday"
    with pytest.raises(NotFoundError, match="inbox 3001 has no holiday greeting"):
        await greetings.file_for("3001", "holiday", as_member=ADMIN)


async def test_owners_record_their_own_greetings_and_nobody_else(app: App, tmp_path: Path) -> None:
    greetings = app.greetings
    wav = write_tone_wav(tmp_path / "g.wav", 440.0, 1.0)
    assert greetings.kinds_for("1002", as_member="1002") == (
        "unavailable", "busy", "temporary", "name",
    )  # fmt: skip
    mine = await greetings.upload("1002", "temporary", wav, as_member="1002")
    assert mine.uploaded_by == "1002"
    with pytest.raises(InvalidFieldsError, match="kind: inbox 1002 has no business greeting"):
        await greetings.upload("1002", "business", wav, as_member="1002")
    for member, inbox in (("1001", "1002"), ("1003", "1002"), ("1002", "2001")):
        with pytest.raises(NotPermittedError, match=f"{member} may not manage the greetings"):
            await greetings.upload(inbox, "unavailable", wav, as_member=member)
    with pytest.raises(NotPermittedError):
        await greetings.file_for("1002", "temporary", as_member="1001")
    await greetings.remove("1002", "temporary", as_member="1002")


async def test_a_refused_upload_names_the_file_as_shown(app: App, tmp_path: Path) -> None:
    scratch = tmp_path / "8f3a.upload"
    scratch.write_bytes(b"not audio at all")
    with pytest.raises(InvalidInputError) as caught:
        await app.greetings.upload(
            "3001", "closed", scratch, as_member=ADMIN, shown_as="'notes.txt'"
        )
    assert str(caught.value).startswith("'notes.txt' is not an audio file")
    assert str(scratch) not in str(caught.value)
