//! Tenants and tokens: isolation (another tenant's objects are 404, never 403), operator-only
//! tenant creation, token issue and revocation, and 401 for missing or bad tokens.

use reqwest::Method;
use serde_json::json;

use crate::support::{
    assert_error, bundle_path, list_bundles, new_tenant, send_raw, start_server, SECRETS,
};

#[tokio::test]
async fn tenants_cannot_see_or_touch_each_other() -> anyhow::Result<()> {
    let (kw, admin) = start_server().await?;
    let a = new_tenant(&kw, &admin, "tenant-a").await?;
    let b = new_tenant(&kw, &admin, "tenant-b").await?;
    let (status, a_bundle) = a
        .post(
            SECRETS,
            Some(json!({"name": "shared-name", "values": {"K": "a-value"},
            "variables": {"V": "a-var"}})),
        )
        .await?;
    assert_eq!(status, 201);

    let path = bundle_path("shared-name");
    let (status, body) = b.get(&path, None).await?;
    assert_error(status, &body, 404, "secret_bundle_not_found");
    let (_, never) = b.get(&bundle_path("never-existed"), None).await?;
    assert_eq!(body, never, "B can tell A's bundle from no bundle");
    let (status, body) = b.put(&path, Some(json!({"values": {"K": "b"}}))).await?;
    assert_error(status, &body, 404, "secret_bundle_not_found");
    let (status, body) = b.patch(&path, Some(json!({"set": {"K": "b"}}))).await?;
    assert_error(status, &body, 404, "secret_bundle_not_found");
    let (status, body) = b.delete(&path, None).await?;
    assert_error(status, &body, 404, "secret_bundle_not_found");
    assert!(
        list_bundles(&b).await?.is_empty(),
        "B's list shows A's bundle"
    );
    // The operator is a tenant too (`default`): it does not see A's bundle either.
    assert!(list_bundles(&admin).await?.is_empty());
    let (status, body) = admin.get(&path, None).await?;
    assert_error(status, &body, 404, "secret_bundle_not_found");

    // B creates the same name independently; A's bundle is untouched by B's writes.
    let (status, b_bundle) = b
        .post(
            SECRETS,
            Some(json!({"name": "shared-name", "values": {"OTHER": "b"}})),
        )
        .await?;
    assert_eq!(status, 201, "{b_bundle}");
    let (status, _) = b.put(&path, Some(json!({"values": {"X": "b2"}}))).await?;
    assert_eq!(status, 200);
    let (status, _) = b.delete(&path, None).await?;
    assert_eq!(status, 200);
    let (status, a_now) = a.get(&path, None).await?;
    assert_eq!((status.as_u16(), &a_now), (200, &a_bundle));
    assert_eq!(list_bundles(&a).await?, vec![a_bundle]);
    Ok(())
}

#[tokio::test]
async fn only_the_operator_creates_tenants() -> anyhow::Result<()> {
    let (kw, admin) = start_server().await?;
    let (status, me) = admin.get("/v1/tenants/me", None).await?;
    assert_eq!(status, 200);
    assert_eq!(me["tenant"], "default");
    assert_eq!(me["operator"], true);

    let a = new_tenant(&kw, &admin, "tenant-a").await?;
    let (status, me) = a.get("/v1/tenants/me", None).await?;
    assert_eq!(status, 200);
    assert_eq!(
        (me["tenant"].as_str(), me["operator"].as_bool()),
        (Some("tenant-a"), Some(false))
    );
    let (status, body) = a.post("/v1/tenants", Some(json!({"name": "evil"}))).await?;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = a.post("/v1/admin/rotate-master-key", None).await?;
    assert_error(status, &body, 403, "forbidden");

    let (status, body) = admin
        .post("/v1/tenants", Some(json!({"name": "tenant-a"})))
        .await?;
    assert_error(status, &body, 409, "tenant_exists");
    let (status, body) = admin
        .post("/v1/tenants", Some(json!({"name": "Tenant_A"})))
        .await?;
    assert_error(status, &body, 400, "invalid_name");
    let (status, body) = admin.post("/v1/tenants", Some(json!({}))).await?;
    assert_error(status, &body, 400, "invalid_request");
    // "evil" was never created: the operator can still take the name.
    let (status, _) = admin
        .post("/v1/tenants", Some(json!({"name": "evil"})))
        .await?;
    assert_eq!(status, 201);
    Ok(())
}

