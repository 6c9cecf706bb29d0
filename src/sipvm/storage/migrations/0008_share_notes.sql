-- 0008: the note a member wrote when sharing a message travels with the shared copy, so the
-- recipient reads it beside the message (shared_by, from 0001, says who shared it). NULL on
-- deposits and on shares without a note.
ALTER TABLE messages ADD COLUMN note TEXT;
