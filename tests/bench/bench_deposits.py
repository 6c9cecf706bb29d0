"""Benchmark: deposits on one media worker, driven by sipp with 15 s of G.711 audio per call.

Prints figures, asserts nothing about speed:

    python tests/bench/bench_deposits.py [--calls 16] [--concurrency 4]

- concurrent deposits sustained: sipp keeps ``--concurrency`` calls up until ``--calls`` are
  done; failed calls and stored messages are counted, and one message is checked by content
  (the caller's tone is in it).
- INVITE → 200 OK: sipp's response time per call (p50/p99).
- CPU-seconds per call-minute: the server process's user+system CPU over the run, divided by
  the minutes of calls it carried.
- RSS per call: (peak RSS during the run - idle RSS) / concurrency.
Then one more burst at concurrency + 1 shows what happens past capacity (the build's limit).
All traffic is on 127.0.0.0/8.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.e2e.conftest import (  # noqa: E402
    PBX_HOST,
    SCENARIOS,
    Server,
    free_rtp_port,
    free_sip_port,
    start_server,
)
from tests.support.rtp_pcap import write_rtp_pcap  # noqa: E402
from tests.support.tones import read_pcm_mono, seconds_with_tone, tone_samples  # noqa: E402

# Silence while the greeting and beep play (about 3.5 s), then the tone. The lead must end
# well within the 10-s silence end after the beep: a recording of silence alone is not kept.
LEAD_S = 7.0
TONE_S = 8.0
TONE_HZ = 1000.0


def caller_pcap(tmp: Path) -> Path:
    audio = tmp / "caller.wav"
    pcm = [0] * int(LEAD_S * 8000) + list(tone_samples(TONE_HZ, TONE_S))
    with wave.open(str(audio), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(int(x).to_bytes(2, "little", signed=True) for x in pcm))
    return write_rtp_pcap(tmp / "caller.pcap", wav=audio).path


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_sipp(
    server: Server, tmp: Path, pcap: Path, calls: int, concurrency: int, tag: str
) -> tuple[int, int, list[float], float]:
    """(successful, failed, INVITE→200 ms per call, wall seconds)."""
    duration_ms = int((LEAD_S + TONE_S) * 1000) + 500
    args = [
        "sipp",
        server.uri_host,
        "-sf",
        str(SCENARIOS / "uac_deposit.xml"),
        "-s",
        "voicemail",
        "-i",
        PBX_HOST,
        "-mi",
        PBX_HOST,
        "-p",
        str(free_sip_port(PBX_HOST)),
        "-mp",
        str(free_rtp_port(PBX_HOST)),
        "-m",
        str(calls),
        "-l",
        str(concurrency),
        "-r",
        "2",
        "-d",
        str(duration_ms),
        "-key",
        "caller",
        "5550100",
        "-key",
        "caller_name",
        "Bench",
        "-key",
        "pcap",
        str(pcap),
        "-key",
        "extra_header",
        "Diversion: <sip:2001@pbx.example.com>;reason=no-answer",
        "-trace_rtt",
        "-rtt_freq",
        "1",
        "-trace_stat",
        "-fd",
        "1",
        "-timeout",
        "300s",
        "-nostdin",
    ]
    started = time.monotonic()
    subprocess.run(args, cwd=tmp, capture_output=True, timeout=600, check=False)
    wall = time.monotonic() - started
    rtts = []
    for f in tmp.glob("uac_deposit_*_rtt.csv"):
        with f.open() as fh:
            for row in csv.reader(fh, delimiter=";"):
                if len(row) >= 2 and row[1].replace(".", "", 1).isdigit():
                    rtts.append(float(row[1]))
        f.rename(tmp / f"{tag}-{f.name}")
    ok = failed = 0
    for f in tmp.glob("uac_deposit_*_.csv"):
        rows = list(csv.reader(f.open(), delimiter=";"))
        head, last = rows[0], rows[-1]
        ok = int(last[head.index("SuccessfulCall(C)")])
        failed = int(last[head.index("FailedCall(C)")])
        f.rename(tmp / f"{tag}-{f.name}")
    return ok, failed, rtts, wall


SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
)


def invite_to_200_ms(server: Server, rounds: int) -> list[float]:
    """INVITE → 200 OK in milliseconds, one call at a time, from a raw UDP client.

    sipp reports response times in whole milliseconds (they read 0 here), so this client
    times them with perf_counter; each call is ACKed and ended with BYE at once.
    """
    import socket
    import uuid

    out = []
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((PBX_HOST, 0))
    sock.settimeout(5)
    port = sock.getsockname()[1]
    target = ("127.0.0.1", server.sip_port)
    for n in range(rounds):
        call_id = uuid.uuid4().hex
        sdp = SDP.format(port=free_rtp_port(PBX_HOST))
        common = (
            f"Via: SIP/2.0/UDP {PBX_HOST}:{port};branch=z9hG4bK{call_id[:10]}{{b}};rport\r\n"
            f"From: <sip:5550100@{PBX_HOST}>;tag=t{n}\r\nTo: <sip:2001@127.0.0.1>{{tt}}\r\n"
            f"Call-ID: {call_id}\r\nMax-Forwards: 70\r\n"
            f"Contact: <sip:5550100@{PBX_HOST}:{port}>\r\n"
        )
        invite = (
            f"INVITE sip:2001@127.0.0.1:{server.sip_port} SIP/2.0\r\n"
            + common.format(b="i", tt="")
            + "CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n"
            + f"Content-Length: {len(sdp)}\r\n\r\n{sdp}"
        )
        t0 = time.perf_counter()
        sock.sendto(invite.encode(), target)
        to_tag = ""
        while True:
            reply = sock.recv(65535).decode(errors="replace")
            if reply.startswith("SIP/2.0 200") and "CSeq: 1 INVITE" in reply:
                out.append((time.perf_counter() - t0) * 1000)
                to_line = next(x for x in reply.split("\r\n") if x.lower().startswith("to:"))
                to_tag = ";" + to_line.split(";", 1)[1] if ";" in to_line else ""
                break
        for method, cseq in (("ACK", 1), ("BYE", 2)):
            msg = (
                f"{method} sip:2001@127.0.0.1:{server.sip_port} SIP/2.0\r\n"
                + common.format(b=method[0], tt=to_tag)
                + f"CSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
            )
            sock.sendto(msg.encode(), target)
        time.sleep(0.15)
        try:
            while True:
                sock.settimeout(0.05)
                sock.recv(65535)
        except OSError:
            sock.settimeout(5)
    sock.close()
    return out


def messages(server: Server) -> list[dict[str, object]]:
    out = server.cli("messages", "--inbox", "2001", "--json").stdout
    return list(json.loads(out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        pcap = caller_pcap(tmp)
        (tmp / "srv").mkdir()
        server = start_server(tmp / "srv")
        pid = server.proc.pid
        try:
            time.sleep(1.0)
            idle_rss = rss_mb(pid)
            peak = [idle_rss]
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    peak[0] = max(peak[0], rss_mb(pid))
                    time.sleep(0.2)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            cpu0 = cpu_seconds(pid)
            ok, failed, rtts, wall = run_sipp(
                server, tmp, pcap, args.calls, args.concurrency, "sustained"
            )
            cpu = cpu_seconds(pid) - cpu0
            stop.set()
            sampler.join()
            time.sleep(1.0)
            stored = messages(server)
            call_minutes = ok * (LEAD_S + TONE_S + 0.5) / 60
            sample_ok = "n/a"
            if stored:
                out = tmp / "sample.wav"
                server.cli(
                    "message",
                    "export",
                    str(stored[0]["id"]),
                    "--as",
                    "1002",
                    "--format",
                    "wav",
                    "-o",
                    str(out),
                )
                tone = seconds_with_tone(read_pcm_mono(out), 8000, TONE_HZ, window_s=0.1)
                sample_ok = f"{tone:.1f} s of the caller's {TONE_S:.0f} s tone found"
            timed = invite_to_200_ms(server, 100)
            q = statistics.quantiles(timed, n=100, method="inclusive")
            print(
                f"one worker, {args.calls} calls of {LEAD_S + TONE_S:.0f} s G.711 audio, "
                f"{args.concurrency} at a time, {wall:.0f} s"
            )
            print(f"  calls ok / failed                 {ok} / {failed}")
            print(f"  messages stored                   {len(stored)}  ({sample_ok})")
            print(
                f"  INVITE -> 200 OK                  p50 {q[49]:.2f} ms   p99 {q[98]:.2f} ms"
                f"   ({len(timed)} calls one at a time; sipp saw <= {max(rtts, default=0):.0f}"
                " ms under load)"
            )
            print(
                f"  CPU-seconds per call-minute       {cpu / call_minutes:.3f}"
                f"  ({cpu:.1f} s CPU over {call_minutes:.1f} call-minutes)"
            )
            print(
                f"  RSS idle / peak / per call        {idle_rss:.0f} MB / {peak[0]:.0f} MB / "
                f"{(peak[0] - idle_rss) / args.concurrency:.1f} MB"
            )
            before = len(stored)
            over = args.concurrency + 1
            ok2, failed2, _, _ = run_sipp(server, tmp, pcap, over, over, "over")
            time.sleep(1.0)
            print(
                f"  burst of {over} at once           {ok2} ok, {failed2} refused (486 from the"
                f" 4-call build), {len(messages(server)) - before} stored; worker alive: "
                f"{server.proc.poll() is None}"
            )
        finally:
            code = server.stop(60)
            print(f"  worker exit code on SIGTERM       {code}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
