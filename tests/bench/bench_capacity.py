"""Benchmark: capacity of `sipvm serve` (one worker) and of the worker pool behind Kamailio.

Prints a table, asserts nothing about speed:

    python tests/bench/bench_capacity.py [--workers 1,4,16,50] [--call-s 20] [--rate 20]
    python tests/bench/bench_capacity.py --burst [2] [--workers 16] [--call-s 20]

For each pool size W a fresh `sipvm serve --workers W` (W = 1: the single worker, no front)
runs on 127.0.0.1 on the example directory; sipp (127.0.0.2, the trusted "PBX") places deposit
calls into queue 2001 at ``--rate`` calls/s, each ``--call-s`` seconds of a 700 Hz G.711 tone
(``tests/e2e/scenarios/uac_deposit.xml``). The concurrency tried first is the pool's capacity
(4 calls per worker), then lower by quarters until no call fails. Columns:
- ``calls``: the highest concurrency with zero failed calls and every recording stored, with
  the tone found in a sample of 5 (the greeting takes about 12 s, so a 20 s call leaves a
  recording of about 7.5 s);
- ``INVITE->200 p50/p99``: per call, from sipp's ``-trace_rtt``;
- ``CPU-s per call-min``: CPU time of every sipvm and Kamailio process during the run, per
  minute of call;
- ``RSS/call``: the resident memory of those processes at the end, per concurrent call.

``--burst F`` instead places F times the pool's capacity in calls at once (all INVITEs within
a second) and prints the final reply each caller got, counted per code (callers must only
ever see 200, or 503 with Retry-After), how many messages were stored, and how many calls
the front still counted on its workers once every call had ended (``counted``), how often a
worker refused a call and the front tried the next (``failovers``: 486 when a worker's slots
are full) and how often a worker did not answer an INVITE in time (``silent``); then it places
calls at capacity once more (every slot must take a call again) and prints the same.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # run as a script: make the tests package importable

from tests.support.rtp_pcap import write_rtp_pcap  # noqa: E402
from tests.support.tones import read_pcm_mono, seconds_with_tone, write_tone_wav  # noqa: E402

SCENARIO = REPO / "tests" / "e2e" / "scenarios" / "uac_deposit.xml"
EXAMPLE = REPO / "provisioning" / "examples" / "small-office.toml"
CLK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def pool_pids(root: int) -> list[int]:
    """``root`` and all its descendants."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        with contextlib.suppress(OSError):
            kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            todo += [int(k) for k in kids]
    return found


