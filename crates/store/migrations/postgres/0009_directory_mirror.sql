-- Same meaning as ../sqlite/0009_directory_mirror.sql. Ids and keys compare byte-wise
-- (COLLATE "C"): reports page through users in id order, which a locale collation would not keep.
-- The directory mirror (docs/directory-mirror.md): users, groups and directory roles with their
-- direct members, kept current with Microsoft Graph delta queries. `generation` stamps what a
-- collection's rounds wrote; a completed full round deletes what is stamped older.
-- The columns reports scan (every user, in id order): kept narrow, apart from the profile.
CREATE TABLE mirror_users (
    id            TEXT COLLATE "C"    PRIMARY KEY,
    upn           TEXT    NOT NULL,
    display_name  TEXT,
    enabled       BIGINT  NOT NULL,
    synced        BIGINT  NOT NULL,
    generation    BIGINT  NOT NULL
);

-- The user as the mirror crate serialized it (what identification hands to the flow).
CREATE TABLE mirror_profiles (
    id       TEXT COLLATE "C"    PRIMARY KEY,
    profile  TEXT    NOT NULL
);

-- Identification keys (canonical, chosen by the mirror): several users may share one.
CREATE TABLE mirror_user_keys (
    key      TEXT COLLATE "C" NOT NULL,
    user_id  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (key, user_id)
);
CREATE INDEX mirror_user_keys_user ON mirror_user_keys (user_id);

-- kind: 0 group, 1 directory role.
CREATE TABLE mirror_groups (
    id                TEXT COLLATE "C"    PRIMARY KEY,
    kind              BIGINT NOT NULL,
    display_name      TEXT,
    role_template_id  TEXT,
    generation        BIGINT NOT NULL
);

-- Direct members. member_type: 0 user, 1 group, 2 other; group_kind as mirror_groups.kind.
CREATE TABLE mirror_members (
    group_id     TEXT COLLATE "C"    NOT NULL,
    member_id    TEXT COLLATE "C"    NOT NULL,
    member_type  BIGINT NOT NULL,
    group_kind   BIGINT NOT NULL,
    generation   BIGINT NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
-- Covering: reports read every user's direct groups from the index alone (1.3 million
-- memberships for 500,000 users), and a user's parents at identification likewise.
CREATE INDEX mirror_members_member ON mirror_members (member_id, member_type, group_id, group_kind);

-- The registration report (userRegistrationDetails): each user's registered methods, as
-- Microsoft names them, comma-separated.
CREATE TABLE mirror_registrations (
    user_id     TEXT COLLATE "C"    PRIMARY KEY,
    methods     TEXT    NOT NULL,
    generation  BIGINT  NOT NULL
);

-- Per tracked collection: the link to go on from (link_done 1: a deltaLink between rounds),
-- the round's kind and progress, the last completed rounds and the last error.
CREATE TABLE mirror_sync (
    collection          TEXT    PRIMARY KEY,
    link                TEXT,
    link_done           BIGINT NOT NULL DEFAULT 0,
    full_round          BIGINT NOT NULL DEFAULT 0,
    generation          BIGINT NOT NULL DEFAULT 0,
    pages_in_round      BIGINT NOT NULL DEFAULT 0,
    last_round_ms       BIGINT,
    last_full_round_ms  BIGINT,
    error               TEXT,
    error_ms            BIGINT
);

-- The one syncer's lease, and when an administrator last asked for a round now.
CREATE TABLE mirror_lease (
    name            TEXT    PRIMARY KEY,
    holder          TEXT    NOT NULL,
    lease_until_ms  BIGINT NOT NULL,
    requested_ms    BIGINT
);
