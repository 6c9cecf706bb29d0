"""SIP request parsing and mailbox targeting over captured INVITEs."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipvm.domain.sip_message import (
    MalformedSipError,
    p_asserted_identity,
    parse_name_addr,
    parse_request,
    parse_uri,
    split_values,
)
from sipvm.domain.targeting import Reason, mailbox_target, reason_for_cause

CAPTURES = Path(__file__).parent / "invites"


def capture(name: str) -> str:
    return (CAPTURES / name).read_bytes().decode()


@pytest.mark.parametrize(
    ("name", "ext", "reason", "source", "original"),
    [
        ("plain.sip", "2001", Reason.UNKNOWN, "request-uri", "2001"),
        ("asterisk_diversion.sip", "2001", Reason.NO_ANSWER, "diversion", "2001"),
        ("two_diversions.sip", "2001", Reason.BUSY, "diversion", "3001"),
        ("diversion_joined.sip", "4001", Reason.UNAVAILABLE, "diversion", "1102"),
        ("history_info_reason.sip", "1002", Reason.BUSY, "history-info", "2001"),
        ("history_info_4458.sip", "2001", Reason.NO_ANSWER, "history-info", "3001"),
        ("rfc4458_target.sip", "2001", Reason.BUSY, "rfc4458", "2001"),
        ("compact.sip", "1002", Reason.UNKNOWN, "request-uri", "1002"),
        ("tel_to.sip", "+15550101", Reason.UNKNOWN, "to", "+15550101"),
        ("pai.sip", "*97", Reason.UNKNOWN, "request-uri", "*97"),
    ],
)
def test_targets_of_captured_invites(
    name: str, ext: str, reason: Reason, source: str, original: str
) -> None:
    target = mailbox_target(parse_request(capture(name)))
    assert target is not None
    assert (target.ext, target.reason, target.source, target.original_called) == (
        ext, reason, source, original,
    )


def test_rfc4458_beats_history_info_beats_diversion() -> None:
    raw = capture("history_info_4458.sip").replace(
        "Max-Forwards: 70", "Max-Forwards: 70\r\nDiversion: <sip:4001@pbx>;reason=user-busy"
    )
    assert mailbox_target(parse_request(raw)).ext == "2001"  # type: ignore[union-attr]
    raw = capture("asterisk_diversion.sip").replace(
        "INVITE sip:voicemail@127.0.0.1", "INVITE sip:voicemail@127.0.0.1;target=sip:1004%40pbx"
    )
    target = mailbox_target(parse_request(raw))
    assert target is not None and (target.ext, target.source) == ("1004", "rfc4458")


def test_headers_compact_forms_and_values() -> None:
    req = parse_request(capture("compact.sip"))
    assert req.method == "INVITE"
    assert req.from_.display_name == "Pat Caller" and req.from_.uri.user == "5551234"
    assert req.from_.params["tag"] == "a1"
    assert req.to.uri.user == "1002"
    assert req.call_id == "abc123@127.0.0.2"
    assert req.header("content-length") == str(len(req.body.replace("\n", "\r\n")))
    assert req.body.startswith("v=0")


def test_p_asserted_identity_first_value() -> None:
    pai = p_asserted_identity(parse_request(capture("pai.sip")))
    assert pai is not None and (pai.display_name, pai.uri.user) == ("Bob Jones", "1002")
    assert p_asserted_identity(parse_request(capture("plain.sip"))) is None


def test_split_values_keeps_commas_in_quotes_and_brackets() -> None:
    line = '"Smith, Alice" <sip:1001@a;x=1,2>;reason=no-answer, <sip:1002@b>'
    assert split_values(line) == [
        '"Smith, Alice" <sip:1001@a;x=1,2>;reason=no-answer',
        "<sip:1002@b>",
    ]


def test_uris_and_name_addrs() -> None:
    uri = parse_uri("sip:%2A97*2001@[::1]:5070;transport=tcp?Reason=SIP%3Bcause%3D486")
    assert (uri.user, uri.host, uri.port) == ("*97*2001", "::1", 5070)
    assert uri.params == {"transport": "tcp"} and uri.headers["reason"] == "SIP;cause=486"
    bare = parse_name_addr("sip:2001@pbx;reason=user-busy")
    assert bare.uri.params == {} and bare.params == {"reason": "user-busy"}
    quoted = parse_name_addr(r'"A \"B\"" <sips:1@h>;tag=9')
    assert (quoted.display_name, quoted.uri.scheme, quoted.params) == ('A "B"', "sips", {"tag": "9"})
    assert parse_uri("tel:+15550101;phone-context=x").user == "+15550101"


@pytest.mark.parametrize(
    "raw",
    [
        capture("malformed.sip"),
        "",
        "INVITE nonsense SIP/2.0\r\n\r\n",
        "INVITE sip:1@h:99999 SIP/2.0\r\n\r\n",
        "INVITE sip:1@h SIP/2.0\r\nno colon here\r\n\r\n",
        "INVITE sip:1@h SIP/2.0\r\n" + "X: " + "a" * 70000 + "\r\n\r\n",
    ],
)
def test_malformed_requests_raise_clear_errors(raw: str) -> None:
    with pytest.raises(MalformedSipError):
        parse_request(raw)


def test_missing_from_is_malformed() -> None:
    req = parse_request("INVITE sip:1@h SIP/2.0\r\nTo: <sip:1@h>\r\n\r\n")
    with pytest.raises(MalformedSipError, match="no From header"):
        _ = req.from_


@pytest.mark.parametrize(
    ("cause", "reason"),
    [(486, Reason.BUSY), ("408", Reason.NO_ANSWER), (487, Reason.NO_ANSWER),
     (480, Reason.UNAVAILABLE), (404, Reason.UNAVAILABLE), (503, Reason.UNAVAILABLE),
     (302, Reason.UNCONDITIONAL), (999, Reason.UNKNOWN), ("x", Reason.UNKNOWN),
     (None, Reason.UNKNOWN)],
)
def test_cause_codes(cause: object, reason: Reason) -> None:
    assert reason_for_cause(cause) is reason  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "reason"),
    [("user-busy", Reason.BUSY), ("no-answer", Reason.NO_ANSWER),
     ("unconditional", Reason.UNCONDITIONAL), ("deflection", Reason.UNAVAILABLE),
     ("time-of-day", Reason.UNAVAILABLE), ("something-new", Reason.UNKNOWN)],
)
def test_diversion_reasons(value: str, reason: Reason) -> None:
    raw = capture("asterisk_diversion.sip").replace("reason=no-answer", f"reason={value}")
    target = mailbox_target(parse_request(raw))
    assert target is not None and target.reason is reason
