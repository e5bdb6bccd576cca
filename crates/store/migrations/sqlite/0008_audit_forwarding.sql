-- Audit forwarding to SIEM outputs (syslog, webhook): per output, the position of the last
-- event delivered (the id: SQLite commits one writer at a time, so ids grow in commit order;
-- cursor_tx is PostgreSQL's and stays 0 here) and the lease of the instance delivering it.
CREATE TABLE audit_forwarding (
    output          TEXT    PRIMARY KEY,
    cursor_tx       INTEGER NOT NULL,
    cursor_id       INTEGER NOT NULL,
    holder          TEXT    NOT NULL,
    lease_until_ms  INTEGER NOT NULL,
    delivered       INTEGER NOT NULL DEFAULT 0,
    updated_at_ms   INTEGER NOT NULL
);
