//! Agents (seeds 002 and 004): the API's shapes and 409 rules, the gateway token on the data
//! plane and its rotation, sessions inheriting an agent's bundles, the manifest check (API and
//! `keyward agents check`), the Synced indicator, and `keyward secrets set AGENT K=V`.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Context as _;
use keyward_testkit::{ApiClient, CANARY_ANTHROPIC, CANARY_OPENAI};
use serde_json::{json, Value};

use crate::support::gateway::{assert_proxy_error, openai_chat, Gateway};
use crate::support::{assert_error, bin, is_utc_rfc3339, new_tenant, start_server, SECRETS};

const AGENTS: &str = "/v1/agents";

/// `POST /v1/tenants/me/secrets` with secret `values` and `variables` (asserting 201).
async fn bundle(
    client: &ApiClient,
    name: &str,
    values: Value,
    variables: Value,
) -> anyhow::Result<()> {
    let body = json!({"name": name, "values": values, "variables": variables});
    let (status, answer) = client.post(SECRETS, Some(body)).await?;
    anyhow::ensure!(status == 201, "create bundle {name}: {status} {answer}");
    Ok(())
}

/// `POST /v1/agents` (asserting 201); returns the body.
async fn create_agent(client: &ApiClient, body: Value) -> anyhow::Result<Value> {
    let (status, answer) = client.post(AGENTS, Some(body)).await?;
    anyhow::ensure!(status == 201, "create agent: {status} {answer}");
    Ok(answer)
}

