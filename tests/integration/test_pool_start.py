"""`sipvm serve --workers N` start-up: the supervisor alone migrates, "pool ready" counts the
workers that reported ready, and a worker that fails to start exits at once and is started
again.

The pool tests run idle workers: with ``SIPVM_IDLE_WORKERS`` (``sipvm.pool.IDLE_WORKERS_ENV``,
kept out of the CLI) set to a directory, every worker opens the store as a worker does, reports
ready and waits, without pjsua2 (150 real workers would need minutes of CPU on two cores); a
file ``fail-K`` in that directory makes worker K fail at start. The supervisor and its
Kamailio front are the real ones.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sipvm.errors import StorageError
from sipvm.pool import IDLE_WORKERS_ENV
from sipvm.storage.db import Database, migrations, retry_when_locked
from tests.support.ports import free_ports

HOST = "127.0.0.1"


@dataclass
class Pool:
    """A running supervisor and the lines it and its workers wrote on stderr."""

    proc: subprocess.Popen[str]
    kit: Path
    lines: list[tuple[float, str]] = field(default_factory=list)
    reader: threading.Thread | None = None

    def read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append((time.monotonic(), line.rstrip()))

    def text(self) -> list[str]:
        return [line for _, line in list(self.lines)]

    def wait_for(self, pattern: str, *, count: int = 1, within_s: float) -> list[str]:
        """The lines matching ``pattern`` once there are ``count`` of them."""
        deadline = time.monotonic() + within_s
        while True:
            found = [x for x in self.text() if re.search(pattern, x)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline or self.proc.poll() is not None:
                tail = "\n".join(self.text()[-40:])
                raise AssertionError(f"no {count} lines like {pattern!r} in {within_s} s:\n{tail}")
            time.sleep(0.1)

    def first_seen(self, pattern: str) -> float:
        return next(t for t, x in list(self.lines) if re.search(pattern, x))


StartPool = Callable[..., Pool]


@pytest.fixture
def start_pool(tmp_path: Path) -> Iterator[StartPool]:
    """``start_pool(N, failing=(K, ...))``: a pool of N idle workers, workers K failing."""
    started: list[Pool] = []

    def start(workers: int, *, failing: tuple[int, ...] = ()) -> Pool:
        kit = tmp_path / "kit"
        kit.mkdir(exist_ok=True)
        for k in failing:
            (kit / f"fail-{k}").touch()
        port = free_ports(HOST, workers + 1, tcp=True)  # the front's, then port + K each
        argv = [sys.executable, "-m", "sipvm", "serve", "--data", str(tmp_path / "data")]
        argv += ["--bind", HOST, "--sip-port", str(port), "--workers", str(workers)]
        argv += ["--rtp-port", "40000", "--trusted-peer", HOST]
        env = {**os.environ, IDLE_WORKERS_ENV: str(kit), "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            argv, stderr=subprocess.PIPE, text=True, errors="replace", env=env
        )  # Kamailio may log bytes of a stray packet
        pool = Pool(proc, kit)
        pool.reader = threading.Thread(target=pool.read, daemon=True)
        pool.reader.start()
        started.append(pool)
        return pool

    yield start
    for pool in started:
        if pool.proc.poll() is None:
            pool.proc.send_signal(signal.SIGTERM)
            try:
                pool.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pool.proc.kill()
                pool.proc.wait()
        if pool.reader is not None:
            pool.reader.join(timeout=10)
        assert pool.proc.stderr is not None
        pool.proc.stderr.close()


needs_kamailio = pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio missing")


@needs_kamailio
@pytest.mark.slow
def test_150_workers_start_none_lost_and_only_the_supervisor_migrates(
    start_pool: StartPool,
) -> None:
    began = time.monotonic()
    pool = start_pool(150)
    (ready,) = pool.wait_for(r"sipvm pool ready", within_s=90)
    took = time.monotonic() - began
    assert "150 workers (600 calls)" in ready, ready
    lines = pool.text()
    serving = {m.group(1) for x in lines if (m := re.search(r"\[worker (\d+)\].*sipvm ready", x))}
    assert len(serving) == 150
    assert not [x for x in lines if "exited with" in x or "failed to start" in x]
    applied = [x for x in lines if "applying store migration" in x]
    assert len(applied) == len(migrations())  # each once, all by the supervisor
    assert not [x for x in applied if "[worker" in x]
    print(f"150 idle workers ready in {took:.1f} s ({ready.split('in ')[-1]} by the supervisor)")
    pool.proc.send_signal(signal.SIGTERM)
    assert pool.proc.wait(timeout=60) == 0


@needs_kamailio
@pytest.mark.slow
def test_a_worker_that_fails_to_start_exits_at_once_and_is_started_again(
    start_pool: StartPool,
) -> None:
    pool = start_pool(3, failing=(2,))
    failed = pool.wait_for(r"\[worker 2\].*failed to start: .*injected", within_s=30)
    assert len(failed) == 1  # one line (a traceback in it is escaped onto it)
    exited = pool.wait_for(r"worker 2 exited with 1; starting it again", count=2, within_s=30)
    assert len(exited) >= 2  # it failed again after its restart
    # It exits at once: the supervisor sees it gone within its half-second round.
    latency = pool.first_seen(r"worker 2 exited with 1") - pool.first_seen(r"\[worker 2\].*failed")
    assert latency < 2.0
    (pool.kit / "fail-2").unlink()
    pool.wait_for(r"worker 2 ready again", within_s=30)
    lines = pool.text()
    assert sum(bool(re.search(r"started worker 2 \(pid", x)) for x in lines) >= 3
    assert not [x for x in lines if re.search(r"worker [13] exited", x)]
    pool.wait_for(r"sipvm pool ready: .* 3 workers \(12 calls\)", within_s=10)


def test_a_worker_started_on_a_store_nobody_migrated_exits_with_a_clear_line(
    tmp_path: Path,
) -> None:
    port = free_ports(HOST, 1, tcp=True)
    done = subprocess.run(
        [sys.executable, "-m", "sipvm", "serve", "--data", str(tmp_path / "data"), "--bind", HOST,
         "--sip-port", str(port), "--worker-index", "1", "--front", HOST],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode != 0
    assert "failed to start: there is no store at" in done.stderr
    assert "start the supervisor (it migrates)" in done.stderr
    assert not (tmp_path / "data" / "sipvm.sqlite3").exists()


async def test_a_worker_refuses_an_older_store_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "sipvm.sqlite3"
    db = await Database.open(path)
    await db.close()
    newest = migrations()[-1][0]
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {newest - 1}")
    conn.close()
    older = rf"at migration {newest - 1}, this sipvm needs {newest}: start the supervisor"
    with pytest.raises(StorageError, match=older):
        await Database.open(path, migrate=False)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == newest - 1
    conn.close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {newest}")
    conn.close()
    db = await Database.open(path, migrate=False)  # up to date: a worker opens it
    await db.close()


async def test_a_start_step_is_tried_again_while_the_store_stays_locked() -> None:
    attempts: list[int] = []

    async def step() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise sqlite3.OperationalError("database is locked")
        return "done"

    assert await retry_when_locked(step, what="test", pause_s=0.01) == "done"
    assert len(attempts) == 3

    async def broken() -> None:
        raise sqlite3.OperationalError("no such table: x")

    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        await retry_when_locked(broken, what="test", pause_s=0.01)  # not a lock: at once
