//! Proxy mode under attack: each attempt must be refused with its stable code AND leave an
//! audit record `blocked:<code>`, and nothing may reach an upstream. Exfiltration of a
//! placeholder (header, query, body; intercepted or plain `http://`), Host and SNI that differ
//! from the CONNECT authority, private destinations, missing or wrong proxy credentials, and
//! another session's placeholder. (Egress policy: `proxy_hosts`.)

use keyward_testkit::{MockOptions, MockUpstream, CANARY_ANTHROPIC, CANARY_OPENAI};
use serde_json::{json, Value};

use crate::support::gateway::{assert_proxy_error, Reply};
use crate::support::proxy::{
    assert_only_real_key, blocked, path_str, plain_mock, run_plain, send, ProxyKw,
};
use crate::support::raw_proxy::{basic, raw_connect, raw_request};

#[tokio::test]
async fn a_placeholder_sent_to_another_credential_host_is_blocked() -> anyhow::Result<()> {
    let px = ProxyKw::start(&[]).await?;
    let session = px.proxy_session(json!({})).await?;
    let (openai_ph, anthropic_ph) = (
        session.env("OPENAI_API_KEY"),
        session.env("ANTHROPIC_API_KEY"),
    );
    let client = px.through(&session.token)?;
    let messages = "https://api.anthropic.com/v1/messages";
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 16,
                      "messages": [{"role": "user", "content": "hi"}]});
    // Control: the Anthropic placeholder to its own host goes through.
    let ok = send(
        client
            .post(messages)
            .header("x-api-key", &anthropic_ph)
            .json(&body),
    )
    .await?;
    assert_eq!(ok.status, 200, "{}", ok.text());

    let padded = format!("{}{openai_ph}", "x".repeat(40 * 1024));
    let attempts: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "header",
            client
                .post(messages)
                .header("x-api-key", &anthropic_ph)
                .header("x-note", format!("k={openai_ph}"))
                .json(&body),
        ),
        (
            "as the credential",
            client
                .post(messages)
                .header("x-api-key", &openai_ph)
                .json(&body),
        ),
        (
            "query",
            client
                .get(format!(
                    "https://api.anthropic.com/v1/models?key={openai_ph}"
                ))
                .header("x-api-key", &anthropic_ph),
        ),
        (
            "body",
            client
                .post(messages)
                .header("x-api-key", &anthropic_ph)
                .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 16,
                    "messages": [{"role": "user", "content": openai_ph}]})),
        ),
        (
            "body at 40 KiB",
            client
                .post(messages)
                .header("x-api-key", &anthropic_ph)
                .body(padded),
        ),
        (
            "reverse",
            client
                .post("https://api.openai.com/v1/chat/completions")
                .bearer_auth(&anthropic_ph)
                .json(&json!({"model": "gpt-4o-mini", "messages": []})),
        ),
    ];
    let n = attempts.len();
    let mut texts = Vec::new();
    for (what, request) in attempts {
        let reply = send(request).await?;
        assert_eq!(reply.status, 403, "{what}: {}", reply.text());
        assert_proxy_error(&reply, 403, "exfiltration_attempt");
        texts.push(reply.everything());
    }
    assert_eq!(px.anthropic.request_count(), 1, "only the control call");
    assert_eq!(px.openai.request_count(), 0);
    let records = px
        .audited_n(&session.id, "blocked:exfiltration_attempt", n)
        .await?;
    assert_eq!(blocked(&records, "exfiltration_attempt"), n, "{records:#?}");
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    px.assert_canaries_nowhere(&[], &refs).await
}

