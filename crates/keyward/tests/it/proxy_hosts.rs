//! Which hosts proxy mode intercepts and which it tunnels: a host no credential rule names
//! keeps its own certificate (tunnelled untouched); custom-rule hosts and the host of
//! `LLM_BASE_URL` are intercepted like the built-in providers; a deny-unlisted egress policy
//! lets through only the listed hosts and the session's credential hosts.

use keyward_testkit::{MockOptions, MockUpstream, CANARY_OPENAI};
use serde_json::{json, Value};

use crate::support::gateway::assert_proxy_error;
use crate::support::proxy::{
    assert_only_real_key, blocked, path_str, plain_mock, send, tls_mock, ProxyKw,
};
use crate::support::raw_proxy::{basic, raw_connect};

#[tokio::test]
async fn a_tunnelled_host_keeps_its_own_certificate() -> anyhow::Result<()> {
    // A third TLS mock with its own CA, reached as `localhost:PORT` (a `--resolve` entry makes
    // keyward accept the loopback target). No credential rule names localhost: tunnelled.
    let tunnel = MockUpstream::start(MockOptions {
        tls: true,
        ..MockOptions::default()
    })
    .await?;
    let resolve = format!("localhost:{0}=127.0.0.1:{0}", tunnel.port());
    let px = ProxyKw::start(&["--resolve", &resolve]).await?;
    let tunnel_ca = px.file("tunnel-ca.pem");
    std::fs::write(&tunnel_ca, tunnel.ca_pem().unwrap_or_default())?;
    let openai_ca = px.file("openai-ca.pem");
    let url = format!("https://localhost:{}/v1/models", tunnel.port());
    // `keyward run` puts localhost in NO_PROXY; `--noproxy ''` sends it through keyward anyway.
    // `--cacert` with the mock's CA alone: only the mock's own certificate can verify.
    let script = r#"set -u
curl -sS -v --fail-with-body --noproxy '' --cacert "$1" "$2" -w '\n%{http_code} %{ssl_verify_result}\n'
echo "tunnel=$?"
curl -sS --noproxy '' --cacert "$3" https://api.openai.com/v1/models -o /dev/null
echo "intercepted=$?"
"#;
    let cmd = [
        "sh",
        "-c",
        script,
        "sh",
        &path_str(&tunnel_ca)?,
        &url,
        &path_str(&openai_ca)?,
    ];
    let out = px.run(&["--bundle", "providers"], &cmd, &[]).await?.ok();
    assert!(out.stdout.contains("\n200 0\n"), "{out:#?}");
    assert!(out.stdout.contains("tunnel=0"), "{out:#?}");
    assert!(out.stderr.contains("keyward-testkit mock CA"), "{out:#?}");
    assert!(!out.stderr.contains("keyward local CA"), "{out:#?}");
    // Control: an intercepted host presents keyward's leaf, which the provider's CA alone
    // does not verify (curl 60: certificate problem).
    assert!(out.stdout.contains("intercepted=60"), "{out:#?}");

    assert_eq!(tunnel.request_count(), 1);
    let seen = &tunnel.requests()[0];
    assert_eq!(seen.presented_key(), None, "{seen:#?}");
    assert_eq!(px.openai.request_count(), 0);
    let session = px.only_session_id().await?;
    let record = px.audited(&session, "tunnelled").await?;
    assert_eq!(record["host"], "localhost", "{record}");
    assert_eq!(record["mode"], "proxy", "{record}");
    assert_eq!(record["credential"], Value::Null, "{record}");
    assert!(record["bytes_out"].as_u64() > Some(0), "{record}");
    px.assert_canaries_nowhere(&[], &[&out.all()]).await
}

const CUSTOM: &str = "custom-CANARY-proxy-1f2e3d4c5b6a7980";
const LLM_KEY: &str = "sk-llm-CANARY-proxy-0a9b8c7d6e5f4a3b";