/// `POST /v1/agents/{agent}/secrets {"bundle"}`: (status, body).
async fn attach(client: &ApiClient, agent: &str, bundle: &str) -> anyhow::Result<(u16, Value)> {
    let (status, body) = client
        .post(
            &format!("{AGENTS}/{agent}/secrets"),
            Some(json!({ "bundle": bundle })),
        )
        .await?;
    Ok((status.as_u16(), body))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `keyward --data-dir DIR ARGS` with a cleared environment: (exit code, stdout, stderr).
fn cli(dir: &Path, args: &[&str]) -> anyhow::Result<(i32, String, String)> {
    let mut cmd = Command::new(bin());
    cmd.arg("--data-dir").arg(dir).args(args).env_clear();
    for key in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(key) {
            cmd.env(key, v);
        }
    }
    let out = cmd.stdin(Stdio::null()).output()?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[tokio::test]
async fn agents_api_shapes_and_tenant_isolation() -> anyhow::Result<()> {
    let (kw, admin) = start_server().await?;
    let created = create_agent(
        &admin,
        json!({"name": "support-bot", "manifest": {"secrets": ["OPENAI_API_KEY", "DATABASE_URL"]},
               "egress": {"mode": "deny-unlisted", "allow": ["api.example.com"]}}),
    )
    .await?;
    assert_eq!(created["name"], "support-bot");
    let token = created["gateway_token"].as_str().context("gateway_token")?;
    assert!(
        token.starts_with("kw_a_") && token.len() == 5 + 64,
        "{token}"
    );
    assert_eq!(created["bundles"], json!([]));
    assert_eq!(
        created["missing_secrets"],
        json!(["OPENAI_API_KEY", "DATABASE_URL"])
    );
    assert!(is_utc_rfc3339(
        created["created_at"].as_str().unwrap_or_default()
    ));

    let (status, body) = admin
        .post(AGENTS, Some(json!({"name": "support-bot"})))
        .await?;
    assert_error(status, &body, 409, "agent_exists");
    for (bad, code) in [
        (json!({"name": "Bad Name"}), "invalid_name"),
        (
            json!({"name": "a", "manifest": {"secrets": ["1BAD"]}}),
            "invalid_key_name",
        ),
        (
            json!({"name": "a", "egress": {"mode": "block"}}),
            "invalid_request",
        ),
        (json!({"name": "a", "extra": 1}), "invalid_request"),
    ] {
        let (status, body) = admin.post(AGENTS, Some(bad)).await?;
        assert_error(status, &body, 400, code);
    }

    let (status, list) = admin.get(AGENTS, None).await?;
    assert_eq!(status, 200, "{list}");
    let agents = list["agents"].as_array().context("agents")?;
    assert_eq!(agents.len(), 1);
    assert!(
        !list.to_string().contains(token),
        "a listing shows the token"
    );
    let (status, one) = admin.get(&format!("{AGENTS}/support-bot"), None).await?;
    assert_eq!(status, 200, "{one}");
    assert!(!one.to_string().contains("kw_a_"), "{one}");
    assert_eq!(
        one["manifest"],
        json!({"secrets": ["OPENAI_API_KEY", "DATABASE_URL"]})
    );
    assert_eq!(
        one["egress"],
        json!({"mode": "deny-unlisted", "allow": ["api.example.com"]})
    );

    // Another tenant cannot see, attach to, rotate or delete it: 404 as if it did not exist.
    let other = new_tenant(&kw, &admin, "other").await?;
    let (status, body) = other.get(&format!("{AGENTS}/support-bot"), None).await?;
    assert_error(status, &body, 404, "agent_not_found");
    let (status, body) = other
        .post(
            &format!("{AGENTS}/support-bot/token/rotate"),
            Some(json!({})),
        )
        .await?;
    assert_error(status, &body, 404, "agent_not_found");
    let (status, body) = other.delete(&format!("{AGENTS}/support-bot"), None).await?;
    assert_error(status, &body, 404, "agent_not_found");
    let (status, list) = other.get(AGENTS, None).await?;
    assert_eq!((status.as_u16(), list), (200, json!({"agents": []})));

    let (status, body) = admin.delete(&format!("{AGENTS}/support-bot"), None).await?;
    assert_eq!((status.as_u16(), body), (200, json!({"status": "deleted"})));
    let (status, body) = admin.get(&format!("{AGENTS}/support-bot"), None).await?;
    assert_error(status, &body, 404, "agent_not_found");
    let (status, doc) = admin.get("/v1/openapi.json", None).await?;
    assert_eq!(status, 200);
    for path in [
        "/v1/agents",
        "/v1/agents/{name}",
        "/v1/agents/{name}/token/rotate",
        "/v1/agents/{name}/secrets",
        "/v1/agents/{name}/secrets/{bundle}",
        "/v1/agents/{name}/sessions",
    ] {
        assert!(doc["paths"][path].is_object(), "openapi lacks {path}");
    }
    Ok(())
}

#[tokio::test]
async fn seed_004_rules_on_attach_and_delete() -> anyhow::Result<()> {
    let (_kw, admin) = start_server().await?;
    create_agent(&admin, json!({"name": "bot"})).await?;
    bundle(
        &admin,
        "openai",
        json!({"OPENAI_API_KEY": CANARY_OPENAI}),
        json!({}),
    )
    .await?;
    bundle(
        &admin,
        "openai-2",
        json!({"OPENAI_API_KEY": "sk-second"}),
        json!({}),
    )
    .await?;
    bundle(
        &admin,
        "llm-openai",
        json!({"LLM_API_KEY": "sk-llm"}),
        json!({"LLM_BASE_URL": "https://api.openai.com/v1"}),
    )
    .await?;
    bundle(
        &admin,
        "db",
        json!({"DATABASE_URL": "postgres://a"}),
        json!({}),
    )
    .await?;
    bundle(
        &admin,
        "db-2",
        json!({"DATABASE_URL": "postgres://b"}),
        json!({}),
    )
    .await?;

    let (status, body) = attach(&admin, "bot", "nope").await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "unknown_bundle");
    let (status, body) = attach(&admin, "ghost", "openai").await?;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (404, json!("agent_not_found"))
    );
    let (status, body) = attach(&admin, "bot", "openai").await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["bundles"], json!(["openai"]));
    // Attaching again is idempotent.
    let (status, again) = attach(&admin, "bot", "openai").await?;
    assert_eq!((status, again), (200, body));

    // A second credential for OpenAI: the same key, or LLM_API_KEY aimed at api.openai.com.
    for second in ["openai-2", "llm-openai"] {
        let (status, body) = attach(&admin, "bot", second).await?;
        assert_eq!(status, 409, "{second}: {body}");
        assert_eq!(body["error"]["code"], "provider_conflict", "{body}");
        assert!(!body.to_string().contains("sk-"), "a value in {body}");
    }
    // A plain key collision is 400, like a session's.
    attach(&admin, "bot", "db").await?;
    let (status, body) = attach(&admin, "bot", "db-2").await?;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("secret_key_collision"))
    );

    // The other way round: LLM_API_KEY towards OpenAI first, then OPENAI_API_KEY.
    create_agent(&admin, json!({"name": "bot-2"})).await?;
    let (status, body) = attach(&admin, "bot-2", "llm-openai").await?;
    assert_eq!(status, 200, "{body}");
    let (status, body) = attach(&admin, "bot-2", "openai-2").await?;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (409, json!("provider_conflict"))
    );

    // A bundle attached to an agent cannot be deleted; detached, it can.
    let (status, body) = admin.delete(&format!("{SECRETS}/openai"), None).await?;
    assert_error(status, &body, 409, "bundle_attached");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("bot"));
    let (status, _) = admin.get(&format!("{SECRETS}/openai"), None).await?;
    assert_eq!(status, 200, "a refused delete deleted the bundle");
    let (status, body) = admin
        .delete(&format!("{AGENTS}/bot/secrets/openai"), None)
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["bundles"], json!(["db"]));
    let (status, body) = admin
        .delete(&format!("{AGENTS}/bot/secrets/openai"), None)
        .await?;
    assert_error(status, &body, 404, "bundle_not_attached");
    let (status, body) = admin.delete(&format!("{SECRETS}/openai"), None).await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}

