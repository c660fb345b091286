//! What the data plane knows about a session, built once from the vault and cached by token
//! digest. Lookups are lock-free (`ArcSwap`); an entry is used only while the vault's change
//! epoch is the one it was built at, so the very next request after a rotation, deletion or
//! end sees the change.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::{HeaderName, HeaderValue};
use keyward_core::providers::{self, AuthStyle, Provider};
use keyward_crypto::token;
use keyward_crypto::Secret;
use keyward_store::TenantId;
use keyward_vault::{EgressPolicy, OpenedEntry, ResolvedSession, SessionMode, Vault, VaultError};

use crate::redact::Redactor;

/// A credential ready to put on the wire: the header value is built once, marked sensitive.
#[derive(Clone)]
pub struct Credential {
    /// The entry name (`OPENAI_API_KEY`), recorded in the audit log; never the value.
    pub name: String,
    pub version: i64,
    pub header: HeaderName,
    pub value: HeaderValue,
    /// The bare secret, for replacing a proxy-mode placeholder in place.
    pub secret: Secret,
    /// This session's proxy-mode stand-in for the secret.
    pub placeholder: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

/// Where `/llm/…` goes (seed 001's `LLM_API_KEY` / `LLM_BASE_URL` / `LLM_MODEL`).
#[derive(Debug, Clone)]
pub struct LlmTarget {
    /// Base URL without a trailing slash.
    pub base: String,
    pub credential: Arc<Credential>,
    /// Anthropic's API: `x-api-key` and `anthropic-version`.
    pub anthropic: bool,
    /// `LLM_MODEL`: overrides the request body's `model`.
    pub model: Option<String>,
    /// The base came from keyward (Anthropic default), not from the tenant.
    pub trusted: bool,
}

/// A custom credential (seed 002): sent only to the hosts its rule names.
#[derive(Debug, Clone)]
pub struct CustomCredential {
    pub hosts: Vec<String>,
    pub credential: Arc<Credential>,
}

#[derive(Debug)]
pub struct SessionState {
    pub epoch: u64,
    pub tenant: TenantId,
    pub tenant_name: String,
    pub session_id: String,
    pub agent: Option<String>,
    pub user_id: Option<String>,
    pub mode: SessionMode,
    pub builtin: Vec<(Provider, Arc<Credential>)>,
    pub llm: Option<LlmTarget>,
    pub custom: Vec<CustomCredential>,
    /// Scrubs every secret value of the session from responses.
    pub redactor: Redactor,
    pub egress: Option<EgressPolicy>,
    /// Hosts the session's credentials go to (always allowed by `deny-unlisted`).
    pub credential_hosts: Vec<String>,
    /// The limits of the session's tenant, agent and session, read on its first call (this
    /// view is rebuilt after any change, limits included).
    pub limits: tokio::sync::OnceCell<crate::limits::ScopeSet>,
}

impl SessionState {
    pub fn credential(&self, provider: Provider) -> Option<&Arc<Credential>> {
        self.builtin
            .iter()
            .find(|(p, _)| *p == provider)
            .map(|(_, c)| c)
    }

