-- 0004: greetings of auto receptionists and queues (business, closed, holiday, menu-<name>)
-- are checked by the service, not by a CHECK list; schedule overrides set from the CLI.
CREATE TABLE greetings_new (
    inbox        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    audio        TEXT NOT NULL,              -- path relative to the data directory
    duration_ms  INTEGER NOT NULL,
    uploaded_at  TEXT NOT NULL,              -- ISO 8601 UTC
    uploaded_by  TEXT NOT NULL DEFAULT 'admin',
    PRIMARY KEY (inbox, kind)
) WITHOUT ROWID;
INSERT INTO greetings_new (inbox, kind, audio, duration_ms, uploaded_at, uploaded_by)
    SELECT inbox, kind, audio, duration_ms, uploaded_at, uploaded_by FROM greetings;
DROP TABLE greetings;
ALTER TABLE greetings_new RENAME TO greetings;

CREATE TABLE schedule_overrides (
    inbox   TEXT PRIMARY KEY,
    mode    TEXT NOT NULL CHECK (mode IN ('open', 'closed')),
    set_by  TEXT NOT NULL,
    set_at  TEXT NOT NULL                    -- ISO 8601 UTC
) WITHOUT ROWID;
