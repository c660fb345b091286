-- keyward schema, version 2: sessions. A session stores its token as a SHA-256 digest only and
-- the request's `env` sealed (it may carry secrets). Bundle references keep the bundle id
-- resolved at creation: a deleted bundle's entries stay, so running sessions keep resolving.
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    tenant_id    INTEGER NOT NULL REFERENCES tenants(id),
    token_digest BLOB NOT NULL UNIQUE,
    agent        TEXT,
    mode         TEXT NOT NULL,
    llm          TEXT NOT NULL,
    user_id      TEXT,
    sealed_env   BLOB NOT NULL,
    egress       TEXT,
    created_at   TEXT NOT NULL,
    ended_at     TEXT
);
CREATE INDEX sessions_by_tenant ON sessions(tenant_id, created_at);

CREATE TABLE session_bundles (
    session_id TEXT NOT NULL REFERENCES sessions(id),
    position   INTEGER NOT NULL,
    bundle_id  INTEGER NOT NULL REFERENCES bundles(id),
    name       TEXT NOT NULL,
    PRIMARY KEY (session_id, position)
);
