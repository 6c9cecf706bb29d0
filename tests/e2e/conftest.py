"""End-to-end fixtures: a real `sipvm serve` process on loopback ports, real peers against it.

Every address here is on 127.0.0.0/8. The server listens on 127.0.0.1; the "PBX" peers that
it trusts send from 127.0.0.2, so anything from 127.0.0.1 (the scanners) is untrusted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "provisioning" / "examples" / "small-office.toml"
SERVER_HOST = "127.0.0.1"
PBX_HOST = "127.0.0.2"


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_DGRAM) -> int:
    """A port nobody uses right now on ``host`` (UDP and TCP both free)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind((host, port))
            return port
    raise RuntimeError("no free port")


@dataclass
class Server:
    """A running `sipvm serve`."""

    data: Path
    sip_port: int
    proc: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def uri_host(self) -> str:
        return f"{SERVER_HOST}:{self.sip_port}"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a `sipvm` command against this server's data directory."""
        return subprocess.run(
            [sys.executable, "-m", "sipvm", *args, "--data", str(self.data)],
            capture_output=True, text=True, timeout=60, check=False,
        )

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        if self.reader is not None:
            self.reader.join(5)
        return code

    def read_log(self) -> None:
        """Keep draining the server's stderr (a full pipe would block its logging)."""
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line.rstrip())
        self.proc.stderr.close()

    def wait_log(self, text: str, timeout: float = 10) -> str:
        """The first log line containing ``text``, waiting for it to appear."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.log):
                if text in line:
                    return line
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not logged:\n" + "\n".join(self.log[-30:]))


def start_server(tmp: Path, *, trusted: str = PBX_HOST, extra: tuple[str, ...] = (),
                 settings: str = "") -> Server:
    data = tmp / "data"
    sip_port = free_port()
    config = tmp / "sipvm.toml"
    config.write_text(
        f"[sip]\nrtp_port = {free_port() // 2 * 2}\ndrain_s = 5\n{settings}\n", encoding="utf-8"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "sipvm", "serve", "--config", str(config), "--data", str(data),
         "--directory", str(EXAMPLE), "--bind", SERVER_HOST, "--sip-port", str(sip_port),
         "--trusted-peer", trusted, *extra],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    server = Server(data, sip_port, proc)
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        server.log.append(line.rstrip())
        if "sipvm ready" in line:
            server.reader = threading.Thread(target=server.read_log, daemon=True)
            server.reader.start()
            return server
    proc.kill()
    proc.communicate()
    raise AssertionError("sipvm serve did not start:\n" + "\n".join(server.log))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """`sipvm serve` on the example directory, trusting the PBX address 127.0.0.2."""
    running = start_server(tmp_path)
    try:
        yield running
    finally:
        code = running.stop()
        assert code == 0, "\n".join(running.log[-30:])
