"""Message-waiting lamps: who shows which inbox, the RFC 3842 body, and the coalescing sender."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence

import pytest

from sipvm.domain.messages import InboxCounts
from sipvm.domain.model import (
    COMMON_AREA_POLICY,
    Directory,
    Extension,
    Grant,
    Kind,
    Right,
    Role,
    Site,
)
from sipvm.domain.mwi import lamp_map, message_account, reachable_without_proxy, summary_body
from sipvm.notify.mwi import MwiNotifier

P, DL = Right.PLAY, Right.DOWNLOAD
CQ, CA = Kind.CALL_QUEUE, Kind.COMMON_AREA


def user(ext: str, *phones: str, **kw: object) -> Extension:
    return Extension(ext=ext, kind=Kind.USER, name=f"U{ext}", site="HQ", phones=phones, **kw)  # type: ignore[arg-type]


def queue(ext: str, *members: str) -> Extension:
    grants = tuple(Grant(m, frozenset({P})) for m in members)
    return Extension(ext=ext, kind=CQ, name=f"Q{ext}", site="HQ", members=grants)


def directory(*exts: Extension, roles: tuple[Role, ...] = ()) -> Directory:
    return Directory(
        sites={"HQ": Site("HQ", "UTC")}, extensions={e.ext: e for e in exts}, roles=roles
    )


# -- who shows which lamp --------------------------------------------------------------------


def test_lamps_go_to_owner_members_and_roles_not_admin_oversight() -> None:
    d = directory(
        user("1", "sip:1@pbx"),
        user("2", "sip:2@pbx", "sip:2b@pbx"),
        user("3", "sip:3@pbx"),
        user("4", "sip:4@pbx", admin=True),
        user("5", "sip:5@pbx"),
        Extension(
            ext="9",
            kind=CA,
            name="Lobby",
            site="HQ",
            phones=("sip:9@pbx",),
            policy=COMMON_AREA_POLICY,
        ),
        queue("50", "2", "9"),
        roles=(Role("sup", ("3",), frozenset({CQ}), frozenset({P}), None),),
    )
    lamps = lamp_map(d)
    assert lamps["50"] == ("sip:2@pbx", "sip:2b@pbx", "sip:3@pbx", "sip:9@pbx")
    assert lamps["1"] == ("sip:1@pbx",)
    assert lamps["4"] == ("sip:4@pbx",)  # the admin's own inbox only
    assert all("sip:5@pbx" not in phones for inbox, phones in lamps.items() if inbox != "5")


def test_member_without_phones_lights_nothing_and_a_shared_phone_is_listed_once() -> None:
    d = directory(
        user("1"), user("2", "sip:desk@pbx"), user("3", "sip:desk@pbx"), queue("50", "1", "2", "3")
    )
    assert lamp_map(d)["50"] == ("sip:desk@pbx",)
    assert "1" not in lamp_map(d)


def test_summary_body_is_rfc3842() -> None:
    body = summary_body("sip:2001@pbx.example.com", InboxCounts(2, 8, 0, 2))
    assert body == (
        "Messages-Waiting: yes\r\n"
        "Message-Account: sip:2001@pbx.example.com\r\n"
        "Voice-Message: 2/8 (0/2)\r\n"
    )
    assert summary_body("sip:1@h", InboxCounts(0, 3)).startswith("Messages-Waiting: no\r\n")


@pytest.mark.parametrize(
    ("phone", "account", "direct"),
    [
        ("sip:1001@pbx.example.com", "sip:2001@pbx.example.com", False),
        ("sip:1001@10.0.0.2:5080;transport=tcp", "sip:2001@10.0.0.2:5080", True),
        ("sip:1001@127.0.0.1", "sip:2001@127.0.0.1", True),
        ("sip:1001@[::1]:5060", "sip:2001@[::1]:5060", True),
        ("sips:1001@pbx.local?x=y", "sip:2001@pbx.local", False),
    ],
)
def test_account_and_reachability(phone: str, account: str, direct: bool) -> None:
    assert message_account("2001", phone) == account
    assert reachable_without_proxy(phone) is direct


# -- the coalescing sender ---------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Sender:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.batches: list[int] = []

    async def send_mwi(self, phone: str, body: str) -> None:
        self.sent.append((phone, body))

    async def send_mwi_batch(self, notifies: Sequence[tuple[str, str]]) -> list[str | None]:
        self.batches.append(len(notifies))
        errors: list[str | None] = []
        for phone, body in notifies:
            try:
                await self.send_mwi(phone, body)
            except RuntimeError as exc:
                errors.append(str(exc))
            else:
                errors.append(None)
        return errors


class Counts:
    def __init__(self) -> None:
        self.state: dict[str, InboxCounts] = {}

    async def counts(self, inboxes: Iterable[str]) -> Mapping[str, InboxCounts]:
        return {i: self.state.get(i, InboxCounts()) for i in inboxes}


def make() -> tuple[MwiNotifier, Sender, Counts, Clock]:
    sender, counts, clock = Sender(), Counts(), Clock()
    notifier = MwiNotifier(sender, counts, coalesce_s=0.2, clock=clock)
    notifier.set_directory(
        directory(user("1", "sip:1@pbx"), user("2", "sip:2@pbx"), queue("50", "1", "2"))
    )
    return notifier, sender, counts, clock


def test_a_burst_sends_one_notify_per_phone_with_the_latest_counts() -> None:
    notifier, sender, counts, clock = make()
    counts.state["50"] = InboxCounts(new=1)

    async def run() -> None:
        await notifier.send_due()  # the directory's initial state
        sender.sent.clear()
        clock.now += 1
        notifier.changed(["50"])
        assert await notifier.send_due() == 2  # first change: at once
        for n in range(2, 6):  # four more within the window
            clock.now += 0.03
            counts.state["50"] = InboxCounts(new=n)
            notifier.changed(["50"])
            assert await notifier.send_due() == 0
        clock.now += 0.2
        assert await notifier.send_due() == 2

    asyncio.run(run())
    assert len(sender.sent) == 4
    assert [p for p, _ in sender.sent] == ["sip:1@pbx", "sip:2@pbx"] * 2
    assert "Voice-Message: 5/0" in sender.sent[-1][1]


def test_changes_of_unrelated_inboxes_reach_only_their_phones() -> None:
    notifier, sender, _, clock = make()

    async def run() -> None:
        await notifier.send_due()
        sender.sent.clear()
        clock.now += 1
        notifier.changed(["1"])
        await notifier.send_due()

    asyncio.run(run())
    assert [p for p, _ in sender.sent] == ["sip:1@pbx"]
    assert "Message-Account: sip:1@pbx" in sender.sent[0][1]


def test_a_member_removed_gets_a_cleared_lamp_never_the_counts() -> None:
    notifier, sender, counts, clock = make()
    counts.state["50"] = InboxCounts(new=3, old=1)

    async def run() -> None:
        await notifier.send_due()
        sender.sent.clear()
        clock.now += 1
        notifier.set_directory(
            directory(user("1", "sip:1@pbx"), user("2", "sip:2@pbx"), queue("50", "1"))
        )
        notifier.changed(["50"])
        await notifier.send_due()

    asyncio.run(run())
    to_2 = [b for p, b in sender.sent if p == "sip:2@pbx"]
    assert to_2 == [summary_body("sip:50@pbx", InboxCounts())]
    to_1 = [b for p, b in sender.sent if p == "sip:1@pbx"]
    assert to_1 == [summary_body("sip:50@pbx", InboxCounts(3, 1))]


def test_a_new_member_gets_the_inbox_state() -> None:
    notifier, sender, counts, _ = make()
    counts.state["50"] = InboxCounts(new=2)

    async def run() -> None:
        await notifier.send_due()
        sender.sent.clear()
        notifier.set_directory(
            directory(
                user("1", "sip:1@pbx"),
                user("2", "sip:2@pbx"),
                user("3", "sip:3@pbx"),
                queue("50", "1", "2", "3"),
            )
        )
        await notifier.send_due()

    asyncio.run(run())
    assert sorted(sender.sent) == [
        ("sip:3@pbx", summary_body("sip:3@pbx", InboxCounts())),  # its own new inbox
        ("sip:3@pbx", summary_body("sip:50@pbx", InboxCounts(2))),
    ]


def test_unreachable_phones_are_left_out() -> None:
    sender, counts = Sender(), Counts()
    notifier = MwiNotifier(sender, counts, reachable=reachable_without_proxy)
    notifier.set_directory(
        directory(user("1", "sip:1@pbx.example.com"), user("2", "sip:2@127.0.0.1:5999"))
    )
    notifier.refresh_all()
    asyncio.run(notifier.send_due())
    assert [p for p, _ in sender.sent] == ["sip:2@127.0.0.1:5999"]


def test_refresh_all_sends_every_pair_in_paced_batches() -> None:
    sender, counts, clock = Sender(), Counts(), Clock()
    notifier = MwiNotifier(sender, counts, clock=clock)
    users = [user(str(100 + i), f"sip:{100 + i}@pbx") for i in range(120)]
    notifier.set_directory(directory(*users, queue("50", *(u.ext for u in users))))

    async def run() -> list[int]:
        batches = []
        while notifier.pending:
            batches.append(await notifier.send_due(limit=50))
        return batches

    assert asyncio.run(run()) == [50, 50, 50, 50, 40]  # 120 own inboxes + 120 on the queue
    assert len(set(sender.sent)) == 240


def test_a_failing_send_is_logged_and_the_rest_go_on(caplog: pytest.LogCaptureFixture) -> None:
    class Flaky(Sender):
        async def send_mwi(self, phone: str, body: str) -> None:
            if phone == "sip:1@pbx":
                raise RuntimeError("engine stopped")
            await super().send_mwi(phone, body)

    sender = Flaky()
    notifier = MwiNotifier(sender, Counts())
    notifier.set_directory(directory(user("1", "sip:1@pbx"), user("2", "sip:2@pbx")))
    asyncio.run(notifier.send_due())
    assert [p for p, _ in sender.sent] == ["sip:2@pbx"]
    assert "could not send the message-waiting NOTIFY to sip:1@pbx: engine stopped" in caplog.text
    assert sender.batches == [2]  # one round-trip for both


def test_the_last_notify_a_phone_gets_says_yes_while_any_of_its_inboxes_has_new() -> None:
    """Phones (and PBX relays) keeping only the last NOTIFY's lamp must not go dark while the
    phone's own inbox still has a new message and a queue empties."""
    notifier, sender, counts, clock = make()
    counts.state["1"] = InboxCounts(new=2)
    counts.state["50"] = InboxCounts(new=1)

    async def run() -> None:
        await notifier.send_due()  # start: both inboxes due together
        first_round = [p for p in sender.sent if p[0] == "sip:1@pbx"]
        assert [("yes" in b) for _, b in first_round] == [True, True]
        sender.sent.clear()
        clock.now += 1
        counts.state["50"] = InboxCounts(old=1)  # the queue's message was played
        notifier.changed(["50"])
        await notifier.send_due()
        clock.now += 0.1
        await notifier.send_due()  # inbox 1 went out 1 s ago: no window to wait for

    asyncio.run(run())
    to_1 = [b for p, b in sender.sent if p == "sip:1@pbx"]
    assert to_1 == [
        summary_body("sip:50@pbx", InboxCounts(old=1)),
        summary_body("sip:1@pbx", InboxCounts(new=2)),  # sent again, so the lamp stays on
    ]
    to_2 = [b for p, b in sender.sent if p == "sip:2@pbx"]
    assert to_2 == [summary_body("sip:50@pbx", InboxCounts(old=1))]  # 2's own inbox is empty


def test_in_one_round_no_goes_before_yes() -> None:
    notifier, sender, counts, _ = make()
    counts.state["50"] = InboxCounts(new=1)
    asyncio.run(notifier.send_due())
    to_1 = [b.split("\r\n")[0] for p, b in sender.sent if p == "sip:1@pbx"]
    assert to_1 == ["Messages-Waiting: no", "Messages-Waiting: yes"]
