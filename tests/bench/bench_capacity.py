"""Benchmark: capacity of `sipvm serve` (one worker) and of the worker pool behind Kamailio.

Prints a table, asserts nothing about speed:

    python tests/bench/bench_capacity.py [--workers 1,4,16,50] [--call-s 20] [--rate 20]
    python tests/bench/bench_capacity.py --burst [2] [--workers 16] [--call-s 20]
    python tests/bench/bench_capacity.py --calls 100,300,500 [--call-s 30] [--rate 20]

For each pool size W a fresh `sipvm serve --workers W` (W = 1: the single worker, no front)
runs on 127.0.0.1 on the example directory; sipp (127.0.0.2, the trusted "PBX") places deposit
calls into queue 2001 at ``--rate`` calls/s, each ``--call-s`` seconds of a 700 Hz G.711 tone
(``tests/e2e/scenarios/uac_deposit.xml``). The concurrency tried first is the pool's capacity
(4 calls per worker), then lower by quarters until no call fails. Columns:
- ``calls``: the highest concurrency with zero failed calls and every recording stored, with
  the tone found in a sample of 5 (the greeting and beep take about 3.5 s, so a 20 s call
  leaves a recording of about 16.5 s);
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

``--calls N,...`` instead runs each concurrency N once, on a fresh pool of ceil(N / 4) workers
(ports away from the test suite's, so it can run beside it), and prints a row per run:
- ``start-up s``: from spawning `sipvm serve --workers W` to the supervisor's
  ``sipvm pool ready`` line;
- ``idle %/worker``: then, with no call, ``--idle-s`` (20) seconds of utime + stime of each
  worker's process tree (``/proc``), summed, per worker, in % of one core;
- a probe call alone (12 s of tone) gives the greeting and beep's length: the call's length
  minus its recording's; a recording of a ``--call-s`` call is expected that much shorter;
- N calls at ``--rate``; ``failed``: sipp's failed calls; ``recording min/med/exp``: the
  stored recordings' shortest and median length and the expected one; ``short``: recordings
  over 1 s shorter than expected; ``tone``: recordings of a sample of 10 whose 700 Hz tone
  lasts as long as the recording (within 0.8 s);
- ``INVITE->200 p50/p99``: sipp's ``-trace_rtt`` (whole milliseconds);
- ``CPU % (pool)``: the machine's busy CPU (``/proc/stat``, 100 = every core) during the
  steady part, from the last call placed (N / rate s) to the first call's end (at least the
  last 4 s before it), and the pool's own share of the machine;
- ``RSS/call``: the pool's peak RSS in that part (every process, shared pages counted in each)
  per call; a line below gives the idle RSS and what each call added, how many recordings
  were stored and what the server logged under load (telling words, WARNING/ERROR lines).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
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


#: Loopback ports, away from the test suite's port blocks (20000 up to 32000) so a bench can run
#: beside it: the pool's SIP port (workers take port + K), the first worker's RTP range (each
#: worker takes 100; 125 workers end at 53500, inside the ephemeral range but bound at start),
#: and the callers' SIP and RTP ports on 127.0.0.2.
SIP_PORT, RTP_PORT, CALLER_SIP_PORT, CALLER_RTP_PORT = 18060, 41000, 18999, 18900
POOL_READY = re.compile(r"sipvm pool ready: .*?(\d+) workers \((\d+) calls\) in ([0-9.]+) s")


def start(workers: int, work: Path, port: int) -> tuple[subprocess.Popen[bytes], float]:
    """A fresh `sipvm serve` (``--workers W`` when W > 1), and its start-up time: from the
    spawn to the supervisor's ``sipvm pool ready`` line (one worker: its ``sipvm ready``)."""
    argv = [sys.executable, "-m", "sipvm", "serve", "--data", str(work / "data")]
    argv += ["--directory", str(EXAMPLE), "--bind", "127.0.0.1", "--sip-port", str(port)]
    argv += ["--rtp-port", str(RTP_PORT), "--trusted-peer", "127.0.0.2"]
    if workers > 1:
        argv += ["--workers", str(workers)]
    spawned = time.monotonic()
    with (work / "serve.log").open("wb") as log:  # the server writes its own copy
        proc = subprocess.Popen(argv, stderr=log, stdout=log, start_new_session=True)
    deadline = spawned + 60 + 2 * workers
    while True:
        text = (work / "serve.log").read_text(errors="replace")
        ready = POOL_READY.search(text) if workers > 1 else "sipvm ready" in text
        if ready:
            break
        if time.monotonic() > deadline or proc.poll() is not None:
            stop(proc)
            raise RuntimeError(text[-2000:])
        time.sleep(0.1)
    startup = time.monotonic() - spawned
    if isinstance(ready, re.Match) and int(ready.group(1)) != workers:
        print(f"  pool ready with {ready.group(1)} of {workers} workers", flush=True)
    time.sleep(1.0)
    return proc, startup


