"""The real test peers checked against each other, all on 127.0.0.1.

- the pjsua2 scripted peer (``python -m tests.support.testpeer``) calls sipp's built-in UAS;
- the sipp scenario ``scenarios/uac_deposit.xml`` plays a pcap from
  ``tests.support.rtp_pcap`` into the scripted peer in answer mode;
- two scripted peers talk to each other (media both ways, RFC 4733 and SIP INFO DTMF), a
  sipp UAS sends REFER, a raw NOTIFY brings MWI, and the timeout and rejections are reported.

Every process gets bounded timeouts and is killed on teardown.
"""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.rtp_pcap import write_rtp_pcap
from tests.support.tones import read_pcm_mono, seconds_with_tone, write_tone_wav

from .conftest import Kit, free_port

HOST = "127.0.0.1"
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
RATE = 8000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (Debian sip-tester) missing"),
]


def tone_seconds(path: str | Path, freq_hz: float) -> float:
    return seconds_with_tone(read_pcm_mono(Path(path)), RATE, freq_hz, window_s=0.1)


def answerer(port: int, **script: Any) -> dict[str, Any]:
    return {"mode": "answer", "port": port, "timeout": 20, **script}


# -- (a) the scripted peer calls sipp's built-in UAS -------------------------------------------


def test_testpeer_calls_sipp_uas_and_hangs_up(kit: Kit) -> None:
    write_tone_wav(kit.tmp / "tone.wav", 1000, 0.5)
    port = free_port()
    uas = kit.sipp("uas", ["-sn", "uas", "-p", str(port)])
    time.sleep(0.3)  # sipp has no ready line; it binds at once
    diversion = "<sip:2001@127.0.0.2>;reason=no-answer"
    caller = kit.peer(
        "caller",
        {
            "to": f"sip:2001@{HOST}:{port}",
            "from_user": "1001",
            "from_name": "Alice",
            "headers": [["Diversion", diversion], ["P-Asserted-Identity", "<sip:1001@pbx>"]],
            "steps": [{"wait": 0.2}, {"play": "tone.wav"}, {"hangup": True}],
            "timeout": 15,
        },
    )
    report = caller.report()
    call = report["calls"][0]
    assert call["status"] == 200
    assert call["response"].startswith("SIP/2.0 200 OK")
    assert call["disconnect"]["by"] == "local"
    assert [s["result"] for s in call["steps"]] == ["ok", "ok", "ok"]
    assert call["steps"][1]["ended"] - call["steps"][1]["started"] == pytest.approx(0.5, abs=0.2)
    assert not report["timed_out"]
    assert uas.finish() == 0  # one successful call
    invite = (kit.tmp / "uas.msgs").read_text()
    assert f"Diversion: {diversion}" in invite
    assert 'From: "Alice" <sip:1001@' in invite


# -- (b) the sipp deposit scenario plays a pcap into the scripted peer -------------------------


def test_uac_deposit_pcap_reaches_testpeer_as_tone_and_dtmf(kit: Kit) -> None:
    pcap = write_rtp_pcap(kit.tmp / "deposit.pcap", tone_hz=1000, seconds=2.0, dtmf="12#")
    port = free_port()
    phone = kit.peer("phone", answerer(port, record="heard.wav"))
    diversion = f"Diversion: <sip:2001@{HOST}>;reason=no-answer"
    sipp = kit.sipp(
        "deposit",
        [
            f"{HOST}:{port}",
            "-sf", str(SCENARIOS / "uac_deposit.xml"),
            "-s", "2001",
            "-p", str(free_port()),
            "-d", str(round(pcap.duration_s * 1000) + 500),
            "-key", "caller", "1001",
            "-key", "caller_name", "Alice",
            "-key", "pcap", str(pcap.path),
            "-key", "extra_header", diversion,
        ],
    )  # fmt: skip
    assert sipp.finish() == 0, (kit.tmp / "deposit.out").read_text()[-2000:]
    call = phone.report()["calls"][0]
    assert call["request"].startswith("INVITE sip:2001@")
    assert diversion in call["request"]
    assert call["status"] == 200
    assert call["disconnect"]["by"] == "remote"
    assert [(d["digit"], d["method"]) for d in call["dtmf"]] == [
        ("1", "rfc4733"),
        ("2", "rfc4733"),
        ("#", "rfc4733"),
    ]
    assert 1.6 <= tone_seconds(call["record"], 1000) <= 2.6
    assert call["audio"] and call["audio"][0][1] - call["audio"][0][0] >= 1.5


