-- keyward schema, version 5: limits (requests and tokens per minute, concurrency, spend per UTC
-- day and month) set by a tenant on itself, one of its agents or one of its sessions. `name`
-- is '' for the tenant scope; `limits` is the JSON object the API took (absent = no limit).
-- Spend so far is not kept here: it is summed from the audit log's `cost_usd`.
CREATE TABLE limits (
    tenant_id  INTEGER NOT NULL REFERENCES tenants(id),
    scope      TEXT NOT NULL CHECK (scope IN ('tenant', 'agent', 'session')),
    name       TEXT NOT NULL,
    limits     TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, scope, name)
) WITHOUT ROWID;
