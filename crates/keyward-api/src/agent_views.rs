//! Response bodies of the agents API. An agent's gateway token appears only in
//! [`AgentCreated`] and [`AgentToken`], the two answers that issue one.

use keyward_vault::{Agent, SessionSync};
use serde::Serialize;
use utoipa::ToSchema;

use crate::views::rfc3339;

/// The manifest: secret names the agent declares it needs (seed 002's `superserve.yaml`).
#[derive(Serialize, ToSchema)]
pub struct ManifestView {
    pub secrets: Vec<String>,
}

/// An agent, without its gateway token.
#[derive(Serialize, ToSchema)]
pub struct AgentView {
    pub name: String,
    /// Names of the attached bundles, in attach order.
    pub bundles: Vec<String>,
    /// Manifest names that no attached bundle provides.
    pub missing_secrets: Vec<String>,
    pub manifest: ManifestView,
    /// The egress policy of the agent's token and of its sessions that give none; null when
    /// none was given.
    #[schema(value_type = Option<Object>)]
    pub egress: Option<serde_json::Value>,
    pub created_at: String,
}

impl From<&Agent> for AgentView {
    fn from(a: &Agent) -> Self {
        AgentView {
            name: a.name.clone(),
            bundles: a.bundles.clone(),
            missing_secrets: a.missing_secrets.clone(),
            manifest: ManifestView {
                secrets: a.manifest.clone(),
            },
            egress: a.egress.as_ref().map(|e| e.to_json()),
            created_at: rfc3339(a.created_at),
        }
    }
}

/// `POST /v1/agents`: the agent and its gateway token, shown once.
#[derive(Serialize, ToSchema)]
pub struct AgentCreated {
    pub name: String,
    /// `kw_a_…`: works on the data plane like a session token, with the agent's bundles.
    /// Shown once.
    pub gateway_token: String,
    pub bundles: Vec<String>,
    pub missing_secrets: Vec<String>,
    pub manifest: ManifestView,
    #[schema(value_type = Option<Object>)]
    pub egress: Option<serde_json::Value>,
    pub created_at: String,
}

impl AgentCreated {
    pub fn new(agent: &Agent, gateway_token: String) -> Self {
        let view = AgentView::from(agent);
        AgentCreated {
            name: view.name,
            gateway_token,
            bundles: view.bundles,
            missing_secrets: view.missing_secrets,
            manifest: view.manifest,
            egress: view.egress,
            created_at: view.created_at,
        }
    }
}

/// `POST /v1/agents/{name}/token/rotate`: the new token, shown once.
#[derive(Serialize, ToSchema)]
pub struct AgentToken {
    pub gateway_token: String,
}

/// `GET /v1/agents`.
#[derive(Serialize, ToSchema)]
pub struct AgentList {
    pub agents: Vec<AgentView>,
}

/// One running session of an agent and whether its env holds the latest values.
#[derive(Serialize, ToSchema)]
pub struct AgentSessionView {
    pub session_id: String,
    pub created_at: String,
    /// False while an env-delivered value changed since the session last read its env.
    pub synced: bool,
    /// The env-delivered keys that changed since; empty when synced.
    pub stale_keys: Vec<String>,
}

impl From<&SessionSync> for AgentSessionView {
    fn from(s: &SessionSync) -> Self {
        AgentSessionView {
            session_id: s.session_id.clone(),
            created_at: rfc3339(s.created_at),
            synced: s.synced,
            stale_keys: s.stale_keys.clone(),
        }
    }
}

/// `GET /v1/agents/{name}/sessions`.
#[derive(Serialize, ToSchema)]
pub struct AgentSessionList {
    pub sessions: Vec<AgentSessionView>,
}
