-- 0007: web sign-ins and API tokens. Only the SHA-256 of a token is stored.
CREATE TABLE web_sessions (
    token_hash  TEXT PRIMARY KEY,
    ext         TEXT NOT NULL,
    created_at  TEXT NOT NULL,                   -- ISO 8601 UTC
    seen_at     TEXT NOT NULL                    -- last request; idle expiry counts from here
) WITHOUT ROWID;
CREATE INDEX web_sessions_ext ON web_sessions (ext);

CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    ext         TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT                             -- NULL while the token works
);
CREATE INDEX api_tokens_ext ON api_tokens (ext);
