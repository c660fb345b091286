//! Gateway mode over raw HTTP: where the session token may come from, what is refused and how,
//! hot rotation, deleted bundles.

use std::time::Duration;

use anyhow::Context as _;
use futures_util::StreamExt as _;
use keyward_testkit::{CANARY_ANTHROPIC, CANARY_OPENAI};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

use crate::support::gateway::{
    assert_proxy_error, assert_token_not_forwarded, call, chat_body, messages_body, openai_chat,
    Gateway,
};
use crate::support::{assert_error, bundle_path};

const AUTH_HEADERS: [&str; 4] = ["authorization", "x-api-key", "api-key", "x-goog-api-key"];

#[tokio::test]
async fn the_session_token_is_accepted_in_every_sdk_auth_header() -> anyhow::Result<()> {
    let (gw, session) = Gateway::with_provider_session(&[]).await?;
    let bearer = format!("Bearer {}", session.token);
    for header in AUTH_HEADERS {
        let value = if header == "authorization" {
            bearer.as_str()
        } else {
            session.token.as_str()
        };
        let reply = call(
            Method::POST,
            &gw.url("/openai/v1/chat/completions"),
            &[(header, value)],
            Some(&chat_body()),
        )
        .await?;
        assert_eq!(reply.status, 200, "token in {header}: {}", reply.text());
        let req = gw.openai.last_request().context("forwarded")?;
        assert_eq!(
            req.header("authorization"),
            Some(format!("Bearer {CANARY_OPENAI}").as_str())
        );
        for other in ["x-api-key", "api-key", "x-goog-api-key"] {
            assert_eq!(
                req.header(other),
                None,
                "{other} forwarded (token was in {header})"
            );
        }
    }

    // Several auth headers, only one of them valid: it authenticates, and none is forwarded.
    let reply = call(
        Method::POST,
        &gw.url("/openai/v1/chat/completions"),
        &[
            ("authorization", "Bearer kw_s_not-a-real-token"),
            ("x-api-key", "sk-something-else"),
            ("api-key", &session.token),
            ("x-goog-api-key", "AIza-other"),
        ],
        Some(&chat_body()),
    )
    .await?;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let req = gw.openai.last_request().context("forwarded")?;
    let auth: Vec<_> = req
        .headers
        .iter()
        .filter(|(n, _)| AUTH_HEADERS.contains(&n.as_str()))
        .collect();
    assert_eq!(
        auth,
        [&(
            "authorization".to_owned(),
            format!("Bearer {CANARY_OPENAI}")
        )],
        "exactly the injected credential goes upstream"
    );
    assert!(!req
        .headers
        .iter()
        .any(|(_, v)| v.contains("sk-something-else")
            || v.contains("AIza-other")
            || v.contains("kw_s_")));
    assert_token_not_forwarded(&gw.openai.requests(), &session.token);
    Ok(())
}

#[tokio::test]
async fn anthropic_bearer_style_and_the_version_header() -> anyhow::Result<()> {
    let (gw, session) = Gateway::with_provider_session(&[]).await?;
    let bearer = format!("Bearer {}", session.token);
    let url = gw.url("/anthropic/v1/messages");
    // Newer Anthropic SDKs: Authorization: Bearer + anthropic-version.
    let reply = call(
        Method::POST,
        &url,
        &[
            ("authorization", &bearer),
            ("anthropic-version", "2023-06-01"),
        ],
        Some(&messages_body()),
    )
    .await?;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let req = gw.anthropic.last_request().context("forwarded")?;
    assert_eq!(req.header("x-api-key"), Some(CANARY_ANTHROPIC));
    assert_eq!(req.header("authorization"), None);
    assert_eq!(req.header("anthropic-version"), Some("2023-06-01"));

    // Absent: keyward adds the default. Present: passed through as it is.
    let reply = call(
        Method::POST,
        &url,
        &[("x-api-key", &session.token)],
        Some(&messages_body()),
    )
    .await?;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let req = gw.anthropic.last_request().context("forwarded")?;
    assert_eq!(req.header("anthropic-version"), Some("2023-06-01"));
    let reply = call(
        Method::POST,
        &url,
        &[
            ("x-api-key", &session.token),
            ("anthropic-version", "2024-10-22"),
        ],
        Some(&messages_body()),
    )
    .await?;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let req = gw.anthropic.last_request().context("forwarded")?;
    let versions: Vec<_> = req
        .headers
        .iter()
        .filter(|(n, _)| n == "anthropic-version")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(versions, ["2024-10-22"]);
    assert_token_not_forwarded(&gw.anthropic.requests(), &session.token);
    Ok(())
}