# -- the scripted peer against itself -----------------------------------------------------------


def test_two_testpeers_exchange_media_and_dtmf(kit: Kit) -> None:
    write_tone_wav(kit.tmp / "greeting.wav", 700, 1.0)
    write_tone_wav(kit.tmp / "message.wav", 1000, 1.0)
    port = free_port()
    phone = kit.peer(
        "phone",
        answerer(port, record="phone.wav", steps=[{"wait": 0.3}, {"play": "greeting.wav"}]),
    )
    caller = kit.peer(
        "caller",
        {
            "to": f"sip:2001@{HOST}:{port}",
            "record": "caller.wav",
            "timeout": 20,
            "steps": [
                {"wait_for_audio": 5},
                {"wait_for_silence": 5, "min_silence": 0.3},
                {"play": "message.wav"},
                {"dtmf": "45", "method": "rfc4733"},
                {"dtmf": "6*", "method": "info"},
                {"wait": 0.3},
                {"hangup": True},
            ],
        },
    )
    called = caller.report()["calls"][0]
    answered = phone.report()["calls"][0]
    assert [s["result"] for s in called["steps"]] == ["ok"] * 7
    # The greeting started 0.3 s after the answer and lasted 1 s.
    first = called["audio"][0]
    assert first[0] == pytest.approx(0.3, abs=0.2)
    assert first[1] - first[0] == pytest.approx(1.0, abs=0.3)
    assert called["steps"][0]["ended"] == pytest.approx(first[0], abs=0.05)
    assert [(d["digit"], d["method"]) for d in answered["dtmf"]] == [
        ("4", "rfc4733"),
        ("5", "rfc4733"),
        ("6", "info"),
        ("*", "info"),
    ]
    assert answered["disconnect"]["by"] == "remote"
    assert 0.8 <= tone_seconds(called["record"], 700) <= 1.4
    assert 0.8 <= tone_seconds(answered["record"], 1000) <= 1.4
    assert tone_seconds(called["record"], 1000) == 0  # nothing of our own voice came back


def test_rejection_and_ringing_are_reported(kit: Kit) -> None:
    port = free_port()
    phone = kit.peer("phone", answerer(port, answer_code=486, ring_seconds=0.3))
    caller = kit.peer("caller", {"to": f"sip:2001@{HOST}:{port}", "timeout": 10})
    call = caller.report()["calls"][0]
    assert (call["status"], call["reason"], call["provisional"]) == (486, "Busy Here", [180])
    assert call["response"].startswith("SIP/2.0 486 Busy Here")
    assert call["answered_at"] is None and call["steps"] == []
    assert phone.report()["calls"][0]["disconnect"]["by"] == "local"


def test_overall_timeout_cancels_and_reports(kit: Kit) -> None:
    port = free_port()
    phone = kit.peer("phone", answerer(port, ring_seconds=30))
    caller = kit.peer("caller", {"to": f"sip:2001@{HOST}:{port}", "timeout": 1.5})
    report = caller.report()
    call = report["calls"][0]
    assert report["timed_out"]
    assert 1.4 <= report["elapsed"] <= 4
    assert call["status"] == 487
    assert call["disconnect"] == {
        "status": 487,
        "reason": "Request Terminated",
        "by": "local",
        "timeout": True,
    }
    assert phone.report()["calls"][0]["disconnect"]["by"] == "remote"


# -- REFER and MWI --------------------------------------------------------------------------------

