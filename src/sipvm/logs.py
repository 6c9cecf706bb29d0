"""sipvm's log output: one record is one line, whatever data it carries.

Log messages carry text from the network: caller ids, URIs, header values. A CR or LF in one
would start a line of the caller's making that reads like a record of ours — a forged
``sipvm.security: login failed: source=…`` line would make fail2ban ban any address. So the
formatter on sipvm's handlers escapes every control character (``CONTROL_CHARACTERS``: C0,
DEL, C1, U+2028, U+2029) in the whole formatted record, a traceback included, the way Python
writes them in strings (``\\n``, ``\\x1b``, ``\\u2028``). A traceback therefore reads as one long
line; ``sed 's/\\\\n/\\n/g'`` unfolds it.
"""

from __future__ import annotations

import logging
import re
from typing import Final, TextIO

from sipvm.domain.caller_id import CONTROL_CHARACTERS

LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""What ``sipvm`` writes on stderr (the fail2ban filter expects this shape)."""

_NAMED: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` with every control character written as a visible escape."""
    return CONTROL_CHARACTERS.sub(_escape_one, text)


class OneLineFormatter(logging.Formatter):
    """A formatter whose output never holds a control character (so never a line break)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record formatted as usual, then its control characters escaped."""
        return escape_controls(super().format(record))


def worker_format(index: int) -> str:
    """The log format of pool worker ``index``: its name after the level."""
    return f"%(asctime)s %(levelname)s [worker {index}] %(name)s: %(message)s"


def setup_logging(level: int, stream: TextIO) -> None:
    """Send log records at ``level`` and above to ``stream``, one line each."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(OneLineFormatter(LOG_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])


def name_worker(index: int) -> None:
    """Put pool worker ``index``'s name into every line its handlers write (still one line
    per record)."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(OneLineFormatter(worker_format(index)))
