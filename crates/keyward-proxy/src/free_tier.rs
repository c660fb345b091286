//! The keyless free tier (seed 004): an operator-configured shared credential that a session
//! with no key of its own for that provider uses on the provider's gateway route, for the
//! allowed models only and within a per-tenant requests-per-minute limit. Its calls are
//! audited with the decision `free_tier`.
//!
//! `keyward serve --free-tier FILE` (YAML, JSON or TOML):
//!
//! ```yaml
//! provider: openai            # anthropic, openai, openrouter, venice, gemini
//! key: "$FREE_OPENAI_KEY"     # from keyward's environment, or { file: /run/secrets/key }
//! allowed_models: [gpt-4o-mini, "gpt-4.1-*"]   # exact names, or a prefix ending in *
//! requests_per_minute: 10     # per tenant
//! ```
//!
//! The key is read once at start-up; a file's trailing newline is trimmed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use keyward_core::providers::{self, AuthStyle, Provider};
use keyward_crypto::Secret;
use serde::Deserialize;

use crate::config_file::{self, FileError};
use crate::redact::Redactor;
use crate::session::Credential;

/// The credential name the audit log records for free-tier calls.
pub const FREE_TIER_CREDENTIAL: &str = "free_tier";

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FreeTierFile {
    provider: String,
    key: KeySource,
    allowed_models: Vec<String>,
    requests_per_minute: u64,
}

/// `key:` — `"$NAME"` (or `"${NAME}"`), `{file: PATH}`, or the key itself.
#[derive(Deserialize)]
#[serde(untagged)]
enum KeySource {
    Text(String),
    File { file: PathBuf },
}

/// A loaded free tier.
pub struct FreeTier {
    pub provider: Provider,
    /// The shared key, ready to put on the wire.
    pub credential: Arc<Credential>,
    /// Scrubs the shared key from responses.
    pub redactor: Redactor,
    pub allowed_models: Vec<String>,
    pub requests_per_minute: u64,
}

impl std::fmt::Debug for FreeTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FreeTier")
            .field("provider", &self.provider)
            .field("allowed_models", &self.allowed_models)
            .field("requests_per_minute", &self.requests_per_minute)
            .finish_non_exhaustive()
    }
}

fn provider_named(name: &str) -> Option<Provider> {
    providers::BUILTIN_RULES
        .iter()
        .find(|r| r.route.eq_ignore_ascii_case(name))
        .map(|r| r.provider)
}

impl KeySource {
    fn load(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Secret, String> {
        let value = match self {
            KeySource::Text(text) if text.starts_with('$') => {
                let Some(Ok(name)) = crate::static_mode::env_reference(text) else {
                    return Err(
                        "key: a value starting with $ must name an environment variable ($NAME)"
                            .into(),
                    );
                };
                env(name)
                    .ok_or_else(|| format!("key: ${name} is not set in keyward's environment"))?
            }
            KeySource::Text(text) => text.clone(),
            KeySource::File { file } => std::fs::read_to_string(file)
                .map_err(|e| format!("key: cannot read {}: {e}", file.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
        };
        if value.trim().is_empty() {
            return Err("key: the key is empty".into());
        }
        Ok(Secret::from_string(value))
    }
}

impl FreeTier {
    /// `--free-tier FILE`, with `$NAME` read from keyward's environment.
    pub fn from_path(path: &Path) -> Result<Self, FileError> {
        let file: FreeTierFile = config_file::read(path)?;
        Self::build(file, &|name| std::env::var(name).ok()).map_err(|m| FileError::new(path, m))
    }

    fn build(file: FreeTierFile, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let provider = provider_named(&file.provider)
            .ok_or("provider must be one of anthropic, openai, openrouter, venice, gemini")?;
        if file.allowed_models.is_empty() || file.allowed_models.iter().any(|m| m.is_empty()) {
            return Err("allowed_models must list at least one model name".into());
        }
        if file.requests_per_minute == 0 {
            return Err("requests_per_minute must be at least 1".into());
        }
        let secret = file.key.load(env)?;
        let rule = providers::rule_for_provider(provider);
        let mut raw = Vec::with_capacity(secret.len() + 7);
        if rule.auth == AuthStyle::Bearer {
            raw.extend_from_slice(b"Bearer ");
        }
        raw.extend_from_slice(secret.expose());
        let mut value = HeaderValue::from_bytes(&raw)
            .map_err(|_| "key: the key holds characters a header cannot carry")?;
        value.set_sensitive(true);
        let credential = Credential {
            name: FREE_TIER_CREDENTIAL.to_owned(),
            version: 0,
            header: HeaderName::from_static(rule.auth.header()),
            value,
            // Never sent by an agent: free-tier calls come through the gateway only.
            placeholder: format!("kw-free-tier-{}", rule.route),
            secret,
        };
        Ok(FreeTier {
            provider,
            redactor: Redactor::new([credential.secret.expose()]),
            credential: Arc::new(credential),
            allowed_models: file.allowed_models,
            requests_per_minute: file.requests_per_minute,
        })
    }

    /// Whether the free tier serves `model`: listed exactly, or under a listed `prefix*`.
    pub fn allows(&self, model: Option<&str>) -> bool {
        let Some(model) = model else { return false };
        self.allowed_models
            .iter()
            .any(|allowed| match allowed.strip_suffix('*') {
                Some(prefix) => model.starts_with(prefix),
                None => allowed == model,
            })
    }

    /// Whether `credential` is this free tier's.
    pub fn is(&self, credential: &Arc<Credential>) -> bool {
        Arc::ptr_eq(&self.credential, credential)
    }
}

#[cfg(test)]
#[path = "free_tier_tests.rs"]
mod tests;