#[tokio::test]
async fn missing_or_bad_tokens_are_401() -> anyhow::Result<()> {
    let (kw, admin) = start_server().await?;
    let anon = kw.anon_client();
    let valid = kw.admin_token()?;
    let bad = [
        "kw_t_not-a-real-token".to_owned(),
        "garbage".to_owned(),
        format!("{valid}x"),
        valid[..valid.len() - 1].to_owned(),
    ];
    let requests: [(Method, String, Option<serde_json::Value>); 6] = [
        (Method::GET, SECRETS.to_owned(), None),
        (Method::POST, SECRETS.to_owned(), Some(json!({"name": "x"}))),
        (Method::GET, bundle_path("x"), None),
        (Method::DELETE, bundle_path("x"), None),
        (Method::GET, "/v1/tenants/me".to_owned(), None),
        (
            Method::POST,
            "/v1/tenants".to_owned(),
            Some(json!({"name": "x"})),
        ),
    ];
    for (method, path, body) in &requests {
        let resp = anon.send(method.clone(), path, body.clone()).await?;
        assert_error(resp.status, &resp.json, 401, "unauthorized");
        for token in &bad {
            let resp = anon
                .with_token(Some(token))
                .send(method.clone(), path, body.clone())
                .await?;
            assert_error(resp.status, &resp.json, 401, "unauthorized");
        }
    }
    // A non-Bearer scheme carrying a valid token is not accepted either.
    let resp = anon
        .http()
        .get(anon.url(SECRETS))
        .header("authorization", format!("Basic {valid}"))
        .send()
        .await?;
    assert_eq!(resp.status(), 401);
    // Nothing was created by the refused POSTs.
    assert!(list_bundles(&admin).await?.is_empty());
    let resp = send_raw(
        &admin,
        None,
        Method::POST,
        "/v1/tenants",
        b"{\"name\":\"x\"}",
    )
    .await?;
    assert_error(resp.status, &resp.json, 401, "unauthorized");
    Ok(())
}

#[tokio::test]
async fn issued_tokens_work_and_revocation_is_immediate() -> anyhow::Result<()> {
    let (kw, admin) = start_server().await?;
    let a = new_tenant(&kw, &admin, "tenant-a").await?;
    let b = new_tenant(&kw, &admin, "tenant-b").await?;

    let (status, issued) = a.post("/v1/tenants/me/tokens", None).await?;
    assert_eq!(status, 201, "{issued}");
    let id = issued["id"].as_str().unwrap_or_default().to_owned();
    let token = issued["token"].as_str().unwrap_or_default().to_owned();
    assert!(token.starts_with("kw_t_"), "{issued}");
    assert!(crate::support::is_utc_rfc3339(
        issued["created_at"].as_str().unwrap_or_default()
    ));
    let a2 = kw.client(&token);
    let (status, me) = a2.get("/v1/tenants/me", None).await?;
    assert_eq!(status, 200);
    assert_eq!(
        (me["tenant"].as_str(), me["token_id"].as_str()),
        (Some("tenant-a"), Some(id.as_str()))
    );
    let (status, _) = a2
        .post(
            SECRETS,
            Some(json!({"name": "via-second-token", "values": {"K": "v"}})),
        )
        .await?;
    assert_eq!(status, 201);
    let (status, _) = a.get(&bundle_path("via-second-token"), None).await?;
    assert_eq!(status, 200, "both tokens act for the same tenant");

    // Another tenant cannot revoke (or detect) A's token.
    let (status, body) = b
        .delete(&format!("/v1/tenants/me/tokens/{id}"), None)
        .await?;
    assert_error(status, &body, 404, "token_not_found");
    let (status, body) = admin
        .delete(&format!("/v1/tenants/me/tokens/{id}"), None)
        .await?;
    assert_error(status, &body, 404, "token_not_found");
    let (status, _) = a2.get(SECRETS, None).await?;
    assert_eq!(status, 200, "A's token survives B's attempt");

    let (status, body) = a
        .delete(&format!("/v1/tenants/me/tokens/{id}"), None)
        .await?;
    assert_eq!((status.as_u16(), body), (200, json!({"status": "deleted"})));
    for path in [
        SECRETS.to_owned(),
        bundle_path("via-second-token"),
        "/v1/tenants/me".to_owned(),
    ] {
        let (status, body) = a2.get(&path, None).await?;
        assert_error(status, &body, 401, "unauthorized");
    }
    let (status, body) = a
        .delete(&format!("/v1/tenants/me/tokens/{id}"), None)
        .await?;
    assert_error(status, &body, 404, "token_not_found");
    let (status, _) = a.get(SECRETS, None).await?;
    assert_eq!(status, 200, "A's first token still works");
    Ok(())
}