#[tokio::test]
async fn refused_calls_answer_json_errors_and_forward_nothing() -> anyhow::Result<()> {
    let gw = Gateway::start(&[]).await?;
    gw.bundle("openai-only", json!({"OPENAI_API_KEY": CANARY_OPENAI}))
        .await?;
    let session = gw.session(json!({"secrets": ["openai-only"]})).await?;
    let chat = gw.url("/openai/v1/chat/completions");

    let reply = call(Method::POST, &chat, &[], Some(&chat_body())).await?;
    assert_proxy_error(&reply, 401, "unauthorized");
    let bogus = format!("Bearer kw_s_{}", "0".repeat(64));
    let reply = call(
        Method::POST,
        &chat,
        &[("authorization", &bogus)],
        Some(&chat_body()),
    )
    .await?;
    assert_proxy_error(&reply, 401, "unauthorized");
    // A tenant token is not a session token.
    let tenant = format!("Bearer {}", gw.kw.admin_token()?);
    let reply = call(
        Method::POST,
        &chat,
        &[("authorization", &tenant)],
        Some(&chat_body()),
    )
    .await?;
    assert_proxy_error(&reply, 401, "unauthorized");
    assert_eq!(
        gw.openai.request_count(),
        0,
        "an unauthenticated call was forwarded"
    );

    // No Anthropic credential in the session: refused, audited.
    let bearer = format!("Bearer {}", session.token);
    let reply = call(
        Method::POST,
        &gw.url("/anthropic/v1/messages"),
        &[("authorization", &bearer)],
        Some(&messages_body()),
    )
    .await?;
    assert_proxy_error(&reply, 401, "no_credential");
    assert_eq!(gw.anthropic.request_count(), 0);
    let record = gw.audit_nth(&session.id, 1).await?;
    assert_eq!(record["decision"], "blocked:no_credential", "{record}");
    assert_eq!(record["status"], 401, "{record}");

    let reply = call(
        Method::GET,
        &gw.url("/nope/v1/models"),
        &[("authorization", &bearer)],
        None,
    )
    .await?;
    assert_proxy_error(&reply, 404, "not_found");
    let reply = call(
        Method::GET,
        &gw.url("/h/evil.example.net/steal"),
        &[("authorization", &bearer)],
        None,
    )
    .await?;
    assert_proxy_error(&reply, 403, "host_not_allowed");

    // It works, until the session is ended: then 401 at once.
    let reply = openai_chat(&gw, &session.token).await?;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let (status, body) = gw
        .admin
        .delete(&format!("/v1/sessions/{}", session.id), None)
        .await?;
    assert_eq!(status, 200, "{body}");
    let reply = openai_chat(&gw, &session.token).await?;
    assert_proxy_error(&reply, 401, "unauthorized");
    assert_eq!(gw.openai.request_count(), 1);
    Ok(())
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn events(gw: &Gateway, id: &str, token: &str) -> anyhow::Result<Socket> {
    let url = format!(
        "{}/v1/sessions/{id}/events",
        gw.kw.api_url().replacen("http", "ws", 1)
    );
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(tokio_tungstenite::connect_async(request).await?.0)
}

/// The next text frame as JSON, before `deadline`.
async fn next_frame(socket: &mut Socket, deadline: tokio::time::Instant) -> anyhow::Result<Value> {
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .context("no frame in time")?
            .context("socket closed")??;
        if let Message::Text(text) = message {
            return Ok(serde_json::from_str(text.as_str())?);
        }
    }
}