#[tokio::test]
async fn custom_and_llm_hosts_are_intercepted_like_providers() -> anyhow::Result<()> {
    // Both behind `localhost:PORT` names that `--resolve` trusts; the mocks' leaves name
    // localhost, so keyward's upstream TLS verifies against their CAs.
    let (custom, _custom_ca, custom_ca) = tls_mock().await?;
    let (llm, _llm_ca, llm_ca) = tls_mock().await?;
    let r1 = format!("localhost:{0}=127.0.0.1:{0}", custom.port());
    let r2 = format!("localhost:{0}=127.0.0.1:{0}", llm.port());
    let px = ProxyKw::start(&[
        "--resolve",
        &r1,
        "--resolve",
        &r2,
        "--upstream-ca",
        &custom_ca,
        "--upstream-ca",
        &llm_ca,
    ])
    .await?;
    px.bundle_body(
        json!({"name": "custom", "values": {"CUSTOM_API_SECRET": CUSTOM},
        "injections": {"CUSTOM_API_SECRET": {"hosts": ["localhost"],
            "header": "X-Custom-Auth: {CUSTOM_API_SECRET}"}}}),
    )
    .await?;
    let base = format!("https://localhost:{}/v1", llm.port());
    px.bundle_body(
        json!({"name": "llm", "values": {"LLM_API_KEY": LLM_KEY, "LLM_BASE_URL": base},
        "variables": {"LLM_MODEL": "bundle-model"}}),
    )
    .await?;

    let c = px
        .session(json!({"mode": "proxy", "secrets": ["custom", "providers"]}))
        .await?;
    let placeholder = c.env("CUSTOM_API_SECRET");
    assert!(placeholder.starts_with("kw-ph-"), "{}", c.env);
    let client = px.through(&c.token)?;
    let url = format!("https://localhost:{}/v1/thing", custom.port());
    let reply = send(client.get(&url).header("x-custom-auth", &placeholder)).await?;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply = send(client.get(&url)).await?;
    assert_eq!(
        reply.status,
        200,
        "the rule's header is added: {}",
        reply.text()
    );
    for req in custom.requests() {
        assert_eq!(req.header("x-custom-auth"), Some(CUSTOM), "{req:#?}");
    }
    // Each placeholder only on its own hosts.
    let leak = client.get(&url).header("x-note", c.env("OPENAI_API_KEY"));
    assert_eq!(send(leak).await?.status, 403);
    let leak = client
        .get("https://api.openai.com/v1/models")
        .bearer_auth(&placeholder);
    assert_eq!(send(leak).await?.status, 403);
    assert_eq!(custom.request_count(), 2);
    assert_eq!(px.openai.request_count(), 0);

    let l = px
        .session(json!({"mode": "proxy", "secrets": ["llm"]}))
        .await?;
    assert_eq!(l.env("LLM_BASE_URL"), base, "the real base URL: {}", l.env);
    let reply = send(
        px.through(&l.token)?
            .post(format!("{base}/chat/completions"))
            .bearer_auth(l.env("LLM_API_KEY"))
            .json(&json!({"model": "gpt-4o-mini", "messages": []})),
    )
    .await?;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = llm.requests();
    assert_eq!(seen[0].presented_key().as_deref(), Some(LLM_KEY));
    assert_eq!(
        seen[0].body_json().unwrap_or_default()["model"],
        "bundle-model"
    );
    let record = px.audited(&l.id, "forwarded").await?;
    assert_eq!(record["credential"], "LLM_API_KEY", "{record}");
    px.assert_canaries_nowhere(&[CUSTOM, LLM_KEY], &[]).await
}

