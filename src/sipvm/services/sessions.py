"""Web sign-ins and API tokens: who a browser or an integration is.

- Signing in checks the PIN through ``LoginService`` on the ``web`` channel: the same stored
  failures and locks as the phone (five wrong PINs lock phone and web alike) and the same
  security log lines, ending in ``channel=web``.
- A session lasts while it is used: a request more than ``idle`` after the previous one finds
  it expired (and it is forgotten). Its last use is written at most every ``idle / 4`` (and at
  least every minute), so a busy page does not write the store on every request.
- API tokens belong to a member, are shown once and stored hashed; revoking is for good.
- A session or token of an extension that has left the directory (or is no longer a user or
  common area) signs nobody in.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sipvm.domain.credentials import bearer_token, new_secret, parse_bearer, secret_hash
from sipvm.domain.lockout import LoginOutcome
from sipvm.domain.model import Extension
from sipvm.errors import LockedError, NotFoundError, NotSignedInError
from sipvm.services.directory import DirectoryService
from sipvm.services.logins import WEB, LoginService
from sipvm.storage.web_auth import ApiToken, SqliteWebAuthRepo

log = logging.getLogger(__name__)

#: How long a session may go unused before it expires (``[http] session_idle_s``).
DEFAULT_IDLE = timedelta(minutes=30)
#: The answer to every wrong extension or PIN: the same words for both.
WRONG_CREDENTIALS = "wrong extension or PIN; check both and try again"
LOCKED = (
    "too many wrong PINs: signing in is locked for now, on the phone and on the web alike; "
    "try again later"
)


@dataclass(frozen=True)
class SignedIn:
    """A member signed in by session or token."""

    who: Extension
    via: str
    """``session`` or ``token``."""


class SessionService:
    """Signs members in and out, and checks session and API tokens."""

    def __init__(
        self,
        directory: DirectoryService,
        logins: LoginService,
        repo: SqliteWebAuthRepo,
        clock: Callable[[], datetime],
        *,
        idle: timedelta = DEFAULT_IDLE,
    ) -> None:
        self._directory = directory
        self._logins = logins
        self._repo = repo
        self._clock = clock
        self.idle = idle
        self._touch_every = min(idle / 4, timedelta(minutes=1))

    # -- browser sessions ------------------------------------------------------------------

    async def sign_in(self, ext: str, pin: str, *, peer: str) -> tuple[str, Extension]:
        """A new session token for ``ext`` when ``pin`` is right.

        Raises NotSignedInError (wrong extension or PIN, same words) or LockedError."""
        outcome = await self._logins.login(ext, pin, peer=peer, caller="", channel=WEB)
        if outcome is LoginOutcome.LOCKED:
            raise LockedError(LOCKED)
        who = self._member(ext)
        if outcome is not LoginOutcome.OK or who is None:
            raise NotSignedInError(WRONG_CREDENTIALS)
        token = new_secret()
        await self._repo.add_session(secret_hash(token), ext, self._clock())
        log.info("web session started for %s from %s", ext, peer)
        return token, who

    async def session(self, token: str, *, touch: bool = True) -> SignedIn | None:
        """The member whose session ``token`` is, or None (unknown, expired, member gone).

        A request uses the session (``touch``: its idle time starts again); an open event
        stream checking it is still there does not."""
        key = secret_hash(token)
        stored = await self._repo.session(key)
        if stored is None:
            return None
        now = self._clock()
        if now - stored.seen_at > self.idle:
            await self._repo.remove_session(key)
            return None
        who = self._member(stored.ext)
        if who is None:
            await self._repo.remove_session(key)
            return None
        if touch and now - stored.seen_at >= self._touch_every:
            await self._repo.touch_session(key, now)
        return SignedIn(who, "session")

    async def sign_out(self, token: str) -> bool:
        """End the session ``token``; False when there was none."""
        return await self._repo.remove_session(secret_hash(token))

    async def purge_idle(self) -> int:
        """Forget every expired session; returns how many."""
        return await self._repo.remove_idle_sessions(self._clock() - self.idle)

    # -- API tokens ------------------------------------------------------------------------

    async def create_token(self, ext: str) -> tuple[int, str]:
        """A new API token for member ``ext``: its id and the token (shown once)."""
        if self._member(ext) is None:
            raise NotFoundError(
                f"no user or common area has extension {ext}; "
                "list extensions with `sipvm directory export`"
            )
        secret = new_secret()
        token_id = await self._repo.add_token(secret_hash(secret), ext, self._clock())
        log.info("API token %d created for %s", token_id, ext)
        return token_id, bearer_token(token_id, secret)

    async def revoke_tokens(
        self, *, ext: str | None = None, token_id: int | None = None
    ) -> list[int]:
        """Revoke every working token of ``ext``, or the token ``token_id``; returns the ids
        revoked (none: NotFoundError)."""
        ids = await self._repo.revoke_tokens(self._clock(), ext=ext, token_id=token_id)
        if not ids:
            what = (
                f"extension {ext} has no working API token"
                if ext is not None
                else (f"there is no working API token {token_id}")
            )
            raise NotFoundError(f"{what}; list the tokens with `sipvm token list`")
        log.info("API tokens revoked: %s", ", ".join(str(i) for i in ids))
        return ids

    async def tokens(self, ext: str | None = None) -> list[ApiToken]:
        """Every API token (of ``ext``), revoked ones included."""
        return await self._repo.tokens(ext)

    async def bearer(self, token: str) -> SignedIn | None:
        """The member whose working API token ``token`` is, or None."""
        parsed = parse_bearer(token)
        if parsed is None:
            return None
        token_id, secret = parsed
        found = await self._repo.token(token_id)
        if found is None:
            return None
        stored, stored_hash = found
        if stored.revoked_at is not None or not hmac.compare_digest(
            stored_hash, secret_hash(secret)
        ):
            return None
        who = self._member(stored.ext)
        return SignedIn(who, "token") if who is not None else None

    def _member(self, ext: str) -> Extension | None:
        who = self._directory.current.get(ext)
        return who if who is not None and who.kind.has_owner else None
