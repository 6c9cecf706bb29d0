"""Benchmark: a wrong PIN for a real extension and any PIN for a missing one take the same time.

Prints p50/p99 of ``LoginService.login`` for each case (in-process, the example directory,
lockout thresholds raised so that every attempt takes the full failure path); it asserts
nothing. The difference of the medians is what a caller timing the answers could learn.

    python tests/bench/bench_login_timing.py [--rounds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sipvm.app import App  # noqa: E402
from sipvm.domain.lockout import LockoutPolicy, LoginOutcome  # noqa: E402
from tests.bench.bench_listings import figures, timed  # noqa: E402

EXAMPLE = REPO / "provisioning" / "examples" / "small-office.toml"


async def run(rounds: int) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        app = await App.open(Path(tmp) / "data")
        try:
            await app.directory.apply_file(EXAMPLE)
            app.logins.policy = LockoutPolicy(per_extension=10**9, per_source=10**9, per_peer=10**9)

            async def wrong_pin() -> None:
                outcome = await app.logins.login("1001", "999111", peer="127.0.0.2")
                assert outcome is LoginOutcome.FAILED

            async def unknown_ext() -> None:
                outcome = await app.logins.login("7777", "999111", peer="127.0.0.2")
                assert outcome is LoginOutcome.FAILED

            known = await timed(rounds, wrong_pin)
            unknown = await timed(rounds, unknown_ext)
        finally:
            await app.close()
    gap = statistics.median(known) - statistics.median(unknown)
    return [
        figures("login: existing extension, wrong PIN", known),
        figures("login: extension that does not exist", unknown),
        f"difference of medians: {gap:+.2f} ms",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args(argv)
    logging.getLogger("sipvm").setLevel(logging.ERROR)  # one security line per attempt otherwise
    for line in asyncio.run(run(args.rounds)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
