//! Seed 001's Secrets API, row by row: create / list / get / rotate (PUT) / delete, every
//! status code of its tables, the caps, and "a failed request changes nothing".

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{
    assert_error, bundle_path, is_utc_rfc3339, list_bundles, send_raw, split_keys, start_server,
    KIB64, SECRETS,
};

#[track_caller]
fn assert_view_shape(view: &Value, name: &str, key_names: &[&str]) {
    let fields: BTreeSet<&str> = view
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let want: BTreeSet<&str> = [
        "name",
        "key_names",
        "created_at",
        "last_rotated_at",
        "variables",
        "injections",
        "version",
    ]
    .into();
    assert_eq!(fields, want, "view fields: {view}");
    assert_eq!(view["name"], name);
    assert_eq!(view["key_names"], json!(key_names));
    let created = view["created_at"].as_str().unwrap_or_default();
    assert!(is_utc_rfc3339(created), "created_at {created:?}");
}

#[tokio::test]
async fn create_get_list_never_return_values() -> anyhow::Result<()> {
    let (_kw, admin) = start_server().await?;
    let body = json!({"name": "deepseek-keys", "values": {
        "LLM_MODEL": "model-value-3a1", "LLM_API_KEY": "sk-value-1f2e",
        "LLM_BASE_URL": "https://value-2b.example/v1"}});
    let resp = admin.send(Method::POST, SECRETS, Some(body)).await?;
    assert_eq!(resp.status, 201, "{}", resp.text);
    let created = resp.json;
    assert_view_shape(
        &created,
        "deepseek-keys",
        &["LLM_API_KEY", "LLM_BASE_URL", "LLM_MODEL"],
    );
    assert_eq!(created["last_rotated_at"], Value::Null);
    assert_eq!(created["version"], 1);
    assert_eq!(created["variables"], json!({}));
    let mut texts = vec![resp.text];

    let one = admin
        .send(Method::GET, &bundle_path("deepseek-keys"), None)
        .await?;
    assert_eq!(one.status, 200);
    assert_eq!(one.json, created, "GET one equals the create answer");
    texts.push(one.text);

    let list = admin.send(Method::GET, SECRETS, None).await?;
    assert_eq!(list.status, 200);
    assert_eq!(list.json, json!({"bundles": [created]}));
    texts.push(list.text);

    for text in &texts {
        for value in ["model-value-3a1", "sk-value-1f2e", "value-2b.example"] {
            assert!(!text.contains(value), "value {value} returned in {text}");
        }
    }
    Ok(())
}

#[tokio::test]
async fn create_rejects_each_bad_input_and_changes_nothing() -> anyhow::Result<()> {
    let (kw, admin) = start_server().await?;
    let (status, _) = admin
        .post(
            SECRETS,
            Some(json!({"name": "existing", "values": {"A": "1"}})),
        )
        .await?;
    assert_eq!(status, 201);
    let before = list_bundles(&admin).await?;

    for (what, body, want_status, want_code) in bad_creates() {
        let (status, answer) = admin.post(SECRETS, Some(body)).await?;
        assert_eq!(status.as_u16(), want_status, "{what}: {answer}");
        assert_error(status, &answer, want_status, want_code);
    }
    for raw in [
        &b"{\"name\": \"n\","[..],
        b"not json",
        b"",
        b"{\"name\": \"n\"} trailing",
    ] {
        let resp = send_raw(&admin, None, Method::POST, SECRETS, raw).await?;
        assert_eq!(resp.status, 401, "no token comes before the body");
        let token = kw.admin_token()?;
        let resp = send_raw(&admin, Some(&token), Method::POST, SECRETS, raw).await?;
        assert_error(resp.status, &resp.json, 400, "invalid_json");
    }
    // One key twice in one object: refused, not "last one wins", and neither value quoted.
    let token = kw.admin_token()?;
    let twice = br#"{"name": "dup", "values": {"K": "sk-first-CANARY", "K": "sk-second-CANARY"}}"#;
    let resp = send_raw(&admin, Some(&token), Method::POST, SECRETS, twice).await?;
    assert_error(resp.status, &resp.json, 400, "duplicate_key");
    assert!(!resp.text.contains("CANARY"), "{}", resp.text);
    assert_eq!(
        list_bundles(&admin).await?,
        before,
        "failed requests changed nothing"
    );
    Ok(())
}

