"""The shipped fail2ban filter matches the security log lines sipvm writes, and only those —
whatever text callers put into their caller ids."""

from __future__ import annotations

import configparser
import logging
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest

from sipvm.app import App
from sipvm.domain.lockout import LoginOutcome
from sipvm.logs import LOG_FORMAT, OneLineFormatter, worker_format

FILTER = Path(__file__).resolve().parents[2] / "provisioning" / "fail2ban" / "sipvm.conf"
PEER = "192.0.2.7"
FORGED_HOST = "10.9.9.9"
FAKE_LINE = (
    f"2026-11-28 17:37:15,225 WARNING sipvm.security: login failed: source={FORGED_HOST} "
    "caller=x extension=1001 reason=wrong-pin"
)
FAKE_REFUSED = f"WARNING sipvm.security: login refused: source={FORGED_HOST} caller=x"
#: Caller ids as an attacker would send them (decoded): a line break of every kind, or only
#: spaces that try to start a new ``source=`` field inside the caller's own value.
FORGED_CALLERS = [
    "x\n" + FAKE_LINE,
    "x\r\n" + FAKE_LINE,
    "x\r" + FAKE_LINE,
    "x\x85" + FAKE_LINE,
    "x\u2028" + FAKE_LINE,
    "x\x0b" + FAKE_LINE,
    f"x source={FORGED_HOST} caller=x extension=1001 reason=wrong-pin",
    f"x {FAKE_REFUSED} extension=1001 reason=locked",
    f"- extension=1001 reason=wrong-pin\n{FAKE_LINE}",
]


class Fail2ban:
    """What fail2ban does with the filter: cut out the date its datepattern finds, then search
    failregex in what is left (``<HOST>`` as broad as fail2ban's, host names included)."""

    def __init__(self) -> None:
        parser = configparser.RawConfigParser()
        parser.read(FILTER)
        fail = parser.get("Definition", "failregex")
        self.failregex = re.compile(fail.replace("<HOST>", r"(?P<host>[\w\-.^_:\[\]]*\w)"))
        date = parser.get("Definition", "datepattern").replace("%%", "%")
        for token, regex in {"%Y": r"\d{4}", "%f": r"\d{1,6}"}.items():
            date = date.replace(token, regex)
        self.datepattern = re.compile(re.sub(r"%[mdHMS]", r"\\d{2}", date))

    def hosts(self, lines: Iterable[str]) -> list[str]:
        found = []
        for line in lines:
            date = self.datepattern.search(line)
            # A line without a date is searched whole: stricter than fail2ban, never laxer.
            rest = line[: date.start()] + line[date.end() :] if date else line
            match = self.failregex.search(rest)
            if match:
                found.append(match.group("host"))
        return found


def lines_of(records: Iterable[logging.LogRecord], fmt: str = LOG_FORMAT) -> list[str]:
    """The physical lines `sipvm serve` writes for these records."""
    formatter = OneLineFormatter(fmt)
    return [line for r in records for line in formatter.format(r).splitlines()]


async def test_the_filter_finds_the_source_of_each_failure_and_nothing_else(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    logins = app.logins
    for _ in range(5):
        assert await logins.login("1001", "999111", peer=PEER, caller="555") is (
            LoginOutcome.FAILED
        )
    assert await logins.login("1001", "482916", peer=PEER) is LoginOutcome.LOCKED
    assert await logins.login("1002", "739164", peer="192.0.2.8") is LoginOutcome.OK
    lines = lines_of(caplog.records)
    assert Fail2ban().hosts(lines) == [PEER] * 6  # five failures and the refusal while locked
    assert Fail2ban().hosts(lines_of(caplog.records, worker_format(3))) == [PEER] * 6
    assert not any(Fail2ban().hosts([line]) for line in lines if "192.0.2.8" in line)


@pytest.mark.parametrize("forged", FORGED_CALLERS)
async def test_no_caller_id_makes_the_filter_find_another_address(
    app: App, caplog: pytest.LogCaptureFixture, forged: str
) -> None:
    caplog.set_level(logging.INFO)
    # The caller id the way other modules log it — quoted as it came — and through the login.
    logging.getLogger("sipvm.flows.router").info("menu call from %s (caller %s)", PEER, forged)
    await app.logins.login("1001", "999111", peer=PEER, caller=forged)
    await app.logins.login("7777", "999111", peer=PEER, caller=forged)
    lines = lines_of(caplog.records)
    assert len(lines) == len(caplog.records)  # no record split into two lines
    assert Fail2ban().hosts(lines) == [PEER, PEER]
    security = [r.getMessage() for r in caplog.records if r.name == "sipvm.security"]
    for message in security:
        # Exactly the fixed fields, each value one run without spaces or '='.
        assert re.fullmatch(r"login failed: (?:\w+=[^\s=]+ ?){4}", message), message
        assert f"source={FORGED_HOST}" not in message


def test_the_old_unanchored_filter_would_have_banned_the_forged_address() -> None:
    # Guards the test itself: the quoted caller id really carries a line the filter must skip.
    line = lines_of(
        [
            logging.LogRecord(
                "sipvm.flows.router",
                logging.INFO,
                __file__,
                1,
                "caller %s",
                (FORGED_CALLERS[0],),
                None,
            )
        ]
    )[0]
    unanchored = re.compile(
        r"sipvm\.security: login (?:failed|refused): source=(?P<host>[\w\-.^_:]*\w) caller=\S+"
    )
    match = unanchored.search(line)
    assert match is not None and match.group("host") == FORGED_HOST
    assert Fail2ban().hosts([line]) == []


@pytest.mark.skipif(shutil.which("fail2ban-regex") is None, reason="fail2ban not installed")
async def test_fail2ban_itself_agrees(
    app: App, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.INFO)
    for forged in FORGED_CALLERS:
        logging.getLogger("sipvm.flows.router").info("menu call (caller %s)", forged)
        await app.logins.login("1001", "999111", peer=PEER, caller=forged)
    log = tmp_path / "sipvm.log"
    log.write_text("\n".join(lines_of(caplog.records)) + "\n", encoding="utf-8")
    done = subprocess.run(
        ["fail2ban-regex", "-o", "ip", str(log), str(FILTER)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    # Five failures lock the extension; the rest are refusals: every line names the peer.
    assert done.stdout.split() == [PEER] * len(FORGED_CALLERS)


async def test_web_sign_in_failures_are_found_too(
    app: App, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.INFO)
    for _ in range(5):
        await app.logins.login("1001", "999111", peer=PEER, channel="web")
    await app.logins.login("1001", "482916", peer=PEER, channel="web")  # locked now
    await app.logins.login("7777", "999111", peer="192.0.2.9", channel="web")
    lines = lines_of(caplog.records)
    security = [line for line in lines if "sipvm.security" in line]
    assert security and all(line.endswith(" channel=web") for line in security)
    assert Fail2ban().hosts(lines) == [PEER] * 6 + ["192.0.2.9"]
    if shutil.which("fail2ban-regex") is not None:
        log = tmp_path / "sipvm.log"
        log.write_text("\n".join(lines) + "\n", encoding="utf-8")
        done = subprocess.run(
            ["fail2ban-regex", "-o", "ip", str(log), str(FILTER)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert done.stdout.split() == [PEER] * 6 + ["192.0.2.9"]
