//! The writer over the real SQLite store: group commit, per-tenant chains, the filters the API
//! uses, and a chain continued across a restart.

// Helpers outside `#[test]` functions are test code too.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{Duration, Utc};
use keyward_audit::{
    verify, AuditFilter, AuditMode, AuditRecord, AuditStore, AuditWriter, AuditWriterConfig,
    StoredAuditRecordExt,
};
use keyward_store::sqlite::SqliteStore;

fn record(tenant: &str, i: i64) -> AuditRecord {
    let mut r = AuditRecord::new(
        tenant,
        AuditMode::Proxy,
        "GET",
        "api.anthropic.com",
        "/v1/models",
    );
    r.ts = Utc::now() - Duration::seconds(1000 - i);
    r.session = Some(format!("ses_{}", i % 2));
    r.agent = Some(if i < 10 { "early" } else { "late" }.to_owned());
    r.status = Some(200);
    r
}

async fn all(store: &SqliteStore, tenant: &str) -> Vec<keyward_audit::StoredAuditRecord> {
    let filter = AuditFilter {
        limit: 10_000,
        ..AuditFilter::default()
    };
    store.query_audit(tenant, &filter).await.unwrap()
}

#[tokio::test]
async fn writer_over_sqlite_chains_queries_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyward.db");
    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let writer = AuditWriter::start(store.clone(), AuditWriterConfig::default());
    for i in 0..600 {
        let tenant = if i % 3 == 0 { "beta" } else { "acme" };
        writer.reserve().unwrap().write(record(tenant, i));
    }
    writer.flush_and_stop().await;

    let acme = all(&store, "acme").await;
    assert_eq!(acme.len(), 400);
    assert_eq!(verify(&acme), Ok(400));
    assert_eq!(verify(&all(&store, "beta").await), Ok(200));
    assert!(acme.iter().all(|r| r.record().unwrap().tenant == "acme"));

    let by = |f: AuditFilter| {
        let store = store.clone();
        async move { store.query_audit("acme", &f).await.unwrap() }
    };
    let s1 = by(AuditFilter {
        session: Some("ses_1".into()),
        limit: 1000,
        ..AuditFilter::default()
    })
    .await;
    assert!(!s1.is_empty());
    assert!(s1
        .iter()
        .all(|r| r.record().unwrap().session.as_deref() == Some("ses_1")));
    let early = by(AuditFilter {
        agent: Some("early".into()),
        limit: 1000,
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(early.len(), 6); // i in 0..10 that are not multiples of 3
    let cutoff = acme[100].record().unwrap().ts;
    let since = by(AuditFilter {
        since: Some(cutoff),
        limit: 1000,
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(since.first().map(|r| r.seq), Some(101));
    let page = by(AuditFilter {
        after_seq: Some(398),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), [399, 400]);

    // A restart: the new writer continues each chain where the store ends.
    drop(store);
    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let writer = AuditWriter::start(store.clone(), AuditWriterConfig::default());
    writer.reserve().unwrap().write(record("acme", 999));
    writer.flush_and_stop().await;
    let acme = all(&store, "acme").await;
    assert_eq!(acme.last().map(|r| r.seq), Some(401));
    assert_eq!(verify(&acme), Ok(401));
}