def stop(proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    """SIGTERM (the pool drains), then SIGKILL to the whole process group if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def run_calls(
    work: Path, port: int, calls: int, call_s: float, rate: int, pcap: Path
) -> tuple[int, list[float]]:
    """sipp's failed-call count and the INVITE->200 times (ms)."""
    for old in work.glob("*_rtt.csv"):
        old.unlink()
    argv = ["sipp", f"127.0.0.1:{port}", "-sf", str(SCENARIO), "-s", "voicemail"]
    argv += ["-i", "127.0.0.2", "-mi", "127.0.0.2", "-mp", str(CALLER_RTP_PORT)]
    argv += ["-p", str(CALLER_SIP_PORT)]
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
    argv += ["-i", "127.0.0.2", "-mi", "127.0.0.2", "-mp", str(CALLER_RTP_PORT)]
    argv += ["-p", str(CALLER_SIP_PORT)]
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
        port = SIP_PORT
        proc, _ = start(workers, work, port)
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
            stop(proc)
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
            port = SIP_PORT
            proc, _ = start(workers, work, port)
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
                stop(proc)
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


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of every CPU since boot, from ``/proc/stat``."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    return total - fields[3] - fields[4], total


def worker_trees(supervisor: int) -> list[list[int]]:
    """Each worker's process tree (the supervisor's children but Kamailio); one worker: the
    server itself."""
    kids: list[int] = []
    with contextlib.suppress(OSError):
        kids = [
            int(k)
            for k in Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
        ]
    workers = [k for k in kids if comm(k) != "kamailio"]
    return [pool_pids(w) for w in workers] or [pool_pids(supervisor)]


def comm(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().strip()
    return "?"


def idle_cpu_pct(supervisor: int, seconds: float) -> float:
    """% of one core per worker with no call: utime + stime of each worker's process tree
    over ``seconds``, summed, divided by the workers."""
    trees = worker_trees(supervisor)
    pids = [p for tree in trees for p in tree]
    before, t0 = cpu_s(pids), time.monotonic()
    time.sleep(seconds)
    used, wall = cpu_s(pids) - before, time.monotonic() - t0
    return 100.0 * used / wall / len(trees)


def recordings(work: Path, after_id: int = 0) -> list[tuple[int, str, int]]:
    """(id, audio path, duration ms) of the messages stored with an id above ``after_id``."""
    db = sqlite3.connect(work / "data" / "sipvm.sqlite3")
    try:
        rows = db.execute(
            "SELECT id, audio, duration_ms FROM messages WHERE id > ? ORDER BY id", (after_id,)
        ).fetchall()
    finally:
        db.close()
    return [(int(i), str(a), int(ms)) for i, a, ms in rows]


def probe_lead(work: Path, port: int, probe_s: float) -> tuple[float, int]:
    """One call alone: the seconds its recording is shorter than the call (the greeting and
    the beep, as this server plays them), and the probe message's id."""
    pcap = write_rtp_pcap(
        work / "probe.pcap", wav=write_tone_wav(work / "probe.wav", 700, probe_s)
    ).path
    failed, _ = run_calls(work, port, 1, probe_s, 1, pcap)
    time.sleep(1.5)  # committed after the BYE
    rows = recordings(work)
    if failed or not rows:
        raise RuntimeError(f"the probe call left no message (failed {failed})")
    return probe_s - rows[-1][2] / 1000, rows[-1][0]


class Sampler:
    """Every second: the machine's CPU ticks, the pool's CPU seconds and its RSS (MB)."""

    def __init__(self, supervisor: int) -> None:
        self.supervisor = supervisor
        self.samples: list[tuple[float, int, int, float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            pids = pool_pids(self.supervisor)
            busy, total = machine_ticks()
            self.samples.append((time.monotonic(), busy, total, cpu_s(pids), rss_mb(pids)))
            if self._stop.wait(1.0):
                return

    def window(self, t0: float, t1: float) -> tuple[float, float, float, float]:
        """Between monotonic times ``t0`` and ``t1`` (the nearest samples): the machine's busy
        CPU %, the pool's share of the machine %, the pool's peak RSS (MB), the seconds."""
        inside = [s for s in self.samples if t0 <= s[0] <= t1]
        if len(inside) < 2:
            inside = sorted(self.samples, key=lambda s: abs(s[0] - (t0 + t1) / 2))[:2]
            inside.sort()
        a, b = inside[0], inside[-1]
        wall = max(b[0] - a[0], 1e-6)
        machine = 100.0 * (b[1] - a[1]) / max(b[2] - a[2], 1)
        pool = 100.0 * (b[3] - a[3]) / wall / (os.cpu_count() or 1)
        return machine, pool, max(s[4] for s in inside), wall


LOG_SIGNS = (
    ("PJ_ETOOMANY", "PJ_ETOOMANY"),
    ("503", " 503"),
    ("486", " 486"),
    ("cannot answer", "cannot answer"),
    ("hanging up", "hanging up"),
    ("not ready", "not ready"),
    ("restart", "started again"),
)


def log_summary(work: Path) -> list[str]:
    """What the server logged that matters under load: counts of telling words, the WARNING
    and ERROR lines (numbers blanked, most frequent first)."""
    text = (work / "serve.log").read_text(errors="replace")
    counts = [f"{name} {text.count(sign)}" for name, sign in LOG_SIGNS if sign in text]
    kinds: dict[str, int] = {}
    for line in text.splitlines():
        found = re.search(r" (WARNING|ERROR|CRITICAL) (.*)", line)
        if found:
            key = re.sub(r"\d+(\.\d+)?", "N", f"{found.group(1)} {found.group(2)}")[:140]
            kinds[key] = kinds.get(key, 0) + 1
    lines = [f"    server log: {', '.join(counts) or 'nothing telling'}"]
    for key, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:6]:
        lines.append(f"    {n:>5} x {key}")
    return lines


CALLS_HEADER = (
    "  calls workers failed  recording min/med/exp s  short  tone   INVITE->200 p50/p99 ms  "
    "CPU % (pool)  idle %/worker  RSS/call  start-up s"
)


def measure_calls(
    calls: int,
    call_s: float,
    rate: int,
    *,
    idle_s: float = 20.0,
    probe_s: float = 12.0,
    keep: Path | None = None,
) -> list[str]:
    """One run at ``calls`` concurrent deposit calls on a fresh pool of ceil(calls / 4)
    workers: the table row, then what the server logged."""
    workers = math.ceil(calls / 4)
    with tempfile.TemporaryDirectory(prefix="sipvm-calls-") as tmp:
        work = Path(tmp)
        pcap = write_rtp_pcap(work / "t.pcap", wav=write_tone_wav(work / "t.wav", 700, call_s)).path
        port = SIP_PORT
        proc, startup = start(workers, work, port)
        try:
            time.sleep(3.0)  # the start-up's last work (spoken names, the sound device's close)
            idle = idle_cpu_pct(proc.pid, idle_s)
            idle_rss = rss_mb(pool_pids(proc.pid))
            lead, probe_id = probe_lead(work, port, probe_s)
            with Sampler(proc.pid) as sampler:
                began = time.monotonic()
                failed, rtts = run_calls(work, port, calls, call_s, rate, pcap)
            time.sleep(2.0)  # the last recordings are committed after their BYE
            rows = recordings(work, probe_id)
            logged = log_summary(work)  # before the stop: its drain logs 503s of its own
        finally:
            stop(proc)
            if keep is not None:  # the server's log and sipp's statistics, for a closer look
                keep.mkdir(parents=True, exist_ok=True)
                for name in ("serve.log", "stat.csv"):
                    with contextlib.suppress(OSError):
                        shutil.copy(work / name, keep / f"{calls}-{name}")
        # Steady: every call placed (calls / rate s) until the first ones end (call_s); at
        # least the last 4 s before the first BYE when the ramp takes nearly the whole call.
        t1 = began + call_s + 0.5
        t0 = min(began + calls / rate + 1.0, t1 - 4.0)
        machine, pool, rss, _ = sampler.window(t0, t1)
        expected = call_s - lead
        seconds = sorted(ms / 1000 for _, _, ms in rows)
        short = sum(s < expected - 1.0 for s in seconds)
        tone_ok, sample = 0, random.Random(1).sample(rows, min(10, len(rows)))
        for _, audio, ms in sample:
            tone = seconds_with_tone(read_pcm_mono(work / "data" / audio), 8000, 700, window_s=0.1)
            tone_ok += abs(tone - ms / 1000) <= 0.8
    missing = calls - len(rows)
    p50 = statistics.median(rtts) if rtts else float("nan")
    p99 = sorted(rtts)[int(0.99 * (len(rtts) - 1))] if rtts else float("nan")
    rec = (
        f"{seconds[0]:.1f} / {statistics.median(seconds):.1f} / {expected:.1f}"
        if seconds
        else f"- / - / {expected:.1f}"
    )
    row = (
        f"{calls:>7} {workers:>7} {failed:>6}  {rec:>23}  {short:>5}  "
        f"{tone_ok:>2}/{len(sample):<2}  "
        f"{p50:>10.0f} / {p99:<10.0f}  {machine:>5.0f} ({pool:>3.0f})  {idle:>13.2f}  "
        f"{rss / calls:>5.1f} MB  {startup:>10.1f}"
    )
    note = (
        f"    greeting + beep {lead:.1f} s (probe call of {probe_s:.0f} s); {len(rows)} stored, "
        f"{missing} missing; pool RSS {idle_rss:.0f} MB idle, {rss:.0f} MB at peak "
        f"({(rss - idle_rss) / calls:.1f} MB per call added)"
    )
    return [row, note, *logged]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,4,16,50")
    parser.add_argument(
        "--calls",
        default=None,
        metavar="N,N,...",
        help="concurrent calls per run (ceil(N / 4) workers each), e.g. 100,300,500",
    )
    parser.add_argument("--call-s", type=float, default=None, help="20 s; 30 s with --calls")
    parser.add_argument("--rate", type=int, default=20)
    parser.add_argument("--idle-s", type=float, default=20.0, help="idle CPU window (--calls)")
    parser.add_argument(
        "--keep", type=Path, default=None, metavar="DIR", help="copy each run's logs here (--calls)"
    )
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
    if args.calls is not None:
        call_s = args.call_s or 30.0
        print(
            f"deposit calls of {call_s:.0f} s (G.711 tone) at {args.rate} calls/s, callers "
            "127.0.0.2, through the front (1 worker: direct) on 127.0.0.1; a fresh pool per run",
            flush=True,
        )
        print(CALLS_HEADER, flush=True)
        for calls in (int(c) for c in args.calls.split(",")):
            for line in measure_calls(calls, call_s, args.rate, idle_s=args.idle_s, keep=args.keep):
                print(line, flush=True)
        return 0
    call_s = args.call_s or 20.0
    if args.burst is not None:
        print(
            f"bursts of {args.burst:g} x capacity deposit calls of {call_s:.0f} s, all "
            "INVITEs within a second, through the front (1 worker: direct), 127.0.0.1"
        )
        print(
            "workers  round  calls  callers' final reply  503 w/o R-A  stored  counted  "
            "failovers  silent"
        )
        for workers in (int(w) for w in args.workers.split(",")):
            for line in measure_burst(workers, call_s, args.burst):
                print(line, flush=True)
        return 0
    print(
        f"deposit calls of {call_s:.0f} s (G.711 tone) at {args.rate} calls/s through "
        "the front (1 worker: direct), 127.0.0.1"
    )
    print("workers  calls  INVITE->200 p50/p99 ms  CPU-s per call-min  RSS/call")
    for workers in (int(w) for w in args.workers.split(",")):
        print(measure(workers, call_s, args.rate), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
