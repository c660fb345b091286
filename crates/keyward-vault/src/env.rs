//! The environment a platform sets in the agent's process (SPEC sections 2 and 3). In gateway
//! mode every credential variable holds the session token and each SDK's base-URL variable
//! points at the data plane, so an unmodified SDK calls keyward, which swaps the token for the
//! real key. Non-HTTP secrets and variables arrive as plain values (seed 002's `DATABASE_URL`).
//!
//! In proxy mode the agent keeps calling the providers' real URLs through `HTTPS_PROXY`;
//! each credential variable holds a per-session placeholder shaped like the provider's key,
//! which keyward swaps for the real value only on that credential's hosts.

use std::collections::{BTreeMap, BTreeSet};

use keyward_core::providers::{self, BuiltinRule};

use keyward_crypto::token::placeholder;

use crate::{LlmSettings, OpenedEntry, ResolvedSession, SessionMode, Vault};

/// What proxy-mode agents must not send through keyward.
const NO_PROXY: &str = "localhost,127.0.0.1,::1";

/// The placeholder prefix of `LLM_API_KEY`: Anthropic-shaped for Anthropic, generic otherwise.
fn llm_placeholder_prefix(base_url: Option<&str>) -> &'static str {
    match base_url.and_then(providers::provider_of_base_url) {
        Some(p) => providers::rule_for_provider(p).placeholder_prefix,
        None if base_url.is_none() => {
            providers::rule_for_provider(providers::Provider::Anthropic).placeholder_prefix
        }
        None => providers::GENERIC_PLACEHOLDER_PREFIX,
    }
}

/// `http://kw:TOKEN@host:port` for a data plane at `http(s)://host:port`.
fn proxy_url(data_plane_url: &str, token: &str) -> String {
    let host_port = data_plane_url
        .split_once("://")
        .map_or(data_plane_url, |(_, rest)| rest)
        .trim_end_matches('/');
    format!("http://kw:{token}@{host_port}")
}

/// Set when any entry has a custom injection rule: where the agent sends those calls
/// (`{url}/h/{host}/…`).
pub const KEYWARD_GATEWAY_URL: &str = "KEYWARD_GATEWAY_URL";

/// What an entry becomes in the env.
enum Role {
    /// A built-in provider key: the token, plus the SDK's base URL.
    Builtin(&'static BuiltinRule),
    /// `LLM_API_KEY`: the token, plus `LLM_BASE_URL` = `{url}/llm`.
    Llm,
    /// A secret with a custom rule: the token (the agent sends it; keyward swaps it).
    Custom,
    /// The real `LLM_BASE_URL` stays server-side; `LLM_MODEL` is set from the settings.
    Withheld,
    /// Everything else: the plain value.
    Plain,
}

fn role(entry: &OpenedEntry) -> Role {
    role_of(&entry.name, entry.is_secret, entry.injection.is_some())
}

/// [`role`] from what is known without decrypting the entry.
fn role_of(name: &str, is_secret: bool, has_injection: bool) -> Role {
    if name == providers::LLM_BASE_URL || name == providers::LLM_MODEL {
        return Role::Withheld;
    }
    if !is_secret {
        // A variable is plain configuration by definition (seed 004), whatever its name.
        return Role::Plain;
    }
    if let Some(rule) = providers::rule_for_key(name) {
        Role::Builtin(rule)
    } else if name == providers::LLM_API_KEY {
        Role::Llm
    } else if has_injection {
        Role::Custom
    } else {
        Role::Plain
    }
}

/// Whether the agent holds this entry's value in its env, where it stays as it was until the
/// agent re-reads its env (SPEC 7, "Synced"). Credentials keyward injects are not: the data
/// plane uses the new value on the very next request. `LLM_MODEL` is (the agent sees it);
/// `LLM_BASE_URL` only in proxy mode (in gateway mode it stays server-side).
pub(crate) fn delivered_as_env(
    name: &str,
    is_secret: bool,
    has_injection: bool,
    mode: SessionMode,
) -> bool {
    match role_of(name, is_secret, has_injection) {
        Role::Plain => true,
        Role::Withheld => name == providers::LLM_MODEL || mode == SessionMode::Proxy,
        Role::Builtin(_) | Role::Llm | Role::Custom => false,
    }
}

/// The variables keyward sets itself for these entries, with their values.
fn managed(
    entries: &[OpenedEntry],
    model: Option<String>,
    data_plane_url: &str,
    token: &str,
    proxy: Option<Option<String>>,
) -> BTreeMap<String, String> {
    if let Some(llm_base_url) = proxy {
        return managed_proxy(entries, model, data_plane_url, token, llm_base_url);
    }
    let url = data_plane_url.trim_end_matches('/');
    let mut env = BTreeMap::new();
    let mut custom = false;
    for entry in entries {
        match role(entry) {
            Role::Builtin(rule) => {
                env.insert(rule.key_name.to_owned(), token.to_owned());
                env.insert(
                    rule.base_url_env.to_owned(),
                    format!("{url}{}", rule.gateway_suffix),
                );
            }
            Role::Llm => {
                env.insert(providers::LLM_API_KEY.to_owned(), token.to_owned());
                env.insert(
                    providers::LLM_BASE_URL.to_owned(),
                    format!("{url}/{}", providers::LLM_ROUTE),
                );
            }
            Role::Custom => {
                env.insert(entry.name.clone(), token.to_owned());
                custom = true;
            }
            Role::Withheld | Role::Plain => {}
        }
    }
    if let Some(model) = model {
        env.insert(providers::LLM_MODEL.to_owned(), model);
    }
    if custom {
        env.insert(KEYWARD_GATEWAY_URL.to_owned(), url.to_owned());
    }
    env
}

/// Proxy mode: placeholders for credentials, the real `LLM_BASE_URL` (the agent calls it
/// directly, through the proxy), and the proxy settings.
fn managed_proxy(
    entries: &[OpenedEntry],
    model: Option<String>,
    data_plane_url: &str,
    token: &str,
    llm_base_url: Option<String>,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for entry in entries {
        match role(entry) {
            Role::Builtin(rule) => {
                env.insert(
                    rule.key_name.to_owned(),
                    placeholder(token, rule.key_name, rule.placeholder_prefix),
                );
            }
            Role::Llm => {
                let prefix = llm_placeholder_prefix(llm_base_url.as_deref());
                env.insert(
                    providers::LLM_API_KEY.to_owned(),
                    placeholder(token, providers::LLM_API_KEY, prefix),
                );
                if let Some(base) = &llm_base_url {
                    env.insert(providers::LLM_BASE_URL.to_owned(), base.clone());
                }
            }
            Role::Custom => {
                env.insert(
                    entry.name.clone(),
                    placeholder(token, &entry.name, providers::GENERIC_PLACEHOLDER_PREFIX),
                );
            }
            Role::Withheld | Role::Plain => {}
        }
    }
    if let Some(model) = model {
        env.insert(providers::LLM_MODEL.to_owned(), model);
    }
    let proxy = proxy_url(data_plane_url, token);
    for name in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"] {
        env.insert(name.to_owned(), proxy.clone());
    }
    env.insert("NO_PROXY".to_owned(), NO_PROXY.to_owned());
    env.insert("no_proxy".to_owned(), NO_PROXY.to_owned());
    env
}