#[tokio::test]
async fn a_placeholder_in_a_plain_http_request_is_blocked() -> anyhow::Result<()> {
    let (plain, resolve) = plain_mock().await?;
    let px = ProxyKw::start(&["--resolve", &resolve]).await?;
    let session = px.proxy_session(json!({})).await?;
    let openai_ph = session.env("OPENAI_API_KEY");
    let client = px.through(&session.token)?;
    let url = "http://plain.test/v1/chat/completions";
    let attempts = [
        client.post(url).bearer_auth(&openai_ph).json(&json!({})),
        client.get(format!("http://plain.test/v1/models?k={openai_ph}")),
        client.post(url).json(&json!({"content": openai_ph})),
        // Even to the credential's own host: a placeholder never travels in cleartext.
        client
            .get("http://api.openai.com/v1/models")
            .bearer_auth(&openai_ph),
    ];
    let n = attempts.len();
    for request in attempts {
        let reply = send(request).await?;
        assert_proxy_error(&reply, 403, "exfiltration_attempt");
    }
    assert_eq!(plain.request_count(), 0);
    assert_eq!(px.openai.request_count(), 0);
    // Without a placeholder it is forwarded, with no credential and no proxy credentials.
    let reply = send(client.get("http://plain.test/v1/models")).await?;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = plain.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].presented_key(), None, "{seen:#?}");
    assert_eq!(seen[0].header("proxy-authorization"), None, "{seen:#?}");
    let records = px
        .audited_n(&session.id, "blocked:exfiltration_attempt", n)
        .await?;
    assert_eq!(blocked(&records, "exfiltration_attempt"), n, "{records:#?}");
    let forwarded = px.audited(&session.id, "forwarded").await?;
    assert_eq!(forwarded["host"], "plain.test", "{forwarded}");
    assert_eq!(forwarded["mode"], "proxy", "{forwarded}");
    assert_eq!(forwarded["credential"], Value::Null, "{forwarded}");
    px.assert_canaries_nowhere(&[], &[]).await
}