#[tokio::test]
async fn gateway_token_works_on_the_data_plane_until_rotated() -> anyhow::Result<()> {
    let gw = Gateway::start(&[]).await?;
    let created = create_agent(&gw.admin, json!({"name": "gateway-bot"})).await?;
    let token = created["gateway_token"]
        .as_str()
        .context("token")?
        .to_owned();
    gw.bundle("openai", json!({"OPENAI_API_KEY": CANARY_OPENAI}))
        .await?;
    // No bundle attached yet: the token is valid but has no OpenAI credential.
    let reply = openai_chat(&gw, &token).await?;
    assert_proxy_error(&reply, 401, "no_credential");
    let (status, body) = attach(&gw.admin, "gateway-bot", "openai").await?;
    assert_eq!(status, 200, "{body}");

    let reply = openai_chat(&gw, &token).await?;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let upstream = gw.openai.last_request().context("the mock saw no call")?;
    assert_eq!(upstream.presented_key().as_deref(), Some(CANARY_OPENAI));
    assert!(!upstream.body_text().contains(&token));

    let (status, rotated) = gw
        .admin
        .post(
            &format!("{AGENTS}/gateway-bot/token/rotate"),
            Some(json!({})),
        )
        .await?;
    assert_eq!(status, 200, "{rotated}");
    let fresh = rotated["gateway_token"]
        .as_str()
        .context("new token")?
        .to_owned();
    assert_eq!(rotated.as_object().map(|o| o.len()), Some(1), "{rotated}");
    assert_ne!(fresh, token);
    // The old token stops at once (it was cached by the data plane a moment ago).
    let reply = openai_chat(&gw, &token).await?;
    assert_proxy_error(&reply, 401, "unauthorized");
    let reply = openai_chat(&gw, &fresh).await?;
    assert_eq!(reply.status, 200, "{}", reply.text());

    // The audit records name the agent (and the refused call of the old token is one too).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let records = loop {
        let (status, body) = gw.admin.get("/v1/audit?agent=gateway-bot", None).await?;
        anyhow::ensure!(status == 200, "audit: {status} {body}");
        let records = body["records"].as_array().cloned().unwrap_or_default();
        let forwarded = records
            .iter()
            .filter(|r| r["decision"] == "forwarded")
            .count();
        if forwarded >= 2 || tokio::time::Instant::now() > deadline {
            break records;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    };
    let forwarded: Vec<&Value> = records
        .iter()
        .filter(|r| r["decision"] == "forwarded")
        .collect();
    assert_eq!(forwarded.len(), 2, "{records:?}");
    assert!(records.iter().all(|r| r["agent"] == "gateway-bot"));
    assert!(forwarded
        .iter()
        .all(|r| r["credential"] == "OPENAI_API_KEY" && r["session"] == "agent:gateway-bot"));
    assert!(!format!("{records:?}").contains(&fresh));

    // Deleting the agent cuts the token off too.
    gw.admin
        .delete(&format!("{AGENTS}/gateway-bot/secrets/openai"), None)
        .await?;
    gw.admin
        .delete(&format!("{AGENTS}/gateway-bot"), None)
        .await?;
    let reply = openai_chat(&gw, &fresh).await?;
    assert_proxy_error(&reply, 401, "unauthorized");
    Ok(())
}

