-- keyward schema, version 3: the audit log. One row per call through the data plane, chained
-- per tenant by hash (see keyward-audit). `record_json` holds the record exactly as it was
-- hashed; `ts`, `session` and `agent` are copied from it at insert, for filtering (an edit of
-- either side breaks the hash chain, which `audit verify` reports). A rowid table: rows are
-- ~1 KiB, too large for a WITHOUT ROWID b-tree to stay cheap.
CREATE TABLE audit (
    tenant      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    record_json TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    ts          TEXT NOT NULL,
    session     TEXT,
    agent       TEXT,
    UNIQUE (tenant, seq)
);
CREATE INDEX audit_session ON audit(tenant, session, seq);
CREATE INDEX audit_agent ON audit(tenant, agent, seq);
CREATE INDEX audit_ts ON audit(tenant, ts);