def cpu_s(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return total * PAGE / 2**20


def start(workers: int, work: Path, port: int) -> subprocess.Popen[bytes]:
    log = (work / "serve.log").open("wb")
    argv = [sys.executable, "-m", "sipvm", "serve", "--data", str(work / "data")]
    argv += ["--directory", str(EXAMPLE), "--bind", "127.0.0.1", "--sip-port", str(port)]
    argv += ["--rtp-port", "30000", "--trusted-peer", "127.0.0.2"]
    if workers > 1:
        argv += ["--workers", str(workers)]
    proc = subprocess.Popen(argv, stderr=log, stdout=log)
    deadline = time.monotonic() + 60
    while (work / "serve.log").read_text(errors="replace").count("sipvm ready") < workers:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError((work / "serve.log").read_text(errors="replace")[-2000:])
        time.sleep(0.2)
    time.sleep(1.0)
    return proc


def run_calls(
    work: Path, port: int, calls: int, call_s: float, rate: int, pcap: Path
) -> tuple[int, list[float]]:
    """sipp's failed-call count and the INVITE->200 times (ms)."""
    for old in work.glob("*_rtt.csv"):
        old.unlink()
    argv = ["sipp", f"127.0.0.1:{port}", "-sf", str(SCENARIO), "-s", "voicemail"]
    argv += ["-i", "127.0.0.2", "-mi", "127.0.0.2", "-mp", "24000", "-p", "26999"]
    argv += ["-m", str(calls), "-l", str(calls), "-r", str(rate), "-d", str(int(call_s * 1000))]
    argv += ["-key", "caller", "5550199", "-key", "caller_name", "Bench", "-key", "pcap", str(pcap)]
    argv += ["-key", "extra_header", "Diversion: <sip:2001@pbx.example.com>;reason=no-answer"]
    argv += ["-timeout", f"{int(call_s + calls / rate + 60)}s", "-timeout_error", "-nostdin"]
    argv += ["-trace_rtt", "-rtt_freq", "1", "-trace_stat", "-stf", str(work / "stat.csv")]
    subprocess.run(argv, cwd=work, capture_output=True, check=False)
    stats = (work / "stat.csv").read_text().splitlines()
    header, last = stats[0].split(";"), stats[-1].split(";")
    failed = int(last[header.index("FailedCall(C)")])
    rtts: list[float] = []
    for f in work.glob("*_rtt.csv"):
        for line in f.read_text().splitlines()[1:]:
            parts = line.split(";")
            with contextlib.suppress(ValueError, IndexError):
                rtts.append(float(parts[1]))
    return failed, rtts


REFUSED_BRANCH = """
  <label id="refused"/>
  <send>
    <![CDATA[

      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      From: "[caller_name]" <sip:[caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>

  <label id="done"/>
"""


def burst_scenario(work: Path) -> Path:
    """The deposit scenario, also ending well on a 503 (the call is ACKed and over)."""
    text = SCENARIO.read_text()
    edits = [
        (
            '<recv response="200" rtd="true" rrs="true"/>',
            '<recv response="503" optional="true" next="refused"/>\n'
            '  <recv response="200" rtd="true" rrs="true"/>',
        ),
        ('<recv response="200" crlf="true"/>', '<recv response="200" crlf="true" next="done"/>'),
        ("  <ResponseTimeRepartition", REFUSED_BRANCH + "\n  <ResponseTimeRepartition"),
    ]
    for old, new in edits:
        assert text.count(old) == 1, f"{SCENARIO} changed: {old!r}"
        text = text.replace(old, new)
    path = work / "uac_deposit_or_503.xml"
    path.write_text(text)
    return path


def reply_codes(trace: Path) -> tuple[dict[str, int], int]:
    """Per final reply code, how many callers got it first (``none``: no final reply), and
    how many 503s came without Retry-After. From a sipp ``-trace_msg`` file."""
    first: dict[str, str] = {}
    bare_503 = 0
    text = trace.read_text(errors="replace") if trace.exists() else ""
    for block in re.split(r"^-{20,}[^\n]*\n", text, flags=re.MULTILINE):
        kind, _, body = block.partition("\n")
        if "received" not in kind:
            continue
        head = body.replace("\r\n", "\n").lstrip("\n").split("\n\n", 1)[0]
        status = re.match(r"SIP/2\.0 (\d{3})", head)
        call = re.search(r"^Call-ID:\s*(\S+)", head, re.MULTILINE | re.IGNORECASE)
        cseq = re.search(r"^CSeq:\s*\d+ INVITE", head, re.MULTILINE | re.IGNORECASE)
        if not (status and call and cseq) or int(status.group(1)) < 200:
            continue
        if call.group(1) not in first:
            first[call.group(1)] = status.group(1)
            if status.group(1) == "503" and not re.search(r"^Retry-After:", head, re.M):
                bare_503 += 1
    counts: dict[str, int] = {}
    for code in first.values():
        counts[code] = counts.get(code, 0) + 1
    return dict(sorted(counts.items())), bare_503


def front_load(work: Path) -> int | None:
    """The calls the front counts on its workers (sum of DLGLOAD), None without a front."""
    ctl = work / "data" / "front" / "kamailio.ctl"
    if not ctl.exists():
        return None
    out = subprocess.run(
        ["kamcmd", "-s", f"unix:{ctl}", "dispatcher.list"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    ).stdout
    return sum(int(n) for n in re.findall(r"DLGLOAD: (\d+)", out))


def run_burst(
    work: Path, port: int, calls: int, call_s: float, pcap: Path, scenario: Path, name: str
) -> tuple[dict[str, int], int]:
    """``calls`` deposit calls at once (200 or 503 expected); each caller's final reply code."""
    trace = work / f"{name}.msgs"
    argv = ["sipp", f"127.0.0.1:{port}", "-sf", str(scenario), "-s", "voicemail"]
    argv += ["-i", "127.0.0.2", "-mi", "127.0.0.2", "-mp", "24000", "-p", "26999"]
    argv += ["-m", str(calls), "-l", str(calls), "-r", str(calls), "-d", str(int(call_s * 1000))]
    argv += ["-key", "caller", "5550199", "-key", "caller_name", "Bench", "-key", "pcap", str(pcap)]
    argv += ["-key", "extra_header", "Diversion: <sip:2001@pbx.example.com>;reason=no-answer"]
    argv += ["-timeout", f"{int(call_s + 90)}s", "-timeout_error", "-nostdin"]
    argv += ["-trace_msg", "-message_file", str(trace)]
    subprocess.run(argv, cwd=work, capture_output=True, check=False)
    return reply_codes(trace)


def stored_count(work: Path) -> int:
    db = sqlite3.connect(work / "data" / "sipvm.sqlite3")
    try:
        return int(db.execute("SELECT count(*) FROM messages").fetchone()[0])
    finally:
        db.close()


def measure_burst(workers: int, call_s: float, factor: float) -> list[str]:
    """A burst of ``factor`` x capacity calls, then calls at capacity; a line for each."""
    capacity = 4 * workers
    lines = []
    with tempfile.TemporaryDirectory(prefix="sipvm-burst-") as tmp:
        work = Path(tmp)
        pcap = write_rtp_pcap(work / "t.pcap", wav=write_tone_wav(work / "t.wav", 700, call_s)).path
        scenario = burst_scenario(work)
        port = 26060
        proc = start(workers, work, port)
        try:
            before, seen = 0, (0, 0)
            rounds = [("burst", int(capacity * factor)), ("after", capacity)]
            for name, calls in rounds:
                codes, bare = run_burst(work, port, calls, call_s, pcap, scenario, name)
                time.sleep(1.0)  # the last recordings are committed after their BYE
                messages = stored_count(work)
                load = front_load(work)
                log = (work / "serve.log").read_text(errors="replace")
                # The front's log: a worker refused a call and the next was tried; a worker
                # did not answer an INVITE within worker_timeout_ms.
                now = (log.count("from a worker, trying"), log.count("silent on call"))
                lines.append(
                    f"{workers:>7} {name:>6} {calls:>6}  "
                    f"{' '.join(f'{c}:{n}' for c, n in codes.items()):<20} "
                    f"{bare:>11} {messages - before:>7} {'-' if load is None else load:>7} "
                    f"{now[0] - seen[0]:>9} {now[1] - seen[1]:>6}"
                )
                before, seen = messages, now
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(180)
    return lines


def stored(work: Path, count: int) -> bool:
    """Every call left a message, and the tone is in a sample of them."""
    db = sqlite3.connect(work / "data" / "sipvm.sqlite3")
    rows = db.execute("SELECT audio, duration_ms FROM messages").fetchall()
    db.close()
    if len(rows) != count:
        return False
    for audio, ms in random.Random(1).sample(rows, min(5, len(rows))):
        samples = read_pcm_mono(work / "data" / audio)
        if abs(seconds_with_tone(samples, 8000, 700, window_s=0.1) - ms / 1000) > 0.8:
            return False
    return True


def measure(workers: int, call_s: float, rate: int) -> str:
    calls = 4 * workers
    while calls > 0:
        with tempfile.TemporaryDirectory(prefix="sipvm-cap-") as tmp:
            work = Path(tmp)
            pcap = write_rtp_pcap(
                work / "t.pcap", wav=write_tone_wav(work / "t.wav", 700, call_s)
            ).path
            port = 26060
            proc = start(workers, work, port)
            try:
                pids = pool_pids(proc.pid)
                cpu0 = cpu_s(pids)
                failed, rtts = run_calls(work, port, calls, call_s, rate, pcap)
                pids = pool_pids(proc.pid)
                cpu = cpu_s(pids) - cpu0
                rss = rss_mb(pids)
                time.sleep(1.0)
                intact = failed == 0 and stored(work, calls)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(120)
        if intact:
            p50 = statistics.median(rtts) if rtts else float("nan")
            p99 = sorted(rtts)[int(0.99 * (len(rtts) - 1))] if rtts else float("nan")
            per_min = cpu / (calls * call_s / 60)
            return (
                f"{workers:>7} {calls:>6} {p50:>9.1f} {p99:>9.1f} {per_min:>17.2f} "
                f"{rss / calls:>8.1f} MB"
            )
        calls = calls * 3 // 4
    return f"{workers:>7}      0 (every level failed)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,4,16,50")
    parser.add_argument("--call-s", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=20)
    parser.add_argument(
        "--burst",
        type=float,
        nargs="?",
        const=2.0,
        default=None,
        metavar="FACTOR",
        help="place FACTOR x capacity calls at once (default 2) and count the reply codes",
    )
    args = parser.parse_args()
    if args.burst is not None:
        print(
            f"bursts of {args.burst:g} x capacity deposit calls of {args.call_s:.0f} s, all "
            "INVITEs within a second, through the front (1 worker: direct), 127.0.0.1"
        )
        print(
            "workers  round  calls  callers' final reply  503 w/o R-A  stored  counted  "
            "failovers  silent"
        )
        for workers in (int(w) for w in args.workers.split(",")):
            for line in measure_burst(workers, args.call_s, args.burst):
                print(line, flush=True)
        return 0
    print(
        f"deposit calls of {args.call_s:.0f} s (G.711 tone) at {args.rate} calls/s through "
        "the front (1 worker: direct), 127.0.0.1"
    )
    print("workers  calls  INVITE->200 p50/p99 ms  CPU-s per call-min  RSS/call")
    for workers in (int(w) for w in args.workers.split(",")):
        print(measure(workers, args.call_s, args.rate), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
