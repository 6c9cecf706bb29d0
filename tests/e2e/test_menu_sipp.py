"""The desk-phone menu driven by sipp with its RFC 4733 digit pcaps (no pjsua2 caller).

A second, independent client: sipp sends the digits as the pcaps hold them (payload type 101,
one SSRC), so the server's DTMF path meets packets it did not produce itself. The server runs
the example directory: Carol (1003, PIN 315972) calls the pilot from her desk phone, opens the
lobby phone's inbox (1900, where she may play and delete), skips to the message with #, hears
it and deletes it.

The shipped pcaps are copied with their RTP sequence numbers respaced (see ``uac_menu.xml``):
as shipped, a digit played after one whose file has slightly higher sequence numbers (7 after
9 in Carol's PIN) is dropped by pjmedia as reordered.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

from .conftest import (
    PBX_HOST,
    SCENARIOS,
    Kit,
    Proc,
    Server,
    free_rtp_port,
    free_sip_port,
    seed_message,
    stored_message,
)

DTMF_DIR = Path("/usr/share/sip-tester")
"""Where Debian's sip-tester installs ``dtmf_2833_*.pcap``."""
DIGIT_FILES = (*"0123456789", "star", "pound")
TELEPHONE_EVENT_PT = 101
"""The payload type of the digit pcaps; ``uac_menu.xml`` offers telephone-event with it."""
SEQ_SPACING = 1000
"""Respaced files start this many sequence numbers apart (pjmedia tolerates 100 back)."""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (Debian sip-tester) missing"),
    pytest.mark.skipif(
        not (DTMF_DIR / "dtmf_2833_pound.pcap").exists(), reason="sipp's DTMF pcaps missing"
    ),
]

CAROL = "1003"
LOBBY = "1900"


def rtp_offsets(pcap: bytes) -> list[int]:
    """Where the RTP header of each packet starts, in a little-endian Ethernet/IPv4/UDP pcap."""
    magic, link = struct.unpack_from("<I", pcap)[0], struct.unpack_from("<I", pcap, 20)[0]
    assert (magic, link) == (0xA1B2C3D4, 1), "a classic pcap of Ethernet frames"
    offsets, at = [], 24
    while at < len(pcap):
        captured = struct.unpack_from("<I", pcap, at + 8)[0]
        ip = at + 16 + 14
        offsets.append(ip + (pcap[ip] & 0x0F) * 4 + 8)
        at += 16 + captured
    return offsets


def write_respaced_digits(folder: Path) -> None:
    """Copy the digit pcaps into ``folder``, file i's sequence numbers starting at
    ``SEQ_SPACING * (i + 1)`` (in order, as shipped); nothing else changes."""
    for index, name in enumerate(DIGIT_FILES):
        pcap = bytearray((DTMF_DIR / f"dtmf_2833_{name}.pcap").read_bytes())
        offsets = rtp_offsets(bytes(pcap))
        first = struct.unpack_from(">H", pcap, offsets[0] + 2)[0]
        for rtp in offsets:
            seq = struct.unpack_from(">H", pcap, rtp + 2)[0]
            struct.pack_into(">H", pcap, rtp + 2, SEQ_SPACING * (index + 1) + seq - first)
        (folder / f"dtmf_2833_{name}.pcap").write_bytes(pcap)


def sipp_menu_call(kit: Kit, server: Server, caller: str, *, timeout_s: int = 90) -> Proc:
    """sipp from the PBX address running ``uac_menu.xml`` in ``kit.tmp`` (the digit pcaps must
    be there). ``Kit.sipp`` ends a call after 30 s, too soon for this one: same flags, longer."""
    args = [
        *("sipp", server.uri_host, "-sf", str(SCENARIOS / "uac_menu.xml"), "-s", "voicemail"),
        *("-i", PBX_HOST, "-p", str(free_sip_port(PBX_HOST))),
        *("-mi", PBX_HOST, "-mp", str(free_rtp_port(PBX_HOST)), "-m", "1"),
        *("-key", "caller", caller),
        *("-timeout", f"{timeout_s}s", "-timeout_error", "-nostdin"),
        *("-trace_msg", "-message_file", str(kit.tmp / "sipp.msgs")),
        *("-trace_err", "-error_file", str(kit.tmp / "sipp.errors")),
    ]
    return kit.spawn("sipp", args)


def test_the_digit_pcaps_carry_the_telephone_event_type_the_scenario_offers() -> None:
    offer = (SCENARIOS / "uac_menu.xml").read_text(encoding="latin-1")
    assert f"a=rtpmap:{TELEPHONE_EVENT_PT} telephone-event/8000" in offer
    for name in DIGIT_FILES:
        pcap = (DTMF_DIR / f"dtmf_2833_{name}.pcap").read_bytes()
        assert {pcap[rtp + 1] & 0x7F for rtp in rtp_offsets(pcap)} == {TELEPHONE_EVENT_PT}


def test_respacing_changes_only_sequence_numbers(tmp_path: Path) -> None:
    write_respaced_digits(tmp_path)
    for index, name in enumerate(DIGIT_FILES):
        shipped = (DTMF_DIR / f"dtmf_2833_{name}.pcap").read_bytes()
        copy = (tmp_path / f"dtmf_2833_{name}.pcap").read_bytes()
        offsets = rtp_offsets(shipped)
        seqs = [struct.unpack_from(">H", copy, rtp + 2)[0] for rtp in offsets]
        assert seqs[0] == SEQ_SPACING * (index + 1)
        assert sorted(seqs) == seqs
        masked = bytearray(copy)
        for rtp in offsets:
            masked[rtp + 2 : rtp + 4] = shipped[rtp + 2 : rtp + 4]
        assert bytes(masked) == shipped


def test_desk_phone_deletes_a_shared_message_through_the_menu(server: Server, kit: Kit) -> None:
    message_id = seed_message(server, kit.tmp, LOBBY)
    write_respaced_digits(kit.tmp)
    sipp = sipp_menu_call(kit, server, CAROL)
    code = sipp.finish(120)
    assert code == 0, f"sipp exited {code}:\n{sipp.stderr()}\n" + "\n".join(server.log[-30:])
    # pjsua answered with the offered telephone-event type
    trace = (kit.tmp / "sipp.msgs").read_text(errors="replace")
    answer = trace[trace.index("SIP/2.0 200 OK") :]
    assert f"a=rtpmap:{TELEPHONE_EVENT_PT} telephone-event/8000" in answer

    listed = server.cli("messages", "--inbox", LOBBY, "--as", LOBBY, "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []  # deleted for every member, the lobby phone too
    message, trail = stored_message(server, message_id)
    assert (message.played_by, message.deleted_by) == (CAROL, CAROL)
    assert [f"{e.actor} {e.action}" for e in trail] == [
        "caller deposit",
        f"{CAROL} play",
        f"{CAROL} delete",
    ]
