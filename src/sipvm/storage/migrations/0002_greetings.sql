-- 0002: greetings per inbox and kind; the row points at the converted file.
CREATE TABLE greetings (
    inbox        TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('unavailable', 'busy', 'temporary', 'name')),
    audio        TEXT NOT NULL,              -- path relative to the data directory
    duration_ms  INTEGER NOT NULL,
    uploaded_at  TEXT NOT NULL,              -- ISO 8601 UTC
    uploaded_by  TEXT NOT NULL DEFAULT 'admin',
    PRIMARY KEY (inbox, kind)
) WITHOUT ROWID;
