-- 0003: desk-phone logins: failed attempts and lockouts (persist across restarts), and PINs
-- changed by phone.
CREATE TABLE login_failures (
    id      INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,                   -- ISO 8601 UTC
    ext     TEXT NOT NULL,                   -- the extension typed or identified (may not exist)
    source  TEXT NOT NULL                    -- "<peer address>/<caller id>"
);
CREATE INDEX login_failures_ext ON login_failures (ext, at);
CREATE INDEX login_failures_source ON login_failures (source, at);

CREATE TABLE login_locks (
    scope   TEXT NOT NULL CHECK (scope IN ('ext', 'source')),
    key     TEXT NOT NULL,
    until   TEXT NOT NULL,                   -- ISO 8601 UTC
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;

-- A PIN set by phone is in force while the directory still holds the PIN it replaced
-- (directory_hash); an admin who writes a different PIN into the directory resets it.
CREATE TABLE phone_pins (
    ext             TEXT PRIMARY KEY,
    pin_hash        TEXT NOT NULL,
    directory_hash  TEXT NOT NULL,
    changed_at      TEXT NOT NULL
) WITHOUT ROWID;