/// The placeholder of credential `key_name` in a proxy-mode session of `token` (what the data
/// plane looks for), with its prefix rules in one place.
pub fn credential_placeholder(token: &str, key_name: &str, llm_base_url: Option<&str>) -> String {
    let prefix = match providers::rule_for_key(key_name) {
        Some(rule) => rule.placeholder_prefix,
        None if key_name == providers::LLM_API_KEY => llm_placeholder_prefix(llm_base_url),
        None => providers::GENERIC_PLACEHOLDER_PREFIX,
    };
    placeholder(token, key_name, prefix)
}

/// Names of the variables keyward manages for a session with these entries and settings. A
/// request's `env` may not set them: it could point an SDK away from keyward or replace the
/// token with something keyward would not recognise.
pub(crate) fn managed_keys(entries: &[OpenedEntry], llm: &LlmSettings) -> BTreeSet<String> {
    let model = llm.model.clone().or_else(|| {
        entries
            .iter()
            .any(|e| e.name == providers::LLM_MODEL)
            .then(String::new)
    });
    let mut keys: BTreeSet<String> = managed(entries, model.clone(), "", "", None)
        .into_keys()
        .collect();
    keys.extend(managed(entries, model, "", "", Some(llm.base_url.clone())).into_keys());
    // The proxy settings are reserved names, refused on their own.
    keys.retain(|k| !keyward_core::names::is_reserved_key_name(k));
    keys
}

fn plain_text(value: &keyward_crypto::Secret) -> String {
    // Values stored through the API are UTF-8; anything else is shown lossily, never dropped.
    match value.expose_str() {
        Some(text) => text.to_owned(),
        None => String::from_utf8_lossy(value.expose()).into_owned(),
    }
}

/// The agent's environment for `resolved`, reaching the data plane at `data_plane_url`.
pub fn session_env(
    resolved: &ResolvedSession,
    data_plane_url: &str,
    token: &str,
) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = resolved
        .entries
        .iter()
        .filter(|e| matches!(role(e), Role::Plain))
        .map(|e| (e.name.clone(), plain_text(&e.value)))
        .collect();
    let proxy = (resolved.session.mode == SessionMode::Proxy).then(|| resolved.llm_base_url());
    let managed = managed(
        &resolved.entries,
        resolved.llm_model(),
        data_plane_url,
        token,
        proxy,
    );
    for (key, value) in &resolved.request_env {
        // Checked at creation; a bundle rotated since may have added a credential of the
        // same name, and then keyward's value must still win.
        if !managed.contains_key(key) {
            env.insert(key.clone(), plain_text(value));
        }
    }
    env.extend(managed);
    env
}

impl Vault {
    /// See [`session_env`].
    pub fn session_env(
        &self,
        resolved: &ResolvedSession,
        data_plane_url: &str,
        token: &str,
    ) -> BTreeMap<String, String> {
        session_env(resolved, data_plane_url, token)
    }
}

#[cfg(test)]
#[path = "env_tests.rs"]
mod tests;
