"""`sipvm serve` as an admin starts it: embedded defaults, recovery at start, clean SIGTERM."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sipvm.config import Settings, SipSettings
from sipvm.server import Role, open_app
from sipvm.storage.audio_files import AudioFiles

from .test_recovery import write_crashed_wav


def start(data: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sipvm", "serve", "--data", str(data), *args],
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_ready(proc: subprocess.Popen[str]) -> list[str]:
    assert proc.stderr is not None
    lines = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if "sipvm ready" in line:
            return lines
    raise AssertionError("server did not get ready:\n" + "".join(lines))


def stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=15)  # drains and closes the pipe
    return proc.returncode


def test_serve_on_embedded_defaults_and_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = start(data)
    try:
        lines = wait_ready(proc)
    finally:
        code = stop(proc)
    assert code == 0
    assert any("embedded example small-office.toml" in x for x in lines)
    assert any("11 extensions" in x for x in lines)
    listing = subprocess.run(
        [
            sys.executable,
            "-m",
            "sipvm",
            "inboxes",
            "--member",
            "1002",
            "--json",
            "--data",
            str(data),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert [i["ext"] for i in json.loads(listing.stdout)] == ["1002", "2001", "3001"]


def test_serve_adopts_a_recording_left_by_a_crash(
    tmp_path: Path, example_directory_file: Path
) -> None:
    data = tmp_path / "data"
    files = AudioFiles(data)
    files.write_sidecar(
        "0123abcd",
        {"inbox": "4001", "received_at": "2026-11-02T10:00:00+00:00", "caller": "5550142"},
    )
    write_crashed_wav(files.spool_wav("0123abcd"), 4.0)
    proc = start(data, "--directory", str(example_directory_file))
    try:
        lines = wait_ready(proc)
    finally:
        assert stop(proc) == 0
    assert any("recovered an interrupted recording" in x and "4001" in x for x in lines), lines
    listing = subprocess.run(
        [
            sys.executable,
            "-m",
            "sipvm",
            "messages",
            "--inbox",
            "4001",
            "--json",
            "--data",
            str(data),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    (message,) = json.loads(listing.stdout)
    assert message["caller"] == "5550142" and message["duration_s"] == 4.0


def test_serve_refuses_a_bad_directory_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[user]]\next = 1001\n")
    proc = start(tmp_path / "data", "--directory", str(bad))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "'ext' must be a string" in err and str(bad) in err


async def test_the_settings_reach_the_services_as_they_are_built(tmp_path: Path) -> None:
    settings = Settings(data=tmp_path / "data", sip=SipSettings(peer_login_failures=7))
    await (await open_app(settings)).close()  # the supervisor prepares the store for workers
    app = await open_app(settings, Role(worker=2, front="127.0.0.1"))
    try:
        assert app.logins.policy.per_peer == 7
        assert app.files.spool == settings.data / "spool" / "w2"  # the worker's own spool
    finally:
        await app.close()


def test_readme_commands_are_what_ci_runs() -> None:
    repo = Path(__file__).resolve().parents[2]
    readme = (repo / "README.md").read_text().splitlines()
    commands = [line for line in readme[:20] if line.startswith("apt-get update")]
    assert len(commands) == 2, "the README opens with two commands"
    assert commands[0].endswith("sipvm serve --http-port 8080")
    ci = (repo / ".ci" / "run").read_text().splitlines()
    assert commands[1] in ci, "the README's test command is what .ci/run runs"


# -- a port another process holds ------------------------------------------------------------


def _held(kind: int, port: int = 0, host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, kind)
    sock.bind((host, port))
    if kind == socket.SOCK_STREAM:
        sock.listen()
    return sock


def _free_range(size: int) -> tuple[int, list[socket.socket]]:
    """``size`` consecutive UDP ports from an even one, all bound here (held)."""
    rng = random.Random()
    for _ in range(50):
        first = rng.randrange(20000, 30000, 2)
        held: list[socket.socket] = []
        try:
            for port in range(first, first + size):
                held.append(_held(socket.SOCK_DGRAM, port))
        except OSError:
            for sock in held:
                sock.close()
            continue
        return first, held
    raise RuntimeError("no free port range")


def _refused(tmp_path: Path, *args: str) -> str:
    """Run `sipvm serve` expecting it to refuse to start; returns its stderr."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "sipvm", "serve", "--data", str(tmp_path / "data"), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        check=False,
    )
    took = time.monotonic() - started
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert took < 10, took
    assert "Traceback" not in proc.stderr and "Assertion" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("sipvm: ")]
    assert len(errors) == 1, proc.stderr
    assert not list(tmp_path.glob("sipvm-pad-*")), "a failed start left its scratch files"
    return errors[0]


@pytest.mark.parametrize("kind", [socket.SOCK_DGRAM, socket.SOCK_STREAM], ids=["udp", "tcp"])
def test_sip_port_in_use_is_one_line_and_exit_1(tmp_path: Path, kind: int) -> None:
    with _held(kind) as held:
        port = held.getsockname()[1]
        line = _refused(tmp_path, "--bind", "127.0.0.1", "--sip-port", str(port))
    assert line == f"sipvm: SIP port {port} on 127.0.0.1 is in use; choose another --sip-port"


def test_rtp_range_all_in_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    first, held = _free_range(100)
    try:
        with _held(socket.SOCK_DGRAM) as sip:
            sip_port = sip.getsockname()[1]
        line = _refused(
            tmp_path,
            *("--bind", "127.0.0.1", "--sip-port", str(sip_port), "--rtp-port", str(first)),
        )
    finally:
        for sock in held:
            sock.close()
    assert line == (
        f"sipvm: RTP ports {first}-{first + 99} on 127.0.0.1 are all in use; choose another "
        "[sip] rtp_port (or --rtp-port)"
    )


def test_sip_failing_inside_pjsua2_is_cleaned_up_in_its_thread(tmp_path: Path) -> None:
    # An address that is not on this machine (TEST-NET-1; nothing is sent): pjsua2's own bind
    # fails, which used to abort the process (pjlib called from the asyncio thread).
    with _held(socket.SOCK_DGRAM) as sip:
        port = sip.getsockname()[1]
    line = _refused(tmp_path, "--bind", "192.0.2.1", "--sip-port", str(port))
    assert line.startswith(f"sipvm: SIP could not start on 192.0.2.1:{port}: ")
    assert line.endswith("; check --bind and --sip-port")


def test_http_port_in_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with _held(socket.SOCK_DGRAM) as sip, _held(socket.SOCK_STREAM) as http:
        sip_port, http_port = sip.getsockname()[1], http.getsockname()[1]
        sip.close()
        line = _refused(
            tmp_path,
            *("--bind", "127.0.0.1", "--sip-port", str(sip_port), "--http-port", str(http_port)),
        )
    assert line == (
        f"sipvm: HTTP port {http_port} on 127.0.0.1 is in use by another process; choose "
        "another with --http-port or [http] port"
    )
