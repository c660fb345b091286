//! [`AuditStore`] for SQLite: the `audit` table of `schema_v3.sql`. A batch is one
//! transaction, so the writer's group commit costs one fsync however many records it holds.

use std::borrow::Cow;

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::rows::ts;
use super::{is_unique_violation, SqliteStore};
use crate::{AuditFilter, AuditStore, Result, StoreError, StoredAuditRecord};

/// Records per INSERT statement in a batch append (8 binds a row: far below SQLite's limit).
const AUDIT_ROWS_PER_STATEMENT: usize = 128;

/// The fields of a record the table indexes, read from its JSON (borrowed, the rest skipped).
#[derive(serde::Deserialize)]
struct FilterColumns<'a> {
    #[serde(borrow)]
    ts: Cow<'a, str>,
    #[serde(borrow, default)]
    session: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    agent: Option<Cow<'a, str>>,
}

impl<'a> FilterColumns<'a> {
    fn of(record_json: &'a str) -> Result<Self> {
        serde_json::from_str(record_json).map_err(|_| StoreError::Corrupt("audit record JSON"))
    }
}

fn record_from_row(row: &SqliteRow) -> Result<StoredAuditRecord> {
    Ok(StoredAuditRecord {
        seq: row.try_get("seq")?,
        tenant: row.try_get("tenant")?,
        record_json: row.try_get("record_json")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, records: &[StoredAuditRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        // Multi-row INSERTs: one statement (one round trip to SQLite's thread) per chunk
        // instead of one per record.
        for chunk in records.chunks(AUDIT_ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO audit (tenant, seq, record_json, prev_hash, hash, ts, session, agent) ",
            );
            let columns: Vec<FilterColumns<'_>> = chunk
                .iter()
                .map(|r| FilterColumns::of(&r.record_json))
                .collect::<Result<_>>()?;
            insert.push_values(chunk.iter().zip(&columns), |mut row, (record, cols)| {
                row.push_bind(&record.tenant)
                    .push_bind(record.seq)
                    .push_bind(&record.record_json)
                    .push_bind(&record.prev_hash)
                    .push_bind(&record.hash)
                    .push_bind(cols.ts.as_ref())
                    .push_bind(cols.session.as_deref())
                    .push_bind(cols.agent.as_deref());
            });
            insert.build().execute(&mut *tx).await.map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Exists
                } else {
                    e.into()
                }
            })?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn last_audit(&self, tenant: &str) -> Result<Option<(i64, String)>> {
        let row =
            sqlx::query("SELECT seq, hash FROM audit WHERE tenant = ? ORDER BY seq DESC LIMIT 1")
                .bind(tenant)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| Ok((r.try_get("seq")?, r.try_get("hash")?)))
            .transpose()
    }

    async fn query_audit(
        &self,
        tenant: &str,
        filter: &AuditFilter,
    ) -> Result<Vec<StoredAuditRecord>> {
        let mut sql: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT tenant, seq, record_json, prev_hash, hash FROM audit WHERE tenant = ",
        );
        sql.push_bind(tenant);
        if let Some(session) = &filter.session {
            sql.push(" AND session = ").push_bind(session);
        }
        if let Some(agent) = &filter.agent {
            sql.push(" AND agent = ").push_bind(agent);
        }
        // `ts` is always written as `YYYY-MM-DDTHH:MM:SS.mmmZ`, so text order is time order.
        if let Some(since) = filter.since {
            sql.push(" AND ts >= ").push_bind(ts(since));
        }
        if let Some(until) = filter.until {
            sql.push(" AND ts < ").push_bind(ts(until));
        }
        if let Some(after) = filter.after_seq {
            sql.push(" AND seq > ").push_bind(after);
        }
        if let Some(before) = filter.before_seq {
            sql.push(" AND seq < ").push_bind(before);
        }
        sql.push(if filter.newest_first {
            " ORDER BY seq DESC LIMIT "
        } else {
            " ORDER BY seq ASC LIMIT "
        });
        sql.push_bind(i64::from(filter.limit));
        sql.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(record_from_row)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tenant: &str, seq: i64, session: &str, ts: &str) -> StoredAuditRecord {
        StoredAuditRecord {
            seq,
            tenant: tenant.to_owned(),
            record_json: format!(
                r#"{{"ts":"{ts}","tenant":"{tenant}","agent":"a","session":"{session}"}}"#
            ),
            prev_hash: format!("p{seq}"),
            hash: format!("h{seq}"),
        }
    }

    #[tokio::test]
    async fn appends_queries_and_isolates_tenants() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).await.unwrap();
        assert_eq!(store.last_audit("acme").await.unwrap(), None);
        store
            .append_audit(&[
                record("acme", 1, "s1", "2025-01-01T00:00:00.000Z"),
                record("acme", 2, "s2", "2025-01-02T00:00:00.000Z"),
                record("acme", 3, "s1", "2025-01-03T00:00:00.000Z"),
                record("other", 1, "s1", "2025-01-01T00:00:00.000Z"),
            ])
            .await
            .unwrap();
        assert_eq!(
            store.last_audit("acme").await.unwrap(),
            Some((3, "h3".to_owned()))
        );

        let seqs = |v: Vec<StoredAuditRecord>| v.iter().map(|r| r.seq).collect::<Vec<_>>();
        let all = store
            .query_audit("acme", &AuditFilter::default())
            .await
            .unwrap();
        assert_eq!(seqs(all.clone()), [1, 2, 3]);
        assert!(all.iter().all(|r| r.tenant == "acme"));

        let filter = AuditFilter {
            session: Some("s1".into()),
            ..AuditFilter::default()
        };
        assert_eq!(
            seqs(store.query_audit("acme", &filter).await.unwrap()),
            [1, 3]
        );

        let since = chrono::DateTime::parse_from_rfc3339("2025-01-02T00:00:00Z")
            .unwrap()
            .to_utc();
        let filter = AuditFilter {
            since: Some(since),
            ..AuditFilter::default()
        };
        assert_eq!(
            seqs(store.query_audit("acme", &filter).await.unwrap()),
            [2, 3]
        );
        let filter = AuditFilter {
            until: Some(since),
            ..AuditFilter::default()
        };
        assert_eq!(seqs(store.query_audit("acme", &filter).await.unwrap()), [1]);

        let filter = AuditFilter {
            after_seq: Some(1),
            limit: 1,
            ..AuditFilter::default()
        };
        assert_eq!(seqs(store.query_audit("acme", &filter).await.unwrap()), [2]);
        let filter = AuditFilter {
            newest_first: true,
            limit: 2,
            ..AuditFilter::default()
        };
        assert_eq!(
            seqs(store.query_audit("acme", &filter).await.unwrap()),
            [3, 2]
        );
    }

    #[tokio::test]
    async fn a_batch_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).await.unwrap();
        let ts = "2025-01-01T00:00:00.000Z";
        store
            .append_audit(&[record("acme", 1, "s", ts)])
            .await
            .unwrap();
        let clash = store
            .append_audit(&[record("acme", 2, "s", ts), record("acme", 1, "s", ts)])
            .await;
        assert!(matches!(clash, Err(StoreError::Exists)));
        assert_eq!(
            store.last_audit("acme").await.unwrap(),
            Some((1, "h1".to_owned()))
        );
    }
}
