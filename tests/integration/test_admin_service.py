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
def admin(app: App, clock: FakeClock) -> AdminService:
    return AdminService(app.directory, app.message_repo, app.routing, app.greetings, clock)


async def test_non_admins_are_refused_everything(
    admin: AdminService, deposit: Deposit, tmp_path: Path
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
        admin.greetings("3001", by="1002"),
        admin.upload_greeting("3001", "business", wav, by="1900"),
        admin.remove_greeting("3001", "business", by="1099"),
    ]
    for call in calls:
        with pytest.raises(NotPermittedError, match="only an admin user may"):
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


async def test_greetings_of_a_receptionist(admin: AdminService, app: App, tmp_path: Path) -> None:
    assert admin.greeting_kinds("3001", by=ADMIN) == (
        "business", "closed", "holiday", "menu-main", "menu-branch",
        "unavailable", "busy", "temporary", "name",
    )  # fmt: skip
    assert "menu-main" not in admin.greeting_kinds("2001", by=ADMIN)
    wav = write_tone_wav(tmp_path / "g.wav", 440.0, 1.0)
    greeting = await admin.upload_greeting("3001", "holiday", wav, by=ADMIN)
    assert greeting.uploaded_by == ADMIN and greeting.kind == "holiday"
    assert [g.kind for g in await admin.greetings("3001", by=ADMIN)] == ["holiday"]
    assert (await admin.greeting_file("3001", "holiday", by=ADMIN)).is_file()
    assert await app.greetings.path_for("3001", "holiday") is not None  # callers hear it
    with pytest.raises(InvalidFieldsError, match="kind: inbox 2001 has no greeting 'menu-main'"):
        await admin.upload_greeting("2001", "menu-main", wav, by=ADMIN)
    with pytest.raises(InvalidInputError, match="its owner manages its greetings"):
        await admin.upload_greeting("1002", "unavailable", wav, by=ADMIN)
    removed = await admin.remove_greeting("3001", "holiday", by=ADMIN)
    assert removed.kind == "holiday"
    with pytest.raises(NotFoundError, match="inbox 3001 has no holiday greeting"):
        await admin.greeting_file("3001", "holiday", by=ADMIN)
