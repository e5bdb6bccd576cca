-- On-premises gateways (latchkey-gateway run) and their job queue. Times in Unix ms.

-- One row per registered gateway. credential_hash is SHA-256 of the secret part of the
-- credential printed once by `latchkey gateway register`; the secret itself is never stored.
CREATE TABLE gateways (
    id              TEXT    PRIMARY KEY,
    name            TEXT    NOT NULL,
    credential_hash BLOB    NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    last_seen_at_ms INTEGER,
    capabilities    TEXT    NOT NULL DEFAULT '[]',  -- JSON array of job kinds, from the last poll
    revoked_at_ms   INTEGER
);
-- A name is unique among live gateways (a revoked name can be registered again).
CREATE UNIQUE INDEX gateways_live_name ON gateways (name) WHERE revoked_at_ms IS NULL;

-- Jobs for gateways. `secret` (reset jobs: the new password) is AEAD ciphertext bound to
-- (table, subject, job id); it is set to NULL when the job is claimed or expires.
CREATE TABLE gateway_jobs (
    id              TEXT    PRIMARY KEY,
    kind            TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    target          TEXT    NOT NULL,
    secret          BLOB,
    correlation_id  TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('queued', 'claimed', 'succeeded', 'failed', 'expired')),
    gateway_id      TEXT    REFERENCES gateways (id),
    claim_token     TEXT    UNIQUE,
    created_at_ms   INTEGER NOT NULL,
    expires_at_ms   INTEGER NOT NULL,
    claimed_at_ms   INTEGER,
    finished_at_ms  INTEGER,
    result          TEXT
);
CREATE INDEX gateway_jobs_queue ON gateway_jobs (state, created_at_ms);
