//! Concurrent writers: the caps hold exactly, a name is taken once, and no acknowledged
//! rotation is lost to a concurrent one.

use std::collections::BTreeSet;

use futures_util::future::join_all;
use serde_json::json;

use crate::support::{assert_error, bundle_path, list_bundles, start_server, SECRETS};

#[tokio::test]
async fn concurrent_creates_respect_quota_and_names() -> anyhow::Result<()> {
    let (_kw, admin) = start_server().await?;
    // 60 distinct names at once: exactly 50 stored, 10 refused with 429.
    let creates = (0..60).map(|i| {
        let admin = admin.clone();
        async move {
            let body = json!({"name": format!("c{i}"), "values": {"K": "v"}});
            admin.post(SECRETS, Some(body)).await
        }
    });
    let mut created = 0;
    for result in join_all(creates).await {
        let (status, body) = result?;
        match status.as_u16() {
            201 => created += 1,
            _ => assert_error(status, &body, 429, "bundle_quota_exceeded"),
        }
    }
    assert_eq!(created, 50);
    assert_eq!(list_bundles(&admin).await?.len(), 50);

    // One name, many creators: one 201, the rest 409.
    let (status, _) = admin.delete(&bundle_path("c0"), None).await?;
    assert_eq!(status, 200);
    let (status, _) = admin.delete(&bundle_path("c1"), None).await?;
    assert_eq!(status, 200);
    let same = (0..12).map(|i| {
        let admin = admin.clone();
        async move {
            let body = json!({"name": "contested", "values": {format!("K{i}"): "v"}});
            admin.post(SECRETS, Some(body)).await
        }
    });
    let mut winners = 0;
    for result in join_all(same).await {
        let (status, body) = result?;
        match status.as_u16() {
            201 => winners += 1,
            _ => assert_error(status, &body, 409, "secret_bundle_exists"),
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(list_bundles(&admin).await?.len(), 49);
    Ok(())
}

#[tokio::test]
async fn concurrent_patches_are_all_kept() -> anyhow::Result<()> {
    let (_kw, admin) = start_server().await?;
    let (status, _) = admin
        .post(
            SECRETS,
            Some(json!({"name": "hot", "values": {"BASE": "b"}})),
        )
        .await?;
    assert_eq!(status, 201);
    const WRITERS: usize = 24;
    let patches = (0..WRITERS).map(|i| {
        let admin = admin.clone();
        async move {
            let body = json!({"set": {format!("K{i}"): format!("v{i}")}});
            admin.patch(&bundle_path("hot"), Some(body)).await
        }
    });
    let mut versions = BTreeSet::new();
    for result in join_all(patches).await {
        let (status, body) = result?;
        assert_eq!(status, 200, "a concurrent PATCH was refused: {body}");
        versions.insert(body["version"].as_i64().unwrap_or(-1));
    }
    // Every PATCH was its own rotation: versions 2..=WRITERS+1, each answered once.
    let want: BTreeSet<i64> = (2..=i64::try_from(WRITERS)? + 1).collect();
    assert_eq!(versions, want);
    let (status, view) = admin.get(&bundle_path("hot"), None).await?;
    assert_eq!(status, 200);
    assert_eq!(view["version"], json!(WRITERS + 1));
    let keys = view["key_names"].as_array().map(Vec::len);
    assert_eq!(
        keys,
        Some(WRITERS + 1),
        "a concurrent PATCH was lost: {view}"
    );
    Ok(())
}
