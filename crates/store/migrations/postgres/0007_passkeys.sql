-- PostgreSQL dialect of ../sqlite/0007_passkeys.sql: passkeys registered for the portal, one
-- row per credential; the credential id belongs to one user only.
CREATE TABLE passkeys (
    credential_id    BYTEA   PRIMARY KEY,
    subject          TEXT    NOT NULL,
    user_handle      BYTEA   NOT NULL,
    name             TEXT    NOT NULL,
    public_key       BYTEA   NOT NULL,
    sign_count       BIGINT  NOT NULL,
    aaguid           TEXT    NOT NULL,
    backup_eligible  BOOLEAN NOT NULL,
    backed_up        BOOLEAN NOT NULL,
    created_at_ms    BIGINT  NOT NULL,
    last_used_at_ms  BIGINT
);

CREATE INDEX passkeys_subject ON passkeys (subject);
