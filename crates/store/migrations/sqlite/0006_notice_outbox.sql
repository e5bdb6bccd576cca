-- Notices that security depends on (password changed, pass issued, methods changed, reset link
-- issued, security contacts) wait here until delivered, so a crash or a restart loses none: any
-- portal instance claims due rows for a lease, delivers them, and deletes them (at least once).
-- The payload (recipient and notice) is sealed with the store key.
CREATE TABLE notice_outbox (
    id                  TEXT    PRIMARY KEY,
    subject             TEXT,
    correlation_id      TEXT    NOT NULL,
    kind                TEXT    NOT NULL,
    payload             BLOB    NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0,
    created_at_ms       INTEGER NOT NULL,
    next_attempt_at_ms  INTEGER NOT NULL,
    lease_until_ms      INTEGER
);

CREATE INDEX notice_outbox_due ON notice_outbox (next_attempt_at_ms);
