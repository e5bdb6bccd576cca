-- Latchkey state, SQLite dialect. Times are INTEGER Unix milliseconds (UTC), columns end in _ms.
-- Object ids are canonical lower-case GUID text. JSON columns hold TEXT that SQLite's json1 reads.
-- The PostgreSQL set (migrations/postgres/) must keep the same numbering and meaning.

-- One row per self-service flow (reset, unlock, enrollment, ...). The browser holds a bearer token;
-- only its SHA-256 is stored, so a copy of the database does not hand out live flows. `id` is the
-- stable internal handle (codes and audit refer to it); the token changes after each verified step.
CREATE TABLE flows (
    id              TEXT    PRIMARY KEY,
    token_hash      BLOB    NOT NULL UNIQUE,
    subject         TEXT    NOT NULL,               -- fixed at identification; no statement updates it
    purpose         TEXT    NOT NULL,
    step            TEXT    NOT NULL,
    verified        TEXT    NOT NULL DEFAULT '[]',  -- JSON array of method names, in order verified
    data            TEXT    NOT NULL DEFAULT '{}',  -- JSON object owned by the flow code
    created_at_ms   INTEGER NOT NULL,
    last_seen_at_ms INTEGER NOT NULL,
    expires_at_ms   INTEGER NOT NULL,               -- absolute deadline (created + absolute lifetime)
    idle_ms         INTEGER NOT NULL CHECK (idle_ms > 0)
);
CREATE INDEX flows_subject ON flows (subject);
CREATE INDEX flows_expires ON flows (expires_at_ms);

-- Issued one-time codes. Opaque to the store: the verify crate defines code_hash (a keyed hash)
-- and binding (e.g. a hash of the destination). A new code for (subject, method) voids the older
-- open ones, so only the newest can be used.
CREATE TABLE codes (
    id             INTEGER PRIMARY KEY,
    flow_id        TEXT    NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    subject        TEXT    NOT NULL,
    method         TEXT    NOT NULL,
    seq            INTEGER NOT NULL,
    code_hash      BLOB    NOT NULL,
    binding        BLOB    NOT NULL,
    issued_at_ms   INTEGER NOT NULL,
    expires_at_ms  INTEGER NOT NULL,
    tries_left     INTEGER NOT NULL CHECK (tries_left >= 0),
    consumed_at_ms INTEGER,
    voided_at_ms   INTEGER,
    UNIQUE (subject, method, seq)
);
CREATE INDEX codes_flow ON codes (flow_id, method);
CREATE INDEX codes_expires ON codes (expires_at_ms);

-- Sliding-window throttles: one row per allowed attempt, kept until the longest window of the
-- limits it was counted against has passed (expires_at_ms). Denied attempts are not recorded, so
-- hammering a closed door does not push its opening further away.
CREATE TABLE throttle_hits (
    scope         TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    at_ms         INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
CREATE INDEX throttle_hits_key ON throttle_hits (scope, key, at_ms);
CREATE INDEX throttle_hits_expires ON throttle_hits (expires_at_ms);

-- Enrolled methods, at most one active and one pending (awaiting confirmation) per user and method.
-- `secret` is AEAD ciphertext whose associated data binds it to (table, subject, method).
CREATE TABLE enrollments (
    subject         TEXT    NOT NULL,
    method          TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'active')),
    data            TEXT    NOT NULL DEFAULT '{}',
    secret          BLOB,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    confirmed_at_ms INTEGER,
    last_used_at_ms INTEGER,
    last_used_step  INTEGER,                        -- TOTP replay guard: highest accepted time step
    PRIMARY KEY (subject, method, state)
);

-- Security events. Append-only: the triggers below refuse UPDATE and DELETE.
CREATE TABLE audit_events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms          INTEGER NOT NULL,
    correlation_id TEXT    NOT NULL,
    actor          TEXT    NOT NULL,
    subject        TEXT,
    event_type     TEXT    NOT NULL,
    method         TEXT,
    outcome        TEXT    NOT NULL,
    reason         TEXT,
    details        TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_subject ON audit_events (subject, id);
CREATE INDEX audit_events_type ON audit_events (event_type, id);
CREATE INDEX audit_events_at ON audit_events (at_ms);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;