    /// The custom credential whose rule names `host`.
    pub fn custom_for_host(&self, host: &str) -> Option<&CustomCredential> {
        self.custom
            .iter()
            .find(|c| c.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)))
    }

    /// The credential keyward injects on requests to `host` (proxy mode), if any.
    pub fn credential_for_host(&self, host: &str) -> Option<HostCredential<'_>> {
        let host = host.to_ascii_lowercase();
        if let Some(rule) = providers::rule_for_host(&host) {
            if let Some(c) = self.credential(rule.provider) {
                return Some(HostCredential {
                    credential: c,
                    anthropic: rule.provider == Provider::Anthropic,
                    openai_style: matches!(
                        rule.provider,
                        Provider::OpenAi | Provider::OpenRouter | Provider::Venice
                    ),
                    model_override: None,
                    route: rule.route,
                    metered: true,
                });
            }
        }
        if let Some(llm) = &self.llm {
            if host_of_url(&llm.base).as_deref() == Some(host.as_str()) {
                return Some(HostCredential {
                    credential: &llm.credential,
                    anthropic: llm.anthropic,
                    openai_style: !llm.anthropic,
                    model_override: llm.model.as_deref(),
                    route: providers::LLM_ROUTE,
                    metered: true,
                });
            }
        }
        self.custom_for_host(&host).map(|c| HostCredential {
            credential: &c.credential,
            anthropic: false,
            openai_style: false,
            model_override: None,
            route: "h",
            metered: false,
        })
    }

    /// The egress policy: no policy or `allow` lets everything through; `deny-unlisted` the
    /// listed hosts and the session's own credential hosts.
    pub fn egress_allows(&self, host: &str) -> bool {
        let Some(policy) = self.egress.as_ref().filter(|p| p.deny_unlisted) else {
            return true;
        };
        let host = host.to_ascii_lowercase();
        policy.matches(&host) || self.credential_hosts.contains(&host)
    }

    /// A state with no vault session behind it (static config mode): no credentials of its
    /// own, only what `redactor` scrubs from responses. The caller names the call's session.
    pub fn standalone(tenant_name: &str, redactor: Redactor) -> Self {
        SessionState {
            epoch: 0,
            tenant: TenantId(0),
            tenant_name: tenant_name.to_owned(),
            session_id: String::new(),
            agent: None,
            user_id: None,
            mode: SessionMode::Gateway,
            builtin: Vec::new(),
            llm: None,
            custom: Vec::new(),
            redactor,
            egress: None,
            credential_hosts: Vec::new(),
            limits: Default::default(),
        }
    }

    fn build(resolved: ResolvedSession, epoch: u64, token: &str) -> Self {
        let entry = |name: &str| resolved.entries.iter().find(|e| e.name == name);
        let plain = |name: &str| {
            entry(name)
                .and_then(|e| e.value.expose_str())
                .map(str::to_owned)
        };
        let mut builtin = Vec::new();
        for rule in providers::BUILTIN_RULES {
            if let Some(c) =
                entry(rule.key_name).and_then(|e| credential(e, rule.auth, token, None))
            {
                builtin.push((rule.provider, Arc::new(c)));
            }
        }
        let session = &resolved.session;
        let llm = entry(providers::LLM_API_KEY).and_then(|key| {
            let base_url = session
                .llm
                .base_url
                .clone()
                .or_else(|| plain(providers::LLM_BASE_URL));
            let model = session
                .llm
                .model
                .clone()
                .or_else(|| plain(providers::LLM_MODEL));
            let (base, trusted) = match base_url {
                Some(url) => (url.trim_end_matches('/').to_owned(), false),
                None => (
                    providers::rule_for_provider(Provider::Anthropic)
                        .upstream_base
                        .to_owned(),
                    true,
                ),
            };
            let anthropic = match session.llm.vendor.as_deref() {
                Some("anthropic") => true,
                Some(_) => false,
                None => {
                    trusted || providers::provider_of_base_url(&base) == Some(Provider::Anthropic)
                }
            };
            let style = if anthropic {
                AuthStyle::XApiKey
            } else {
                AuthStyle::Bearer
            };
            let placeholder_base = (!trusted).then_some(base.as_str());
            Some(LlmTarget {
                credential: Arc::new(credential(key, style, token, placeholder_base)?),
                base,
                anthropic,
                model,
                trusted,
            })
        });
        let custom = resolved
            .entries
            .iter()
            .filter(|e| e.is_secret)
            .filter_map(|e| {
                let rule = e.injection.as_ref()?;
                let template = rule.template(&e.name).ok()?;
                let mut value = Vec::with_capacity(
                    template.prefix.len() + e.value.len() + template.suffix.len(),
                );
                value.extend_from_slice(template.prefix.as_bytes());
                value.extend_from_slice(e.value.expose());
                value.extend_from_slice(template.suffix.as_bytes());
                let mut header_value = HeaderValue::from_bytes(&value).ok()?;
                header_value.set_sensitive(true);
                Some(CustomCredential {
                    hosts: rule.hosts.clone(),
                    credential: Arc::new(Credential {
                        name: e.name.clone(),
                        version: e.version,
                        header: HeaderName::from_bytes(template.name.as_bytes()).ok()?,
                        value: header_value,
                        secret: e.value.clone(),
                        placeholder: keyward_vault::credential_placeholder(token, &e.name, None),
                    }),
                })
            })
            .collect();
        let redactor = Redactor::new(
            resolved
                .entries
                .iter()
                .filter(|e| e.is_secret)
                .map(|e| e.value.expose()),
        );
        let egress = session.egress.clone();
        let credential_hosts = resolved.credential_hosts();
        SessionState {
            egress,
            credential_hosts,
            limits: Default::default(),
            epoch,
            tenant: session.tenant,
            tenant_name: resolved.tenant_name.clone(),
            session_id: session.id.clone(),
            agent: session.agent.clone(),
            user_id: session.user_id.clone(),
            mode: session.mode,
            builtin,
            llm,
            custom,
            redactor,
        }
    }
}

