"""Mailbox targeting: which inbox an INVITE is for and why, over captured and built INVITEs."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipvm.domain.model import Directory, Extension, Kind, Site
from sipvm.domain.sip_message import parse_request
from sipvm.domain.targeting import (
    Reason,
    Target,
    mailbox_target,
    reason_for_cause,
    reason_for_diversion,
    resolve_inbox,
)

CAPTURES = Path(__file__).parent / "captures"

B, NA, UA, UC, UK = (
    Reason.BUSY,
    Reason.NO_ANSWER,
    Reason.UNAVAILABLE,
    Reason.UNCONDITIONAL,
    Reason.UNKNOWN,
)


def capture(name: str) -> str:
    return (CAPTURES / name).read_bytes().decode("utf-8")


def target_of(raw: str) -> Target | None:
    return mailbox_target(parse_request(raw))


def invite(
    *headers: str, ruri: str = "sip:voicemail@vm.example.com", to: str = "<sip:voicemail@pbx>"
) -> str:
    """A minimal INVITE from a PBX, with extra header lines."""
    lines = [
        f"INVITE {ruri} SIP/2.0",
        "Via: SIP/2.0/UDP 10.0.0.10:5060;branch=z9hG4bK-t1",
        "From: <sip:5551234@pbx>;tag=1",
        f"To: {to}",
        "Call-ID: t1@pbx",
        "CSeq: 1 INVITE",
        *headers,
    ]
    return "\r\n".join(lines) + "\r\n\r\n"


# (capture, ext, reason, source, original called)
CAPTURED = [
    ("plain_invite.sip", "2001", UK, "request-uri", "2001"),
    ("asterisk_diversion_no_answer.sip", "2001", NA, "diversion", "2001"),
    ("two_diversions.sip", "2001", B, "diversion", "3001"),
    ("diversion_comma_joined.sip", "2002", UA, "diversion", "6000"),
    ("history_info_reason.sip", "2001", B, "history-info", "3001"),
    ("history_info_cause_param.sip", "2001", NA, "history-info", "3001"),
    ("rfc4458_target.sip", "2001", B, "rfc4458", "2001"),
    ("compact_headers.sip", "1002", UK, "request-uri", "1002"),
    ("tel_to.sip", "+15550101", UK, "to", "+15550101"),
    ("pai_pilot.sip", "*97", UK, "request-uri", "*97"),
]


@pytest.mark.parametrize(("name", "ext", "reason", "source", "original"), CAPTURED)
def test_targets_of_captured_invites(
    name: str, ext: str, reason: Reason, source: str, original: str
) -> None:
    assert target_of(capture(name)) == Target(ext, reason, source, original)  # type: ignore[arg-type]


# --- precedence -------------------------------------------------------------------------------

ALL_SOURCES = (
    "History-Info: <sip:1002@pbx?Reason=SIP%3Bcause%3D486>;index=1, <sip:voicemail@vm>;index=1.1",
    "Diversion: <sip:1003@pbx>;reason=no-answer",
)


def test_rfc4458_target_beats_everything() -> None:
    raw = invite(*ALL_SOURCES, ruri="sip:voicemail@vm;target=sip:1001%40pbx;cause=302")
    assert target_of(raw) == Target("1001", UC, "rfc4458", "1002")


def test_history_info_beats_diversion() -> None:
    assert target_of(invite(*ALL_SOURCES)) == Target("1002", B, "history-info", "1002")


def test_diversion_beats_request_uri() -> None:
    assert target_of(invite(ALL_SOURCES[1])) == Target("1003", NA, "diversion", "1003")


def test_request_uri_beats_to() -> None:
    assert target_of(invite(to="<sip:1005@pbx>")) == Target(
        "voicemail", UK, "request-uri", "voicemail"
    )


def test_to_when_the_request_uri_has_no_user() -> None:
    raw = invite(ruri="sip:vm.example.com", to="<sip:1005@pbx>")
    assert target_of(raw) == Target("1005", UK, "to", "1005")


def test_no_user_anywhere_is_no_target() -> None:
    assert target_of(invite(ruri="sip:vm.example.com", to="<sip:vm.example.com>")) is None


# --- RFC 4458 ---------------------------------------------------------------------------------

RFC4458_CAUSES = [
    ("486", B),
    ("600", B),
    ("408", NA),
    ("487", NA),
    ("480", UA),
    ("404", UA),
    ("410", UA),
    ("502", UA),
    ("503", UA),
    ("302", UC),
    ("500", UK),
    ("abc", UK),
]


@pytest.mark.parametrize(("cause", "reason"), RFC4458_CAUSES)
def test_rfc4458_cause_gives_the_reason(cause: str, reason: Reason) -> None:
    raw = capture("rfc4458_target.sip").replace(";cause=486 SIP/2.0", f";cause={cause} SIP/2.0")
    assert target_of(raw) == Target("2001", reason, "rfc4458", "2001")


def test_rfc4458_without_cause_is_unknown() -> None:
    raw = capture("rfc4458_target.sip").replace(";cause=486 SIP/2.0", " SIP/2.0")
    assert target_of(raw) == Target("2001", UK, "rfc4458", "2001")


@pytest.mark.parametrize(
    ("target", "ext"),
    [
        ("sip:2001%40pbx", "2001"),
        ("sips:2001%40pbx:5061", "2001"),
        ("tel:%2B15550101", "+15550101"),
        ("2001", "2001"),  # no scheme: some PBXs write just the user
        ("2001%40pbx", "2001"),
    ],
)
def test_rfc4458_target_forms(target: str, ext: str) -> None:
    found = target_of(invite(ruri=f"sip:voicemail@vm;target={target};cause=486"))
    assert found == Target(ext, B, "rfc4458", ext)


@pytest.mark.parametrize("target", ["", "sip:", "sip:pbx.example.com", "http://x"])
def test_rfc4458_target_without_a_user_falls_through(target: str) -> None:
    raw = invite(ALL_SOURCES[1], ruri=f"sip:voicemail@vm;target={target};cause=486")
    assert target_of(raw) == Target("1003", NA, "diversion", "1003")


def test_rfc4458_original_called_falls_back_to_the_bottom_diversion() -> None:
    raw = invite(
        "Diversion: <sip:2001@pbx>;reason=user-busy, <sip:3001@pbx>;reason=unconditional",
        ruri="sip:voicemail@vm;target=sip:2001%40pbx;cause=486",
    )
    assert target_of(raw) == Target("2001", B, "rfc4458", "3001")


# --- History-Info -----------------------------------------------------------------------------

HI_REASON_CAUSES = [
    ("486", B),
    ("600", B),
    ("408", NA),
    ("487", NA),
    ("480", UA),
    ("404", UA),
    ("410", UA),
    ("502", UA),
    ("503", UA),
    ("302", UC),
    ("699", UK),
]


@pytest.mark.parametrize(("cause", "reason"), HI_REASON_CAUSES)
def test_history_info_reason_header_cause(cause: str, reason: Reason) -> None:
    raw = capture("history_info_reason.sip").replace("cause%3D486", f"cause%3D{cause}")
    assert target_of(raw) == Target("2001", reason, "history-info", "3001")


@pytest.mark.parametrize(("cause", "reason"), HI_REASON_CAUSES)
def test_history_info_cause_param(cause: str, reason: Reason) -> None:
    raw = capture("history_info_cause_param.sip").replace("cause=408", f"cause={cause}")
    assert target_of(raw) == Target("2001", reason, "history-info", "3001")


def hi(*entries: str) -> str:
    return invite(*(f"History-Info: {entry}" for entry in entries))


VM = "<sip:voicemail@vm.example.com>"
HISTORY_CASES = [
    (
        "entries out of header order are sorted by index",
        hi(
            f"{VM};index=1.1.1",
            "<sip:3001@pbx>;index=1",
            "<sip:2001@pbx?Reason=SIP%3Bcause%3D486>;index=1.1",
        ),
        ("2001", B, "3001"),
    ),
    (
        "no cause anywhere: the second-to-last entry",
        hi("<sip:3001@pbx>;index=1", "<sip:2001@pbx>;index=1.1", f"{VM};index=1.1.1"),
        ("2001", UK, "3001"),
    ),
    (
        "the voicemail hop was not recorded: the last entry failed itself",
        hi("<sip:3001@pbx>;index=1", "<sip:2001@pbx?Reason=SIP%3Bcause%3D408>;index=1.1"),
        ("2001", NA, "3001"),
    ),
    (
        "RFC 4458 cause on the voicemail entry, no mp: the entry before it",
        hi("<sip:3001@pbx>;index=1", "<sip:2001@pbx>;index=1.1", "<sip:vm@vm;cause=486>;index=1.2"),
        ("2001", B, "3001"),
    ),
    (
        "a cause param on an earlier entry says how it was reached, not why it was left",
        hi(
            "<sip:3001@pbx>;index=1",
            "<sip:2001@pbx;cause=302>;index=1.1",
            f"{VM};index=1.1.1",
        ),
        ("2001", UK, "3001"),
    ),
    (
        "a queue forked to members, then voicemail with mp=1 and a cause: the queue",
        hi(
            "<sip:6000@pbx>;index=1",
            "<sip:1001@10.0.0.31?Reason=SIP%3Bcause%3D408>;index=1.1;rc=1",
            "<sip:1002@10.0.0.32?Reason=SIP%3Bcause%3D486>;index=1.2;rc=1",
            "<sip:voicemail@vm;cause=480>;index=1.3;mp=1",
        ),
        ("6000", UA, "6000"),
    ),
    (
        "mp without a cause: the parent, with the newest Reason in its branch",
        hi(
            "<sip:6000@pbx>;index=1",
            "<sip:1001@10.0.0.31?Reason=SIP%3Bcause%3D408>;index=1.1;rc=1",
            "<sip:1002@10.0.0.32?Reason=SIP%3Bcause%3D486>;index=1.2;rc=1",
            f"{VM};index=1.3;mp=1",
        ),
        ("6000", B, "6000"),
    ),
    (
        "the same fork without mp: the newest entry with a Reason (a member)",
        hi(
            "<sip:6000@pbx>;index=1",
            "<sip:1001@10.0.0.31?Reason=SIP%3Bcause%3D408>;index=1.1",
            "<sip:1002@10.0.0.32?Reason=SIP%3Bcause%3D486>;index=1.2",
            f"{VM};index=1.3",
        ),
        ("1002", B, "6000"),
    ),
    (
        "an mp naming no entry is ignored",
        hi(
            "<sip:3001@pbx>;index=1",
            "<sip:2001@pbx?Reason=SIP%3Bcause%3D486>;index=1.1",
            f"{VM};index=1.1.1;mp=7",
        ),
        ("2001", B, "3001"),
    ),
    (
        "the last entry carries both: its own Reason wins over how it was reached",
        hi("<sip:3001@pbx>;index=1", "<sip:2001@pbx;cause=302?Reason=SIP%3Bcause%3D486>;index=1.1"),
        ("2001", B, "3001"),
    ),
    (
        "an RFC 4458 target on the last entry",
        hi("<sip:3001@pbx>;index=1", "<sip:vm@vm;target=sip:2001%40pbx;cause=408>;index=1.1"),
        ("2001", NA, "3001"),
    ),
    (
        "a garbled entry is skipped",
        hi(
            "<sip:3001@pbx>;index=1",
            "<sip:2001@pbx?Reason=SIP%3Bcause%3D486>;index=1.1",
            "<sip:broken@;index=1.1.1",
            f"{VM};index=1.1.2",
        ),
        ("2001", B, "3001"),
    ),
    (
        "without indexes, header order",
        hi("<sip:3001@pbx>", "<sip:2001@pbx?Reason=SIP%3Bcause%3D486>", VM),
        ("2001", B, "3001"),
    ),
    (
        "a garbled index: header order",
        hi(
            "<sip:3001@pbx>;index=1",
            "<sip:2001@pbx?Reason=SIP%3Bcause%3D408>;index=x",
            f"{VM};index=1.1",
        ),
        ("2001", NA, "3001"),
    ),
    (
        "a Q.850-only Reason is not a SIP cause",
        hi(
            "<sip:3001@pbx>;index=1",
            "<sip:2001@pbx?Reason=Q.850%3Bcause%3D17>;index=1.1",
            f"{VM};index=1.1.1",
        ),
        ("2001", UK, "3001"),
    ),
    (
        "Q.850 and SIP values in one Reason: the SIP cause",
        hi(
            "<sip:3001@pbx>;index=1",
            "<sip:2001@pbx?Reason=Q.850%3Bcause%3D17%2CSIP%3Bcause%3D486>;index=1.1",
            f"{VM};index=1.1.1",
        ),
        ("2001", B, "3001"),
    ),
]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [pytest.param(raw, expected, id=why) for why, raw, expected in HISTORY_CASES],
)
def test_history_info_rules(raw: str, expected: tuple[str, Reason, str]) -> None:
    ext, reason, original = expected
    assert target_of(raw) == Target(ext, reason, "history-info", original)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(hi(f"{VM};index=1"), id="a single entry without a cause"),
        pytest.param(hi("<sip:pbx.example.com>;index=1", f"{VM};index=1.1"), id="no user"),
        pytest.param(hi("<sip:2001@pbx;index=1"), id="only garbage"),
    ],
)
def test_history_info_that_names_nobody_falls_through(raw: str) -> None:
    assert target_of(raw) == Target("voicemail", UK, "request-uri", "voicemail")


# --- Diversion --------------------------------------------------------------------------------

DIVERSION_REASONS = [
    ("user-busy", B),
    ("no-answer", NA),
    ("unconditional", UC),
    ("unavailable", UA),
    ("unknown", UA),
    ("deflection", UA),
    ("follow-me", UA),
    ("time-of-day", UA),
    ("do-not-disturb", UA),
    ("out-of-service", UA),
    ("away", UA),
    ("USER-BUSY", B),
    ('"user-busy"', B),
    ("something-new", UK),
    ("", UK),
]


@pytest.mark.parametrize(("value", "reason"), DIVERSION_REASONS)
def test_diversion_reason_values(value: str, reason: Reason) -> None:
    raw = capture("asterisk_diversion_no_answer.sip").replace("reason=no-answer", f"reason={value}")
    assert target_of(raw) == Target("2001", reason, "diversion", "2001")


def test_diversion_without_a_reason_is_unknown() -> None:
    raw = capture("asterisk_diversion_no_answer.sip").replace(";reason=no-answer", "")
    assert target_of(raw) == Target("2001", UK, "diversion", "2001")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param(
            ("Diversion: sip:2001@pbx;reason=user-busy;counter=1",),
            Target("2001", B, "diversion", "2001"),
            id="bare form: the params are the header's",
        ),
        pytest.param(
            ("Diversion: <tel:+15550101>;reason=no-answer",),
            Target("+15550101", NA, "diversion", "+15550101"),
            id="a tel URI",
        ),
        pytest.param(
            (
                "Diversion: <sip:2001@pbx>;reason=user-busy",
                "Diversion: <sip:3001@pbx>;reason=follow-me, <sip:4001@pbx>;reason=unconditional",
            ),
            Target("2001", B, "diversion", "4001"),
            id="three diversions over two lines: top wins, bottom is original",
        ),
        pytest.param(
            ("Diversion: <sip:2001@pbx", "Diversion: <sip:3001@pbx>;reason=user-busy"),
            Target("3001", B, "diversion", "3001"),
            id="a garbled value is skipped",
        ),
        pytest.param(
            ("Diversion: <sip:pbx.example.com>;reason=user-busy",),
            Target("voicemail", UK, "request-uri", "voicemail"),
            id="a topmost value without a user names nobody",
        ),
    ],
)
def test_diversion_rules(headers: tuple[str, ...], expected: Target) -> None:
    assert target_of(invite(*headers)) == expected


# --- the code tables on their own -------------------------------------------------------------


@pytest.mark.parametrize(
    ("cause", "reason"),
    [(486, B), ("486", B), (" 408 ", NA), (302, UC), (999, UK), ("", UK), ("4x6", UK), (None, UK)],
)
def test_reason_for_cause(cause: str | int | None, reason: Reason) -> None:
    assert reason_for_cause(cause) is reason


@pytest.mark.parametrize(
    ("value", "reason"), [("user-busy", B), (" No-Answer ", NA), (None, UK), ("x", UK)]
)
def test_reason_for_diversion(value: str | None, reason: Reason) -> None:
    assert reason_for_diversion(value) is reason


# --- resolving the inbox ----------------------------------------------------------------------

DIRECTORY = Directory(
    sites={"HQ": Site("HQ", "America/New_York")},
    extensions={
        "2001": Extension("2001", Kind.CALL_QUEUE, "Sales", "HQ"),
        "1002": Extension("1002", Kind.USER, "Bob Jones", "HQ"),
    },
)


@pytest.mark.parametrize(
    ("ext", "found"),
    [
        ("2001", "2001"),
        ("1002", "1002"),
        ("+2001", None),
        ("02001", None),
        ("*97", None),
        ("", None),
    ],
)
def test_resolve_inbox_is_an_exact_match(ext: str, found: str | None) -> None:
    inbox = resolve_inbox(Target(ext, UK, "request-uri", ext), DIRECTORY)
    assert (inbox.ext if inbox else None) == found


def test_captured_overflow_resolves_to_the_queue_inbox() -> None:
    target = target_of(capture("asterisk_diversion_no_answer.sip"))
    assert target is not None
    inbox = resolve_inbox(target, DIRECTORY)
    assert inbox is not None and (inbox.name, inbox.kind) == ("Sales", Kind.CALL_QUEUE)
