//! `keyward run -- CMD…`: the child's environment (clean, placeholders, proxy and CA settings,
//! never a real key nor the host's `KEYWARD_*`), its exit code, signal forwarding, the session
//! ending with the command, gateway mode, and `--egress-allow`.

use std::collections::BTreeMap;
use std::time::Duration;

use keyward_testkit::mock_upstream::ASSISTANT_TEXT;
use keyward_testkit::{Behavior, MockOptions, MockUpstream, CANARY_ANTHROPIC, CANARY_OPENAI};
use serde_json::{json, Value};

use crate::support::proxy::{assert_only_real_key, path_str, ProxyKw, RunOutput, RUN_TIMEOUT};
use crate::support::raw_proxy::{basic, raw_connect};

/// Every variable the CA bundle goes into.
const CA_VARS: [&str; 7] = [
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
    "DENO_CERT",
    "CARGO_HTTP_CAINFO",
];

/// Prints the environment, a separator, then the CA bundle file.
const SHOW_ENV: &str = r#"env; echo '---8<---'; cat "$SSL_CERT_FILE""#;

/// (env, CA bundle text) from a [`SHOW_ENV`] run.
fn parse_env(out: &RunOutput) -> (BTreeMap<String, String>, String) {
    let (env, bundle) = out
        .stdout
        .split_once("---8<---\n")
        .unwrap_or((&out.stdout, ""));
    let env = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    (env, bundle.to_owned())
}

/// The host environment `keyward run` is started with: its own settings and markers.
fn host_env(px: &ProxyKw) -> anyhow::Result<Vec<(String, String)>> {
    Ok(vec![
        ("KEYWARD_TOKEN".into(), px.kw.admin_token()?),
        ("KEYWARD_DATA_DIR".into(), path_str(px.kw.data_dir())?),
        (
            "KEYWARD_HOST_ONLY".into(),
            "must-not-reach-the-agent".into(),
        ),
        (
            "keyward_lowercase".into(),
            "must-not-reach-the-agent".into(),
        ),
        ("HOST_MARKER".into(), "inherited".into()),
    ])
}

#[tokio::test]
async fn the_child_gets_placeholders_proxy_and_ca_but_no_key() -> anyhow::Result<()> {
    let px = ProxyKw::start(&[]).await?;
    let host = host_env(&px)?;
    let host: Vec<(&str, &str)> = host.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let args = ["--bundle", "providers"];
    let out = px.run(&args, &["sh", "-c", SHOW_ENV], &host).await?.ok();
    for canary in [CANARY_OPENAI, CANARY_ANTHROPIC] {
        assert!(
            !out.all().contains(canary),
            "the agent saw a real key: {out:#?}"
        );
    }
    let (env, bundle) = parse_env(&out);
    let show = format!("{env:#?}");
    assert!(env["OPENAI_API_KEY"].starts_with("sk-proj-kw"), "{show}");
    assert!(
        env["ANTHROPIC_API_KEY"].starts_with("sk-ant-api03-kw"),
        "{show}"
    );
    let proxy = &env["HTTPS_PROXY"];
    assert!(proxy.starts_with("http://kw:kw_s_"), "{show}");
    assert!(proxy.ends_with(&format!("@{}", px.proxy_addr())), "{show}");
    for var in ["HTTP_PROXY", "https_proxy", "http_proxy"] {
        assert_eq!(&env[var], proxy, "{var}");
    }
    assert!(env["NO_PROXY"].contains("localhost"), "{show}");
    assert_eq!(env["NODE_USE_ENV_PROXY"], "1", "{show}");
    let ca_file = &env["SSL_CERT_FILE"];
    for var in CA_VARS {
        assert_eq!(&env[var], ca_file, "{var}: {show}");
    }
    assert!(
        bundle.contains(px.ca_pem.trim()),
        "keyward's CA is in the bundle"
    );
    // One CA everywhere: GET /v1/ca.pem, DATA_DIR/ca.pem, a proxy session's `ca_pem`.
    let on_disk = std::fs::read_to_string(px.kw.data_dir().join("ca.pem"))?;
    assert_eq!(on_disk.trim(), px.ca_pem.trim());
    let created = json!({"mode": "proxy", "secrets": ["providers"]});
    let (_, created) = px.admin.post("/v1/sessions", Some(created)).await?;
    assert_eq!(
        created["ca_pem"].as_str().map(str::trim),
        Some(px.ca_pem.trim())
    );
    if std::path::Path::new("/etc/ssl/certs/ca-certificates.crt").exists() {
        assert!(
            bundle.matches("BEGIN CERTIFICATE").count() > 10,
            "system roots kept"
        );
    }
    assert!(
        !std::path::Path::new(ca_file).exists(),
        "the bundle is removed afterwards"
    );
    for key in env.keys() {
        assert!(
            !key.to_ascii_uppercase().starts_with("KEYWARD_"),
            "{key} leaked"
        );
    }
    for absent in ["HOST_MARKER", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"] {
        assert!(!env.contains_key(absent), "{absent}: {show}");
    }
    assert!(!out.stdout.contains("must-not-reach-the-agent"));

    // --inherit-env keeps the host's variables, but still none of keyward's own.
    let args = ["--bundle", "providers", "--inherit-env"];
    let out = px.run(&args, &["sh", "-c", SHOW_ENV], &host).await?.ok();
    let (env, _) = parse_env(&out);
    assert_eq!(
        env.get("HOST_MARKER").map(String::as_str),
        Some("inherited")
    );
    assert!(!out.stdout.contains("must-not-reach-the-agent"), "{out:#?}");
    assert!(env["OPENAI_API_KEY"].starts_with("sk-proj-kw"));
    px.assert_canaries_nowhere(&[], &[&out.all()]).await
}

