//! Sessions (seeds 000 and 001): the env a platform hands the agent, the create rules, tenant
//! isolation, end / resume, and the `config_update` WebSocket frame on rotation.

use std::time::Duration;

use anyhow::Context as _;
use futures_util::StreamExt as _;
use keyward_testkit::{ApiClient, KeywardProcess, CANARY_ANTHROPIC, CANARY_OPENAI};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{
    assert_error, bundle_path, is_utc_rfc3339, new_tenant, start_server, SECRETS,
};

const SESSIONS: &str = "/v1/sessions";
const REAL_LLM_BASE: &str = "https://llm-upstream-7c3d.example/v1";

fn session_path(id: &str, tail: &str) -> String {
    format!("{SESSIONS}/{id}{tail}")
}

/// Two bundles: provider keys + a non-HTTP secret, and the vendor-neutral `LLM_*` keys with a
/// plain variable.
async fn two_bundles(client: &ApiClient) -> anyhow::Result<()> {
    let (status, body) = client
        .post(
            SECRETS,
            Some(json!({"name": "providers", "values": {
                "OPENAI_API_KEY": CANARY_OPENAI,
                "ANTHROPIC_API_KEY": CANARY_ANTHROPIC,
                "DATABASE_URL": "postgres://agent:pw-5e1@db.internal/app"}})),
        )
        .await?;
    anyhow::ensure!(status == 201, "providers: {status} {body}");
    let (status, body) = client
        .post(
            SECRETS,
            Some(json!({"name": "llm",
                "values": {"LLM_API_KEY": "sk-llm-canary-93ab", "LLM_BASE_URL": REAL_LLM_BASE},
                "variables": {"LLM_MODEL": "bundle-model", "FEATURE_FLAG": "on"}})),
        )
        .await?;
    anyhow::ensure!(status == 201, "llm: {status} {body}");
    Ok(())
}

/// Creates a session, asserting 201; returns (session_id, session_token, full body).
async fn create(client: &ApiClient, body: Value) -> anyhow::Result<(String, String, Value)> {
    let (status, created) = client.post(SESSIONS, Some(body)).await?;
    anyhow::ensure!(status == 201, "create session: {status} {created}");
    let id = created["session_id"]
        .as_str()
        .context("session_id")?
        .to_owned();
    let token = created["session_token"]
        .as_str()
        .context("session_token")?
        .to_owned();
    Ok((id, token, created))
}

