"""A revoked right is refused on every worker of a pool within a second, not at the next
hourly housekeeping: `sipvm directory apply` removes Dan (1004) from the Sales queue's member
list, and Dan's calls to ``*97*2001`` through the Kamailio front, on either worker, no longer
play its message."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from tests.support.tones import read_pcm_mono, seconds_with_tone

from .conftest import EXAMPLE, Kit, Server, seed_message
from .test_menu_sip import log_in, menu_call
from .test_pool_sip import start_pool

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio missing"),
]

DAN, DAN_PIN, SALES = "1004", "604825", "2001"  # Dan plays Sales through its member list only
TONE_HZ = 1500


def revoked(example: Path, tmp: Path) -> Path:
    """The server's directory with Dan's entry on the Sales member list removed."""
    text = example.read_text(encoding="utf-8")
    entry = re.search(rf'\[\[call_queue\.members\]\]\nmember = "{DAN}"\nrights = [^\n]*\n', text)
    assert entry is not None
    out = tmp / "revoked.toml"
    out.write_text(text.replace(entry.group(0), "", 1), encoding="utf-8")
    return out


def sales_call(server: Server, name: str) -> dict[str, object]:
    """Dan dials ``*97*2001``: PIN, then the short inbox intro and the 3-s message (no # to
    skip the intro: sent once it is over, # would skip ahead in the message)."""
    steps = [*log_in(DAN_PIN), {"wait": 8.0}, {"hangup": True}]
    script = menu_call(server, name, DAN, steps)
    script["to"] = f"sip:*97*{SALES}@{server.uri_host}"
    return script


def worker_of(server: Server, nth: int) -> str:
    """``[worker N]`` of the ``nth`` menu call the pool logged (waiting for it)."""
    deadline = time.monotonic() + 15
    while True:
        lines = [x for x in list(server.log) if "menu call from" in x]
        if len(lines) > nth:
            found = re.search(r"\[worker \d+\]", lines[nth])
            assert found is not None, lines[nth]
            return found.group(0)
        assert time.monotonic() < deadline, "\n".join(server.log[-30:])
        time.sleep(0.05)


def test_a_revoked_member_is_refused_on_every_worker_within_a_second(
    tmp_path: Path, kit: Kit
) -> None:
    server = start_pool(tmp_path)
    try:
        seed_message(server, kit.tmp, SALES, TONE_HZ)
        # Control: while granted, Dan hears the Sales message through the front.
        kit.peer("before", sales_call(server, "before")).report(60)
        assert seconds_with_tone(read_pcm_mono(kit.tmp / "before.wav"), 8000, TONE_HZ) >= 2.0

        applied = server.cli("directory", "apply", str(revoked(EXAMPLE, tmp_path)))
        assert applied.returncode == 0, applied.stderr
        found = re.search(r"revision (\d+)", applied.stdout)
        assert found is not None, applied.stdout
        rev = int(found.group(1))
        started = time.monotonic()
        for worker in (1, 2):
            deadline = started + 1.5
            while not any(
                f"[worker {worker}]" in x and f"directory revision {rev} in force" in x
                for x in list(server.log)
            ):
                assert time.monotonic() < deadline, f"worker {worker} kept the old directory"
                time.sleep(0.02)
        print(f"revision {rev} on both workers {time.monotonic() - started:.2f} s after apply")

        # Two overlapping calls: the front gives the second to the other worker.
        first = kit.peer("after1", sales_call(server, "after1"))
        busy = worker_of(server, 1)
        second = kit.peer("after2", sales_call(server, "after2"))
        other = worker_of(server, 2)
        first.report(60)
        second.report(60)
        assert {busy, other} == {"[worker 1]", "[worker 2]"}
        for name in ("after1", "after2"):
            heard = read_pcm_mono(kit.tmp / f"{name}.wav")
            assert seconds_with_tone(heard, 8000, TONE_HZ) == 0, name
    finally:
        assert server.stop(timeout=90) == 0, "\n".join(server.log[-30:])