#[tokio::test]
async fn the_exit_code_is_the_commands_and_the_session_ends() -> anyhow::Result<()> {
    let px = ProxyKw::start(&[]).await?;
    let args = ["--bundle", "providers"];
    let cases: [(&[&str], i32); 4] = [
        (&["true"], 0),
        (&["sh", "-c", "exit 7"], 7),
        (&["sh", "-c", "kill -KILL $$"], 128 + 9),
        (&["/nonexistent/agent"], 1),
    ];
    for (cmd, code) in cases {
        let out = px.run(&args, cmd, &[]).await?;
        assert_eq!(out.code, Some(code), "{cmd:?}: {out:#?}");
    }
    let sessions = px.sessions().await?;
    assert_eq!(sessions.len(), cases.len(), "{sessions:#?}");
    for s in &sessions {
        assert_eq!(s["status"], "ended", "{s}");
        assert!(s["ended_at"].is_string(), "{s}");
        assert_eq!(s["mode"], "proxy", "{s}");
    }
    Ok(())
}

const TRAPPER: &str = r#"trap 'echo term > "$1"; exit 0' TERM
echo "$$ $HTTPS_PROXY" > "$2.tmp" && mv "$2.tmp" "$2"
while :; do sleep 0.05; done
"#;

#[tokio::test]
async fn sigterm_reaches_the_child_and_ends_the_session() -> anyhow::Result<()> {
    let px = ProxyKw::start(&[]).await?;
    let (term, ready) = (px.file("term"), px.file("ready"));
    let cmd = [
        "sh",
        "-c",
        TRAPPER,
        "sh",
        &path_str(&term)?,
        &path_str(&ready)?,
    ];
    let child = px
        .run_command(&["--bundle", "providers"], &cmd, &[])
        .spawn()?;
    let pid = child.id().unwrap_or_default().to_string();
    let deadline = tokio::time::Instant::now() + RUN_TIMEOUT;
    while !ready.exists() {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the child never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ready = std::fs::read_to_string(&ready)?;
    let (agent_pid, proxy) = ready.trim().split_once(' ').unwrap_or_default();
    let token = proxy
        .trim_start_matches("http://kw:")
        .split('@')
        .next()
        .unwrap_or_default()
        .to_owned();
    // While it runs, the token opens the proxy.
    let (reply, _) =
        raw_connect(&px.proxy_addr(), "api.openai.com:443", Some(&basic(&token))).await?;
    assert_eq!(reply.status, 200, "{reply:#?}");

    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await?;
    assert!(killed.success());
    let out = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output()).await;
    let Ok(out) = out else {
        // Leave no looping agent behind (keyward run itself is killed on drop).
        let _ = std::process::Command::new("kill")
            .args(["-KILL", agent_pid])
            .status();
        panic!("keyward run did not end within 15 s of SIGTERM: the agent never got it");
    };
    let out = out?;
    assert_eq!(
        out.status.code(),
        Some(0),
        "the child's exit code after its trap: {out:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&term)?.trim(),
        "term",
        "the trap ran"
    );

    let id = px.only_session_id().await?;
    let (status, view) = px.admin.get(&format!("/v1/sessions/{id}"), None).await?;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["status"], "ended", "{view}");
    let (reply, _) =
        raw_connect(&px.proxy_addr(), "api.openai.com:443", Some(&basic(&token))).await?;
    reply.assert_error(407, "proxy_auth_required");
    Ok(())
}