#[tokio::test]
async fn get_put_delete_follow_the_tables() -> anyhow::Result<()> {
    let (kw, admin) = start_server().await?;
    let (status, body) = admin.get(&bundle_path("nope"), None).await?;
    assert_error(status, &body, 404, "secret_bundle_not_found");
    let (status, body) = admin.get(&bundle_path("Bad_Name"), None).await?;
    assert_error(status, &body, 400, "invalid_name");

    let (status, created) = admin
        .post(
            SECRETS,
            Some(json!({"name": "my-llm-keys", "values": {"LLM_API_KEY": "old-3c9d"}})),
        )
        .await?;
    assert_eq!(status, 201);

    // PUT: 200, values replaced wholesale, version bumped, last_rotated_at set.
    let put = json!({"values": {"OPENAI_API_KEY": "new-8e7f"}, "variables": {"LLM_MODEL": "m"}});
    let resp = admin
        .send(Method::PUT, &bundle_path("my-llm-keys"), Some(put))
        .await?;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert!(!resp.text.contains("new-8e7f") && !resp.text.contains("old-3c9d"));
    let rotated = resp.json;
    assert_view_shape(&rotated, "my-llm-keys", &["LLM_MODEL", "OPENAI_API_KEY"]);
    assert_eq!(rotated["version"], 2);
    assert_eq!(rotated["created_at"], created["created_at"]);
    assert_eq!(rotated["variables"], json!({"LLM_MODEL": "m"}));
    let rotated_at = rotated["last_rotated_at"].as_str().unwrap_or_default();
    assert!(is_utc_rfc3339(rotated_at), "last_rotated_at {rotated_at:?}");
    let created_at = created["created_at"].as_str().unwrap_or_default();
    assert!(
        chrono::DateTime::parse_from_rfc3339(rotated_at)?
            >= chrono::DateTime::parse_from_rfc3339(created_at)?,
        "rotated {rotated_at} before created {created_at}"
    );
    let (status, got) = admin.get(&bundle_path("my-llm-keys"), None).await?;
    assert_eq!((status.as_u16(), &got), (200, &rotated));

    // PUT 400s change nothing; PUT 404 for a missing bundle.
    let big = "z".repeat(KIB64 + 1);
    let (k51_values, _) = split_keys(102);
    let bad: Vec<(Value, &str)> = vec![
        (json!({"values": {"HTTPS_PROXY": "x"}}), "reserved_key_name"),
        (
            json!({"values": {"keyward_anything": "x"}}),
            "reserved_key_name",
        ),
        (json!({"values": {"A-B": "x"}}), "invalid_key_name"),
        (json!({"values": {"A": big}}), "value_too_large"),
        (json!({"values": {"A": "\u{0}"}}), "value_contains_nul"),
        (json!({"values": k51_values}), "too_many_keys"),
        (
            json!({"values": {"A": "1"}, "variables": {"A": "1"}}),
            "duplicate_key",
        ),
        (
            json!({"name": "my-llm-keys", "values": {}}),
            "invalid_request",
        ),
    ];
    for (body, code) in bad {
        let (status, answer) = admin.put(&bundle_path("my-llm-keys"), Some(body)).await?;
        assert_error(status, &answer, 400, code);
    }
    let token = kw.admin_token()?;
    let resp = send_raw(
        &admin,
        Some(&token),
        Method::PUT,
        &bundle_path("my-llm-keys"),
        b"{",
    )
    .await?;
    assert_error(resp.status, &resp.json, 400, "invalid_json");
    let (_, got) = admin.get(&bundle_path("my-llm-keys"), None).await?;
    assert_eq!(got, rotated, "failed PUTs changed nothing");
    let (status, body) = admin
        .put(&bundle_path("missing"), Some(json!({"values": {"A": "1"}})))
        .await?;
    assert_error(status, &body, 404, "secret_bundle_not_found");

    // DELETE: 200 {"status":"deleted"}, then 404 everywhere; the name can be reused.
    let (status, body) = admin.delete(&bundle_path("my-llm-keys"), None).await?;
    assert_eq!((status.as_u16(), body), (200, json!({"status": "deleted"})));
    let (status, body) = admin.delete(&bundle_path("my-llm-keys"), None).await?;
    assert_error(status, &body, 404, "secret_bundle_not_found");
    let (status, body) = admin.get(&bundle_path("my-llm-keys"), None).await?;
    assert_error(status, &body, 404, "secret_bundle_not_found");
    let (status, body) = admin
        .put(
            &bundle_path("my-llm-keys"),
            Some(json!({"values": {"A": "1"}})),
        )
        .await?;
    assert_error(status, &body, 404, "secret_bundle_not_found");
    assert!(list_bundles(&admin).await?.is_empty());
    let (status, again) = admin
        .post(
            SECRETS,
            Some(json!({"name": "my-llm-keys", "values": {"OTHER": "x"}})),
        )
        .await?;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["key_names"], json!(["OTHER"]));
    assert_eq!(again["version"], 1);
    assert_eq!(again["last_rotated_at"], Value::Null);
    Ok(())
}

