//! Custom credentials (seed 002) through `/h/{host}/…`: the secret goes only to the hosts its
//! rule names, in the header its template builds, over TLS verified against the operator's
//! `--upstream-ca`; a certificate that does not match the host is a 502, never a leak.
//!
//! The TLS mock's leaf certificate is valid for `localhost` (and the provider hosts), not for
//! `api.example.com`: `localhost` stands in for the seed's host where the handshake must
//! succeed, and `api.example.com`, resolved to the same mock, is the host whose certificate
//! does not match.

use anyhow::Context as _;
use keyward_testkit::{MockOptions, MockUpstream};
use reqwest::Method;
use serde_json::json;

use crate::support::gateway::{
    assert_no_secret, assert_proxy_error, assert_token_not_forwarded, call, Gateway,
};

const SECRET: &str = "custom-CANARY-7a6b5c4d3e2f1a0b9c8d";

#[tokio::test]
async fn a_custom_credential_reaches_only_its_hosts_over_verified_tls() -> anyhow::Result<()> {
    let mock = MockUpstream::start(MockOptions {
        tls: true,
        ..MockOptions::default()
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let ca = dir.path().join("mock-ca.pem");
    std::fs::write(&ca, mock.ca_pem().context("TLS mock has a CA")?)?;
    let ca_arg = ca.to_str().context("utf-8 path")?;
    let good = format!("localhost:443=127.0.0.1:{}", mock.port());
    let mismatched = format!("api.example.com:443=127.0.0.1:{}", mock.port());
    let gw = Gateway::start(&[
        "--resolve",
        &good,
        "--resolve",
        &mismatched,
        "--upstream-ca",
        ca_arg,
    ])
    .await?;
    gw.bundle_body(
        json!({"name": "custom", "values": {"CUSTOM_API_SECRET": SECRET},
        "injections": {"CUSTOM_API_SECRET": {"hosts": ["localhost", "api.example.com"],
            "header": "X-Custom-Auth: {CUSTOM_API_SECRET}"}}}),
    )
    .await?;
    let session = gw.session(json!({"secrets": ["custom"]})).await?;
    // The agent's variable holds the session token, never the value.
    assert_eq!(session.env("CUSTOM_API_SECRET"), session.token);
    assert!(!session.env.to_string().contains(SECRET), "{}", session.env);
    let bearer = format!("Bearer {}", session.token);
    let get = |path: String| {
        let bearer = bearer.clone();
        async move { call(Method::GET, &path, &[("authorization", &bearer)], None).await }
    };

    let reply = get(gw.url("/h/localhost/v1/thing?x=1")).await?;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["path"], "/v1/thing?x=1", "{}", reply.text());
    let req = mock.last_request().context("forwarded")?;
    assert_eq!(req.header("x-custom-auth"), Some(SECRET));
    assert_eq!(req.header("authorization"), None);
    assert_token_not_forwarded(&mock.requests(), &session.token);
    let record = gw.audit_nth(&session.id, 1).await?;
    assert_eq!(record["credential"], "CUSTOM_API_SECRET", "{record}");
    assert_eq!(record["host"], "localhost", "{record}");
    assert_eq!(record["decision"], "forwarded", "{record}");
    assert_eq!(record["status"], 200, "{record}");

    // The rule names api.example.com, but its certificate does not: refused at the handshake.
    let reply = get(gw.url("/h/api.example.com/v1/thing")).await?;
    assert_proxy_error(&reply, 502, "upstream_tls_error");
    assert_no_secret(&reply.everything(), SECRET, "the TLS error");
    let record = gw.audit_nth(&session.id, 2).await?;
    assert_eq!(record["error"], "upstream_tls_error", "{record}");

    // A host no rule names.
    let reply = get(gw.url("/h/api.example.org/v1/thing")).await?;
    assert_proxy_error(&reply, 403, "host_not_allowed");
    let record = gw.audit_nth(&session.id, 3).await?;
    assert_eq!(record["decision"], "blocked:host_not_allowed", "{record}");
    assert_eq!(
        mock.request_count(),
        1,
        "only the matching host was reached"
    );
    Ok(())
}

#[tokio::test]
async fn without_the_operator_ca_the_upstream_is_not_trusted() -> anyhow::Result<()> {
    let mock = MockUpstream::start(MockOptions {
        tls: true,
        ..MockOptions::default()
    })
    .await?;
    let good = format!("localhost:443=127.0.0.1:{}", mock.port());
    let gw = Gateway::start(&["--resolve", &good]).await?;
    gw.bundle_body(
        json!({"name": "custom", "values": {"CUSTOM_API_SECRET": SECRET},
        "injections": {"CUSTOM_API_SECRET": {"hosts": ["localhost"],
            "header": "X-Custom-Auth: Token {CUSTOM_API_SECRET}"}}}),
    )
    .await?;
    let session = gw.session(json!({"secrets": ["custom"]})).await?;
    let reply = call(
        Method::GET,
        &gw.url("/h/localhost/v1/thing"),
        &[("x-api-key", &session.token)],
        None,
    )
    .await?;
    assert_proxy_error(&reply, 502, "upstream_tls_error");
    assert_no_secret(&reply.everything(), SECRET, "the TLS error");
    assert_eq!(mock.request_count(), 0);
    Ok(())
}
