"""An idle media worker costs little: the pjsip thread polls long with no call, and is woken
at once by a job (``sip.jobs``, ``sip.wakeup``).

The engine runs in its own process (``pj_idle_engine.py``: one Endpoint per process); the job
queue's doze/wake hand-shake is tested here directly.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sipvm.sip.jobs import JobQueue
from sipvm.sip.wakeup import NUDGE, UdpWaker, own_address
from tests.e2e.conftest import free_rtp_port, free_sip_port, repo_env

ENGINE = Path(__file__).resolve().parent / "pj_idle_engine.py"


class Wakes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def test_a_job_put_while_dozing_wakes_once() -> None:
    wakes = Wakes()
    jobs = JobQueue(wakes)
    assert jobs.doze()
    jobs.post(lambda: None)
    jobs.post(lambda: None)
    assert wakes.count == 1  # the first job wakes the poll; the second is drained with it
    jobs.awake()
    jobs.drain()


def test_no_wake_outside_a_doze() -> None:
    wakes = Wakes()
    jobs = JobQueue(wakes)
    future = jobs.submit(lambda: 7)
    assert wakes.count == 0
    jobs.drain()
    assert future.result(0) == 7
    assert jobs.doze()
    jobs.awake()
    jobs.post(lambda: None)
    assert wakes.count == 0


def test_a_queued_job_forbids_the_doze() -> None:
    wakes = Wakes()
    jobs = JobQueue(wakes)
    jobs.post(lambda: None)
    assert not jobs.doze()
    jobs.post(lambda: None)
    assert wakes.count == 0  # the thread polls short: nothing to wake
    jobs.drain()
    assert jobs.doze()


def test_jobs_from_many_threads_are_never_left_behind() -> None:
    # Each round: the "pjsip thread" dozes, then waits for a wake or its own short timeout;
    # every job put by the other threads must be drained by a round that was woken.
    woken = threading.Event()
    jobs = JobQueue(woken.set)
    done: list[int] = []
    count = 2000

    def put(base: int) -> None:
        for i in range(count // 4):
            jobs.post(lambda n=base + i: done.append(n))

    putters = [threading.Thread(target=put, args=(k * count,)) for k in range(4)]
    for t in putters:
        t.start()
    stalls = 0
    while len(done) < count:
        if jobs.doze():
            if not woken.wait(0.5):
                stalls += 1  # a job left waiting for the long poll's end
            woken.clear()
            jobs.awake()
        jobs.drain()
    for t in putters:
        t.join()
    assert stalls == 0
    assert sorted(done) == sorted(k * count + i for k in range(4) for i in range(count // 4))


def test_the_waker_reaches_the_bound_address() -> None:
    assert own_address("0.0.0.0") == "127.0.0.1"
    assert own_address("::") == "::1"
    assert own_address("127.0.0.5") == "127.0.0.5"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(2)
        waker = UdpWaker("0.0.0.0", sock.getsockname()[1])
        waker()
        assert sock.recv(64) == NUDGE
        waker.close()
        waker()  # after close: ignored, never raises


@pytest.mark.slow
def test_an_idle_engine_sleeps_and_wakes_for_jobs_and_packets(tmp_path: Path) -> None:
    ports = ["--port", str(free_sip_port()), "--rtp-port", str(free_rtp_port())]
    done = subprocess.run(
        [sys.executable, str(ENGINE), *ports, "--seconds", "3"],
        capture_output=True,
        text=True,
        timeout=60,
        env=repo_env(),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # Polling every 10 ms cost the pjsip thread about 1 % of a core; long polls a hundredth.
    assert result["pjsip_pct"] < 0.3, result
    # Each job comes back far sooner than the idle poll would end by itself (500 ms).
    assert max(result["job_waits_s"]) < 0.1, result
    # So does a SIP request: a packet ends the poll by itself.
    assert max(result["options_s"]) < 0.1, result
    assert result["stop_s"] < 0.4, result
