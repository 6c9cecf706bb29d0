-- 0001: directory revisions, messages with shared played/deleted state, counts, audit.

-- Every applied directory, newest last; the highest rev is in force.
CREATE TABLE directory_revisions (
    rev         INTEGER PRIMARY KEY,
    applied_at  TEXT NOT NULL,               -- ISO 8601 UTC
    source      TEXT NOT NULL,               -- file path or "phone" etc.
    digest      TEXT NOT NULL,               -- sha256 of the canonical document
    document    TEXT NOT NULL                -- canonical JSON (PINs as hashes only)
);

CREATE TABLE messages (
    id           INTEGER PRIMARY KEY,
    uid          TEXT NOT NULL UNIQUE,       -- names the audio file; also the deposit's key
    inbox        TEXT NOT NULL,
    caller       TEXT NOT NULL DEFAULT '',
    caller_name  TEXT NOT NULL DEFAULT '',
    called       TEXT NOT NULL DEFAULT '',   -- original called number
    reason       TEXT NOT NULL DEFAULT '',   -- diversion reason: busy, no-answer, ...
    received_at  TEXT NOT NULL,              -- ISO 8601 UTC
    duration_ms  INTEGER NOT NULL,
    urgent       INTEGER NOT NULL DEFAULT 0,
    audio        TEXT NOT NULL,              -- path relative to the data directory
    played_at    TEXT,                       -- one state for every member
    played_by    TEXT,
    deleted_at   TEXT,                       -- deleted for everyone; restorable for 30 days
    deleted_by   TEXT,
    source_id    INTEGER REFERENCES messages(id) ON DELETE SET NULL,
    shared_by    TEXT
);
-- The menu's order: new first, oldest first, per inbox.
CREATE INDEX messages_by_inbox ON messages (inbox, deleted_at, played_at IS NOT NULL, received_at, id);
CREATE INDEX messages_deleted ON messages (deleted_at) WHERE deleted_at IS NOT NULL;

-- New/old counts per inbox, kept by triggers so listings never scan messages.
CREATE TABLE inbox_counts (
    inbox       TEXT PRIMARY KEY,
    new         INTEGER NOT NULL DEFAULT 0,
    old         INTEGER NOT NULL DEFAULT 0,
    urgent_new  INTEGER NOT NULL DEFAULT 0,
    urgent_old  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TRIGGER messages_count_insert AFTER INSERT ON messages
WHEN NEW.deleted_at IS NULL
BEGIN
    INSERT INTO inbox_counts (inbox) VALUES (NEW.inbox) ON CONFLICT (inbox) DO NOTHING;
    UPDATE inbox_counts SET
        new = new + (NEW.played_at IS NULL),
        old = old + (NEW.played_at IS NOT NULL),
        urgent_new = urgent_new + (NEW.played_at IS NULL AND NEW.urgent),
        urgent_old = urgent_old + (NEW.played_at IS NOT NULL AND NEW.urgent)
    WHERE inbox = NEW.inbox;
END;

CREATE TRIGGER messages_count_delete AFTER DELETE ON messages
WHEN OLD.deleted_at IS NULL
BEGIN
    UPDATE inbox_counts SET
        new = new - (OLD.played_at IS NULL),
        old = old - (OLD.played_at IS NOT NULL),
        urgent_new = urgent_new - (OLD.played_at IS NULL AND OLD.urgent),
        urgent_old = urgent_old - (OLD.played_at IS NOT NULL AND OLD.urgent)
    WHERE inbox = OLD.inbox;
END;

CREATE TRIGGER messages_count_update
AFTER UPDATE OF played_at, deleted_at, urgent, inbox ON messages
BEGIN
    UPDATE inbox_counts SET
        new = new - (OLD.played_at IS NULL),
        old = old - (OLD.played_at IS NOT NULL),
        urgent_new = urgent_new - (OLD.played_at IS NULL AND OLD.urgent),
        urgent_old = urgent_old - (OLD.played_at IS NOT NULL AND OLD.urgent)
    WHERE inbox = OLD.inbox AND OLD.deleted_at IS NULL;
    INSERT INTO inbox_counts (inbox) SELECT NEW.inbox WHERE NEW.deleted_at IS NULL
        ON CONFLICT (inbox) DO NOTHING;
    UPDATE inbox_counts SET
        new = new + (NEW.played_at IS NULL),
        old = old + (NEW.played_at IS NOT NULL),
        urgent_new = urgent_new + (NEW.played_at IS NULL AND NEW.urgent),
        urgent_old = urgent_old + (NEW.played_at IS NOT NULL AND NEW.urgent)
    WHERE inbox = NEW.inbox AND NEW.deleted_at IS NULL;
END;

-- Who did what to which message, and when. Never updated, never deleted by sipvm.
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,               -- ISO 8601 UTC
    actor       TEXT NOT NULL,               -- extension, "caller", "system" or "admin"
    action      TEXT NOT NULL,               -- deposit, play, mark-new, delete, restore, share, ...
    message_id  INTEGER,                     -- kept after the message is purged
    inbox       TEXT NOT NULL DEFAULT '',
    detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_by_message ON audit (message_id);
