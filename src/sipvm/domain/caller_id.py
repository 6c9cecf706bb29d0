"""Which caller ids may be used: none that holds a control character.

URI user parts are %-decoded (RFC 3261 §19.1.2), so ``%0A`` in a caller id is a line feed by
the time anyone looks at it; the caller id a call carries is ``usable_caller_id`` of it, and
one-line logs escape the same characters.
"""

from __future__ import annotations

import re
from typing import Final

#: Characters that end or restyle a line in a log file or a terminal: the C0 controls (NUL, TAB,
#: LF, CR, ESC...), DEL, the C1 controls (NEL...) and the Unicode line and paragraph separators.
#: Decoded URI user parts may hold them (``%0A``); no caller id or log line may.
CONTROL_CHARACTERS: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def has_control_characters(text: str) -> bool:
    """Whether ``text`` holds any of ``CONTROL_CHARACTERS``."""
    return CONTROL_CHARACTERS.search(text) is not None


def usable_caller_id(user: str) -> str:
    """The caller id a decoded URI user part stands for: itself, or "" (anonymous) when it
    holds a control character.

    Such a caller id is dropped whole rather than cleaned: no phone sends one, and what is left
    after removing the characters would still be text of the caller's choosing that may now
    look like a real number (``1001%00`` → ``1001``, a desk phone). The call itself goes on —
    the caller id is advisory, and refusing the call would cost the callee a message.
    """
    return "" if has_control_characters(user) else user


class PhoneNumber(str):
    """A caller's number to be said in groups ("five five five, zero one hundred"), not key by
    key: the prompts say a plain ``str`` value key by key and a ``PhoneNumber`` as a number is
    read out (``Sayer.phone``)."""

    __slots__ = ()