#[tokio::test]
async fn sessions_inherit_the_agent_s_bundles() -> anyhow::Result<()> {
    let (_kw, admin) = start_server().await?;
    create_agent(&admin, json!({"name": "bot"})).await?;
    bundle(
        &admin,
        "providers",
        json!({"ANTHROPIC_API_KEY": CANARY_ANTHROPIC}),
        json!({}),
    )
    .await?;
    bundle(
        &admin,
        "own",
        json!({"DATABASE_URL": "postgres://own"}),
        json!({}),
    )
    .await?;
    bundle(
        &admin,
        "clash",
        json!({"ANTHROPIC_API_KEY": "sk-other"}),
        json!({}),
    )
    .await?;
    attach(&admin, "bot", "providers").await?;

    let (status, created) = admin
        .post(
            "/v1/sessions",
            Some(json!({"agent": "bot", "secrets": ["own"]})),
        )
        .await?;
    assert_eq!(status, 201, "{created}");
    let env = &created["env"];
    assert_eq!(env["DATABASE_URL"], "postgres://own");
    assert_eq!(env["ANTHROPIC_API_KEY"], created["session_token"]);
    assert!(!created.to_string().contains(CANARY_ANTHROPIC));
    let id = created["session_id"].as_str().context("id")?;
    let (_, session) = admin.get(&format!("/v1/sessions/{id}"), None).await?;
    assert_eq!(session["agent"], "bot");
    assert_eq!(session["bundles"], json!(["providers", "own"]));

    let (status, body) = admin
        .post(
            "/v1/sessions",
            Some(json!({"agent": "bot", "secrets": ["clash"]})),
        )
        .await?;
    assert_error(status, &body, 400, "secret_key_collision");
    let (status, body) = admin
        .post("/v1/sessions", Some(json!({"agent": "ghost"})))
        .await?;
    assert_error(status, &body, 400, "unknown_agent");
    // Seed 001's example request, with its `agent` object, is accepted.
    let (status, body) = admin
        .post(
            "/v1/sessions",
            Some(json!({"agent": {"kind": "deictic"}, "template": "standard",
                "llm": {"vendor": "anthropic", "model": "claude-sonnet-4-5"},
                "secrets": ["own"], "user_id": "usr_abc"})),
        )
        .await?;
    assert_eq!(status, 201, "{body}");
    let id = body["session_id"].as_str().context("id")?;
    let (_, session) = admin.get(&format!("/v1/sessions/{id}"), None).await?;
    assert_eq!(session["agent"], Value::Null);
    Ok(())
}

