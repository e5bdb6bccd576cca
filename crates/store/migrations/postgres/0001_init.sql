-- Latchkey state, PostgreSQL dialect: the same tables, columns and meaning as ../sqlite/0001_init.sql
-- (same numbering; a new version adds a file in both folders). Times are BIGINT Unix milliseconds
-- (UTC), columns end in _ms, so both backends share one conversion and one notion of "now" (the
-- caller's clock, never the database server's). Object ids are canonical lower-case GUID text.
-- Every table name is unqualified: the store runs in the connection's search_path (one schema per
-- deployment, or per test).

-- One row per self-service flow. Only the SHA-256 of the browser's bearer token is stored.
CREATE TABLE flows (
    id              TEXT    PRIMARY KEY,
    token_hash      BYTEA   NOT NULL UNIQUE,
    subject         TEXT    NOT NULL,               -- fixed at identification; no statement updates it
    purpose         TEXT    NOT NULL,
    step            TEXT    NOT NULL,
    verified        JSONB   NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(verified) = 'array'),
    data            JSONB   NOT NULL DEFAULT '{}',
    created_at_ms   BIGINT  NOT NULL,
    last_seen_at_ms BIGINT  NOT NULL,
    expires_at_ms   BIGINT  NOT NULL,               -- absolute deadline (created + absolute lifetime)
    idle_ms         BIGINT  NOT NULL CHECK (idle_ms > 0)
);
CREATE INDEX flows_subject ON flows (subject);
CREATE INDEX flows_expires ON flows (expires_at_ms);

-- Issued one-time codes (opaque keyed hash and binding). A new code for (subject, method) voids the
-- older open ones; `seq` numbers them per (subject, method).
CREATE TABLE codes (
    id             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flow_id        TEXT    NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    subject        TEXT    NOT NULL,
    method         TEXT    NOT NULL,
    seq            BIGINT  NOT NULL,
    code_hash      BYTEA   NOT NULL,
    binding        BYTEA   NOT NULL,
    issued_at_ms   BIGINT  NOT NULL,
    expires_at_ms  BIGINT  NOT NULL,
    tries_left     BIGINT  NOT NULL CHECK (tries_left >= 0),
    consumed_at_ms BIGINT,
    voided_at_ms   BIGINT,
    UNIQUE (subject, method, seq)
);
CREATE INDEX codes_flow ON codes (flow_id, method, seq);
CREATE INDEX codes_expires ON codes (expires_at_ms);

-- Sliding-window throttles: one row per allowed attempt, kept until the longest window of the limits
-- it was counted against has passed. Writers of one (scope, key) are serialised by a
-- transaction-scoped advisory lock (see src/postgres/throttle.rs), not by a table lock.
CREATE TABLE throttle_hits (
    scope         TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    at_ms         BIGINT  NOT NULL,
    expires_at_ms BIGINT  NOT NULL
);
CREATE INDEX throttle_hits_key ON throttle_hits (scope, key, at_ms);
CREATE INDEX throttle_hits_expires ON throttle_hits (expires_at_ms);

-- Enrolled methods, at most one active and one pending per user and method. `secret` is AEAD
-- ciphertext whose associated data binds it to (table, subject, method).
CREATE TABLE enrollments (
    subject         TEXT    NOT NULL,
    method          TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'active')),
    data            JSONB   NOT NULL DEFAULT '{}',
    secret          BYTEA,
    created_at_ms   BIGINT  NOT NULL,
    updated_at_ms   BIGINT  NOT NULL,
    confirmed_at_ms BIGINT,
    last_used_at_ms BIGINT,
    last_used_step  BIGINT,                         -- TOTP replay guard: highest accepted time step
    PRIMARY KEY (subject, method, state)
);

-- Security events. Append-only: the trigger below refuses UPDATE, DELETE and TRUNCATE, whoever
-- asks (a revoked grant would not stop the owner role the portal connects as).
CREATE TABLE audit_events (
    id             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms          BIGINT  NOT NULL,
    correlation_id TEXT    NOT NULL,
    actor          TEXT    NOT NULL,
    subject        TEXT,
    event_type     TEXT    NOT NULL,
    method         TEXT,
    outcome        TEXT    NOT NULL,
    reason         TEXT,
    details        JSONB   NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_subject ON audit_events (subject, id);
CREATE INDEX audit_events_type ON audit_events (event_type, id);
CREATE INDEX audit_events_at ON audit_events (at_ms);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
