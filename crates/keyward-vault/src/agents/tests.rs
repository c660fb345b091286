//! Agents against a real SQLite store: the 409 rules of seed 004, token rotation, session
//! inheritance, the manifest, and the Synced computation.

use std::collections::BTreeMap;
use std::sync::Arc;

use keyward_core::ErrorCode;
use keyward_crypto::MasterKey;
use keyward_store::sqlite::SqliteStore;
use keyward_store::TenantId;

use crate::{
    BundleInput, EgressPolicy, NewAgent, NewSession, PatchInput, Result, Vault, VaultError,
    DEFAULT_TENANT,
};

async fn vault() -> Result<(Vault, TenantId, tempfile::TempDir)> {
    let dir = tempfile::tempdir().map_err(|_| VaultError::Decryption)?;
    let store = SqliteStore::open(&dir.path().join("kw.db")).await?;
    let vault = Vault::new(Arc::new(store), MasterKey::generate());
    vault.bootstrap().await?;
    let tenant = vault
        .store()
        .tenant_by_name(DEFAULT_TENANT)
        .await?
        .map(|t| t.id)
        .ok_or(VaultError::Decryption)?;
    Ok((vault, tenant, dir))
}

fn map(items: &[(&str, &str)]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn bundle(
    vault: &Vault,
    tenant: TenantId,
    name: &str,
    secrets: &[(&str, &str)],
    variables: &[(&str, &str)],
) -> Result<()> {
    let input = BundleInput {
        values: map(secrets),
        variables: map(variables),
        ..BundleInput::default()
    };
    vault.create_bundle(tenant, name, input).await.map(|_| ())
}

async fn agent(vault: &Vault, tenant: TenantId, name: &str, manifest: &[&str]) -> Result<String> {
    let req = NewAgent {
        name: name.to_owned(),
        egress: None,
        manifest: manifest.iter().map(|s| (*s).to_owned()).collect(),
    };
    Ok(vault.create_agent(tenant, req).await?.token)
}

fn code<T>(r: Result<T>) -> Option<ErrorCode> {
    r.err().map(|e| e.code())
}

#[tokio::test]
async fn create_get_list_delete() -> Result<()> {
    let (vault, tenant, _dir) = vault().await?;
    let created = vault
        .create_agent(
            tenant,
            NewAgent {
                name: "support-bot".into(),
                egress: None,
                manifest: vec!["OPENAI_API_KEY".into(), "DATABASE_URL".into()],
            },
        )
        .await?;
    assert!(created.token.starts_with("kw_a_") && created.token.len() == 5 + 64);
    assert!(!format!("{created:?}").contains(&created.token));
    assert_eq!(
        created.agent.missing_secrets,
        ["OPENAI_API_KEY", "DATABASE_URL"]
    );
    let again = agent(&vault, tenant, "support-bot", &[]).await;
    assert_eq!(code(again), Some(ErrorCode::AgentExists));
    assert_eq!(
        code(agent(&vault, tenant, "Bad Name", &[]).await),
        Some(ErrorCode::InvalidName)
    );
    assert_eq!(
        code(agent(&vault, tenant, "a", &["1BAD"]).await),
        Some(ErrorCode::InvalidKeyName)
    );
    assert_eq!(vault.list_agents(tenant).await?.len(), 1);
    assert_eq!(vault.get_agent(tenant, "support-bot").await?, created.agent);
    // Another tenant's agent does not exist.
    vault.create_tenant("other").await?;
    let other = vault
        .store()
        .tenant_by_name("other")
        .await?
        .map(|t| t.id)
        .ok_or(VaultError::Decryption)?;
    assert_eq!(
        code(vault.get_agent(other, "support-bot").await),
        Some(ErrorCode::AgentNotFound)
    );
    assert_eq!(
        code(vault.delete_agent(other, "support-bot").await),
        Some(ErrorCode::AgentNotFound)
    );
    vault.delete_agent(tenant, "support-bot").await?;
    assert_eq!(
        code(vault.get_agent(tenant, "support-bot").await),
        Some(ErrorCode::AgentNotFound)
    );
    assert!(vault.resolve_agent_token(&created.token).await?.is_none());
    Ok(())
}

#[tokio::test]
async fn attach_rules_and_bundle_delete() -> Result<()> {
    let (vault, tenant, _dir) = vault().await?;
    agent(&vault, tenant, "bot", &["OPENAI_API_KEY", "DATABASE_URL"]).await?;
    bundle(&vault, tenant, "openai", &[("OPENAI_API_KEY", "sk-1")], &[]).await?;
    bundle(
        &vault,
        tenant,
        "openai-2",
        &[("OPENAI_API_KEY", "sk-2")],
        &[],
    )
    .await?;
    bundle(
        &vault,
        tenant,
        "llm-openai",
        &[("LLM_API_KEY", "sk-3")],
        &[("LLM_BASE_URL", "https://api.openai.com/v1")],
    )
    .await?;
    bundle(
        &vault,
        tenant,
        "llm-secret-url",
        &[
            ("LLM_API_KEY", "sk-4"),
            ("LLM_BASE_URL", "https://API.openai.com:443/v1"),
        ],
        &[],
    )
    .await?;
    bundle(
        &vault,
        tenant,
        "db",
        &[("DATABASE_URL", "postgres://a")],
        &[],
    )
    .await?;
    bundle(
        &vault,
        tenant,
        "db-2",
        &[("DATABASE_URL", "postgres://b")],
        &[],
    )
    .await?;

    assert_eq!(
        code(vault.attach_bundle(tenant, "bot", "nope").await),
        Some(ErrorCode::UnknownBundle)
    );
    assert_eq!(
        code(vault.attach_bundle(tenant, "ghost", "openai").await),
        Some(ErrorCode::AgentNotFound)
    );
    let attached = vault.attach_bundle(tenant, "bot", "openai").await?;
    assert_eq!(attached.bundles, ["openai"]);
    assert_eq!(attached.missing_secrets, ["DATABASE_URL"]);
    // Idempotent.
    assert_eq!(
        vault.attach_bundle(tenant, "bot", "openai").await?,
        attached
    );
    for second in ["openai-2", "llm-openai", "llm-secret-url"] {
        assert_eq!(
            code(vault.attach_bundle(tenant, "bot", second).await),
            Some(ErrorCode::ProviderConflict),
            "{second}"
        );
    }
    let with_db = vault.attach_bundle(tenant, "bot", "db").await?;
    assert!(with_db.missing_secrets.is_empty());
    assert_eq!(
        code(vault.attach_bundle(tenant, "bot", "db-2").await),
        Some(ErrorCode::SecretKeyCollision)
    );

    // The other way round: LLM_API_KEY towards OpenAI first, then OPENAI_API_KEY.
    agent(&vault, tenant, "bot-2", &[]).await?;
    vault.attach_bundle(tenant, "bot-2", "llm-openai").await?;
    assert_eq!(
        code(vault.attach_bundle(tenant, "bot-2", "openai").await),
        Some(ErrorCode::ProviderConflict)
    );

    // A rotation that adds a second OpenAI credential to an attached bundle is refused too.
    let patch = PatchInput {
        set: map(&[("OPENAI_API_KEY", "sk-9")]),
        ..PatchInput::default()
    };
    assert_eq!(
        code(vault.patch_bundle(tenant, "db", patch).await),
        Some(ErrorCode::ProviderConflict)
    );

    // Seed 004: an attached bundle cannot be deleted; detached, it can.
    assert_eq!(
        code(vault.delete_bundle(tenant, "openai").await),
        Some(ErrorCode::BundleAttached)
    );
    assert!(vault.get_bundle(tenant, "openai").await.is_ok());
    let detached = vault.detach_bundle(tenant, "bot", "openai").await?;
    assert_eq!(detached.bundles, ["db"]);
    assert_eq!(
        code(vault.detach_bundle(tenant, "bot", "openai").await),
        Some(ErrorCode::BundleNotAttached)
    );
    assert_eq!(
        code(vault.detach_bundle(tenant, "bot", "nope").await),
        Some(ErrorCode::BundleNotAttached)
    );
    vault.delete_bundle(tenant, "openai").await?;
    // Deleting the agent detaches its bundles.
    vault.delete_agent(tenant, "bot").await?;
    vault.delete_bundle(tenant, "db").await?;
    Ok(())
}

#[tokio::test]
async fn gateway_token_resolves_and_rotation_cuts_it_off() -> Result<()> {
    let (vault, tenant, _dir) = vault().await?;
    let token = agent(&vault, tenant, "bot", &[]).await?;
    bundle(&vault, tenant, "openai", &[("OPENAI_API_KEY", "sk-1")], &[]).await?;
    vault.attach_bundle(tenant, "bot", "openai").await?;
    let resolved = vault
        .resolve_agent_token(&token)
        .await?
        .ok_or(VaultError::Decryption)?;
    assert_eq!(resolved.session.agent.as_deref(), Some("bot"));
    assert_eq!(resolved.session.id, "agent:bot");
    assert_eq!(
        resolved
            .entry("OPENAI_API_KEY")
            .and_then(|e| e.value.expose_str()),
        Some("sk-1")
    );
    let epoch = vault.epoch();
    let rotated = vault.rotate_agent_token(tenant, "bot").await?;
    assert!(vault.epoch() > epoch, "rotation must invalidate caches");
    assert_ne!(rotated.token, token);
    assert!(vault.resolve_agent_token(&token).await?.is_none());
    assert!(vault.resolve_agent_token(&rotated.token).await?.is_some());
    assert!(vault.resolve_agent_token("kw_s_whatever").await?.is_none());
    assert!(vault.resolve_agent_token("kw_a_unknown").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn sessions_inherit_the_agent_s_bundles_and_egress() -> Result<()> {
    let (vault, tenant, _dir) = vault().await?;
    let egress = EgressPolicy {
        deny_unlisted: true,
        allow: vec!["api.example.com".into()],
    };
    vault
        .create_agent(
            tenant,
            NewAgent {
                name: "bot".into(),
                egress: Some(egress.clone()),
                manifest: Vec::new(),
            },
        )
        .await?;
    bundle(&vault, tenant, "openai", &[("OPENAI_API_KEY", "sk-1")], &[]).await?;
    bundle(&vault, tenant, "own", &[("TOOL_TOKEN", "t")], &[]).await?;
    bundle(&vault, tenant, "clash", &[("OPENAI_API_KEY", "sk-2")], &[]).await?;
    vault.attach_bundle(tenant, "bot", "openai").await?;
    let req = |secrets: &[&str], agent: &str| NewSession {
        agent: Some(agent.to_owned()),
        secrets: secrets.iter().map(|s| (*s).to_owned()).collect(),
        ..NewSession::default()
    };
    let created = vault.create_session(tenant, req(&["own"], "bot")).await?;
    let names: Vec<&str> = created
        .session
        .bundles
        .iter()
        .map(|(_, n)| n.as_str())
        .collect();
    assert_eq!(names, ["openai", "own"]);
    assert_eq!(created.session.egress, Some(egress));
    assert_eq!(created.session.agent.as_deref(), Some("bot"));
    // Naming a bundle the agent already has is not a collision.
    vault
        .create_session(tenant, req(&["openai"], "bot"))
        .await?;
    assert_eq!(
        code(vault.create_session(tenant, req(&["clash"], "bot")).await),
        Some(ErrorCode::SecretKeyCollision)
    );
    assert_eq!(
        code(vault.create_session(tenant, req(&[], "ghost")).await),
        Some(ErrorCode::UnknownAgent)
    );
    Ok(())
}

#[tokio::test]
async fn synced_follows_env_delivered_values_only() -> Result<()> {
    let (vault, tenant, _dir) = vault().await?;
    agent(&vault, tenant, "bot", &[]).await?;
    bundle(
        &vault,
        tenant,
        "keys",
        &[("OPENAI_API_KEY", "sk-1"), ("DATABASE_URL", "postgres://a")],
        &[("FEATURE", "on")],
    )
    .await?;
    vault.attach_bundle(tenant, "bot", "keys").await?;
    let created = vault
        .create_session(
            tenant,
            NewSession {
                agent: Some("bot".into()),
                ..NewSession::default()
            },
        )
        .await?;
    // A session of another agent (or none) is not listed.
    vault.create_session(tenant, NewSession::default()).await?;
    let state = |v: &Vault| {
        let v = v.clone();
        async move { v.agent_sessions(tenant, "bot").await }
    };
    let listed = state(&vault).await?;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].session_id, created.session.id);
    assert!(listed[0].synced, "{listed:?}");

    // An injected credential changes: still in sync.
    let patch = |set: &[(&str, &str)], variables: &[(&str, &str)]| PatchInput {
        set: map(set),
        variables: map(variables),
        ..PatchInput::default()
    };
    vault
        .patch_bundle(tenant, "keys", patch(&[("OPENAI_API_KEY", "sk-2")], &[]))
        .await?;
    assert!(state(&vault).await?[0].synced);

    // An env-delivered secret and a variable change: stale until the env is re-read.
    vault
        .patch_bundle(
            tenant,
            "keys",
            patch(&[("DATABASE_URL", "postgres://b")], &[("FEATURE", "off")]),
        )
        .await?;
    let listed = state(&vault).await?;
    assert!(!listed[0].synced);
    assert_eq!(listed[0].stale_keys, ["DATABASE_URL", "FEATURE"]);
    let resolved = vault.resolve_session(&created.session).await?;
    vault
        .record_env_read(&created.session, &resolved.entries)
        .await;
    assert!(state(&vault).await?[0].synced);

    // Ended sessions are not listed.
    vault.end_session(tenant, &created.session.id).await?;
    assert!(state(&vault).await?.is_empty());
    assert_eq!(
        code(vault.agent_sessions(tenant, "ghost").await),
        Some(ErrorCode::AgentNotFound)
    );
    Ok(())
}