#[tokio::test]
async fn gateway_mode_gives_base_urls_and_the_token() -> anyhow::Result<()> {
    let px = ProxyKw::start(&[]).await?;
    let script = r#"env; echo '---8<---'
curl -sS --fail-with-body "$OPENAI_BASE_URL/chat/completions" \
  -H "Authorization: Bearer $OPENAI_API_KEY" -H 'content-type: application/json' \
  -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'
"#;
    let args = ["--bundle", "providers", "--mode", "gateway"];
    let out = px.run(&args, &["sh", "-c", script], &[]).await?.ok();
    let (env, answer) = parse_env(&out);
    let show = format!("{env:#?}");
    let plane = px.kw.proxy_url().trim_end_matches('/').to_owned();
    assert_eq!(
        env["OPENAI_BASE_URL"],
        format!("{plane}/openai/v1"),
        "{show}"
    );
    assert_eq!(
        env["ANTHROPIC_BASE_URL"],
        format!("{plane}/anthropic"),
        "{show}"
    );
    assert!(env["OPENAI_API_KEY"].starts_with("kw_s_"), "{show}");
    assert_eq!(env["ANTHROPIC_API_KEY"], env["OPENAI_API_KEY"], "{show}");
    for absent in [
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "SSL_CERT_FILE",
        "NODE_USE_ENV_PROXY",
    ] {
        assert!(!env.contains_key(absent), "{absent}: {show}");
    }
    let answer: Value = serde_json::from_str(answer.trim())?;
    assert_eq!(answer["choices"][0]["message"]["content"], ASSISTANT_TEXT);
    // Through the gateway route to the real provider URL (`--resolve`d to the TLS mock).
    assert_only_real_key(&px.openai.requests(), CANARY_OPENAI, &[]);
    let id = px.only_session_id().await?;
    let record = px.audited(&id, "forwarded").await?;
    assert_eq!(record["mode"], "gateway", "{record}");
    px.assert_canaries_nowhere(&[], &[&out.all()]).await
}