#[tokio::test]
async fn create_returns_the_gateway_env_and_never_a_real_key() -> anyhow::Result<()> {
    let (kw, admin) = start_server().await?;
    two_bundles(&admin).await?;
    let resp = admin
        .send(
            Method::POST,
            SESSIONS,
            Some(
                json!({"template": "standard", "secrets": ["providers", "llm"],
                "llm": {"vendor": "openai", "model": "request-model"},
                "user_id": "usr_abc", "env": {"PLATFORM_RUN": "run-17"}}),
            ),
        )
        .await?;
    assert_eq!(resp.status, 201, "{}", resp.text);
    for real in [
        CANARY_OPENAI,
        CANARY_ANTHROPIC,
        "sk-llm-canary-93ab",
        REAL_LLM_BASE,
    ] {
        assert!(
            !resp.text.contains(real),
            "real value {real:?} in {}",
            resp.text
        );
    }
    let created = resp.json;
    let id = created["session_id"].as_str().context("id")?;
    let token = created["session_token"].as_str().context("token")?;
    assert!(id.starts_with("ses_") && id.len() == 4 + 24, "{id}");
    assert!(
        token.starts_with("kw_s_") && token.len() == 5 + 64,
        "{token}"
    );
    assert_eq!(created["mode"], "gateway");
    assert_eq!(created["ca_pem"], Value::Null);
    assert!(is_utc_rfc3339(
        created["created_at"].as_str().unwrap_or_default()
    ));
    let proxy = kw.proxy_url();
    assert_eq!(
        created["env"],
        json!({
            "ANTHROPIC_API_KEY": token,
            "ANTHROPIC_BASE_URL": format!("{proxy}/anthropic"),
            "OPENAI_API_KEY": token,
            "OPENAI_BASE_URL": format!("{proxy}/openai/v1"),
            "LLM_API_KEY": token,
            "LLM_BASE_URL": format!("{proxy}/llm"),
            "LLM_MODEL": "request-model",
            "DATABASE_URL": "postgres://agent:pw-5e1@db.internal/app",
            "FEATURE_FLAG": "on",
            "PLATFORM_RUN": "run-17",
        })
    );

    // The view: no token, no env values.
    let view = admin.send(Method::GET, &session_path(id, ""), None).await?;
    assert_eq!(view.status, 200, "{}", view.text);
    assert!(
        !view.text.contains(token) && !view.text.contains("run-17"),
        "{}",
        view.text
    );
    assert_eq!(view.json["bundles"], json!(["providers", "llm"]));
    assert_eq!(view.json["status"], "running");
    assert_eq!(view.json["ended_at"], Value::Null);
    assert_eq!(view.json["user_id"], "usr_abc");
    assert_eq!(view.json["llm"]["model"], "request-model");
    let (status, list) = admin.get(SESSIONS, None).await?;
    assert_eq!(status, 200);
    assert_eq!(list["sessions"][0]["session_id"], id);

    // The env re-read, by the session itself and by its tenant, is the same env.
    let by_session = kw
        .client(token)
        .get(&session_path(id, "/env"), None)
        .await?;
    assert_eq!(
        by_session,
        (reqwest::StatusCode::OK, json!({"env": created["env"]}))
    );
    let by_tenant = admin.get(&session_path(id, "/env"), None).await?;
    assert_eq!(by_tenant, by_session);

    let (_, openapi) = kw.anon_client().get("/v1/openapi.json", None).await?;
    for path in [
        "/v1/sessions",
        "/v1/sessions/{id}/env",
        "/v1/sessions/{id}/events",
    ] {
        assert!(
            openapi["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    Ok(())
}

#[tokio::test]
async fn bad_session_requests_are_400_and_store_nothing() -> anyhow::Result<()> {
    let (_kw, admin) = start_server().await?;
    two_bundles(&admin).await?;
    let (status, body) = admin
        .post(
            SECRETS,
            Some(json!({"name": "dup", "values": {"DATABASE_URL": "x"}})),
        )
        .await?;
    assert_eq!(status, 201, "{body}");
    let eleven: Vec<String> = (0..11).map(|i| format!("b{i}")).collect();
    for (body, code) in [
        (
            json!({"secrets": ["providers", "dup"]}),
            "secret_key_collision",
        ),
        (
            json!({"secrets": ["providers", "missing"]}),
            "unknown_bundle",
        ),
        (json!({"secrets": eleven}), "too_many_bundles"),
        (json!({"secrets": ["Bad_Name"]}), "invalid_name"),
        (
            json!({"env": {"HTTPS_PROXY": "http://evil"}}),
            "reserved_key_name",
        ),
        (json!({"env": {"KEYWARD_X": "1"}}), "reserved_key_name"),
        (json!({"env": {"1BAD": "1"}}), "invalid_key_name"),
        (
            json!({"secrets": ["providers"], "env": {"OPENAI_API_KEY": "sk-x"}}),
            "invalid_request",
        ),
        (json!({"egress": {"allow": ["a.io"]}}), "invalid_request"),
        (json!({"egress": {"mode": "block"}}), "invalid_request"),
        (
            json!({"egress": {"mode": "deny-unlisted", "allow": "a.io"}}),
            "invalid_request",
        ),
        (json!({"llm": {"vendor": "gemini"}}), "invalid_request"),
        (
            json!({"llm": {"base_url": "ftp://x.example"}}),
            "invalid_request",
        ),
        (json!({"mode": "tunnel"}), "invalid_request"),
        // Seed 001's `{"kind": …}` object is accepted (no agent); other shapes are not.
        (json!({"agent": 42}), "invalid_request"),
        (json!({"agent": "ghost"}), "unknown_agent"),
        (json!({"user_id": "u".repeat(257)}), "invalid_request"),
    ] {
        let (status, answer) = admin.post(SESSIONS, Some(body.clone())).await?;
        assert_error(status, &answer, 400, code);
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            !message.contains("sk-x") && !message.contains("evil"),
            "{message}"
        );
    }
    let (_, answer) = admin
        .post(SESSIONS, Some(json!({"secrets": ["providers", "dup"]})))
        .await?;
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("DATABASE_URL")
            && message.contains("providers")
            && message.contains("dup"),
        "{message}"
    );
    let (_, list) = admin.get(SESSIONS, None).await?;
    assert_eq!(
        list,
        json!({"sessions": []}),
        "a refused request stored a session"
    );
    Ok(())
}

#[tokio::test]
async fn sessions_are_invisible_to_other_tenants() -> anyhow::Result<()> {
    let (kw, admin) = start_server().await?;
    let other = new_tenant(&kw, &admin, "other").await?;
    let (id, token, _) = create(&admin, json!({})).await?;
    let (_, other_token, _) = create(&other, json!({})).await?;
    for (method, tail) in [
        (Method::GET, ""),
        (Method::DELETE, ""),
        (Method::POST, "/resume"),
        (Method::POST, "/revoke"),
        (Method::GET, "/env"),
    ] {
        let resp = other
            .send(method.clone(), &session_path(&id, tail), None)
            .await?;
        assert_error(resp.status, &resp.json, 404, "session_not_found");
    }
    // Another session's token cannot read this session.
    let (status, body) = kw
        .client(&other_token)
        .get(&session_path(&id, "/env"), None)
        .await?;
    assert_error(status, &body, 404, "session_not_found");
    // A session token is not a tenant token.
    let (status, body) = kw.client(&token).get(SESSIONS, None).await?;
    assert_error(status, &body, 401, "unauthorized");
    // Malformed ids are ids that do not exist.
    let (status, body) = admin.get(&session_path("not-an-id", ""), None).await?;
    assert_error(status, &body, 404, "session_not_found");
    let (status, _) = admin.get(&session_path(&id, ""), None).await?;
    assert_eq!(status, 200, "the owner still sees it");
    Ok(())
}

#[tokio::test]
async fn deleted_bundle_keeps_running_sessions_but_blocks_resume() -> anyhow::Result<()> {
    let (kw, admin) = start_server().await?;
    two_bundles(&admin).await?;
    let (id, token, created) = create(&admin, json!({"secrets": ["providers"]})).await?;
    let (status, resumed) = admin.post(&session_path(&id, "/resume"), None).await?;
    assert_eq!(status, 200, "{resumed}");
    let (status, body) = admin.delete(&bundle_path("providers"), None).await?;
    assert_eq!(status, 200, "{body}");

    let (status, env) = kw
        .client(&token)
        .get(&session_path(&id, "/env"), None)
        .await?;
    assert_eq!(status, 200, "{env}");
    assert_eq!(
        env["env"], created["env"],
        "a running session keeps its values"
    );
    let (status, body) = admin.post(&session_path(&id, "/resume"), None).await?;
    assert_error(status, &body, 502, "secret_bundle_not_found_at_resume");

    // Ending: the view says so, the token stops working, resume is refused.
    let (status, ended) = admin.delete(&session_path(&id, ""), None).await?;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["status"], "ended");
    assert!(
        is_utc_rfc3339(ended["ended_at"].as_str().unwrap_or_default()),
        "{ended}"
    );
    let (_, view) = admin.get(&session_path(&id, ""), None).await?;
    assert_eq!(view["status"], "ended");
    assert_eq!(view["ended_at"], ended["ended_at"]);
    let (status, body) = kw
        .client(&token)
        .get(&session_path(&id, "/env"), None)
        .await?;
    assert_error(status, &body, 401, "unauthorized");
    let (status, body) = admin.post(&session_path(&id, "/resume"), None).await?;
    assert_error(status, &body, 409, "session_ended");
    let (status, again) = admin.post(&session_path(&id, "/revoke"), None).await?;
    assert_eq!(
        (status.as_u16(), &again["ended_at"]),
        (200, &ended["ended_at"])
    );
    Ok(())
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect_events(kw: &KeywardProcess, id: &str, token: &str) -> anyhow::Result<Socket> {
    let url = format!(
        "{}{}",
        kw.api_url().replacen("http", "ws", 1),
        session_path(id, "/events")
    );
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let (socket, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(socket)
}

/// The next text frame, as JSON, within 1 s (pings and pongs skipped).
async fn next_frame(socket: &mut Socket) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .context("no frame within 1 s")?
            .context("socket closed")??;
        if let Message::Text(text) = message {
            return Ok(serde_json::from_str(text.as_str())?);
        }
    }
}

