"""The event hub hands each change to the open streams whose viewer sees its inbox."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from sipvm.app import App
from sipvm.storage.notify import AuditEvent
from sipvm.web.events import QUEUE_LIMIT, EventHub, event_stream
from sipvm.web.viewer import Viewer


def viewer(ext: str, *, admin: bool = False) -> Viewer:
    return Viewer(ext=ext, name=ext, admin=admin, csrf=None, via="token")


def drain(queue: asyncio.Queue[dict[str, object] | None]) -> list[dict[str, object] | None]:
    found = []
    while not queue.empty():
        found.append(queue.get_nowait())
    return found


async def test_each_viewer_gets_the_inboxes_it_sees(app: App) -> None:
    hub = EventHub(app.directory)
    events = [AuditEvent(n, "play", 100 + n, inbox) for n, inbox in enumerate(["2001", "1002"])]
    async with (
        hub.subscribe(viewer("1003")) as carol,
        hub.subscribe(viewer("1002")) as bob,
        hub.subscribe(viewer("1101")) as erin,
        hub.subscribe(viewer("1001", admin=True)) as alice,
    ):
        assert hub.streams == 4
        hub.publish(events)
        assert [e and e["inbox"] for e in drain(carol)] == ["1002"]  # assistant of 1002
        assert [e and e["inbox"] for e in drain(bob)] == ["2001", "1002"]
        assert drain(erin) == []
        assert [e and e["inbox"] for e in drain(alice)] == ["2001", "1002"]
    assert hub.streams == 0


async def test_a_stream_that_falls_behind_is_told_to_reload(app: App) -> None:
    hub = EventHub(app.directory)
    async with hub.subscribe(viewer("1002")) as bob:
        hub.publish(AuditEvent(n, "deposit", n, "1002") for n in range(QUEUE_LIMIT + 5))
        assert drain(bob) == [
            {"action": "reload"},
            *(
                {"id": n, "inbox": "1002", "message": n, "action": "deposit"}
                for n in range(QUEUE_LIMIT + 1, QUEUE_LIMIT + 5)
            ),
        ]


async def test_a_new_directory_revision_is_news_to_every_stream(
    app: App, example_directory_file: Path, tmp_path: Path
) -> None:
    hub = EventHub(app.directory)
    changed = tmp_path / "renamed.toml"
    text = example_directory_file.read_text(encoding="utf-8")
    changed.write_text(text.replace('name = "Sales"', 'name = "Sales team"'), encoding="utf-8")
    async with hub.subscribe(viewer("1101")) as erin:
        hub.publish(())
        assert drain(erin) == []
        applied = await app.directory.apply_file(changed)
        hub.publish(())
        assert drain(erin) == [{"action": "directory", "rev": applied.rev}]


async def test_the_stream_text_and_its_end(app: App) -> None:
    hub = EventHub(app.directory)

    async def signed_in() -> bool:
        return True

    stream = event_stream(hub, viewer("1002"), still_signed_in=signed_in, keepalive_s=5)
    head = await anext(stream)
    assert head.startswith("retry: 2000\n")
    hub.publish([AuditEvent(7, "delete", 42, "1002")])
    text = await anext(stream)
    assert text.startswith("id: 7\ndata: ")
    assert json.loads(text.split("data: ", 1)[1]) == {
        "id": 7,
        "inbox": "1002",
        "message": 42,
        "action": "delete",
    }
    hub.close()
    assert [t async for t in stream] == []


async def test_a_stream_whose_session_ended_says_so_and_ends(app: App) -> None:
    hub = EventHub(app.directory)

    async def signed_out() -> bool:
        return False

    stream = event_stream(hub, viewer("1002"), still_signed_in=signed_out, keepalive_s=0.01)
    await anext(stream)
    assert [t async for t in stream] == ['data: {"action": "signed-out"}\n\n']