#[tokio::test]
async fn a_host_or_sni_other_than_the_connect_host_is_refused() -> anyhow::Result<()> {
    let px = ProxyKw::start(&[]).await?;
    let session = px.proxy_session(json!({})).await?;
    let proxy = format!("http://kw:{}@{}", session.token, px.proxy_addr());
    let ca = path_str(&px.ca_file())?;
    let curl = |extra: &[&str]| {
        let mut args = vec!["-sS", "-x", proxy.as_str(), "--cacert", ca.as_str()];
        args.extend_from_slice(extra);
        args.extend(["-w", "\n%{http_code}"]);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    // Host (HTTP/1.1) and :authority (HTTP/2) naming another credential host.
    for version in ["--http1.1", "--http2"] {
        let args = curl(&[
            version,
            "-H",
            "Host: api.anthropic.com",
            "https://api.openai.com/v1/models",
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_plain("curl", &args, &[]).await?.ok();
        assert!(out.stdout.ends_with("\n403"), "{version}: {out:#?}");
        assert!(out.stdout.contains("host_mismatch"), "{version}: {out:#?}");
    }
    // CONNECT api.anthropic.com, ClientHello for api.openai.com: no leaf, handshake dropped.
    let args = curl(&[
        "--connect-to",
        "api.openai.com:443:api.anthropic.com:443",
        "https://api.openai.com/v1/models",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_plain("curl", &args, &[]).await?;
    assert_eq!(
        out.code,
        Some(35),
        "curl: SSL connect error expected: {out:#?}"
    );
    assert_eq!(px.openai.request_count() + px.anthropic.request_count(), 0);

    let record = px.audited(&session.id, "blocked:sni_mismatch").await?;
    assert_eq!(record["host"], "api.anthropic.com", "{record}");
    assert_eq!(record["mode"], "proxy", "{record}");
    let records = px
        .audited_n(&session.id, "blocked:host_mismatch", 2)
        .await?;
    assert_eq!(blocked(&records, "host_mismatch"), 2, "{records:#?}");
    Ok(())
}

#[tokio::test]
async fn private_destinations_are_refused_unless_resolved_or_allowed() -> anyhow::Result<()> {
    let target = MockUpstream::start(MockOptions::default()).await?;
    let port = target.port();
    let resolve = format!("named.test:{port}=127.0.0.1:{port}");
    let px = ProxyKw::start(&["--resolve", &resolve]).await?;
    let session = px.proxy_session(json!({})).await?;
    let auth = basic(&session.token);
    // Loopback spellings of a live listener, and the metadata address: all refused on the
    // resolved address before any dial (no private-range address outside loopback is dialed
    // even if the guard broke: 169.254.169.254 is link-local and not routed here).
    let refused = [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        format!("[::ffff:127.0.0.1]:{port}"),
        format!("0.0.0.0:{port}"),
        "169.254.169.254:80".to_owned(),
    ];
    for authority in &refused {
        let (reply, _) = raw_connect(&px.proxy_addr(), authority, Some(&auth)).await?;
        reply.assert_error(403, "private_destination");
    }
    // The operator's --resolve entry is trusted as given.
    let named = format!("named.test:{port}");
    let (reply, stream) = raw_connect(&px.proxy_addr(), &named, Some(&auth)).await?;
    assert_eq!(reply.status, 200, "{reply:#?}");
    drop(stream);
    let records = px
        .audited_n(&session.id, "blocked:private_destination", refused.len())
        .await?;
    assert_eq!(blocked(&records, "private_destination"), refused.len());
    px.audited(&session.id, "tunnelled").await?;

    // --allow-private-upstreams lets the same CONNECT through.
    let open = ProxyKw::start(&["--allow-private-upstreams"]).await?;
    let session = open.proxy_session(json!({})).await?;
    let authority = format!("127.0.0.1:{port}");
    let (reply, _) =
        raw_connect(&open.proxy_addr(), &authority, Some(&basic(&session.token))).await?;
    assert_eq!(reply.status, 200, "{reply:#?}");
    assert_eq!(
        target.request_count(),
        0,
        "nothing was sent inside the tunnels"
    );
    Ok(())
}

#[tokio::test]
async fn missing_or_wrong_proxy_credentials_get_407() -> anyhow::Result<()> {
    let (plain, resolve) = plain_mock().await?;
    let px = ProxyKw::start(&["--resolve", &resolve]).await?;
    let ended = px.proxy_session(json!({})).await?;
    let (status, body) = px
        .admin
        .delete(&format!("/v1/sessions/{}", ended.id), None)
        .await?;
    assert_eq!(status, 200, "{body}");
    let live = px.proxy_session(json!({})).await?;
    let admin_token = px.kw.admin_token()?;
    let wrong = [
        None,
        Some(basic("kw_s_not-a-session")),
        Some(basic(&ended.token)),
        Some(basic(&admin_token)),
        Some(format!("Bearer {}x", live.token)),
        Some("Basic !!!".to_owned()),
        Some(format!("Digest {}", live.token)),
    ];
    for auth in &wrong {
        for authority in ["api.openai.com:443", "plain.test:80"] {
            let (reply, _) = raw_connect(&px.proxy_addr(), authority, auth.as_deref()).await?;
            reply.assert_error(407, "proxy_auth_required");
            let challenge = reply.header("proxy-authenticate").unwrap_or_default();
            assert!(challenge.starts_with("Basic"), "{auth:?}: {reply:#?}");
        }
        let mut request =
            "GET http://plain.test/v1/models HTTP/1.1\r\nHost: plain.test\r\n".to_owned();
        if let Some(auth) = auth {
            request.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
        }
        request.push_str("\r\n");
        let (reply, _) = raw_request(&px.proxy_addr(), request.as_bytes()).await?;
        reply.assert_error(407, "proxy_auth_required");
    }
    assert_eq!(plain.request_count(), 0);
    // Control: the live session's token, as Basic and as Bearer.
    for auth in [basic(&live.token), format!("Bearer {}", live.token)] {
        let (reply, _) = raw_connect(&px.proxy_addr(), "api.openai.com:443", Some(&auth)).await?;
        assert_eq!(reply.status, 200, "{reply:#?}");
    }
    Ok(())
}

const OTHER_OPENAI: &str = "sk-proj-SESSION-B-4d3c2b1a0f9e8d7c6b5a";

#[tokio::test]
async fn another_sessions_placeholder_never_unlocks_its_key() -> anyhow::Result<()> {
    let px = ProxyKw::start(&[]).await?;
    px.bundle("b-keys", json!({"OPENAI_API_KEY": OTHER_OPENAI}))
        .await?;
    px.openai.set_expected_key(None);
    let a = px.proxy_session(json!({})).await?;
    let b = px
        .session(json!({"mode": "proxy", "secrets": ["b-keys"]}))
        .await?;
    let b_client = px.through(&b.token)?;
    let chat = "https://api.openai.com/v1/chat/completions";
    let body = json!({"model": "gpt-4o-mini", "messages": []});
    // keyward only knows B's placeholders on B's connection. A's OpenAI placeholder in the
    // credential header is no match: the rule's header (B's key) replaces it.
    let reply: Reply = send(
        b_client
            .post(chat)
            .bearer_auth(a.env("OPENAI_API_KEY"))
            .json(&body),
    )
    .await?;
    assert_eq!(reply.status, 200, "{}", reply.text());
    // A's Anthropic placeholder elsewhere in the request is inert text to B's session: it is
    // not a placeholder of B's, so it is neither replaced nor blocked.
    let reply = send(
        b_client
            .post(chat)
            .bearer_auth(b.env("OPENAI_API_KEY"))
            .header("x-note", a.env("ANTHROPIC_API_KEY"))
            .json(&body),
    )
    .await?;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = px.openai.requests();
    assert_only_real_key(&seen[..1], OTHER_OPENAI, &[CANARY_OPENAI]);
    assert_eq!(seen[1].presented_key().as_deref(), Some(OTHER_OPENAI));
    assert_eq!(
        seen[1].header("x-note"),
        Some(a.env("ANTHROPIC_API_KEY").as_str())
    );
    for req in &seen {
        let text = format!("{:?}{}", req.headers, req.body_text());
        assert!(!text.contains(CANARY_OPENAI) && !text.contains(CANARY_ANTHROPIC));
    }
    let records = px.audited_n(&b.id, "forwarded", 2).await?;
    let forwarded: Vec<&Value> = records
        .iter()
        .filter(|r| r["decision"] == "forwarded")
        .collect();
    assert_eq!(forwarded.len(), 2, "{records:#?}");
    assert!(
        px.audit(&a.id, 0).await?.is_empty(),
        "session A made no call"
    );
    px.assert_canaries_nowhere(&[OTHER_OPENAI], &[]).await
}

#[tokio::test]
async fn end_session_on_exfiltration_cuts_the_session_off_at_once() -> anyhow::Result<()> {
    let px = ProxyKw::start(&["--end-session-on-exfiltration"]).await?;
    let session = px.proxy_session(json!({})).await?;
    let client = px.through(&session.token)?;
    let models = "https://api.openai.com/v1/models";
    let ok = send(
        client
            .get(models)
            .bearer_auth(session.env("OPENAI_API_KEY")),
    )
    .await?;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let leak = client
        .get(models)
        .bearer_auth(session.env("OPENAI_API_KEY"))
        .header("x-note", session.env("ANTHROPIC_API_KEY"));
    assert_proxy_error(&send(leak).await?, 403, "exfiltration_attempt");
    // The same kept-alive connection, and a new CONNECT: both refused now.
    let again = send(
        client
            .get(models)
            .bearer_auth(session.env("OPENAI_API_KEY")),
    )
    .await?;
    assert_eq!(again.status, 401, "{}", again.text());
    let (reply, _) = raw_connect(
        &px.proxy_addr(),
        "api.openai.com:443",
        Some(&basic(&session.token)),
    )
    .await?;
    reply.assert_error(407, "proxy_auth_required");
    let (_, view) = px
        .admin
        .get(&format!("/v1/sessions/{}", session.id), None)
        .await?;
    assert_eq!(view["status"], "ended", "{view}");
    assert_eq!(px.openai.request_count(), 1);
    Ok(())
}