#[tokio::test]
async fn rotation_sends_config_update_and_env_follows() -> anyhow::Result<()> {
    let (kw, admin) = start_server().await?;
    two_bundles(&admin).await?;
    let (id, token, _) = create(&admin, json!({"secrets": ["providers", "llm"]})).await?;
    let (other_id, other_token, _) = create(&admin, json!({})).await?;
    let mut socket = connect_events(&kw, &id, &token).await?;
    let mut unrelated = connect_events(&kw, &other_id, &other_token).await?;

    // PUT: every key whose value changed, was added or removed.
    let (status, body) = admin
        .put(
            &bundle_path("llm"),
            Some(json!({"values": {"LLM_API_KEY": "sk-llm-rotated-4d", "LLM_BASE_URL": REAL_LLM_BASE},
                "variables": {"LLM_MODEL": "bundle-model", "FEATURE_FLAG": "off"}})),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        next_frame(&mut socket).await?,
        json!({"type": "system", "event": "config_update", "keys": ["FEATURE_FLAG", "LLM_API_KEY"]})
    );
    // PATCH of one key lists only that key.
    let (status, body) = admin
        .patch(
            &bundle_path("providers"),
            Some(json!({"set": {"DATABASE_URL": "postgres://new-db"}})),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        next_frame(&mut socket).await?,
        json!({"type": "system", "event": "config_update", "keys": ["DATABASE_URL"]})
    );
    let (status, env) = kw
        .client(&token)
        .get(&session_path(&id, "/env"), None)
        .await?;
    assert_eq!(status, 200, "{env}");
    assert_eq!(env["env"]["DATABASE_URL"], "postgres://new-db");
    assert_eq!(env["env"]["FEATURE_FLAG"], "off");
    assert_eq!(env["env"]["LLM_API_KEY"], token.as_str());
    assert!(
        next_frame(&mut unrelated).await.is_err(),
        "a session without the bundle heard it"
    );

    // Ending the session: a session_ended frame, then the server closes.
    let (status, _) = admin.post(&session_path(&id, "/revoke"), None).await?;
    assert_eq!(status, 200);
    assert_eq!(
        next_frame(&mut socket).await?,
        json!({"type": "system", "event": "session_ended"})
    );
    let closed = tokio::time::timeout(Duration::from_secs(1), socket.next()).await?;
    assert!(
        matches!(closed, None | Some(Ok(Message::Close(_))) | Some(Err(_))),
        "{closed:?}"
    );
    // An ended session's token can no longer open the socket.
    assert!(connect_events(&kw, &id, &token).await.is_err());
    Ok(())
}

#[tokio::test]
async fn public_url_and_sealed_request_env() -> anyhow::Result<()> {
    let kw = KeywardProcess::start(
        crate::support::bin(),
        &["--public-url", "https://keyward.example.com/"],
        &[],
    )
    .await?;
    let admin = kw.client(&kw.admin_token()?);
    two_bundles(&admin).await?;
    let platform_secret = "platform-secret-canary-6b0e1f";
    let (_, token, created) = create(
        &admin,
        json!({"secrets": ["providers"], "env": {"PLATFORM_SECRET": platform_secret}}),
    )
    .await?;
    assert_eq!(
        created["env"]["OPENAI_BASE_URL"],
        "https://keyward.example.com/openai/v1"
    );
    assert_eq!(
        created["env"]["ANTHROPIC_BASE_URL"],
        "https://keyward.example.com/anthropic"
    );
    assert_eq!(created["env"]["PLATFORM_SECRET"], platform_secret);
    // The request's env and the token are never stored in clear.
    for needle in [platform_secret, token.as_str(), CANARY_OPENAI] {
        keyward_testkit::assert_absent_in_dir(kw.data_dir(), needle);
    }
    Ok(())
}