#[tokio::test]
async fn egress_allow_makes_a_deny_unlisted_session() -> anyhow::Result<()> {
    let tunnel = MockUpstream::start(MockOptions {
        tls: true,
        ..MockOptions::default()
    })
    .await?;
    let allowed = format!("allowed.test:443=127.0.0.1:{}", tunnel.port());
    let unlisted = format!("unlisted.test:443=127.0.0.1:{}", tunnel.port());
    let px = ProxyKw::start(&["--resolve", &allowed, "--resolve", &unlisted]).await?;
    // The mock's leaf does not name allowed.test: `-k`, this test is about reachability only.
    let script = r#"curl -sS https://unlisted.test/v1/models -o /dev/null
echo "unlisted=$?"
curl -sS -k https://allowed.test/v1/models -o /dev/null -w 'allowed=%{http_code}\n'
"#;
    let args = ["--bundle", "providers", "--egress-allow", "allowed.test"];
    let out = px.run(&args, &["sh", "-c", script], &[]).await?.ok();
    // curl 56: the proxy refused the CONNECT.
    assert!(out.stdout.contains("unlisted=56"), "{out:#?}");
    assert!(out.stdout.contains("allowed=200"), "{out:#?}");
    assert_eq!(
        tunnel.request_count(),
        1,
        "only the allowed host was reached"
    );
    let id = px.only_session_id().await?;
    let (_, view) = px.admin.get(&format!("/v1/sessions/{id}"), None).await?;
    assert_eq!(
        view["egress"],
        json!({"mode": "deny-unlisted", "allow": ["allowed.test"]}),
        "{view}"
    );
    let record = px.audited(&id, "blocked:egress_denied").await?;
    assert_eq!(record["host"], "unlisted.test", "{record}");
    Ok(())
}

const LEAKY_AGENT: &str = r#"
import json, os, requests
s = requests.Session()
chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
msgs = {"model": "claude-sonnet-4-5", "max_tokens": 16, "stream": True,
        "messages": [{"role": "user", "content": "hi"}]}
out = []
def show(r):
    out.append({"status": r.status_code, "headers": dict(r.headers), "body": r.text})
show(s.post("https://api.openai.com/v1/chat/completions", json=chat,
            headers={"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"]}))
show(s.post("https://api.anthropic.com/v1/messages", json=msgs,
            headers={"x-api-key": os.environ["ANTHROPIC_API_KEY"], "anthropic-version": "2023-06-01"}))
show(s.post("https://api.anthropic.com/v1/messages", json=msgs,
            headers={"x-api-key": os.environ["OPENAI_API_KEY"], "anthropic-version": "2023-06-01"}))
print(json.dumps(out))
"#;

#[tokio::test]
async fn the_canary_leaks_nowhere_after_a_proxied_agent_run() -> anyhow::Result<()> {
    // Debug logs, and upstreams that echo the key back (whole, and split across SSE frames).
    let px = ProxyKw::start_with_env(&[], &[("RUST_LOG", "debug")]).await?;
    px.openai.set_behavior(Behavior::EchoAuth);
    px.anthropic.set_behavior(Behavior::EchoAuthStreamSplit);
    let py = path_str(&crate::support::gateway::python())?;
    let cmd = [py.as_str(), "-c", LEAKY_AGENT];
    let out = px.run(&["--bundle", "providers"], &cmd, &[]).await?.ok();
    let replies = out.last_json()?;
    let statuses: Vec<&Value> = replies
        .as_array()
        .map(|a| a.iter().map(|r| &r["status"]).collect())
        .unwrap_or_default();
    assert_eq!(
        statuses,
        [&json!(401), &json!(200), &json!(403)],
        "{replies:#}"
    );
    assert!(replies[2]["body"]
        .as_str()
        .unwrap_or_default()
        .contains("exfiltration_attempt"));
    // The upstreams did get (and echo) the real keys; the agent saw none of it.
    assert_eq!(
        px.openai.requests()[0].presented_key().as_deref(),
        Some(CANARY_OPENAI)
    );
    assert_eq!(
        px.anthropic.requests()[0].presented_key().as_deref(),
        Some(CANARY_ANTHROPIC)
    );
    assert_eq!(
        px.anthropic.request_count(),
        1,
        "the exfiltration attempt was not forwarded"
    );
    let id = px.only_session_id().await?;
    px.audited(&id, "blocked:exfiltration_attempt").await?;
    px.audited_n(&id, "forwarded", 2).await?;
    px.assert_canaries_nowhere(&[], &[&out.all()]).await
}
