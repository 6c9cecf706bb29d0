"""Pages of a long inbox over a real store: after the place where the last page ended (keyset),
as an offset pages, and as cheap at the end of the inbox as at its start."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from sipvm.app import App
from sipvm.domain.messages import MenuPlace, Message
from sipvm.errors import InvalidInputError, NotPermittedError

QUEUE = "2001"  # Sales in the example directory; 1002 may play it, 1003 may not


async def fill(app: App, count: int, *, played_every: int = 3, same_time_every: int = 4) -> None:
    """``count`` messages in the queue; every ``played_every``-th played, and runs of
    ``same_time_every`` sharing one received time (so the id decides their order)."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for n in range(count):
        at = (start + timedelta(seconds=n // same_time_every)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        played = at if n % played_every == 0 else None
        rows.append((f"page{n:06d}", QUEUE, at, 3000, f"audio/{QUEUE}/page{n}.wav", played))
    async with app.db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO messages (uid, inbox, received_at, duration_ms, audio, played_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )


async def walk(app: App, size: int) -> list[list[Message]]:
    """Every page of ``size`` messages, each after the last one of the page before."""
    pages = [await app.messages.messages(QUEUE, as_member="1002", limit=size)]
    while pages[-1]:
        after = MenuPlace.of(pages[-1][-1])
        pages.append(await app.messages.messages(QUEUE, as_member="1002", limit=size, after=after))
    return pages[:-1]


@pytest.mark.parametrize("size", [1, 7, 50])
async def test_pages_after_a_place_are_the_inbox_in_menu_order(app: App, size: int) -> None:
    await fill(app, 103)
    everything = await app.messages.messages(QUEUE, as_member="1002")
    assert len(everything) == 103
    assert [m.played for m in everything] == sorted(m.played for m in everything)  # new first
    pages = await walk(app, size)
    assert [m.id for page in pages for m in page] == [m.id for m in everything]
    assert all(len(page) == size for page in pages[:-1])
    # the same pages as by offset while nothing changes
    for number, page in enumerate(pages):
        by_offset = await app.messages.messages(QUEUE, limit=size, offset=number * size)
        assert page == by_offset


async def test_the_rest_of_the_inbox_after_a_place_without_a_limit(app: App) -> None:
    await fill(app, 20)
    everything = await app.messages.messages(QUEUE)
    for cut in (0, 9, 13, 19):  # in the new messages, at their end, in the played ones, last
        rest = await app.messages.messages(QUEUE, after=MenuPlace.of(everything[cut]))
        assert rest == everything[cut + 1 :]


async def test_a_message_deleted_on_an_earlier_page_skips_nothing(app: App) -> None:
    await fill(app, 30)
    first = await app.messages.messages(QUEUE, as_member="1002", limit=10)
    everything = await app.messages.messages(QUEUE)
    await app.messages.delete(first[0].id, as_member="1002")  # another member, meanwhile
    after = await app.messages.messages(QUEUE, limit=10, after=MenuPlace.of(first[-1]))
    by_offset = await app.messages.messages(QUEUE, limit=10, offset=10)
    assert after == everything[10:20]
    assert by_offset == everything[11:21]  # what an offset does: message 10 is never shown


async def test_a_page_after_a_place_deep_in_a_long_inbox_costs_what_the_first_does(
    app: App,
) -> None:
    await fill(app, 6000)
    everything = await app.messages.messages(QUEUE)
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    async def cost(read: Callable[[], Awaitable[list[Message]]]) -> int:
        nonlocal steps
        steps = 0
        found = await read()
        assert len(found) == 50
        return steps

    async with app.db.read() as conn:  # one connection serves every read of the store
        await conn.set_progress_handler(count, 100)
    try:
        first = await cost(lambda: app.messages.messages(QUEUE, limit=50))
        last = MenuPlace.of(everything[-51])
        deep = await cost(lambda: app.messages.messages(QUEUE, limit=50, after=last))
        by_offset = await cost(lambda: app.messages.messages(QUEUE, limit=50, offset=5950))
    finally:
        async with app.db.read() as conn:
            await conn.set_progress_handler(None, 0)  # type: ignore[arg-type]
    assert deep <= 2 * first + 5, (first, deep)
    assert by_offset > 10 * deep, (deep, by_offset)


async def test_a_page_after_a_place_keeps_the_rights_and_takes_no_offset(app: App) -> None:
    await fill(app, 5)
    (m,) = await app.messages.messages(QUEUE, limit=1)
    with pytest.raises(NotPermittedError):
        await app.messages.messages(QUEUE, as_member="1003", after=MenuPlace.of(m))
    with pytest.raises(InvalidInputError, match="either by offset or after a message"):
        await app.messages.messages(QUEUE, offset=1, after=MenuPlace.of(m))
