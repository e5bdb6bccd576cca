-- On-premises gateways and their job queue, PostgreSQL dialect of ../sqlite/0003_gateway.sql.

-- credential_hash is SHA-256 of the secret part of the credential `latchkey gateway register`
-- printed once; the secret itself is never stored.
CREATE TABLE gateways (
    id              TEXT    PRIMARY KEY,
    name            TEXT    NOT NULL,
    credential_hash BYTEA   NOT NULL,
    created_at_ms   BIGINT  NOT NULL,
    last_seen_at_ms BIGINT,
    capabilities    JSONB   NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(capabilities) = 'array'),
    revoked_at_ms   BIGINT
);
CREATE UNIQUE INDEX gateways_live_name ON gateways (name) WHERE revoked_at_ms IS NULL;

-- `secret` (reset jobs: the new password) is AEAD ciphertext bound to (table, subject, job id),
-- set to NULL when the job is claimed or expires.
CREATE TABLE gateway_jobs (
    id              TEXT    PRIMARY KEY,
    kind            TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    target          JSONB   NOT NULL,
    secret          BYTEA,
    correlation_id  TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('queued', 'claimed', 'succeeded', 'failed', 'expired')),
    gateway_id      TEXT    REFERENCES gateways (id),
    claim_token     TEXT    UNIQUE,
    created_at_ms   BIGINT  NOT NULL,
    expires_at_ms   BIGINT  NOT NULL,
    claimed_at_ms   BIGINT,
    finished_at_ms  BIGINT,
    result          JSONB
);
CREATE INDEX gateway_jobs_queue ON gateway_jobs (state, created_at_ms);
