"""Desk-phone logins: who is calling, PIN checks with lockout, PIN changes by phone.

Security rules:
- A wrong extension and a wrong PIN cost the same (one scrypt each) and get the same answer.
- Failures are counted per extension (5), per source — the peer address and the caller id it
  asserted — (20) and per peer address alone (100, so rotating caller ids behind a PBX does not
  escape); that many within 15 minutes lock the key. A key's 1st lock lasts 15 minutes, its
  2nd 1 hour, its 3rd and later 24 hours, until it has gone 24 hours without a lock
  (``domain.lockout``). Locks, failures and lock history are stored, so a restart lifts
  nothing. A success forgets the extension's failures, not the source's or the peer's.
- A caller id holding a control character (CR, LF, any C0/C1, DEL, U+2028/U+2029) is no caller
  id: it counts as anonymous (``domain.caller_id.usable_caller_id``).
- Every failure, lock and refusal is one line on the ``sipvm.security`` logger, in a fixed
  ``key=value`` form that fail2ban can match (``source=<HOST>``). Each value is %-escaped
  (space, ``=``, ``%``, controls, non-ASCII), so no value can hold a space and fake another
  key. No PIN ever appears, and an extension that does not exist is logged as ``unknown`` (it
  may be a PIN typed at the wrong prompt).
- A PIN changed by phone stays in force until an admin writes a *different* PIN for the
  extension into the directory file (re-applying the same file keeps it).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from datetime import datetime
from urllib.parse import quote

from sipvm.domain.caller_id import usable_caller_id
from sipvm.domain.lockout import LockoutPolicy, LoginOutcome
from sipvm.domain.model import Extension
from sipvm.domain.pins import hash_pin, pin_problem, verify_pin
from sipvm.domain.sip_uri import aor_matches
from sipvm.errors import InvalidInputError, NotFoundError
from sipvm.services.directory import DirectoryService
from sipvm.storage.logins import LoginKeys, SqliteLoginRepo

log = logging.getLogger(__name__)
#: The channel of desk-phone logins (their security lines name no channel).
PHONE = "phone"
#: The channel of the web portal and the HTTP API.
WEB = "web"
security_log = logging.getLogger("sipvm.security")


class LoginService:
    """Checks PINs of users and common areas, with lockout, and changes them."""

    def __init__(
        self,
        directory: DirectoryService,
        repo: SqliteLoginRepo,
        clock: Callable[[], datetime],
        *,
        policy: LockoutPolicy | None = None,
    ) -> None:
        self._directory = directory
        self._repo = repo
        self._clock = clock
        self.policy = policy or LockoutPolicy()

    def desk_phone(self, identity: str) -> str | None:
        """The user or common area whose desk phone ``identity`` (a SIP URI user part or an
        AOR ``user@host``) is, or None."""
        for who in self._directory.current.extensions.values():
            if not who.kind.has_owner or not who.phones:
                continue
            if identity == who.ext or any(aor_matches(identity, aor) for aor in who.phones):
                return who.ext
        return None

    async def login(
        self, ext: str, pin: str, *, peer: str, caller: str = "", channel: str = PHONE
    ) -> LoginOutcome:
        """Check ``pin`` for ``ext`` on behalf of a caller from ``peer`` (an address) that
        asserted ``caller`` (a decoded URI user part; "" when anonymous).

        ``channel`` says where the PIN was typed: the phone (its lines are as they always
        were) or ``web`` (the portal and API: its security lines end in ``channel=web``). Both
        count against the same stored failures and locks."""
        now = self._clock()
        tail = "" if channel == PHONE else " channel=" + _values(channel)[0]
        caller = usable_caller_id(caller)
        who = self._owner(ext)
        key = ext if who is not None else _opaque(ext)
        keys = LoginKeys(ext=key, source=f"{peer}/{caller}", peer=peer)
        shown = ext if who is not None else "unknown"
        pin_hash = await self._pin_hash(who, key)
        # Always one scrypt, locked or not, known or not: timing tells nothing.
        matches = await asyncio.to_thread(verify_pin, pin, pin_hash)
        locked = await self._repo.locked_until(keys, now)
        if locked is not None:
            security_log.warning(
                "login refused: source=%s caller=%s extension=%s reason=locked until=%s%s",
                *_values(peer, caller, shown, _when(locked)),
                tail,
            )
            return LoginOutcome.LOCKED
        if matches and who is not None:
            await self._repo.clear_failures(key)
            log.info("login: extension %s from %s%s", ext, peer, tail)
            return LoginOutcome.OK
        counts = await self._repo.record_failure(keys, now, self.policy)
        reason = "wrong-pin" if who is not None else "unknown-extension"
        security_log.warning(
            "login failed: source=%s caller=%s extension=%s reason=%s%s",
            *_values(peer, caller, shown, reason),
            tail,
        )
        for lock in counts.locks:
            security_log.warning(
                "login locked: source=%s caller=%s extension=%s scope=%s until=%s%s",
                *_values(peer, caller, shown, lock.scope.value, _when(lock.until)),
                tail,
            )
        return LoginOutcome.FAILED

    async def change_pin(self, ext: str, new_pin: str) -> None:
        """Set the PIN of ``ext`` (by phone). Raises InvalidInputError naming the rule broken."""
        who = self._owner(ext)
        if who is None:
            raise NotFoundError(f"no user or common area has extension {ext}")
        problem = pin_problem(new_pin, ext)
        if problem is not None:
            raise InvalidInputError(f"the new PIN for {ext} was refused: {problem}")
        new_hash = await asyncio.to_thread(hash_pin, new_pin)
        await self._repo.set_phone_pin(
            ext, new_hash, directory_hash=who.pin_hash or "", at=self._clock()
        )
        log.info("extension %s changed its PIN by phone", ext)

    async def _pin_hash(self, who: Extension | None, key: str) -> str | None:
        """The PIN in force: one set by phone, unless the directory's PIN changed since.

        The store is asked for unknown extensions too, so both cost the same."""
        phone = await self._repo.phone_pin(key)
        if who is None:
            return None
        if phone is not None and phone[1] == (who.pin_hash or ""):
            return phone[0]
        return who.pin_hash

    def _owner(self, ext: str) -> Extension | None:
        who = self._directory.current.get(ext)
        return who if who is not None and who.kind.has_owner else None


def _opaque(typed: str) -> str:
    """What is stored for an extension that does not exist (it may be a mistyped PIN)."""
    return "unknown:" + hashlib.sha256(typed.encode()).hexdigest()[:16]


#: Characters a security log value keeps as they are; everything else (space, ``=``, ``%``,
#: quotes, controls, non-ASCII) is %-escaped, so a value is one run of these characters and
#: the line's ``key=value`` fields cannot be faked from inside one.
_VALUE_SAFE = "+*#@:;!$&'(),/[]"


def _values(*values: str) -> tuple[str, ...]:
    """Security log field values, escaped; an empty one is ``-``."""
    return tuple(quote(value, safe=_VALUE_SAFE) or "-" for value in values)


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