#[tokio::test]
async fn manifest_check_via_api_and_cli() -> anyhow::Result<()> {
    let (kw, admin) = start_server().await?;
    let dir = kw.data_dir();
    let (code, out, err) = cli(
        dir,
        &[
            "agents",
            "create",
            "bot",
            "--manifest-secret",
            "OPENAI_API_KEY",
            "--manifest-secret",
            "DATABASE_URL",
        ],
    )?;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("kw_a_"), "create prints the token once: {out}");
    let (code, out, _) = cli(dir, &["agents", "check", "bot"])?;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("OPENAI_API_KEY") && out.contains("DATABASE_URL"),
        "{out}"
    );

    bundle(
        &admin,
        "openai",
        json!({"OPENAI_API_KEY": CANARY_OPENAI}),
        json!({}),
    )
    .await?;
    let (code, out, err) = cli(dir, &["agents", "attach", "bot", "openai"])?;
    assert_eq!(code, 0, "{out}{err}");
    let (_, agent) = admin.get(&format!("{AGENTS}/bot"), None).await?;
    assert_eq!(agent["missing_secrets"], json!(["DATABASE_URL"]));
    let (code, out, _) = cli(dir, &["agents", "check", "bot", "--json"])?;
    assert_eq!(code, 1);
    let json: Value = serde_json::from_str(&out)?;
    assert_eq!(json["missing_secrets"], json!(["DATABASE_URL"]));

    // seed 002: `secrets set AGENT KEY=VALUE` writes the agent's own bundle and attaches it.
    let (code, out, err) = cli(dir, &["secrets", "set", "bot", "DATABASE_URL=postgres://x"])?;
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("postgres://x") && !err.contains("postgres://x"));
    let (code, out, _) = cli(dir, &["agents", "check", "bot"])?;
    assert_eq!(code, 0, "{out}");
    let (_, agent) = admin.get(&format!("{AGENTS}/bot"), None).await?;
    assert_eq!(agent["bundles"], json!(["openai", "bot-secrets"]));
    let (code, out, err) = cli(dir, &["secrets", "set", "bot", "--variable", "FEATURE=on"])?;
    assert_eq!(code, 0, "{out}{err}");
    let (_, own) = admin.get(&format!("{SECRETS}/bot-secrets"), None).await?;
    assert_eq!(strings(&own["key_names"]), ["DATABASE_URL", "FEATURE"]);
    let (_, agent) = admin.get(&format!("{AGENTS}/bot"), None).await?;
    assert_eq!(agent["bundles"], json!(["openai", "bot-secrets"]));
    // A name that is no agent is still a bundle.
    let (code, _, err) = cli(dir, &["secrets", "set", "plain", "K=v"])?;
    assert_eq!(code, 0, "{err}");
    let (status, _) = admin.get(&format!("{SECRETS}/plain"), None).await?;
    assert_eq!(status, 200);

    let (code, out, _) = cli(dir, &["agents", "detach", "bot", "openai"])?;
    assert_eq!(code, 0, "{out}");
    let (code, _, err) = cli(dir, &["agents", "detach", "bot", "openai"])?;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("bundle_not_attached"), "{err}");
    let (code, out, _) = cli(dir, &["agents", "token", "rotate", "bot"])?;
    assert_eq!(code, 0);
    assert!(out.contains("kw_a_"));
    let (code, out, _) = cli(dir, &["agents", "list"])?;
    assert_eq!(code, 0);
    assert!(out.contains("bot") && !out.contains("kw_a_"), "{out}");
    let (code, _, err) = cli(dir, &["agents", "check", "ghost"])?;
    assert_eq!(code, 1);
    assert!(err.contains("agent_not_found"), "{err}");
    let (code, _, _) = cli(dir, &["agents", "attach", "bot"])?;
    assert_eq!(code, 2, "a missing argument is a usage error");
    Ok(())
}

/// `GET /v1/agents/bot/sessions` as (session_id → (synced, stale_keys)).
async fn sync_state(admin: &ApiClient) -> anyhow::Result<Vec<(String, bool, Vec<String>)>> {
    let (status, body) = admin.get(&format!("{AGENTS}/bot/sessions"), None).await?;
    anyhow::ensure!(status == 200, "sessions: {status} {body}");
    let list = body["sessions"].as_array().context("sessions")?;
    Ok(list
        .iter()
        .map(|s| {
            (
                s["session_id"].as_str().unwrap_or_default().to_owned(),
                s["synced"].as_bool().unwrap_or(false),
                strings(&s["stale_keys"]),
            )
        })
        .collect())
}

