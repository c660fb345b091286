//! Session lifecycle against a real SQLite store: collision and lookup rules, tenant
//! isolation, end/resume, token lookup, resolution after a delete, events.

use std::collections::BTreeMap;
use std::sync::Arc;

use keyward_core::ErrorCode;
use keyward_crypto::MasterKey;
use keyward_store::sqlite::SqliteStore;
use keyward_store::TenantId;

use crate::{BundleInput, NewSession, Result, Vault, VaultError, VaultEvent, DEFAULT_TENANT};

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

async fn bundle(
    vault: &Vault,
    tenant: TenantId,
    name: &str,
    values: &[(&str, &str)],
) -> Result<()> {
    let values: BTreeMap<String, String> = values
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let input = BundleInput {
        values,
        ..BundleInput::default()
    };
    vault.create_bundle(tenant, name, input).await.map(|_| ())
}

fn with_secrets(names: &[&str]) -> NewSession {
    NewSession {
        secrets: names.iter().map(|n| (*n).to_owned()).collect(),
        ..NewSession::default()
    }
}

fn code<T>(r: Result<T>) -> Option<ErrorCode> {
    r.err().map(|e| e.code())
}

#[tokio::test]
async fn create_checks_bundles_and_stores_nothing_on_error() -> Result<()> {
    let (vault, tenant, _dir) = vault().await?;
    bundle(
        &vault,
        tenant,
        "a",
        &[("OPENAI_API_KEY", "sk-a"), ("SHARED", "1")],
    )
    .await?;
    bundle(&vault, tenant, "b", &[("SHARED", "2")]).await?;
    let collision = vault
        .create_session(tenant, with_secrets(&["a", "b"]))
        .await;
    let Err(VaultError::Rejected { code: got, message }) = collision else {
        return Err(VaultError::rejected(
            ErrorCode::Internal,
            "collision accepted",
        ));
    };
    assert_eq!(got, ErrorCode::SecretKeyCollision);
    assert!(
        message.contains("SHARED") && message.contains(" a ") && message.contains(" b"),
        "{message}"
    );
    let unknown = vault
        .create_session(tenant, with_secrets(&["a", "nope"]))
        .await;
    assert_eq!(code(unknown), Some(ErrorCode::UnknownBundle));
    let mut env_clash = with_secrets(&["a"]);
    env_clash
        .env
        .insert("OPENAI_BASE_URL".into(), "https://evil.example".into());
    assert_eq!(
        code(vault.create_session(tenant, env_clash).await),
        Some(ErrorCode::InvalidRequest)
    );
    assert!(
        vault.list_sessions(tenant).await?.is_empty(),
        "a refused request stored a session"
    );

    let created = vault.create_session(tenant, with_secrets(&["a"])).await?;
    assert!(crate::is_session_id(&created.session.id));
    assert!(created.token.starts_with("kw_s_") && created.token.len() == 5 + 64);
    assert!(!format!("{created:?}").contains(&created.token));
    let revealed = vault.session_token(&created.session).await?;
    assert_eq!(revealed.expose_str(), Some(created.token.as_str()));
    assert_eq!(vault.list_sessions(tenant).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn other_tenants_sessions_do_not_exist() -> Result<()> {
    let (vault, tenant, _dir) = vault().await?;
    let created = vault.create_session(tenant, NewSession::default()).await?;
    vault.create_tenant("other").await?;
    let other = vault
        .store()
        .tenant_by_name("other")
        .await?
        .map(|t| t.id)
        .ok_or(VaultError::Decryption)?;
    let id = created.session.id.as_str();
    assert_eq!(
        code(vault.get_session(other, id).await),
        Some(ErrorCode::SessionNotFound)
    );
    assert_eq!(
        code(vault.end_session(other, id).await),
        Some(ErrorCode::SessionNotFound)
    );
    assert_eq!(
        code(vault.resume_session(other, id).await),
        Some(ErrorCode::SessionNotFound)
    );
    assert_eq!(
        code(vault.get_session(tenant, "ses_xyz").await),
        Some(ErrorCode::SessionNotFound)
    );
    assert!(vault.get_session(tenant, id).await?.is_running());
    // Another bundle of the same name in another tenant is "unknown" to this one.
    bundle(&vault, other, "theirs", &[("K", "v")]).await?;
    let theirs = vault
        .create_session(tenant, with_secrets(&["theirs"]))
        .await;
    assert_eq!(code(theirs), Some(ErrorCode::UnknownBundle));
    Ok(())
}

#[tokio::test]
async fn deleted_bundle_still_resolves_but_blocks_resume() -> Result<()> {
    let (vault, tenant, _dir) = vault().await?;
    bundle(&vault, tenant, "keys", &[("DATABASE_URL", "postgres://db")]).await?;
    let mut req = with_secrets(&["keys"]);
    req.env
        .insert("PLATFORM_SECRET".into(), "canary-request-env".into());
    let created = vault.create_session(tenant, req).await?;
    let session = vault
        .session_by_token(&created.token)
        .await?
        .ok_or(VaultError::Decryption)?;
    assert_eq!(session, created.session);
    vault.delete_bundle(tenant, "keys").await?;
    let resolved = vault.resolve_session(&session).await?;
    let env = vault.session_env(&resolved, "http://dp", &created.token);
    assert_eq!(
        env.get("DATABASE_URL").map(String::as_str),
        Some("postgres://db")
    );
    assert_eq!(
        env.get("PLATFORM_SECRET").map(String::as_str),
        Some("canary-request-env")
    );
    let resumed = vault.resume_session(tenant, &session.id).await;
    assert_eq!(code(resumed), Some(ErrorCode::SecretBundleNotFoundAtResume));

    // Re-created under the same name: resume points the session at the new bundle.
    bundle(
        &vault,
        tenant,
        "keys",
        &[("DATABASE_URL", "postgres://new")],
    )
    .await?;
    let resumed = vault.resume_session(tenant, &session.id).await?;
    assert_ne!(resumed.bundles, session.bundles);
    let env = vault.session_env(&vault.resolve_session(&resumed).await?, "http://dp", "t");
    assert_eq!(
        env.get("DATABASE_URL").map(String::as_str),
        Some("postgres://new")
    );
    Ok(())
}

#[tokio::test]
async fn ending_stops_the_token_and_is_announced() -> Result<()> {
    let (vault, tenant, _dir) = vault().await?;
    bundle(&vault, tenant, "keys", &[("OPENAI_API_KEY", "sk-1")]).await?;
    let created = vault
        .create_session(tenant, with_secrets(&["keys"]))
        .await?;
    let mut events = vault.subscribe();
    let epoch = vault.epoch();
    let ended = vault.end_session(tenant, &created.session.id).await?;
    assert!(ended.ended_at.is_some());
    assert!(
        vault.epoch() > epoch,
        "ending must invalidate cached session views"
    );
    assert!(vault.session_by_token(&created.token).await?.is_none());
    match events.try_recv() {
        Ok(VaultEvent::SessionEnded { tenant: t, session }) => {
            assert_eq!((t, session), (tenant, created.session.id.clone()));
        }
        other => panic!("expected SessionEnded, got {other:?}"),
    }
    let again = vault.end_session(tenant, &created.session.id).await?;
    assert_eq!(
        again.ended_at, ended.ended_at,
        "ending twice keeps the first instant"
    );
    assert!(events.try_recv().is_err(), "ending twice announces once");
    let resumed = vault.resume_session(tenant, &created.session.id).await;
    assert_eq!(code(resumed), Some(ErrorCode::SessionEnded));
    assert!(vault.session_by_token("kw_s_unknown").await?.is_none());
    assert!(vault.session_by_token("kw_t_whatever").await?.is_none());
    Ok(())
}