REFER_UAS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="uas_refer">
  <recv request="INVITE" crlf="true" rrs="true">
    <action><ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller"/></action>
  </recv>
  <send><![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=- 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8
      a=rtpmap:8 PCMA/8000

  ]]></send>
  <recv request="ACK"/>
  <pause milliseconds="300"/>
  <send retrans="500"><![CDATA[

      REFER [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:vm@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
      To: [$caller]
      Call-ID: [call_id]
      CSeq: 1 REFER
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Refer-To: <sip:3000@127.0.0.1:9>
      Max-Forwards: 70
      Content-Length: 0

  ]]></send>
  <recv response="202"/>
  <pause milliseconds="1000"/>
  <send retrans="500"><![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:vm@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
      To: [$caller]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

  ]]></send>
  <recv response="200"/>
</scenario>
"""


def test_refer_is_accepted_and_reported_but_not_followed(kit: Kit) -> None:
    scenario = kit.tmp / "uas_refer.xml"
    scenario.write_text(REFER_UAS)
    port = free_port()
    # -aa answers the transfer NOTIFYs (100 Trying, then 500: the call was not placed).
    uas = kit.sipp("refer", ["-sf", str(scenario), "-aa", "-p", str(port)])
    time.sleep(0.3)
    caller = kit.peer("caller", {"to": f"sip:vm@{HOST}:{port}", "timeout": 15})
    report = caller.report()
    assert uas.finish() == 0
    [call] = report["calls"]  # no second call: the REFER was not followed
    assert [(r["target"], r["followed"]) for r in call["refer"]] == [
        ("<sip:3000@127.0.0.1:9>", False)
    ]
    assert call["refer"][0]["at"] == pytest.approx(0.3, abs=0.2)
    assert call["disconnect"]["by"] == "remote"
    messages = (kit.tmp / "refer.msgs").read_text()
    assert "SIP/2.0 202 Accepted" in messages
    assert "SIP/2.0 500" in messages  # the sipfrag of the final NOTIFY


def _send_notify(port: int, body: str) -> str:
    """Send an out-of-dialog MWI NOTIFY over UDP; return the response's status line."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        s.settimeout(5)
        me = f"{HOST}:{s.getsockname()[1]}"
        message = (
            f"NOTIFY sip:2001@{HOST}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {me};branch=z9hG4bK-mwi-{time.monotonic_ns()}\r\n"
            f"From: <sip:vm@{me}>;tag=mwi1\r\n"
            f"To: <sip:2001@{HOST}:{port}>\r\n"
            "Call-ID: mwi-1@127.0.0.1\r\n"
            "CSeq: 1 NOTIFY\r\n"
            f"Contact: <sip:vm@{me}>\r\n"
            "Max-Forwards: 70\r\n"
            "Event: message-summary\r\n"
            "Subscription-State: terminated;reason=noresource\r\n"
            "Content-Type: application/simple-message-summary\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}"
        )
        s.sendto(message.encode(), (HOST, port))
        return s.recv(4096).decode().split("\r\n", 1)[0]


def test_answer_mode_reports_mwi_notify(kit: Kit) -> None:
    port = free_port()
    phone = kit.peer("phone", answerer(port, calls=0, mwi=1, timeout=10))
    body = f"Messages-Waiting: yes\r\nMessage-Account: sip:2001@{HOST}\r\nVoice-Message: 2/1\r\n"
    assert _send_notify(port, body) == "SIP/2.0 200 OK"
    report = phone.report()
    assert [m["body"] for m in report["mwi"]] == [body]
    assert report["mwi"][0]["request_line"] == f"NOTIFY sip:2001@{HOST}:{port} SIP/2.0"
    assert report["calls"] == []


# -- the command line ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ({"to": "2001"}, "needs 'to'"),
        ({"to": "sip:a@127.0.0.1", "stepz": []}, "unknown keys"),
        ({"to": "sip:a@127.0.0.1", "steps": [{"dtmf": "1X"}]}, "dtmf needs keys"),
        ({"to": "sip:a@127.0.0.1", "steps": [{"play": "missing.wav"}]}, "cannot play"),
    ],
)
def test_invalid_script_exits_2_with_a_message(
    kit: Kit, script: dict[str, Any], message: str
) -> None:
    proc = kit.peer("bad", script)
    assert proc.finish() == 2
    assert message in proc.stderr()
    assert proc.out.read_text() == ""
