//! Who may call a route (`clients:` allow-list), several listeners with `/healthz` each, and a
//! `custom` backend behind the private-address guard (`--allow-private-upstreams`).

use keyward_crypto::token;
use keyward_testkit::{MockOptions, MockUpstream, CANARY_OPENAI};
use reqwest::Method;
use serde_json::json;

use super::{config, route, sdk_call, StaticKw};
use crate::support::gateway::{call, chat_body};

const ALICE: &str = "kw-client-alice-0123456789";
const MALLORY: &str = "kw-client-mallory-0123456789";

#[tokio::test]
async fn only_listed_client_tokens_may_call() -> anyhow::Result<()> {
    let digest = hex(&token::digest(ALICE));
    let yaml = format!(
        "{}        clients: [ {{ token_sha256: \"{digest}\", name: alice }} ]\n",
        config(&[route(
            "/openai",
            "{ provider: openai }",
            "{ key: \"$OPENAI_API_KEY\" }"
        )])
    );
    let st = StaticKw::start(&yaml, &[("OPENAI_API_KEY", CANARY_OPENAI)], &[]).await?;

    let out = sdk_call(st.url(), "/openai", ALICE).await?;
    assert_eq!(out["status"], 200, "{out}");
    let req = st.openai.last_request().expect("a request");
    assert_eq!(req.presented_key().as_deref(), Some(CANARY_OPENAI));
    assert!(
        !format!("{req:?}").contains(ALICE),
        "client token forwarded"
    );

    let out = sdk_call(st.url(), "/openai", MALLORY).await?;
    assert_eq!(out["status"], 401, "{out}");
    let url = format!("{}/openai/v1/chat/completions", st.url());
    let reply = call(Method::POST, &url, &[], Some(&chat_body())).await?;
    assert_eq!(reply.status, 401, "{}", reply.text());
    assert_eq!(reply.json()["error"]["code"], "unauthorized");
    // The token works in any of the headers SDKs use.
    let reply = call(
        Method::POST,
        &url,
        &[("x-api-key", ALICE)],
        Some(&chat_body()),
    )
    .await?;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        st.openai.request_count(),
        2,
        "refused calls never reach the upstream"
    );

    let records = st.audit(2).await?;
    for record in &records {
        assert_eq!(record["user_id"], "alice", "{record}");
    }
    st.assert_not_logged(ALICE);
    Ok(())
}

#[tokio::test]
async fn every_listener_serves_its_routes_and_healthz() -> anyhow::Result<()> {
    let yaml = format!(
        "{}  - bind: 127.0.0.1:0\n    routes:\n{}",
        config(&[route("/a", "{ provider: openai }", "{ key: \"$K\" }")]),
        route("/b", "{ provider: openai }", "{ key: \"$K\" }"),
    );
    let st = StaticKw::start(&yaml, &[("K", CANARY_OPENAI)], &[]).await?;
    let info: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        st.kw.data_dir().join("server.json"),
    )?)?;
    let listeners: Vec<String> = serde_json::from_value(info["listeners"].clone())?;
    assert_eq!(listeners.len(), 2, "{info}");
    assert_eq!(info["mode"], "static");
    for (url, mine, other) in [(&listeners[0], "/a", "/b"), (&listeners[1], "/b", "/a")] {
        let health = call(Method::GET, &format!("{url}/healthz"), &[], None).await?;
        assert_eq!(health.status, 200);
        assert_eq!(health.json(), json!({"status": "ok"}));
        let chat = |p: &str| format!("{url}{p}/v1/chat/completions");
        let ok = call(Method::POST, &chat(mine), &[], Some(&chat_body())).await?;
        assert_eq!(ok.status, 200, "{}", ok.text());
        let missing = call(Method::POST, &chat(other), &[], Some(&chat_body())).await?;
        assert_eq!(missing.status, 404, "{}", missing.text());
    }
    Ok(())
}

#[tokio::test]
async fn custom_backends_honour_the_private_address_guard() -> anyhow::Result<()> {
    let local = MockUpstream::start(MockOptions::default()).await?;
    let yaml = config(&[route(
        "/local",
        &format!(
            "{{ provider: custom, base_url: \"{}/v1\", model: llama3 }}",
            local.url()
        ),
        "{ key: \"$K\" }",
    )]);
    let url = |st: &StaticKw| format!("{}/local/chat/completions", st.url());

    // A loopback upstream is refused unless the operator allows private upstreams.
    let st = StaticKw::start(&yaml, &[("K", CANARY_OPENAI)], &[]).await?;
    let reply = call(Method::POST, &url(&st), &[], Some(&chat_body())).await?;
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert_eq!(reply.json()["error"]["code"], "private_destination");
    assert_eq!(local.request_count(), 0);
    drop(st);

    let st = StaticKw::start(
        &yaml,
        &[("K", CANARY_OPENAI)],
        &["--allow-private-upstreams"],
    )
    .await?;
    let reply = call(Method::POST, &url(&st), &[], Some(&chat_body())).await?;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let req = local.last_request().expect("a request");
    assert_eq!(req.path, "/v1/chat/completions");
    assert_eq!(req.presented_key().as_deref(), Some(CANARY_OPENAI));
    assert_eq!(req.body_json().unwrap_or_default()["model"], "llama3");
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