#[tokio::test]
async fn synced_flags_follow_env_reads() -> anyhow::Result<()> {
    let (_kw, admin) = start_server().await?;
    create_agent(&admin, json!({"name": "bot"})).await?;
    bundle(
        &admin,
        "keys",
        json!({"OPENAI_API_KEY": CANARY_OPENAI, "DATABASE_URL": "postgres://a"}),
        json!({"FEATURE": "on"}),
    )
    .await?;
    attach(&admin, "bot", "keys").await?;
    let (status, created) = admin
        .post("/v1/sessions", Some(json!({"agent": "bot"})))
        .await?;
    assert_eq!(status, 201, "{created}");
    let id = created["session_id"].as_str().context("id")?.to_owned();
    let token = created["session_token"]
        .as_str()
        .context("token")?
        .to_owned();
    // A session without the agent is not listed.
    admin
        .post("/v1/sessions", Some(json!({"secrets": ["keys"]})))
        .await?;
    let (_, body) = admin.get(&format!("{AGENTS}/bot/sessions"), None).await?;
    let first = &body["sessions"][0];
    assert!(is_utc_rfc3339(
        first["created_at"].as_str().unwrap_or_default()
    ));
    assert_eq!(sync_state(&admin).await?, [(id.clone(), true, vec![])]);

    let patch = |set: Value, variables: Value| json!({"set": set, "variables": variables});
    // Rotating a credential keyward injects keeps the session in sync.
    let (status, _) = admin
        .patch(
            &format!("{SECRETS}/keys"),
            Some(patch(
                json!({"OPENAI_API_KEY": "sk-proj-rotated"}),
                json!({}),
            )),
        )
        .await?;
    assert_eq!(status, 200);
    assert_eq!(sync_state(&admin).await?, [(id.clone(), true, vec![])]);

    // Rotating values the agent holds in its env makes it stale...
    let (status, _) = admin
        .patch(
            &format!("{SECRETS}/keys"),
            Some(patch(
                json!({"DATABASE_URL": "postgres://b"}),
                json!({"FEATURE": "off"}),
            )),
        )
        .await?;
    assert_eq!(status, 200);
    assert_eq!(
        sync_state(&admin).await?,
        [(
            id.clone(),
            false,
            vec!["DATABASE_URL".to_owned(), "FEATURE".to_owned()]
        )]
    );
    // ...until the session re-reads its env (with its own token, as an agent would).
    let agent_side = admin.with_token(Some(&token));
    let (status, env) = agent_side
        .get(&format!("/v1/sessions/{id}/env"), None)
        .await?;
    assert_eq!(status, 200, "{env}");
    assert_eq!(env["env"]["DATABASE_URL"], "postgres://b");
    assert_eq!(sync_state(&admin).await?, [(id.clone(), true, vec![])]);

    // Ended sessions are not listed; an unknown agent is 404.
    admin.delete(&format!("/v1/sessions/{id}"), None).await?;
    assert!(sync_state(&admin).await?.is_empty());
    let (status, body) = admin.get(&format!("{AGENTS}/ghost/sessions"), None).await?;
    assert_error(status, &body, 404, "agent_not_found");
    Ok(())
}

#[test]
fn help_on_every_agents_command() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    for command in [
        &["agents"][..],
        &["agents", "create"],
        &["agents", "list"],
        &["agents", "get"],
        &["agents", "delete"],
        &["agents", "attach"],
        &["agents", "detach"],
        &["agents", "check"],
        &["agents", "sessions"],
        &["agents", "token", "rotate"],
    ] {
        let args = [command, &["--help"]].concat();
        let (code, out, err) = cli(dir.path(), &args)?;
        assert_eq!(code, 0, "{command:?}: {err}");
        assert!(out.contains("Usage: keyward"), "{command:?}: {out}");
    }
    let (_, out, _) = cli(dir.path(), &["secrets", "set", "--help"])?;
    assert!(out.contains("AGENT"), "{out}");
    Ok(())
}
