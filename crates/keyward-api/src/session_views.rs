//! Response bodies of the sessions API. A session's token appears only in [`SessionCreated`];
//! env values only in [`SessionCreated`] and [`SessionEnv`], which are what the agent needs.

use std::collections::BTreeMap;

use keyward_vault::Session;
use serde::Serialize;
use utoipa::ToSchema;

use crate::views::rfc3339;

/// `POST /v1/sessions`: everything the platform hands the agent's process.
#[derive(Serialize, ToSchema)]
pub struct SessionCreated {
    pub session_id: String,
    /// Shown once; the agent authenticates to keyward with it.
    pub session_token: String,
    /// `gateway` or `proxy`.
    pub mode: String,
    /// Variables to set in the agent's process (credential variables hold the token).
    pub env: BTreeMap<String, String>,
    pub created_at: String,
    /// PEM of the CA a proxy-mode agent must trust; null until proxy mode ships.
    pub ca_pem: Option<String>,
}

/// The LLM settings of a session, as the request gave them.
#[derive(Serialize, ToSchema)]
pub struct LlmView {
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub base_url: Option<String>,
}

/// A session, without its token or env values.
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    pub session_id: String,
    pub mode: String,
    pub agent: Option<String>,
    pub user_id: Option<String>,
    /// Names of the bundles it uses, in request order.
    pub bundles: Vec<String>,
    pub llm: LlmView,
    /// The egress policy, normalised; null when none was given.
    #[schema(value_type = Option<Object>)]
    pub egress: Option<serde_json::Value>,
    pub created_at: String,
    /// Null while running.
    pub ended_at: Option<String>,
    /// `running` or `ended`.
    pub status: &'static str,
}

impl From<&Session> for SessionView {
    fn from(s: &Session) -> Self {
        SessionView {
            session_id: s.id.clone(),
            mode: s.mode.as_str().to_owned(),
            agent: s.agent.clone(),
            user_id: s.user_id.clone(),
            bundles: s.bundles.iter().map(|(_, name)| name.clone()).collect(),
            llm: LlmView {
                vendor: s.llm.vendor.clone(),
                model: s.llm.model.clone(),
                base_url: s.llm.base_url.clone(),
            },
            egress: s.egress.as_ref().map(|e| e.to_json()),
            created_at: rfc3339(s.created_at),
            ended_at: s.ended_at.map(rfc3339),
            status: if s.is_running() { "running" } else { "ended" },
        }
    }
}

/// `GET /v1/sessions`.
#[derive(Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

/// `GET /v1/sessions/{id}/env`.
#[derive(Serialize, ToSchema)]
pub struct SessionEnv {
    pub env: BTreeMap<String, String>,
}
