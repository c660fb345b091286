-- keyward schema, version 1. Values of secrets are stored sealed (AES-256-GCM) only.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE tenants (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    wrapped_key BLOB NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    tenant_id  INTEGER NOT NULL REFERENCES tenants(id),
    kind       TEXT NOT NULL,
    digest     BLOB NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE bundles (
    id              INTEGER PRIMARY KEY,
    tenant_id       INTEGER NOT NULL REFERENCES tenants(id),
    name            TEXT NOT NULL,
    version         INTEGER NOT NULL,
    created_at      TEXT NOT NULL,
    last_rotated_at TEXT,
    deleted_at      TEXT
);
-- One live bundle per name; deleted ones stay for the sessions that resolved them.
CREATE UNIQUE INDEX bundles_live_name ON bundles(tenant_id, name) WHERE deleted_at IS NULL;

CREATE TABLE entries (
    bundle_id INTEGER NOT NULL REFERENCES bundles(id),
    name      TEXT NOT NULL,
    version   INTEGER NOT NULL,
    sealed    BLOB,
    plain     TEXT,
    injection TEXT,
    PRIMARY KEY (bundle_id, name),
    CHECK ((sealed IS NULL) <> (plain IS NULL))
);
