-- keyward schema, version 4: agents (seeds 002 and 004). An agent is a named kind of workload
-- with bundles attached to it, a gateway token (stored as its SHA-256 digest only) and an
-- optional manifest of the secret names it needs. `session_reads` records, per session, the
-- entry versions the session last received in its env: what the "Synced" indicator compares.
CREATE TABLE agents (
    id           INTEGER PRIMARY KEY,
    tenant_id    INTEGER NOT NULL REFERENCES tenants(id),
    name         TEXT NOT NULL,
    egress       TEXT,
    manifest     TEXT NOT NULL,
    token_digest BLOB NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    UNIQUE (tenant_id, name)
);

-- `position` keeps attach order: it decides which bundle a session lists first.
CREATE TABLE agent_bundles (
    agent_id  INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    bundle_id INTEGER NOT NULL REFERENCES bundles(id),
    position  INTEGER NOT NULL,
    PRIMARY KEY (agent_id, bundle_id)
);
CREATE INDEX agent_bundles_by_bundle ON agent_bundles(bundle_id);

CREATE TABLE session_reads (
    session_id TEXT NOT NULL REFERENCES sessions(id),
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    PRIMARY KEY (session_id, name)
);
