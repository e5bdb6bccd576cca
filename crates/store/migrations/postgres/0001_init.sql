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
-- it was counted against has passed. Denied attempts are not recorded.
CREATE TABLE throttle_hits (
    scope         TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    at_ms         BIGINT  NOT NULL,
    expires_at_ms BIGINT  NOT NULL
);
CREATE INDEX throttle_hits_key ON throttle_hits (scope, key, at_ms);
CREATE INDEX throttle_hits_expires ON throttle_hits (expires_at_ms);

-- Store::hit in one round trip: check every limit (max_n[i] attempts in window_ms[i]) and, when all
-- allow one more, record it. Atomic across connections and instances: the transaction-scoped
-- advisory lock on (scope, key) serialises hits on one key (it is released when the caller's
-- transaction ends: the implicit one of the single SELECT that calls this). A VOLATILE function
-- takes a fresh snapshot for each statement, so the counts below, read after the lock is held,
-- include every hit committed by the previous holder. Hits on other keys do not wait (a 64-bit hash
-- collision only makes two keys share a lock).
-- Returns allowed, remaining (the tightest limit's spare attempts after this one) and, when denied,
-- retry_after_ms (the longest wait among the limits that deny).
CREATE FUNCTION throttle_hit(p_scope TEXT, p_key TEXT, p_now BIGINT, max_n BIGINT[], window_ms BIGINT[],
                             OUT allowed BOOLEAN, OUT remaining BIGINT, OUT retry_after_ms BIGINT)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    i        INT;
    n        BIGINT;
    boundary BIGINT;
    longest  BIGINT := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('hit:' || p_scope || ':' || p_key, 0));
    remaining := NULL;
    retry_after_ms := 0;
    FOR i IN 1 .. cardinality(max_n) LOOP
        longest := GREATEST(longest, window_ms[i]);
        SELECT COUNT(*) INTO n FROM throttle_hits
         WHERE scope = p_scope AND key = p_key AND at_ms > p_now - window_ms[i];
        IF n >= max_n[i] THEN
            -- The attempt that must leave the window before one more fits: the max-th newest.
            SELECT at_ms INTO boundary FROM throttle_hits
             WHERE scope = p_scope AND key = p_key AND at_ms > p_now - window_ms[i]
             ORDER BY at_ms DESC OFFSET max_n[i] - 1 LIMIT 1;
            retry_after_ms := GREATEST(retry_after_ms, boundary + window_ms[i] - p_now);
        ELSE
            remaining := LEAST(COALESCE(remaining, max_n[i] - n - 1), max_n[i] - n - 1);
        END IF;
    END LOOP;
    IF retry_after_ms > 0 THEN
        allowed := FALSE;
        remaining := 0;
        RETURN;
    END IF;
    -- Keep this key's log short; other keys are left to purge_expired.
    DELETE FROM throttle_hits WHERE scope = p_scope AND key = p_key AND expires_at_ms <= p_now;
    INSERT INTO throttle_hits (scope, key, at_ms, expires_at_ms)
    VALUES (p_scope, p_key, p_now, p_now + longest);
    allowed := TRUE;
END;
$$;

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
