//! Converting sessions to and from their stored rows. Structured fields (LLM settings, egress)
//! are stored as JSON text; a row this version cannot read is reported as corrupt, not guessed.

use keyward_store::{SessionRecord, StoreError};

use crate::{EgressPolicy, LlmSettings, Result, Session, SessionMode, VaultError};

fn corrupt(what: &'static str) -> VaultError {
    VaultError::Store(StoreError::Corrupt(what))
}

pub(super) fn to_record(
    session: &Session,
    token_digest: Vec<u8>,
    sealed_env: Vec<u8>,
) -> Result<SessionRecord> {
    Ok(SessionRecord {
        id: session.id.clone(),
        tenant: session.tenant,
        token_digest,
        agent: session.agent.clone(),
        mode: session.mode.as_str().to_owned(),
        llm: serde_json::to_string(&session.llm).map_err(|_| corrupt("session llm"))?,
        bundles: session.bundles.clone(),
        user_id: session.user_id.clone(),
        sealed_env,
        egress: session.egress.as_ref().map(|e| e.to_json().to_string()),
        created_at: session.created_at,
        ended_at: session.ended_at,
    })
}

pub(super) fn from_record(record: SessionRecord) -> Result<Session> {
    let mode = SessionMode::parse(&record.mode).ok_or_else(|| corrupt("session mode"))?;
    let llm: LlmSettings = serde_json::from_str(&record.llm).map_err(|_| corrupt("session llm"))?;
    let egress = record
        .egress
        .as_deref()
        .map(|text| {
            serde_json::from_str(text)
                .ok()
                .and_then(|json| EgressPolicy::from_json(&json).ok())
                .ok_or_else(|| corrupt("session egress"))
        })
        .transpose()?;
    Ok(Session {
        id: record.id,
        tenant: record.tenant,
        agent: record.agent,
        mode,
        llm,
        bundles: record.bundles,
        user_id: record.user_id,
        egress,
        created_at: record.created_at,
        ended_at: record.ended_at,
    })
}
