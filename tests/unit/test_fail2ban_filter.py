"""The shipped fail2ban filter matches the security log lines sipvm writes, and only those."""

from __future__ import annotations

import configparser
import logging
import re
from pathlib import Path

import pytest

from sipvm.app import App
from sipvm.domain.lockout import LoginOutcome

FILTER = Path(__file__).resolve().parents[2] / "provisioning" / "fail2ban" / "sipvm.conf"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # what `sipvm serve` writes


def failregex() -> re.Pattern[str]:
    parser = configparser.RawConfigParser()
    parser.read(FILTER)
    pattern = parser.get("Definition", "failregex")
    # fail2ban's <HOST> is an address group; the rest is a plain Python regex.
    return re.compile(pattern.replace("<HOST>", r"(?P<host>[0-9a-fA-F.:]+)"))


async def test_the_filter_finds_the_source_of_each_failure_and_nothing_else(
    app: App, caplog: pytest.LogCaptureFixture, example_directory_file: Path
) -> None:
    caplog.set_level(logging.INFO)
    logins = app.logins
    for _ in range(5):
        assert await logins.login("1001", "999111", peer="192.0.2.7", caller="555") is (
            LoginOutcome.FAILED
        )
    assert await logins.login("1001", "482916", peer="192.0.2.7") is LoginOutcome.LOCKED
    assert await logins.login("1002", "739164", peer="192.0.2.8") is LoginOutcome.OK
    formatter = logging.Formatter(LOG_FORMAT)
    lines = [formatter.format(r) for r in caplog.records]
    regex = failregex()
    hits = [m.group("host") for line in lines if (m := regex.search(line))]
    assert hits == ["192.0.2.7"] * 6  # five failures and the refusal while locked
    assert not any(regex.search(line) for line in lines if "192.0.2.8" in line)
