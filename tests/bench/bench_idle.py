"""Benchmark: what idle media workers cost, in CPU, with no call at all.

Prints figures, asserts nothing:

    python tests/bench/bench_idle.py [--workers 10] [--seconds 30] [--settle 5]

A fresh `sipvm serve --workers N` (N = 1: the single server, no front) runs on 127.0.0.1 on
the example directory. Once every worker has said it is ready, and ``--settle`` seconds more
(start-up work, the sound device's idle close), the CPU time (utime + stime from
``/proc/<pid>/stat``) of every process is read twice, ``--seconds`` apart. Printed: % of one
core per idle worker (mean and max over the workers), the supervisor's and the Kamailio
front's, and each thread of one worker (``/proc/<pid>/task``), to show where it goes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "provisioning" / "examples" / "small-office.toml"
CLK = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """``pid``'s direct children."""
    with contextlib.suppress(OSError):
        return [int(k) for k in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


def descendants(root: int) -> list[int]:
    """Every process under ``root`` (not ``root`` itself)."""
    found, todo = [], children(root)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children(pid)
    return found


def ticks(stat: Path) -> int:
    """utime + stime of a ``/proc/.../stat`` file, in clock ticks (0 once it is gone)."""
    with contextlib.suppress(OSError):
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    return 0


def comm(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().strip()
    return "?"


def threads(pid: int) -> dict[int, str]:
    """``pid``'s threads: tid → name."""
    out = {}
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                out[int(task.name)] = (task / "comm").read_text().strip()
    return out


def start(workers: int, work: Path, port: int) -> subprocess.Popen[bytes]:
    log = (work / "serve.log").open("wb")
    argv = [sys.executable, "-m", "sipvm", "serve", "--data", str(work / "data")]
    argv += ["--directory", str(EXAMPLE), "--bind", "127.0.0.1", "--sip-port", str(port)]
    argv += ["--rtp-port", "31000", "--trusted-peer", "127.0.0.2"]
    if workers > 1:
        argv += ["--workers", str(workers)]
    proc = subprocess.Popen(argv, stderr=log, stdout=log)
    deadline = time.monotonic() + 120
    while (work / "serve.log").read_text(errors="replace").count("sipvm ready") < workers:
        if time.monotonic() > deadline or proc.poll() is not None:
            stop(proc)
            raise RuntimeError((work / "serve.log").read_text(errors="replace")[-2000:])
        time.sleep(0.2)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def measure(workers: int, seconds: float, settle: float, port: int) -> None:
    with tempfile.TemporaryDirectory(prefix="sipvm-idle-") as tmp:
        work = Path(tmp)
        proc = start(workers, work, port)
        try:
            time.sleep(settle)
            procs = [proc.pid, *descendants(proc.pid)]
            if workers == 1:
                worker_pids = [proc.pid]
            else:
                worker_pids = [p for p in children(proc.pid) if comm(p) != "kamailio"]
            front = [p for p in procs if comm(p) == "kamailio"]
            one = worker_pids[0]
            tasks = threads(one)
            t0 = time.monotonic()
            before = {p: ticks(Path(f"/proc/{p}/stat")) for p in procs}
            tbefore = {t: ticks(Path(f"/proc/{one}/task/{t}/stat")) for t in tasks}
            time.sleep(seconds)
            after = {p: ticks(Path(f"/proc/{p}/stat")) for p in procs}
            tafter = {t: ticks(Path(f"/proc/{one}/task/{t}/stat")) for t in tasks}
            wall = time.monotonic() - t0
        finally:
            stop(proc)

    def pct(delta: int) -> float:
        return 100.0 * delta / CLK / wall

    per_worker = [pct(after[p] - before[p]) for p in worker_pids]
    print(f"{workers} idle workers over {wall:.0f} s ({CLK} ticks/s):")
    print(
        f"  per worker: mean {statistics.mean(per_worker):.3f} %, "
        f"max {max(per_worker):.3f} % of a core; all workers {sum(per_worker):.2f} %"
    )
    if workers > 1:
        sup = pct(after[proc.pid] - before[proc.pid])
        kam = sum(pct(after[p] - before[p]) for p in front)
        print(f"  supervisor {sup:.3f} %, Kamailio front ({len(front)} processes) {kam:.3f} %")
    print(f"  threads of worker {one}:")
    for tid, name in sorted(tasks.items()):
        print(f"    {tid:>8} {name:<16} {pct(tafter[tid] - tbefore[tid]):.3f} %")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--port", type=int, default=27060)
    args = parser.parse_args()
    measure(args.workers, args.seconds, args.settle, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