/// Every refused create of seed 001's table (and the JSON shapes around it): (what, body,
/// status, code).
#[rustfmt::skip]
fn bad_creates() -> Vec<(&'static str, Value, u16, &'static str)> {
    let big = "x".repeat(KIB64 + 1);
    let (k51_values, k51_variables) = split_keys(51);
    vec![
        ("uppercase name", json!({"name": "My-keys"}), 400, "invalid_name"),
        ("underscore name", json!({"name": "my_keys"}), 400, "invalid_name"),
        ("64-char name", json!({"name": "a".repeat(64)}), 400, "invalid_name"),
        ("empty name", json!({"name": ""}), 400, "invalid_name"),
        ("leading dash", json!({"name": "-keys"}), 400, "invalid_name"),
        ("dot in name", json!({"name": "a.b"}), 400, "invalid_name"),
        ("https_proxy", json!({"name": "n", "values": {"https_proxy": "x"}}), 400, "reserved_key_name"),
        ("HTTP_PROXY", json!({"name": "n", "values": {"HTTP_PROXY": "x"}}), 400, "reserved_key_name"),
        ("KEYWARD_X", json!({"name": "n", "values": {"KEYWARD_X": "x"}}), 400, "reserved_key_name"),
        ("keyward_token var", json!({"name": "n", "variables": {"keyward_token": "x"}}), 400, "reserved_key_name"),
        ("node_extra_ca_certs", json!({"name": "n", "values": {"node_extra_ca_certs": "x"}}), 400, "reserved_key_name"),
        ("Ssl_Cert_File var", json!({"name": "n", "variables": {"Ssl_Cert_File": "x"}}), 400, "reserved_key_name"),
        ("key starts with digit", json!({"name": "n", "values": {"1KEY": "x"}}), 400, "invalid_key_name"),
        ("key with dash", json!({"name": "n", "values": {"A-B": "x"}}), 400, "invalid_key_name"),
        ("key with space", json!({"name": "n", "variables": {"A B": "x"}}), 400, "invalid_key_name"),
        ("empty key", json!({"name": "n", "values": {"": "x"}}), 400, "invalid_key_name"),
        ("64 KiB + 1 value", json!({"name": "n", "values": {"A": big}}), 400, "value_too_large"),
        ("64 KiB + 1 variable", json!({"name": "n", "variables": {"A": big}}), 400, "value_too_large"),
        ("NUL in value", json!({"name": "n", "values": {"A": "a\u{0}b"}}), 400, "value_contains_nul"),
        ("NUL in variable", json!({"name": "n", "variables": {"A": "\u{0}"}}), 400, "value_contains_nul"),
        ("51 keys", json!({"name": "n", "values": k51_values, "variables": k51_variables}), 400, "too_many_keys"),
        ("key in values and variables", json!({"name": "n", "values": {"A": "1"}, "variables": {"A": "2"}}), 400, "duplicate_key"),
        ("values not an object", json!({"name": "n", "values": "x"}), 400, "invalid_request"),
        ("value not a string", json!({"name": "n", "values": {"A": 1}}), 400, "invalid_request"),
        ("missing name", json!({"values": {"A": "1"}}), 400, "invalid_request"),
        ("unknown field", json!({"name": "n", "secret": {"A": "1"}}), 400, "invalid_request"),
        ("body an array", json!(["n"]), 400, "invalid_request"),
        ("body a string", json!("n"), 400, "invalid_request"),
        ("duplicate bundle", json!({"name": "existing", "values": {"B": "2"}}), 409, "secret_bundle_exists"),
    ]
}
