"""Web credentials: session tokens, API bearer tokens, their stored hashes and CSRF tokens.

- A token is 32 random bytes (URL-safe base64). Only its SHA-256 is stored, so a copy of the
  store signs nobody in. A slow hash is not needed: the token is random, not chosen by a person.
- A bearer token reads ``sipvm_<id>_<secret>``: the id names the stored row (for revoking one
  token and for the log), the secret is what is checked.
- A session's CSRF token is derived from its session token (a keyed hash), so it needs no
  storage and a page that holds it cannot recover the session token from it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

TOKEN_BYTES = 32
BEARER_PREFIX = "sipvm_"
_BEARER = re.compile(r"sipvm_(\d{1,18})_([A-Za-z0-9_-]{43})")


def new_secret() -> str:
    """A fresh random token (43 URL-safe characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(TOKEN_BYTES)).decode().rstrip("=")


def secret_hash(token: str) -> str:
    """What is stored for ``token``: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_for(session_token: str) -> str:
    """The CSRF token of the session whose cookie holds ``session_token``."""
    mac = hmac.new(session_token.encode(), b"sipvm csrf v1", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def csrf_matches(session_token: str, given: str | None) -> bool:
    """Whether ``given`` is the CSRF token of the session (in constant time)."""
    if not given:
        return False
    return hmac.compare_digest(csrf_for(session_token).encode(), given.encode())


def bearer_token(token_id: int, secret: str) -> str:
    """The bearer token shown once to whoever created it."""
    return f"{BEARER_PREFIX}{token_id}_{secret}"


def parse_bearer(token: str) -> tuple[int, str] | None:
    """The id and secret of a bearer token, or None when it is not shaped like one."""
    match = _BEARER.fullmatch(token)
    if match is None:
        return None
    return int(match.group(1)), match.group(2)
