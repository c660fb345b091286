//! The session types the control API and the data plane share.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use keyward_crypto::Secret;
use keyward_store::{BundleId, TenantId};
use serde::{Deserialize, Serialize};

use crate::{EgressPolicy, OpenedEntry};

/// How the agent reaches the data plane (SPEC section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionMode {
    /// Base URLs point at keyward; the token stands in for each key.
    #[default]
    Gateway,
    /// `HTTPS_PROXY` points at keyward; placeholders stand in for each key.
    Proxy,
}

impl SessionMode {
    pub const fn as_str(self) -> &'static str {
        match self {
            SessionMode::Gateway => "gateway",
            SessionMode::Proxy => "proxy",
        }
    }

    /// The wire form (`gateway` / `proxy`); `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "gateway" => Some(SessionMode::Gateway),
            "proxy" => Some(SessionMode::Proxy),
            _ => None,
        }
    }
}

/// The request's `llm` settings (seed 001). They win over `LLM_*` entries of the bundles.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LlmSettings {
    /// `anthropic` or `openai` (any OpenAI-compatible endpoint).
    pub vendor: Option<String>,
    pub model: Option<String>,
    /// The real upstream; it stays server-side, the agent only sees keyward's `/llm` URL.
    pub base_url: Option<String>,
}

/// What a client asks for in `POST /v1/sessions`.
#[derive(Default, Clone)]
pub struct NewSession {
    pub agent: Option<String>,
    pub mode: SessionMode,
    pub llm: LlmSettings,
    /// Bundle names, at most 10.
    pub secrets: Vec<String>,
    pub user_id: Option<String>,
    /// Extra variables for the agent's process. Sealed at rest: platforms may pass secrets.
    pub env: BTreeMap<String, String>,
    pub egress: Option<EgressPolicy>,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("agent", &self.agent)
            .field("mode", &self.mode)
            .field("llm", &self.llm)
            .field("secrets", &self.secrets)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("egress", &self.egress)
            .finish_non_exhaustive()
    }
}

/// A session as stored, without its token or env values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `ses_` + 24 hex.
    pub id: String,
    pub tenant: TenantId,
    pub agent: Option<String>,
    pub mode: SessionMode,
    pub llm: LlmSettings,
    /// The bundles it uses, in request order: the id resolved at creation (or last resume)
    /// and the name it had then.
    pub bundles: Vec<(BundleId, String)>,
    pub user_id: Option<String>,
    pub egress: Option<EgressPolicy>,
    pub created_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

impl Session {
    pub fn is_running(&self) -> bool {
        self.ended_at.is_none()
    }

    /// Whether the session uses this bundle (by id: a re-created bundle is another one).
    pub fn uses_bundle(&self, bundle: BundleId) -> bool {
        self.bundles.iter().any(|(id, _)| *id == bundle)
    }
}

/// A session just created. `token` exists in clear only here and in the create response.
pub struct CreatedSession {
    pub session: Session,
    pub token: String,
}

impl std::fmt::Debug for CreatedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedSession")
            .field("session", &self.session)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

/// Everything the data plane needs, decrypted. Built on a cache miss; rebuilt after a
/// rotation (a `BundleChanged` naming one of `session.bundles`).
#[derive(Debug, Clone)]
pub struct ResolvedSession {
    pub session: Session,
    pub tenant_name: String,
    /// Entries of every bundle merged, sorted by name. Read through the bundle id, so a
    /// bundle deleted while the session runs still resolves (seed 001).
    pub entries: Vec<OpenedEntry>,
    /// The request's `env`, opened.
    pub request_env: BTreeMap<String, Secret>,
}

impl ResolvedSession {
    /// The entry of this name, if a bundle of the session holds one.
    pub fn entry(&self, name: &str) -> Option<&OpenedEntry> {
        self.entries
            .binary_search_by(|e| e.name.as_str().cmp(name))
            .ok()
            .and_then(|i| self.entries.get(i))
    }

    /// The model `/llm` calls use: the request's `llm.model`, else the `LLM_MODEL` entry.
    pub fn llm_model(&self) -> Option<String> {
        self.session
            .llm
            .model
            .clone()
            .or_else(|| self.entry_text(keyward_core::providers::LLM_MODEL))
    }

    /// Where `/llm` calls go: the request's `llm.base_url`, else the `LLM_BASE_URL` entry;
    /// `None` means the default (Anthropic, seed 001). Server-side only: never put in an env.
    pub fn llm_base_url(&self) -> Option<String> {
        self.session
            .llm
            .base_url
            .clone()
            .or_else(|| self.entry_text(keyward_core::providers::LLM_BASE_URL))
    }

    fn entry_text(&self, name: &str) -> Option<String> {
        self.entry(name)
            .and_then(|e| e.value.expose_str().map(str::to_owned))
            .filter(|v| !v.is_empty())
    }
}
