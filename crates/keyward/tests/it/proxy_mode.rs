//! Proxy mode with real, unmodified clients started by `keyward run` (no base-URL change):
//! they call `https://api.openai.com` / `https://api.anthropic.com` through `HTTPS_PROXY`,
//! trusting keyward's CA from the bundle `keyward run` writes; keyward intercepts, swaps the
//! placeholder for the real key and forwards over real TLS to mocks reached with `--resolve`.
//! The mocks answer 401 to anything but the canary key, so a client that succeeds proves the
//! swap. Also: a rotation reaches the very next request on a kept-alive intercepted connection.

use std::time::Duration;

use keyward_testkit::mock_upstream::ASSISTANT_TEXT;
use keyward_testkit::{CANARY_ANTHROPIC, CANARY_OPENAI};
use serde_json::{json, Value};

use crate::support::gateway::python;
use crate::support::proxy::{assert_only_real_key, node_modules, path_str, ProxyKw, RUN_TIMEOUT};
use crate::support::SECRETS;

const CHAT: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
const MESSAGES: &str =
    r#"{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}"#;

/// The session's audit records once `forwarded` ones are `n`, checked to be proxy-mode.
async fn decisions(px: &ProxyKw, session: &str, n: usize) -> anyhow::Result<Vec<Value>> {
    let records = px.audited_n(session, "forwarded", n).await?;
    for r in &records {
        assert_eq!(r["mode"], "proxy", "{r}");
    }
    Ok(records)
}

fn count(records: &[Value], decision: &str) -> usize {
    records.iter().filter(|r| r["decision"] == decision).count()
}

/// The forwarded records carry the credential that fits their host, and a 200.
#[track_caller]
fn assert_forwarded(records: &[Value]) {
    for r in records.iter().filter(|r| r["decision"] == "forwarded") {
        let want = match r["host"].as_str() {
            Some("api.openai.com") => "OPENAI_API_KEY",
            Some("api.anthropic.com") => "ANTHROPIC_API_KEY",
            other => panic!("forwarded to {other:?}: {r}"),
        };
        assert_eq!(r["credential"], want, "{r}");
        assert_eq!(r["status"], 200, "{r}");
    }
}

const CURL_SCRIPT: &str = r#"set -eu
curl -sS --fail-with-body --http1.1 https://api.openai.com/v1/chat/completions \
  -H "Authorization: Bearer $OPENAI_API_KEY" -H 'content-type: application/json' -d "$1"
echo
curl -sS --fail-with-body --http2 https://api.anthropic.com/v1/messages \
  -H "x-api-key: $ANTHROPIC_API_KEY" -H 'anthropic-version: 2023-06-01' \
  -H 'content-type: application/json' -d "$2"
echo
# No credential header at all: keyward adds the rule's header.
curl -sS --fail-with-body https://api.openai.com/v1/models
echo
"#;

#[tokio::test]
async fn curl_through_keyward_run_reaches_the_real_provider_urls() -> anyhow::Result<()> {
    let px = ProxyKw::start(&[]).await?;
    let args = ["--bundle", "providers"];
    let cmd = ["sh", "-c", CURL_SCRIPT, "sh", CHAT, MESSAGES];
    let out = px.run(&args, &cmd, &[]).await?.ok();
    let lines = out.json_lines()?;
    assert_eq!(lines.len(), 3, "{out:#?}");
    assert_eq!(lines[0]["choices"][0]["message"]["content"], ASSISTANT_TEXT);
    assert_eq!(lines[1]["content"][0]["text"], ASSISTANT_TEXT);
    assert!(lines[2]["data"].is_array(), "{}", lines[2]);

    assert_eq!(px.openai.request_count(), 2);
    assert_eq!(px.anthropic.request_count(), 1);
    assert_only_real_key(&px.openai.requests(), CANARY_OPENAI, &[]);
    assert_only_real_key(&px.anthropic.requests(), CANARY_ANTHROPIC, &[]);
    let sent = px.anthropic.requests();
    assert_eq!(sent[0].header("anthropic-version"), Some("2023-06-01"));
    // Replaced in place: one credential header, not a second one next to the agent's.
    assert_eq!(
        px.openai.requests()[0]
            .headers
            .iter()
            .filter(|(n, _)| n == "authorization")
            .count(),
        1
    );

    let session = px.only_session_id().await?;
    let records = decisions(&px, &session, 3).await?;
    assert_eq!(count(&records, "intercepted"), 3, "{records:#?}");
    assert_eq!(count(&records, "forwarded"), 3, "{records:#?}");
    assert_forwarded(&records);
    px.assert_canaries_nowhere(&[], &[&out.all()]).await
}

const PYTHON_CLIENTS: &str = r#"
import json, os
import requests, httpx, openai, anthropic
out = {}
chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
r = requests.post("https://api.openai.com/v1/chat/completions", json=chat,
                  headers={"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"]}, timeout=30)
