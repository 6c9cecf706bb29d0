"""Web credentials: tokens are random, stored only as hashes, and CSRF tokens belong to their
session."""

from __future__ import annotations

import hashlib

from sipvm.domain.credentials import (
    bearer_token,
    csrf_for,
    csrf_matches,
    new_secret,
    parse_bearer,
    secret_hash,
)


def test_secrets_are_fresh_url_safe_and_long() -> None:
    secrets = {new_secret() for _ in range(200)}
    assert len(secrets) == 200
    for secret in secrets:
        assert len(secret) == 43  # 32 bytes of randomness
        assert secret.replace("-", "").replace("_", "").isalnum()


def test_only_the_sha256_of_a_token_is_stored() -> None:
    token = new_secret()
    stored = secret_hash(token)
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    assert token not in stored
    assert secret_hash(new_secret()) != stored


def test_a_csrf_token_is_its_sessions_and_no_other() -> None:
    session, other = new_secret(), new_secret()
    csrf = csrf_for(session)
    assert csrf == csrf_for(session)  # derived, not stored
    assert csrf != session and session not in csrf
    assert csrf_matches(session, csrf)
    assert not csrf_matches(other, csrf)
    assert not csrf_matches(session, csrf[:-1])
    assert not csrf_matches(session, None)
    assert not csrf_matches(session, "")


def test_a_bearer_token_names_its_row_and_carries_the_secret() -> None:
    secret = new_secret()
    token = bearer_token(17, secret)
    assert token.startswith("sipvm_17_")
    assert parse_bearer(token) == (17, secret)
    for bad in ("", "sipvm_17", f"sipvm_x_{secret}", f"Bearer {token}", token + "x", token[:-1]):
        assert parse_bearer(bad) is None, bad
