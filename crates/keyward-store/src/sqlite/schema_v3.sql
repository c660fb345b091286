-- keyward schema, version 3: the audit log. One row per call through the data plane, chained
-- per tenant by hash (see keyward-audit). `record_json` holds the record exactly as it was
-- hashed; the columns used to filter are computed from it, so they can never disagree with it.
CREATE TABLE audit (
    tenant      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    record_json TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    ts          TEXT GENERATED ALWAYS AS (json_extract(record_json, '$.ts')) VIRTUAL,
    session     TEXT GENERATED ALWAYS AS (json_extract(record_json, '$.session')) VIRTUAL,
    agent       TEXT GENERATED ALWAYS AS (json_extract(record_json, '$.agent')) VIRTUAL,
    PRIMARY KEY (tenant, seq)
) WITHOUT ROWID;
CREATE INDEX audit_session ON audit(tenant, session, seq);
CREATE INDEX audit_agent ON audit(tenant, agent, seq);
CREATE INDEX audit_ts ON audit(tenant, ts);
