"""sipvm's log formatter: one record, one line, whatever the data in it."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from sipvm.logs import (
    LOG_FORMAT,
    OneLineFormatter,
    escape_controls,
    worker_format,
)

FORGED = "x\r\n2026-11-28 17:37:15,225 WARNING sipvm.security: login failed: source=10.9.9.9"


def record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("sipvm.test", logging.WARNING, __file__, 1, msg, args, exc_info)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\r\\nb"),
        ("a\tb", "a\\tb"),
        ("\x00\x1b[31m", "\\x00\\x1b[31m"),
        ("\x7f\x85\x9f", "\\x7f\\x85\\x9f"),
        ("a\u2028b\u2029c", "a\\u2028b\\u2029c"),
        ("plain text, é ü 日本 and \\n as typed", "plain text, é ü 日本 and \\n as typed"),
    ],
)
def test_escape_controls(text: str, shown: str) -> None:
    assert escape_controls(text) == shown


def test_caller_data_in_the_arguments_cannot_start_a_line() -> None:
    line = OneLineFormatter(LOG_FORMAT).format(record("menu call (caller %s)", FORGED))
    assert line.splitlines() == [line]
    assert line.endswith(
        "menu call (caller x\\r\\n2026-11-28 17:37:15,225 WARNING "
        "sipvm.security: login failed: source=10.9.9.9)"
    )


def test_a_traceback_is_one_line_too() -> None:
    try:
        raise ValueError(FORGED)
    except ValueError as exc:
        line = OneLineFormatter(LOG_FORMAT).format(record("it failed", exc=exc))
    assert line.splitlines() == [line]
    assert "it failed\\nTraceback (most recent call last):\\n" in line
    assert "ValueError: x\\r\\n2026-11-28" in line


SCRIPT = f"""
import logging, sys
from sipvm.logs import name_worker, setup_logging
setup_logging(logging.INFO, sys.stderr)
logging.getLogger("sipvm.security").warning("caller %s", {FORGED!r})
name_worker(2)
logging.getLogger("sipvm.security").warning("caller %s", {FORGED!r})
"""


def test_setup_and_worker_names_keep_one_line_per_record() -> None:
    # A process of its own: the root logger is what `sipvm` sets up, not pytest's.
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )
    first, second = done.stderr.splitlines()
    assert " WARNING sipvm.security: caller x\\r\\n2026-11-28 " in first
    assert " WARNING [worker 2] sipvm.security: caller x\\r\\n2026-11-28 " in second
    assert worker_format(2) == LOG_FORMAT.replace("%(name)s", "[worker 2] %(name)s")
