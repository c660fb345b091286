//! Canary keys through a whole control-API scenario, including requests that fail *because of*
//! the canary: afterwards the canary must be absent from every response, the server log, and
//! every byte of the data dir (database, WAL and SHM), while running and after shutdown.

use keyward_testkit::{
    assert_absent_in_dir, ApiClient, KeywardProcess, CANARY_ANTHROPIC, CANARY_OPENAI,
};
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{bundle_path, new_tenant_token, send_raw, start_server_with, SECRETS};

/// Sends a request and keeps its raw answer for the final scan; returns the status.
async fn call(
    client: &ApiClient,
    seen: &mut Vec<String>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<u16> {
    let resp = client.send(method, path, body).await?;
    seen.push(format!("{:?}\n{}", resp.headers, resp.text));
    Ok(resp.status.as_u16())
}

#[track_caller]
fn assert_no_canary(what: &str, text: &str) {
    for canary in [CANARY_OPENAI, CANARY_ANTHROPIC] {
        assert!(
            !text.contains(canary),
            "canary leaked into {what}: {text:.400}"
        );
    }
}

fn assert_no_canary_anywhere(kw: &KeywardProcess, seen: &[String]) {
    for text in seen {
        assert_no_canary("a response", text);
    }
    assert_no_canary("the server log", &kw.logs());
    for canary in [CANARY_OPENAI, CANARY_ANTHROPIC] {
        assert_absent_in_dir(kw.data_dir(), canary);
    }
}

#[tokio::test]
async fn canary_never_leaves_the_vault() -> anyhow::Result<()> {
    // At the most verbose log level: whatever an operator turns on must not leak either.
    let (mut kw, admin) = start_server_with(&[("RUST_LOG", "trace")]).await?;
    let tenant_token = new_tenant_token(&admin, "canary-tenant").await?;
    let tenant = kw.client(&tenant_token);
    let mut seen = Vec::new();
    let t = &tenant;
    let s = &mut seen;

    // The happy path: create, rotate (PUT, which decrypts the old values), merge, read.
    let created = json!({"name": "llm", "values": {"OPENAI_API_KEY": CANARY_OPENAI}});
    assert_eq!(call(t, s, Method::POST, SECRETS, Some(created)).await?, 201);
    let put =
        json!({"values": {"OPENAI_API_KEY": CANARY_OPENAI, "ANTHROPIC_API_KEY": CANARY_ANTHROPIC}});
    assert_eq!(
        call(t, s, Method::PUT, &bundle_path("llm"), Some(put)).await?,
        200
    );
    let patch = json!({"set": {"LLM_API_KEY": CANARY_ANTHROPIC}, "unset": ["OPENAI_API_KEY"]});
    assert_eq!(
        call(t, s, Method::PATCH, &bundle_path("llm"), Some(patch)).await?,
        200
    );
    let patch = json!({"set": {"OPENAI_API_KEY": CANARY_OPENAI}});
    assert_eq!(
        call(t, s, Method::PATCH, &bundle_path("llm"), Some(patch)).await?,
        200
    );
    let second = json!({"name": "second", "values": {"ANTHROPIC_API_KEY": CANARY_ANTHROPIC}});
    assert_eq!(call(t, s, Method::POST, SECRETS, Some(second)).await?, 201);
    assert_eq!(call(t, s, Method::GET, SECRETS, None).await?, 200);
    assert_eq!(
        call(t, s, Method::GET, &bundle_path("llm"), None).await?,
        200
    );

    // Requests refused because of (or next to) the canary.
    let too_big = format!("{CANARY_OPENAI}{}", "x".repeat(64 * 1024));
    let with_nul = format!("{CANARY_OPENAI}\u{0}");
    let refused: Vec<(Method, String, Value, u16)> = vec![
        (
            Method::POST,
            SECRETS.into(),
            json!({"name": "x", "values": {"A": too_big}}),
            400,
        ),
        (
            Method::POST,
            SECRETS.into(),
            json!({"name": "x", "values": {"A": with_nul}}),
            400,
        ),
        (
            Method::POST,
            SECRETS.into(),
            json!({"name": "x", "values": CANARY_OPENAI}),
            400,
        ),
        (
            Method::POST,
            SECRETS.into(),
            json!({"name": "x", "values": {"A": [CANARY_OPENAI]}}),
            400,
        ),
        (
            Method::POST,
            SECRETS.into(),
            json!({"name": CANARY_OPENAI}),
            400,
        ),
        (
            Method::POST,
            SECRETS.into(),
            json!({"name": "x", "values": {CANARY_OPENAI: "v"}}),
            400,
        ),
        (
            Method::POST,
            SECRETS.into(),
            json!({"name": "x", "variables": {CANARY_ANTHROPIC: "v"}}),
            400,
        ),
        (
            Method::POST,
            SECRETS.into(),
            json!({"name": "x", CANARY_OPENAI: "v"}),
            400,
        ),
        (
            Method::POST,
            SECRETS.into(),
            json!({"name": "x", "values": {"HTTPS_PROXY": CANARY_OPENAI}}),
            400,
        ),
        (
            Method::POST,
            SECRETS.into(),
            json!({"name": "x", "values": {"A": CANARY_OPENAI}, "variables": {"A": "v"}}),
            400,
        ),
        (
            Method::POST,
            SECRETS.into(),
            json!({"name": "llm", "values": {"A": CANARY_OPENAI}}),
            409,
        ),
        (
            Method::PUT,
            bundle_path("llm"),
            json!({"values": {"A": too_big}}),
            400,
        ),
        (
            Method::PUT,
            bundle_path("llm"),
            json!({"values": {"A-B": CANARY_OPENAI}}),
            400,
        ),
        (
            Method::PUT,
            bundle_path("missing"),
            json!({"values": {"A": CANARY_OPENAI}}),
            404,
        ),
        (
            Method::PATCH,
            bundle_path("llm"),
            json!({"set": {"A": with_nul}}),
            400,
        ),
        (
            Method::PATCH,
            bundle_path("llm"),
            json!({"unset": [CANARY_ANTHROPIC]}),
            400,
        ),
        (
            Method::PATCH,
            bundle_path("llm"),
            json!({"set": CANARY_ANTHROPIC}),
            400,
        ),
        (Method::GET, bundle_path(CANARY_OPENAI), Value::Null, 400),
        (
            Method::DELETE,
            bundle_path(CANARY_ANTHROPIC),
            Value::Null,
            400,
        ),
    ];
    for (method, path, body, want) in refused {
        let body = (!body.is_null()).then_some(body);
        assert_eq!(call(t, s, method, &path, body).await?, want, "{path}");
    }
    let token = kw.admin_token()?;
    let malformed = [
        format!("{{\"name\":\"x\",\"values\":{{\"A\":\"{CANARY_OPENAI}\""),
        format!("{{\"name\":\"x\",\"values\":{{\"A\":\"{CANARY_OPENAI}\" oops}}}}"),
        format!("{{\"name\":\"x\",\"values\":{{\"A\":{CANARY_ANTHROPIC}}}}}"),
        format!("{{\"name\":\"x\",\"values\":{{\"A\":\"{CANARY_ANTHROPIC}\\q\"}}}}"),
    ];
    for raw in &malformed {
        let resp = send_raw(&admin, Some(&token), Method::POST, SECRETS, raw.as_bytes()).await?;
        assert_eq!(resp.status, 400, "{}", resp.text);
        s.push(resp.text);
        let resp = send_raw(
            &admin,
            Some(&token),
            Method::PUT,
            &bundle_path("llm"),
            raw.as_bytes(),
        )
        .await?;
        assert_eq!(resp.status, 400, "{}", resp.text);
        s.push(resp.text);
    }
    // A canary pasted as a bearer token.
    let resp = kw
        .client(CANARY_OPENAI)
        .send(Method::GET, SECRETS, None)
        .await?;
    assert_eq!(resp.status, 401);
    s.push(resp.text);

    // The bundles still rotate (their values decrypt) after all that.
    let patch = json!({"set": {"EXTRA": "not-a-canary"}});
    assert_eq!(
        call(t, s, Method::PATCH, &bundle_path("llm"), Some(patch)).await?,
        200
    );

    assert_no_canary_anywhere(&kw, &seen);
    let status = kw.terminate().await?;
    assert!(status.success(), "clean shutdown: {status}");
    assert_no_canary_anywhere(&kw, &seen);
    // And after a restart (which reopens and may checkpoint the WAL).
    kw.restart().await?;
    let tenant = kw.client(&tenant_token);
    let resp = tenant.send(Method::GET, SECRETS, None).await?;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json["bundles"].as_array().map(Vec::len), Some(2));
    seen.push(resp.text);
    kw.terminate().await?;
    assert_no_canary_anywhere(&kw, &seen);
    Ok(())
}
