-- PostgreSQL dialect of ../sqlite/0006_notice_outbox.sql: notices that security depends on wait
-- here until an instance delivered them (claimed for a lease, deleted when done); the payload is
-- sealed with the store key.
CREATE TABLE notice_outbox (
    id                  TEXT    PRIMARY KEY,
    subject             TEXT,
    correlation_id      TEXT    NOT NULL,
    kind                TEXT    NOT NULL,
    payload             BYTEA   NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0,
    created_at_ms       BIGINT  NOT NULL,
    next_attempt_at_ms  BIGINT  NOT NULL,
    lease_until_ms      BIGINT
);

CREATE INDEX notice_outbox_due ON notice_outbox (next_attempt_at_ms);