r.raise_for_status()
out["requests"] = r.json()["choices"][0]["message"]["content"]
with httpx.Client(timeout=30) as c:
    r = c.post("https://api.anthropic.com/v1/messages",
               json={"model": "claude-sonnet-4-5", "max_tokens": 16,
                     "messages": [{"role": "user", "content": "hi"}]},
               headers={"x-api-key": os.environ["ANTHROPIC_API_KEY"],
                        "anthropic-version": "2023-06-01"})
    r.raise_for_status()
    out["httpx"] = r.json()["content"][0]["text"]
oa = openai.OpenAI(max_retries=0)
msgs = [{"role": "user", "content": "hi"}]
out["openai"] = oa.chat.completions.create(model="gpt-4o-mini", messages=msgs).choices[0].message.content
deltas = []
for chunk in oa.chat.completions.create(model="gpt-4o-mini", messages=msgs, stream=True):
    for choice in chunk.choices:
        deltas.append(choice.delta.content or "")
out["openai_stream"] = "".join(deltas)
an = anthropic.Anthropic(max_retries=0)
m = an.messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=msgs)
out["anthropic"] = "".join(b.text for b in m.content if b.type == "text")
with an.messages.stream(model="claude-sonnet-4-5", max_tokens=16, messages=msgs) as s:
    out["anthropic_stream"] = "".join(s.text_stream)
print(json.dumps(out))
"#;

#[tokio::test]
async fn python_clients_through_keyward_run_get_the_real_key() -> anyhow::Result<()> {
    let px = ProxyKw::start(&[]).await?;
    let py = python();
    let cmd = [path_str(&py)?, "-c".into(), PYTHON_CLIENTS.into()];
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let out = px.run(&["--bundle", "providers"], &cmd, &[]).await?.ok();
    let got = out.last_json()?;
    for client in [
        "requests",
        "httpx",
        "openai",
        "openai_stream",
        "anthropic",
        "anthropic_stream",
    ] {
        assert_eq!(got[client], ASSISTANT_TEXT, "{client}: {got}");
    }
    assert_eq!(px.openai.request_count(), 3);
    assert_eq!(px.anthropic.request_count(), 3);
    assert_only_real_key(&px.openai.requests(), CANARY_OPENAI, &[]);
    assert_only_real_key(&px.anthropic.requests(), CANARY_ANTHROPIC, &[]);
    let streamed = px.openai.requests()[2].body_json().unwrap_or_default();
    assert_eq!(streamed["stream"], true, "{streamed}");

    let session = px.only_session_id().await?;
    let records = decisions(&px, &session, 6).await?;
    assert_eq!(count(&records, "forwarded"), 6, "{records:#?}");
    assert!(count(&records, "intercepted") >= 2, "{records:#?}");
    assert_forwarded(&records);
    // Metered through interception like in gateway mode.
    let metered = records
        .iter()
        .filter(|r| r["decision"] == "forwarded" && r["tokens_in"] == 11);
    assert_eq!(metered.count(), 6, "{records:#?}");
    px.assert_canaries_nowhere(&[], &[&out.all()]).await
}

/// Node < 24's `fetch` ignores `HTTPS_PROXY` even with `NODE_USE_ENV_PROXY=1` (checked on
/// v20: it resolves the target itself). keyward's README tells those users to preload undici's
/// `EnvHttpProxyAgent`; this test does exactly that (`node --require preload.cjs`) and nothing
/// else. Node 24+ honours `NODE_USE_ENV_PROXY=1`, which `keyward run` sets, with no preload.
fn node_scripts(px: &ProxyKw) -> anyhow::Result<(String, String)> {
    let nm = node_modules();
    let undici = serde_json::to_string(&path_str(&nm.join("undici"))?)?;
    let openai = serde_json::to_string(&path_str(&nm.join("openai"))?)?;
    let preload = format!(
        "const {{ setGlobalDispatcher, EnvHttpProxyAgent }} = require({undici});\n\
         setGlobalDispatcher(new EnvHttpProxyAgent());\n"
    );
    let client = format!(
        r#"const {{ OpenAI }} = require({openai});
const chat = {{ model: "gpt-4o-mini", messages: [{{ role: "user", content: "hi" }}] }};
(async () => {{
  const out = {{}};
  let r = await fetch("https://api.openai.com/v1/chat/completions", {{ method: "POST",
    headers: {{ authorization: `Bearer ${{process.env.OPENAI_API_KEY}}`, "content-type": "application/json" }},
    body: JSON.stringify(chat) }});
  out.fetch_status = r.status;
  out.fetch = (await r.json()).choices[0].message.content;
  r = await fetch("https://api.anthropic.com/v1/messages", {{ method: "POST",
    headers: {{ "x-api-key": process.env.ANTHROPIC_API_KEY, "anthropic-version": "2023-06-01",
      "content-type": "application/json" }},
    body: JSON.stringify({{ model: "claude-sonnet-4-5", max_tokens: 16, messages: chat.messages }}) }});
  out.fetch_anthropic = (await r.json()).content[0].text;
  const client = new OpenAI({{ maxRetries: 0 }});
  out.sdk = (await client.chat.completions.create(chat)).choices[0].message.content;
  let text = "";
  for await (const chunk of await client.chat.completions.create({{ ...chat, stream: true }})) {{
    text += chunk.choices[0]?.delta?.content ?? "";
  }}
  out.sdk_stream = text;
  console.log(JSON.stringify(out));
}})().catch((e) => {{ console.error(e); process.exit(1); }});
"#
    );
    let preload_path = px.file("preload-env-proxy.cjs");
    let client_path = px.file("clients.cjs");
    std::fs::write(&preload_path, preload)?;
    std::fs::write(&client_path, client)?;
    Ok((path_str(&preload_path)?, path_str(&client_path)?))
}

