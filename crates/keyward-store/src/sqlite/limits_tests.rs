use chrono::{TimeZone, Utc};

use super::*;
use crate::{AuditStore, Store, StoredAuditRecord, Tenant};

async fn store() -> (tempfile::TempDir, SqliteStore, TenantId) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db")).await.unwrap();
    let tenant = Tenant {
        id: TenantId(7),
        name: "acme".into(),
        wrapped_key: vec![1],
        created_at: Utc::now(),
    };
    store.create_tenant(&tenant).await.unwrap();
    (dir, store, tenant.id)
}

#[tokio::test]
async fn limits_round_trip_per_scope() {
    let (_dir, store, t) = store().await;
    assert_eq!(
        store.limits(t, LimitScope::Session, "ses_1").await.unwrap(),
        None
    );
    let session = Limits {
        requests_per_minute: Some(5),
        budget_usd_per_day: Some(2.5),
        ..Limits::default()
    };
    let tenant = Limits {
        concurrent_requests: Some(2),
        budget_usd_per_month: Some(100.0),
        ..Limits::default()
    };
    let now = Utc::now();
    store
        .put_limits(t, LimitScope::Session, "ses_1", &session, now)
        .await
        .unwrap();
    // The tenant scope ignores the name it is given.
    store
        .put_limits(t, LimitScope::Tenant, "me", &tenant, now)
        .await
        .unwrap();
    assert_eq!(
        store.limits(t, LimitScope::Tenant, "").await.unwrap(),
        Some(tenant)
    );
    assert_eq!(
        serde_json::to_value(tenant).unwrap(),
        serde_json::json!({"concurrent_requests": 2, "budget_usd_per_month": 100})
    );
    let found = store
        .limits_for_session(t, Some("coder"), "ses_1")
        .await
        .unwrap();
    assert_eq!(found.session, Some(session));
    assert_eq!(found.tenant, Some(tenant));
    assert_eq!(found.agent, None);
    assert!(store
        .delete_limits(t, LimitScope::Session, "ses_1")
        .await
        .unwrap());
    assert!(!store
        .delete_limits(t, LimitScope::Session, "ses_1")
        .await
        .unwrap());
    let found = store.limits_for_session(t, None, "ses_1").await.unwrap();
    assert_eq!(found.session, None);
}

fn record(seq: i64, day: u32, session: &str, model: &str, cost: &str, decision: &str) -> String {
    let _ = seq;
    format!(
        r#"{{"ts":"2025-03-{day:02}T10:00:00.000Z","tenant":"acme","agent":"coder","session":"{session}","user_id":"u1","model":"{model}","tokens_in":11,"tokens_out":7,"cost_usd":{cost},"decision":"{decision}","tokens_cache_read":3}}"#
    )
}

#[tokio::test]
async fn usage_groups_and_spend() {
    let (_dir, store, _t) = store().await;
    let rows = [
        record(1, 1, "s1", "gpt-4o-mini", "0.5", "forwarded"),
        record(2, 1, "s2", "gpt-4o-mini", "0.25", "free_tier"),
        record(3, 2, "s1", "mystery", "null", "forwarded"),
        record(4, 2, "s1", "gpt-4o-mini", "null", "blocked:rate_limited"),
    ];
    let stored: Vec<StoredAuditRecord> = rows
        .iter()
        .enumerate()
        .map(|(i, json)| StoredAuditRecord {
            seq: i as i64 + 1,
            tenant: "acme".into(),
            record_json: json.clone(),
            prev_hash: String::new(),
            hash: String::new(),
        })
        .collect();
    store.append_audit(&stored).await.unwrap();

    let query = |group_by| UsageQuery {
        group_by,
        since: None,
        until: None,
    };
    let by_model = store
        .usage("acme", &query(UsageGroupBy::Model))
        .await
        .unwrap();
    assert_eq!(by_model.len(), 2);
    assert_eq!(by_model[0].key.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(by_model[0].requests, 2);
    assert_eq!(by_model[0].input_tokens, 22);
    assert_eq!(by_model[0].output_tokens, 14);
    assert_eq!(by_model[0].cache_tokens, 6);
    assert_eq!(by_model[0].cost_usd, Some(0.75));
    assert_eq!(by_model[1].key.as_deref(), Some("mystery"));
    assert_eq!(by_model[1].cost_usd, None);

    let by_day = store
        .usage("acme", &query(UsageGroupBy::Day))
        .await
        .unwrap();
    let days: Vec<_> = by_day
        .iter()
        .map(|g| g.key.clone().unwrap_or_default())
        .collect();
    assert_eq!(days, ["2025-03-01", "2025-03-02"]);
    assert_eq!(by_day[1].requests, 1, "refused calls do not count");

    let since = Utc.with_ymd_and_hms(2025, 3, 2, 0, 0, 0).unwrap();
    let late = UsageQuery {
        since: Some(since),
        ..query(UsageGroupBy::Tenant)
    };
    let total = store.usage("acme", &late).await.unwrap();
    assert_eq!(total.len(), 1);
    assert_eq!(total[0].key.as_deref(), Some("acme"));
    assert_eq!(total[0].requests, 1);
    assert!(store.usage("other", &late).await.unwrap().is_empty());

    let start = Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap();
    let spent = |scope, name: &'static str| {
        let store = &store;
        async move { store.spent_usd("acme", scope, name, start).await.unwrap() }
    };
    assert_eq!(spent(LimitScope::Tenant, "").await, 0.75);
    assert_eq!(spent(LimitScope::Session, "s1").await, 0.5);
    assert_eq!(spent(LimitScope::Agent, "coder").await, 0.75);
    assert_eq!(spent(LimitScope::Agent, "nobody").await, 0.0);
}