#[tokio::test]
async fn deny_unlisted_egress_allows_listed_and_credential_hosts_only() -> anyhow::Result<()> {
    let tunnel = MockUpstream::start(MockOptions {
        tls: true,
        ..MockOptions::default()
    })
    .await?;
    let (plain, plain_resolve) = plain_mock().await?;
    let allowed = format!("allowed.test:443=127.0.0.1:{}", tunnel.port());
    let unlisted = format!("unlisted.test:443=127.0.0.1:{}", tunnel.port());
    let unlisted_plain = format!("unlisted.test:80=127.0.0.1:{}", plain.port());
    let px = ProxyKw::start(&[
        "--resolve",
        &allowed,
        "--resolve",
        &unlisted,
        "--resolve",
        &unlisted_plain,
        "--resolve",
        &plain_resolve,
    ])
    .await?;
    let session = px
        .proxy_session(json!({"egress": {"mode": "deny-unlisted", "allow": ["allowed.test"]}}))
        .await?;
    let auth = basic(&session.token);
    let (reply, _) = raw_connect(&px.proxy_addr(), "unlisted.test:443", Some(&auth)).await?;
    reply.assert_error(403, "egress_denied");
    let client = px.through(&session.token)?;
    let reply = send(client.get("http://unlisted.test/v1/models")).await?;
    assert_proxy_error(&reply, 403, "egress_denied");
    assert_eq!(plain.request_count(), 0);

    let (reply, stream) = raw_connect(&px.proxy_addr(), "allowed.test:443", Some(&auth)).await?;
    assert_eq!(reply.status, 200, "{reply:#?}");
    drop(stream);
    // The session's own credential host is always allowed.
    let reply = send(
        client
            .get("https://api.openai.com/v1/models")
            .bearer_auth(session.env("OPENAI_API_KEY")),
    )
    .await?;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_only_real_key(&px.openai.requests(), CANARY_OPENAI, &[]);

    let records = px
        .audited_n(&session.id, "blocked:egress_denied", 2)
        .await?;
    assert_eq!(blocked(&records, "egress_denied"), 2, "{records:#?}");
    let tunnelled = px.audited(&session.id, "tunnelled").await?;
    assert_eq!(tunnelled["host"], "allowed.test", "{tunnelled}");
    px.audited(&session.id, "forwarded").await?;
    Ok(())
}

/// BUG (reported, not fixed): an `https://<IP>` `LLM_BASE_URL` cannot be used in proxy mode.
/// Clients send no SNI for an IP address (RFC 6066 section 3; rustls, curl, Python and Node
/// all omit it), but `intercept::serve` drops every ClientHello whose SNI is not the CONNECT
/// host (audited `blocked:sni_mismatch`), and `Minter::resolve` mints nothing without an SNI.
/// Expected: for an IP-literal CONNECT host, a ClientHello without SNI gets a leaf with that IP
/// as subject alternative name. Run with `--ignored` to see it fail.
#[tokio::test]
async fn an_ip_literal_llm_base_url_is_intercepted_without_sni() -> anyhow::Result<()> {
    let (llm, _ca_file, ca) = tls_mock().await?;
    let resolve = format!("127.0.0.1:{0}=127.0.0.1:{0}", llm.port());
    let px = ProxyKw::start(&["--resolve", &resolve, "--upstream-ca", &ca]).await?;
    let base = format!("https://127.0.0.1:{}/v1", llm.port());
    px.bundle_body(
        json!({"name": "llm", "values": {"LLM_API_KEY": LLM_KEY, "LLM_BASE_URL": base}}),
    )
    .await?;
    let session = px
        .session(json!({"mode": "proxy", "secrets": ["llm"]}))
        .await?;
    let reply = px
        .through(&session.token)?
        .post(format!("{base}/chat/completions"))
        .bearer_auth(session.env("LLM_API_KEY"))
        .json(&json!({"model": "gpt-4o-mini", "messages": []}))
        .send()
        .await;
    let Ok(reply) = reply else {
        let record = px.audited(&session.id, "blocked:sni_mismatch").await?;
        anyhow::bail!("the agent's handshake was dropped: {reply:?}\naudit: {record:#}");
    };
    assert_eq!(reply.status(), 200);
    assert_eq!(llm.requests()[0].presented_key().as_deref(), Some(LLM_KEY));
    Ok(())
}

/// BUG (reported, not fixed): `server::dispatch` matches `/healthz` and `/readyz` on the path
/// before it looks at the method and scheme, so an absolute-form `GET http://any.host/healthz`
/// through the proxy is answered by keyward itself (without proxy auth, unaudited) instead of
/// being forwarded like every other plain-HTTP request. Run with `--ignored` to see it fail.
#[tokio::test]
async fn an_absolute_form_healthz_is_proxied_not_answered_by_keyward() -> anyhow::Result<()> {
    let (plain, resolve) = plain_mock().await?;
    let px = ProxyKw::start(&["--resolve", &resolve]).await?;
    let session = px.proxy_session(json!({})).await?;
    let reply = send(px.through(&session.token)?.get("http://plain.test/healthz")).await?;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        plain.request_count(),
        1,
        "not forwarded; keyward said {}",
        reply.text()
    );
    Ok(())
}
