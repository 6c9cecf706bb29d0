-- 0006: the lockout also counts failures per peer address (whatever caller id it asserts),
-- and locks of one key get longer in a row (15 min, 1 h, 24 h): each lock row keeps how many
-- locks in a row its key has had, and stays after it ends as that key's history.
ALTER TABLE login_failures ADD COLUMN peer TEXT NOT NULL DEFAULT '';
-- Failures stored before this kept the peer only inside source ("<peer>/<caller id>").
UPDATE login_failures SET peer = substr(source, 1, instr(source, '/') - 1)
    WHERE instr(source, '/') > 0;
CREATE INDEX login_failures_peer ON login_failures (peer, at);

-- SQLite cannot widen a CHECK constraint in place: the table is rebuilt.
CREATE TABLE login_locks_new (
    scope    TEXT NOT NULL CHECK (scope IN ('ext', 'source', 'peer')),
    key      TEXT NOT NULL,
    until    TEXT NOT NULL,                  -- ISO 8601 UTC; in the past: the key's history
    strikes  INTEGER NOT NULL DEFAULT 1 CHECK (strikes >= 1),  -- locks in a row, this one too
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
INSERT INTO login_locks_new (scope, key, until) SELECT scope, key, until FROM login_locks;
DROP TABLE login_locks;
ALTER TABLE login_locks_new RENAME TO login_locks;
