//! Seed 001's caps at their exact edges: 64 KiB values, 50 keys (secrets and variables
//! together), 63-character names, 50 bundles per tenant.

use reqwest::Method;
use serde_json::json;

use crate::support::{
    assert_error, bundle_path, list_bundles, split_keys, start_server, KIB64, SECRETS,
};

#[tokio::test]
async fn create_accepts_values_and_counts_at_the_caps() -> anyhow::Result<()> {
    let (_kw, admin) = start_server().await?;
    let exact = "y".repeat(KIB64);
    let exact_variable = "w".repeat(KIB64);
    let (k50_values, k50_variables) = split_keys(50);
    let accepted = [
        json!({"name": "a".repeat(63), "values": {"A": exact}}),
        json!({"name": "0", "variables": {"B": exact_variable}}),
        json!({"name": "fifty", "values": k50_values, "variables": k50_variables}),
        json!({"name": "empty-bundle"}),
        json!({"name": "mixed-case-keys", "values": {"Database_Url": "x", "_private": "y"}}),
        json!({"name": "keywardx", "values": {"KEYWARDX": "not reserved"}}),
    ];
    for body in accepted {
        let resp = admin
            .send(Method::POST, SECRETS, Some(body.clone()))
            .await?;
        assert_eq!(resp.status, 201, "{body:.80}: {}", resp.text);
        assert!(!resp.text.contains(&exact), "a secret value came back");
    }
    let (status, zero) = admin.get(&bundle_path("0"), None).await?;
    assert_eq!(status, 200);
    assert_eq!(
        zero["variables"]["B"],
        json!(exact_variable),
        "a 64 KiB variable reads back"
    );
    let (status, fifty) = admin.get(&bundle_path("fifty"), None).await?;
    assert_eq!(status, 200);
    assert_eq!(fifty["key_names"].as_array().map(Vec::len), Some(50));
    assert_eq!(fifty["variables"].as_object().map(|m| m.len()), Some(25));
    let sorted: Vec<String> = {
        let mut k: Vec<String> = fifty["key_names"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        k.sort();
        k
    };
    assert_eq!(fifty["key_names"], json!(sorted), "key_names sorted");
    Ok(())
}

#[tokio::test]
async fn quota_is_50_bundles_then_429() -> anyhow::Result<()> {
    let (_kw, admin) = start_server().await?;
    for i in 0..50 {
        let (status, body) = admin
            .post(
                SECRETS,
                Some(json!({"name": format!("b{i}"), "values": {"K": "v"}})),
            )
            .await?;
        assert_eq!(status, 201, "bundle {i}: {body}");
    }
    let before = list_bundles(&admin).await?;
    assert_eq!(before.len(), 50);
    let (status, body) = admin
        .post(SECRETS, Some(json!({"name": "b50", "values": {"K": "v"}})))
        .await?;
    assert_error(status, &body, 429, "bundle_quota_exceeded");
    assert_eq!(list_bundles(&admin).await?, before);
    // Deleting one frees a slot.
    let (status, _) = admin.delete(&bundle_path("b7"), None).await?;
    assert_eq!(status, 200);
    let (status, body) = admin
        .post(SECRETS, Some(json!({"name": "b50", "values": {"K": "v"}})))
        .await?;
    assert_eq!(status, 201, "{body}");
    let (status, body) = admin
        .post(SECRETS, Some(json!({"name": "b51", "values": {"K": "v"}})))
        .await?;
    assert_error(status, &body, 429, "bundle_quota_exceeded");
    Ok(())
}
