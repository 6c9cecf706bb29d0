"""Benchmark: capacity of `sipvm serve` (one worker) and of the worker pool behind Kamailio.

Prints a table, asserts nothing about speed:

    python tests/bench/bench_capacity.py [--workers 1,4,16,50] [--call-s 20] [--rate 20]

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
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sipvm.testing.rtp_pcap import write_rtp_pcap
from sipvm.testing.tones import read_pcm_mono, seconds_with_tone, write_tone_wav

REPO = Path(__file__).resolve().parents[2]
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
    args = parser.parse_args()
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
