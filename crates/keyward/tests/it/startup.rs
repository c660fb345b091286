//! First start: file modes, the operator token printed exactly once, health endpoints and the
//! OpenAPI document.

use std::os::unix::fs::PermissionsExt as _;

use keyward_testkit::KeywardProcess;
use serde_json::Value;

use crate::support::{bin, start_server};

#[tokio::test]
async fn first_start_initialises_the_data_dir_privately() -> anyhow::Result<()> {
    // A data dir that does not exist yet: the server creates it.
    let parent = tempfile::Builder::new()
        .prefix("keyward-fresh-")
        .tempdir()?;
    let mut kw = KeywardProcess::start_in(bin(), &parent.path().join("data"), &[], &[]).await?;
    let token = kw.admin_token()?;
    let admin = kw.client(&token);
    assert!(token.starts_with("kw_t_"), "operator token shape");
    let (status, _) = admin.get("/v1/tenants/me", None).await?;
    assert_eq!(status, 200);
    let dir = kw.data_dir().to_path_buf();
    for file in ["master.key", "admin.token"] {
        let mode = std::fs::metadata(dir.join(file))?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file} mode {mode:o}");
    }
    for file in [
        "keyward.db",
        "keyward.db-wal",
        "keyward.db-shm",
        "server.json",
    ] {
        if let Ok(meta) = std::fs::metadata(dir.join(file)) {
            let mode = meta.permissions().mode() & 0o777;
            assert_eq!(mode & 0o077, 0, "{file} readable by others: {mode:o}");
        }
    }
    let dir_mode = std::fs::metadata(&dir)?.permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700, "data dir mode {dir_mode:o}");

    // Printed once on first start, never again.
    assert_eq!(kw.logs().matches(&token).count(), 1, "logs: {}", kw.logs());
    let key_file = std::fs::read_to_string(dir.join("master.key"))?;
    assert!(
        !kw.logs().contains(key_file.trim()),
        "master key in the log"
    );
    kw.restart().await?;
    kw.restart().await?;
    assert_eq!(kw.admin_token()?, token, "admin.token rewritten");
    assert_eq!(
        kw.logs().matches(&token).count(),
        1,
        "token printed again on restart"
    );
    assert_eq!(std::fs::read_to_string(dir.join("master.key"))?, key_file);
    let (status, _) = kw.client(&token).get("/v1/tenants/me", None).await?;
    assert_eq!(status, 200, "the operator token survives restarts");
    Ok(())
}

#[tokio::test]
async fn health_and_openapi_on_the_api_listener() -> anyhow::Result<()> {
    let (kw, _admin) = start_server().await?;
    let anon = kw.anon_client();
    for path in ["/healthz", "/readyz"] {
        let (status, body) = anon.get(path, None).await?;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, doc) = anon.get("/v1/openapi.json", None).await?;
    assert_eq!(status, 200);
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3."), "openapi version {version:?}");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let methods = |path: &str| -> Vec<String> {
        doc["paths"][path]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    let has = |path: &str, wanted: &[&str]| {
        let got = methods(path);
        for m in wanted {
            assert!(got.iter().any(|g| g == m), "{path} lacks {m}: {got:?}");
        }
    };
    has("/v1/tenants/me/secrets", &["get", "post"]);
    has(
        "/v1/tenants/me/secrets/{name}",
        &["get", "put", "patch", "delete"],
    );
    has("/v1/tenants", &["post"]);
    has("/v1/tenants/me/tokens", &["post"]);
    has("/v1/tenants/me/tokens/{id}", &["delete"]);
    has("/v1/admin/rotate-master-key", &["post"]);
    // The seed's status codes are documented on the create route.
    let create = &doc["paths"]["/v1/tenants/me/secrets"]["post"]["responses"];
    for code in ["201", "400", "409", "429"] {
        assert!(
            create.get(code).is_some(),
            "POST secrets lacks {code}: {create}"
        );
    }
    let rotate = &doc["paths"]["/v1/tenants/me/secrets/{name}"]["put"]["responses"];
    for code in ["200", "400", "404"] {
        assert!(
            rotate.get(code).is_some(),
            "PUT secret lacks {code}: {rotate}"
        );
    }
    // Every $ref points at a schema that exists.
    let schemas = &doc["components"]["schemas"];
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or(&r);
        assert!(schemas.get(name).is_some(), "dangling $ref {r}");
    }
    // Unknown routes answer the JSON envelope.
    let (status, body) = anon.get("/v1/nope", None).await?;
    assert_eq!(status, 404);
    assert!(body["error"]["code"].is_string(), "{body}");
    Ok(())
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match (k.as_str(), child.as_str()) {
                    ("$ref", Some(r)) => out.push(r.to_owned()),
                    _ => collect_refs(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_refs(i, out)),
        _ => {}
    }
}
