-- Audit forwarding to SIEM outputs (syslog, webhook). Same meaning as
-- ../sqlite/0008_audit_forwarding.sql, plus: identity values are handed out before commit, so
-- ids alone do not give commit order across concurrent writers. Each event records its writing
-- transaction (`tx`); a forwarder reads events in (tx, id) order and only those of transactions
-- older than every running one (pg_snapshot_xmin), which can no longer be joined by an earlier
-- event. Existing rows get the migration's own transaction id (they are all final already).
ALTER TABLE audit_events ADD COLUMN tx xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX audit_events_forwarding ON audit_events (tx, id);

CREATE TABLE audit_forwarding (
    output          TEXT    PRIMARY KEY,
    cursor_tx       BIGINT  NOT NULL,
    cursor_id       BIGINT  NOT NULL,
    holder          TEXT    NOT NULL,
    lease_until_ms  BIGINT  NOT NULL,
    delivered       BIGINT  NOT NULL DEFAULT 0,
    updated_at_ms   BIGINT  NOT NULL
);