#[tokio::test]
async fn rotation_reaches_the_very_next_call_and_the_session_s_socket() -> anyhow::Result<()> {
    const ROTATED: &str = "sk-proj-CANARY-rotated-0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    let gw = Gateway::start(&[]).await?;
    gw.bundle("keys", json!({"OPENAI_API_KEY": CANARY_OPENAI}))
        .await?;
    let session = gw.session(json!({"secrets": ["keys"]})).await?;
    let mut socket = events(&gw, &session.id, &session.token).await?;

    assert_eq!(openai_chat(&gw, &session.token).await?.status, 200);
    let req = gw.openai.last_request().context("forwarded")?;
    assert_eq!(req.presented_key().as_deref(), Some(CANARY_OPENAI));

    let rotated_at = tokio::time::Instant::now();
    let (status, body) = gw
        .admin
        .put(
            &bundle_path("keys"),
            Some(json!({"values": {"OPENAI_API_KEY": ROTATED}})),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    // No pause: the very next call carries the new key.
    assert_eq!(openai_chat(&gw, &session.token).await?.status, 200);
    let req = gw.openai.last_request().context("forwarded")?;
    assert_eq!(req.presented_key().as_deref(), Some(ROTATED));
    assert_eq!(
        next_frame(&mut socket, rotated_at + Duration::from_secs(1)).await?,
        json!({"type": "system", "event": "config_update", "keys": ["OPENAI_API_KEY"]})
    );

    let records = gw.audit(&session.id, 2).await?;
    let v1 = records[0]["credential_version"]
        .as_i64()
        .context("version")?;
    assert_eq!(records[1]["credential_version"], v1 + 1, "{records:?}");
    assert_eq!(records[1]["credential"], "OPENAI_API_KEY");
    Ok(())
}

#[tokio::test]
async fn a_deleted_bundle_blocks_resume_but_not_the_running_session() -> anyhow::Result<()> {
    let (gw, session) = Gateway::with_provider_session(&[]).await?;
    assert_eq!(openai_chat(&gw, &session.token).await?.status, 200);
    let (status, body) = gw.admin.delete(&bundle_path("providers"), None).await?;
    assert_eq!(status, 200, "{body}");

    // The running session keeps the values it resolved (seed 001).
    let reply = openai_chat(&gw, &session.token).await?;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let req = gw.openai.last_request().context("forwarded")?;
    assert_eq!(req.presented_key().as_deref(), Some(CANARY_OPENAI));
    let (status, body) = gw
        .admin
        .post(&format!("/v1/sessions/{}/resume", session.id), None)
        .await?;
    assert_error(status, &body, 502, "secret_bundle_not_found_at_resume");

    // The same key in two bundles cannot make one session.
    gw.bundle("a", json!({"OPENAI_API_KEY": CANARY_OPENAI}))
        .await?;
    gw.bundle(
        "b",
        json!({"OPENAI_API_KEY": "sk-proj-other-key-123456789"}),
    )
    .await?;
    let (status, body) = gw
        .admin
        .post("/v1/sessions", Some(json!({"secrets": ["a", "b"]})))
        .await?;
    assert_error(status, &body, 400, "secret_key_collision");
    Ok(())
}

#[tokio::test]
async fn a_33_mib_request_body_is_forwarded_whole() -> anyhow::Result<()> {
    let (gw, session) = Gateway::with_provider_session(&[]).await?;
    let mut body = chat_body();
    body["messages"][0]["content"] = json!("x".repeat(33 << 20));
    let sent = serde_json::to_vec(&body)?;
    let reply = call(
        Method::POST,
        &gw.url("/openai/v1/chat/completions"),
        &[("x-api-key", &session.token)],
        Some(&body),
    )
    .await?;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let req = gw.openai.last_request().context("forwarded")?;
    assert_eq!(req.body.len(), sent.len());
    assert!(req.body == sent, "the body arrived changed");
    let record = gw.audit_nth(&session.id, 1).await?;
    assert_eq!(record["bytes_in"], sent.len(), "{record}");
    assert_eq!(record["bytes_out"], reply.body.len(), "{record}");
    assert_eq!(record["tokens_in"], 11, "{record}");
    Ok(())
}
