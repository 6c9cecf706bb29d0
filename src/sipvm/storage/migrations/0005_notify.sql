-- 0005: notifications. The notifier reads the audit log and the directory revisions from where
-- it stopped (cursors survive restarts, so no event is notified twice or lost); emails wait in
-- an outbox until sent.

CREATE TABLE notify_cursors (
    name      TEXT PRIMARY KEY,              -- 'audit' (audit.id) or 'directory' (rev)
    position  INTEGER NOT NULL
) WITHOUT ROWID;
-- An existing store starts from now: its history is not notified.
INSERT INTO notify_cursors (name, position) SELECT 'audit', COALESCE(MAX(id), 0) FROM audit;
INSERT INTO notify_cursors (name, position)
    SELECT 'directory', COALESCE(MAX(rev), 0) FROM directory_revisions;

CREATE TABLE email_outbox (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('new-message', 'access-granted')),
    recipient   TEXT NOT NULL,               -- the member's extension (or the inbox's own)
    address     TEXT NOT NULL,
    message_id  INTEGER,                     -- new-message: the message
    inbox       TEXT NOT NULL DEFAULT '',
    detail      TEXT NOT NULL DEFAULT '',    -- access-granted: JSON list of inboxes
    created_at  TEXT NOT NULL,               -- ISO 8601 UTC
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     TEXT NOT NULL,               -- when to (re)try
    last_error  TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'failed'))
);
CREATE INDEX email_outbox_due ON email_outbox (status, next_at);
