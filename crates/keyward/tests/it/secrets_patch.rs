//! PATCH merge semantics (`set`, `variables`, `unset`), variables returned with their values,
//! and entries converted between secret and variable.

use serde_json::{json, Value};

use crate::support::{assert_error, bundle_path, start_server, SECRETS};

#[tokio::test]
async fn patch_merges_sets_unsets_and_converts() -> anyhow::Result<()> {
    let (_kw, admin) = start_server().await?;
    let path = bundle_path("app");
    let (status, created) = admin
        .post(
            SECRETS,
            Some(json!({"name": "app",
                "values": {"A": "secret-a-41", "B": "secret-b-42"},
                "variables": {"MODEL": "gpt-x"}})),
        )
        .await?;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["key_names"], json!(["A", "B", "MODEL"]));
    assert_eq!(created["variables"], json!({"MODEL": "gpt-x"}));

    // set + variables + unset in one merge: a rotation (version 2, last_rotated_at set).
    let resp = admin
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(
                json!({"set": {"C": "secret-c-43"}, "variables": {"URL": "https://u.example"},
                "unset": ["B"]}),
            ),
        )
        .await?;
    assert_eq!(resp.status, 200, "{}", resp.text);
    for value in ["secret-a-41", "secret-b-42", "secret-c-43"] {
        assert!(
            !resp.text.contains(value),
            "secret value returned: {}",
            resp.text
        );
    }
    let v2 = resp.json;
    assert_eq!(v2["key_names"], json!(["A", "C", "MODEL", "URL"]));
    assert_eq!(
        v2["variables"],
        json!({"MODEL": "gpt-x", "URL": "https://u.example"})
    );
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["created_at"], created["created_at"]);
    assert!(v2["last_rotated_at"].is_string(), "{v2}");
    let (_, got) = admin.get(&path, None).await?;
    assert_eq!(got, v2, "GET shows the merge");

    // A secret becomes a variable: its value is now returned, key_names unchanged.
    let (status, v3) = admin
        .patch(&path, Some(json!({"variables": {"A": "plain-now"}})))
        .await?;
    assert_eq!(status, 200, "{v3}");
    assert_eq!(v3["key_names"], json!(["A", "C", "MODEL", "URL"]));
    assert_eq!(
        v3["variables"],
        json!({"A": "plain-now", "MODEL": "gpt-x", "URL": "https://u.example"})
    );
    assert_eq!(v3["version"], 3);

    // A variable becomes a secret: its value disappears from every answer.
    let resp = admin
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(json!({"set": {"MODEL": "hidden-model-44"}})),
        )
        .await?;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert!(!resp.text.contains("hidden-model-44"));
    assert_eq!(
        resp.json["variables"],
        json!({"A": "plain-now", "URL": "https://u.example"})
    );
    assert_eq!(resp.json["version"], 4);
    let list = admin.send(reqwest::Method::GET, SECRETS, None).await?;
    assert!(!list.text.contains("hidden-model-44") && !list.text.contains("gpt-x"));
    assert_eq!(list.json["bundles"][0]["variables"], resp.json["variables"]);
    Ok(())
}

#[tokio::test]
async fn patch_errors_change_nothing() -> anyhow::Result<()> {
    let (_kw, admin) = start_server().await?;
    let path = bundle_path("app");
    let mut many = serde_json::Map::new();
    for i in 0..49 {
        many.insert(format!("K{i}"), json!("v"));
    }
    let (status, created) = admin
        .post(
            SECRETS,
            Some(json!({"name": "app", "values": Value::Object(many)})),
        )
        .await?;
    assert_eq!(status, 201, "{created}");

    let big = "p".repeat(64 * 1024 + 1);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"set": {"X": "1"}, "variables": {"X": "2"}}),
            "duplicate_key",
        ),
        (json!({"set": {"X": "1", "Y": "2"}}), "too_many_keys"),
        (
            json!({"set": {"X": "1"}, "variables": {"Y": "2"}}),
            "too_many_keys",
        ),
        (json!({"set": {"no_proxy": "x"}}), "reserved_key_name"),
        (
            json!({"variables": {"KEYWARD_SESSION": "x"}}),
            "reserved_key_name",
        ),
        (json!({"set": {"9X": "x"}}), "invalid_key_name"),
        (json!({"unset": ["A-B"]}), "invalid_key_name"),
        (json!({"set": {"X": big}}), "value_too_large"),
        (json!({"variables": {"X": "a\u{0}"}}), "value_contains_nul"),
        (json!({"set": ["X"]}), "invalid_request"),
        (json!({"unset": "K1"}), "invalid_request"),
        (json!({"values": {"X": "1"}}), "invalid_request"),
    ];
    for (body, code) in cases {
        let (status, answer) = admin.patch(&path, Some(body.clone())).await?;
        assert_error(status, &answer, 400, code);
    }
    let (_, after) = admin.get(&path, None).await?;
    assert_eq!(after, created, "failed PATCHes changed nothing");

    // Replacing one key and adding one while removing one stays within 50.
    let (status, ok) = admin
        .patch(
            &path,
            Some(json!({"set": {"K0": "new", "X": "1", "Y": "2"}, "unset": ["K1"]})),
        )
        .await?;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["key_names"].as_array().map(Vec::len), Some(50));
    assert_eq!(ok["version"], 2);

    let (status, body) = admin
        .patch(&bundle_path("missing"), Some(json!({"set": {"A": "1"}})))
        .await?;
    assert_error(status, &body, 404, "secret_bundle_not_found");
    Ok(())
}
