"""Which dialog a 200 OK we sent belongs to (``sip.dialogs.dialog_of_answer``): the engine
looks the dialog up by these ids to end a call whose caller never sends the ACK."""

from __future__ import annotations

import pytest

from sipvm.sip.dialogs import DialogId, dialog_of_answer

# As pjsip printed it (measured), body cut.
ANSWER = (
    "SIP/2.0 200 OK\r\n"
    "Via: SIP/2.0/UDP 127.0.0.2:35302;received=127.0.0.2;branch=z9hG4bK3f40349\r\n"
    "Call-ID: e67a9584e4994725a5629ccc15d9e566\r\n"
    "From: <sip:5551@127.0.0.2>;tag=g1\r\n"
    "To: <sip:2001@127.0.0.1>;tag=59YmEHImSBNErrJdgCFRdg0V5tyxcny7\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:x@127.0.0.1:25060>\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length:   10\r\n"
    "\r\n"
    "To: <sip:evil@x>;tag=fromthebody\r\n"
)


def test_tags_come_from_to_and_from() -> None:
    assert dialog_of_answer("e67a", ANSWER) == DialogId(
        "e67a", local_tag="59YmEHImSBNErrJdgCFRdg0V5tyxcny7", remote_tag="g1"
    )


@pytest.mark.parametrize(
    ("change", "by"),
    [
        (";tag=g1\r\n", "\r\n"),  # the caller sent no From tag
        (";tag=59YmEHImSBNErrJdgCFRdg0V5tyxcny7", ""),  # no To tag yet (a 100 Trying)
        ("From: <sip:5551@127.0.0.2>", 'From: "unclosed <sip:5551@127.0.0.2>'),
    ],
    ids=["no-from-tag", "no-to-tag", "unparsable-from"],
)
def test_missing_or_broken_ids_give_none(change: str, by: str) -> None:
    assert dialog_of_answer("e67a", ANSWER.replace(change, by, 1)) is None


def test_a_quoted_tag_lookalike_in_the_display_name_is_not_the_tag() -> None:
    answer = ANSWER.replace("From: <sip:5551", 'From: "a;tag=fake" <sip:5551')
    found = dialog_of_answer("e67a", answer)
    assert found is not None and found.remote_tag == "g1"


def test_no_call_id_gives_none() -> None:
    assert dialog_of_answer("", ANSWER) is None