async fn node_major() -> anyhow::Result<u32> {
    let out = tokio::process::Command::new("node")
        .args(["-p", "process.versions.node"])
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "node is required for the Node clients"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.split('.').next().unwrap_or_default().trim().parse()?)
}

#[tokio::test]
async fn node_fetch_and_the_openai_npm_sdk_through_keyward_run() -> anyhow::Result<()> {
    let px = ProxyKw::start(&[]).await?;
    let (preload, client) = node_scripts(&px)?;
    let mut cmd = vec!["node"];
    if node_major().await? < 24 {
        cmd.extend(["--require", preload.as_str()]);
    }
    cmd.push(client.as_str());
    let out = px.run(&["--bundle", "providers"], &cmd, &[]).await?.ok();
    let got = out.last_json()?;
    assert_eq!(got["fetch_status"], 200, "{got}");
    for client in ["fetch", "fetch_anthropic", "sdk", "sdk_stream"] {
        assert_eq!(got[client], ASSISTANT_TEXT, "{client}: {got}");
    }
    assert_eq!(px.openai.request_count(), 3);
    assert_eq!(px.anthropic.request_count(), 1);
    assert_only_real_key(&px.openai.requests(), CANARY_OPENAI, &[]);
    assert_only_real_key(&px.anthropic.requests(), CANARY_ANTHROPIC, &[]);
    let session = px.only_session_id().await?;
    let records = decisions(&px, &session, 4).await?;
    assert_eq!(count(&records, "forwarded"), 4, "{records:#?}");
    assert_forwarded(&records);
    px.assert_canaries_nowhere(&[], &[&out.all()]).await
}

const ROTATION_CLIENT: &str = r#"
import json, os, sys, time, requests
ready, go = sys.argv[1], sys.argv[2]
s = requests.Session()
chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
def call():
    r = s.post("https://api.openai.com/v1/chat/completions", json=chat, timeout=30,
               headers={"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"]})
    return r.status_code
first = call()
open(ready, "w").write("done")
deadline = time.time() + 30
while not os.path.exists(go):
    if time.time() > deadline:
        sys.exit("the test never rotated the key")
    time.sleep(0.02)
print(json.dumps({"first": first, "second": call()}))
"#;

const ROTATED: &str = "sk-proj-ROTATED-proxy-8c7b6a5f4e3d2c1b0a99";

#[tokio::test]
async fn a_rotation_reaches_the_next_request_on_the_same_tls_connection() -> anyhow::Result<()> {
    let px = ProxyKw::start(&[]).await?;
    let (ready, go) = (px.file("ready"), px.file("go"));
    let py = path_str(&python())?;
    let cmd = [
        py.as_str(),
        "-c",
        ROTATION_CLIENT,
        &path_str(&ready)?,
        &path_str(&go)?,
    ];
    let child = px
        .run_command(&["--bundle", "providers"], &cmd, &[])
        .spawn()?;
    let deadline = tokio::time::Instant::now() + RUN_TIMEOUT;
    while !ready.exists() {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no first call");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let values = json!({"OPENAI_API_KEY": ROTATED, "ANTHROPIC_API_KEY": CANARY_ANTHROPIC});
    let path = format!("{SECRETS}/providers");
    let (status, body) = px.admin.put(&path, Some(json!({"values": values}))).await?;
    assert_eq!(status, 200, "{body}");
    px.openai.set_expected_key(Some(ROTATED));
    std::fs::write(&go, "go")?;
    let out = tokio::time::timeout(RUN_TIMEOUT, child.wait_with_output()).await??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let got: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())?;
    assert_eq!(got, json!({"first": 200, "second": 200}), "{stderr}");

    let requests = px.openai.requests();
    assert_eq!(requests.len(), 2);
    assert_only_real_key(&requests[..1], CANARY_OPENAI, &[]);
    assert_only_real_key(&requests[1..], ROTATED, &[CANARY_OPENAI]);
    let session = px.only_session_id().await?;
    let records = decisions(&px, &session, 2).await?;
    // One CONNECT, one TLS session: both calls rode the same kept-alive connection.
    assert_eq!(count(&records, "intercepted"), 1, "{records:#?}");
    let forwarded: Vec<&Value> = records
        .iter()
        .filter(|r| r["decision"] == "forwarded")
        .collect();
    assert_eq!(forwarded.len(), 2, "{records:#?}");
    assert_eq!(forwarded[0]["credential_version"], 1, "{records:#?}");
    assert_eq!(forwarded[1]["credential_version"], 2, "{records:#?}");
    px.assert_canaries_nowhere(&[ROTATED], &[&stdout, &stderr])
        .await
}
