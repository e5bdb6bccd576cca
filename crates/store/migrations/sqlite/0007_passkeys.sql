-- Passkeys registered for the portal (WebAuthn credentials). Public keys and counters are not
-- secret, so nothing here is sealed. The credential id is the primary key: a credential belongs
-- to one user only (WebAuthn Level 3, 7.1 step 26).
CREATE TABLE passkeys (
    credential_id    BLOB    PRIMARY KEY,
    subject          TEXT    NOT NULL,
    user_handle      BLOB    NOT NULL,
    name             TEXT    NOT NULL,
    public_key       BLOB    NOT NULL,
    sign_count       INTEGER NOT NULL,
    aaguid           TEXT    NOT NULL,
    backup_eligible  INTEGER NOT NULL,
    backed_up        INTEGER NOT NULL,
    created_at_ms    INTEGER NOT NULL,
    last_used_at_ms  INTEGER
);

CREATE INDEX passkeys_subject ON passkeys (subject);