/// A credential chosen for a host, with how that host's API is spoken.
pub struct HostCredential<'a> {
    pub credential: &'a Arc<Credential>,
    pub anthropic: bool,
    pub openai_style: bool,
    pub model_override: Option<&'a str>,
    pub route: &'static str,
    pub metered: bool,
}

fn host_of_url(url: &str) -> Option<String> {
    url.parse::<http::Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_ascii_lowercase))
}

fn credential(
    entry: &OpenedEntry,
    style: AuthStyle,
    token: &str,
    llm_base_url: Option<&str>,
) -> Option<Credential> {
    if !entry.is_secret {
        return None;
    }
    let mut value = match style {
        AuthStyle::Bearer => {
            let mut v = Vec::with_capacity(7 + entry.value.len());
            v.extend_from_slice(b"Bearer ");
            v.extend_from_slice(entry.value.expose());
            HeaderValue::from_bytes(&v).ok()?
        }
        AuthStyle::XApiKey | AuthStyle::XGoogApiKey => {
            HeaderValue::from_bytes(entry.value.expose()).ok()?
        }
    };
    value.set_sensitive(true);
    Some(Credential {
        name: entry.name.clone(),
        version: entry.version,
        header: HeaderName::from_static(style.header()),
        value,
        secret: entry.value.clone(),
        placeholder: keyward_vault::credential_placeholder(token, &entry.name, llm_base_url),
    })
}

/// Prefix of session tokens.
pub const SESSION_TOKEN_PREFIX: &str = "kw_s_";

/// Token digest → session state.
pub struct SessionCache {
    /// `None` in static config mode: no token is a session token there.
    vault: Option<Vault>,
    map: ArcSwap<HashMap<[u8; 32], Arc<SessionState>>>,
}

/// Past this many cached sessions the cache starts over (bounded memory).
const MAX_CACHED: usize = 100_000;

impl SessionCache {
    pub fn new(vault: Vault) -> Self {
        Self {
            vault: Some(vault),
            map: ArcSwap::from_pointee(HashMap::new()),
        }
    }

    /// A cache with no vault behind it: every lookup finds nothing.
    pub fn without_vault() -> Self {
        Self {
            vault: None,
            map: ArcSwap::from_pointee(HashMap::new()),
        }
    }

    pub fn vault(&self) -> Option<&Vault> {
        self.vault.as_ref()
    }

    /// The live session a token belongs to, or `None` if the token is unknown or ended. An
    /// agent's gateway token (`kw_a_…`) resolves to a synthetic session with the agent's
    /// bundles, cached the same way: a token rotation bumps the epoch, so the old token stops
    /// on its next request.
    pub async fn lookup(&self, token: &str) -> Result<Option<Arc<SessionState>>, VaultError> {
        let Some(vault) = &self.vault else {
            return Ok(None);
        };
        let agent = token.starts_with(keyward_vault::AGENT_TOKEN_PREFIX);
        if !agent && !token.starts_with(SESSION_TOKEN_PREFIX) {
            return Ok(None);
        }
        let digest = token::digest(token);
        let epoch = vault.epoch();
        if let Some(state) = self.map.load().get(&digest) {
            if state.epoch == epoch {
                return Ok(Some(state.clone()));
            }
        }
        let resolved = if agent {
            vault.resolve_agent_token(token).await?
        } else {
            match vault.session_by_token(token).await? {
                Some(session) => Some(vault.resolve_session(&session).await?),
                None => None,
            }
        };
        let Some(resolved) = resolved else {
            self.map.rcu(|m| {
                let mut m = HashMap::clone(m);
                m.remove(&digest);
                m
            });
            return Ok(None);
        };
        let state = Arc::new(SessionState::build(resolved, epoch, token));
        self.map.rcu(|m| {
            let mut m = if m.len() >= MAX_CACHED {
                HashMap::new()
            } else {
                HashMap::clone(m)
            };
            m.insert(digest, state.clone());
            m
        });
        Ok(Some(state))
    }
}
