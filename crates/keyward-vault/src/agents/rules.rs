//! Seed 004's rules for the bundles of one agent, as pure functions over key names:
//! - one credential per provider: two bundles that both reach OpenAI (say `OPENAI_API_KEY`
//!   twice, or `LLM_API_KEY` with an OpenAI `LLM_BASE_URL` next to `OPENAI_API_KEY`) are
//!   refused with 409 `provider_conflict` — which key would a call use?
//! - one value per key: any other key defined by two bundles is 400 `secret_key_collision`,
//!   the session rule (seed 001), checked when bundles are attached rather than when a session
//!   starts, so that every session of the agent can start.
//!
//! Only conflicts that involve the incoming bundle are reported: an agent whose other bundles
//! already disagree (a rotation before these rules existed) can still take unrelated bundles.

use std::collections::BTreeMap;

use keyward_core::providers::{self, Provider};
use keyward_core::ErrorCode;

use crate::{Result, VaultError};

/// The key names of one bundle and whether each is a secret (variables never authenticate).
pub(crate) struct KeySet {
    pub bundle: String,
    pub keys: Vec<(String, bool)>,
}

/// A provider's display name, for messages.
fn provider_name(p: Provider) -> &'static str {
    match p {
        Provider::Anthropic => "Anthropic",
        Provider::OpenAi => "OpenAI",
        Provider::OpenRouter => "OpenRouter",
        Provider::Venice => "Venice",
        Provider::Gemini => "Gemini",
    }
}

/// The provider a secret named `key` authenticates to, if it is a provider credential.
/// `LLM_API_KEY` goes where `LLM_BASE_URL` points, Anthropic when unset (seed 001); an
/// `LLM_BASE_URL` of another OpenAI-compatible endpoint is no built-in provider.
pub(crate) fn credential_provider(key: &str, llm_base_url: Option<&str>) -> Option<Provider> {
    if let Some(rule) = providers::rule_for_key(key) {
        return Some(rule.provider);
    }
    if key != providers::LLM_API_KEY {
        return None;
    }
    match llm_base_url {
        Some(url) => providers::provider_of_base_url(url),
        None => Some(Provider::Anthropic),
    }
}

/// Check attaching `incoming` to an agent that has `existing`. `llm_base_url` is the
/// `LLM_BASE_URL` of all of them together (it decides where `LLM_API_KEY` goes).
pub(crate) fn check_attach(
    existing: &[KeySet],
    incoming: &KeySet,
    llm_base_url: Option<&str>,
) -> Result<()> {
    // provider → every (bundle, key, incoming?) holding a credential for it.
    let mut by_provider: BTreeMap<&'static str, Vec<(&str, &str, bool)>> = BTreeMap::new();
    let all = existing
        .iter()
        .map(|s| (s, false))
        .chain(std::iter::once((incoming, true)));
    for (set, is_incoming) in all {
        for (key, is_secret) in &set.keys {
            if !is_secret {
                continue;
            }
            if let Some(p) = credential_provider(key, llm_base_url) {
                by_provider.entry(provider_name(p)).or_default().push((
                    &set.bundle,
                    key,
                    is_incoming,
                ));
            }
        }
    }
    for (provider, holders) in &by_provider {
        if holders.len() < 2 || !holders.iter().any(|h| h.2) {
            continue;
        }
        let list: Vec<String> = holders
            .iter()
            .map(|(bundle, key, _)| format!("{key} in bundle {bundle}"))
            .collect();
        return Err(VaultError::rejected(
            ErrorCode::ProviderConflict,
            format!(
                "the agent would hold two credentials for {provider} ({}); keep one",
                list.join(", ")
            ),
        ));
    }
    for (key, _) in &incoming.keys {
        if let Some(other) = existing
            .iter()
            .find(|s| s.keys.iter().any(|(k, _)| k == key))
        {
            return Err(VaultError::rejected(
                ErrorCode::SecretKeyCollision,
                format!(
                    "key {key} is defined in both bundle {} and bundle {}",
                    other.bundle, incoming.bundle
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(bundle: &str, keys: &[(&str, bool)]) -> KeySet {
        KeySet {
            bundle: bundle.to_owned(),
            keys: keys.iter().map(|(k, s)| ((*k).to_owned(), *s)).collect(),
        }
    }

    fn code(existing: &[KeySet], incoming: &KeySet, url: Option<&str>) -> Option<ErrorCode> {
        check_attach(existing, incoming, url)
            .err()
            .map(|e| e.code())
    }

    #[test]
    fn one_credential_per_provider() {
        let openai = set("openai", &[("OPENAI_API_KEY", true)]);
        let again = set("openai-2", &[("OPENAI_API_KEY", true)]);
        assert_eq!(
            code(std::slice::from_ref(&openai), &again, None),
            Some(ErrorCode::ProviderConflict)
        );
        // LLM_API_KEY towards OpenAI next to OPENAI_API_KEY, either way round.
        let llm = set("llm", &[("LLM_API_KEY", true), ("LLM_BASE_URL", false)]);
        let url = Some("https://api.openai.com/v1");
        assert_eq!(
            code(std::slice::from_ref(&openai), &llm, url),
            Some(ErrorCode::ProviderConflict)
        );
        assert_eq!(
            code(std::slice::from_ref(&llm), &openai, url),
            Some(ErrorCode::ProviderConflict)
        );
        // Another OpenAI-compatible endpoint is no conflict.
        assert_eq!(
            code(
                std::slice::from_ref(&openai),
                &llm,
                Some("https://api.coding67.com/v1")
            ),
            None
        );
        // LLM_API_KEY without a base URL goes to Anthropic.
        let anthropic = set("anthropic", &[("ANTHROPIC_API_KEY", true)]);
        assert_eq!(
            code(
                std::slice::from_ref(&anthropic),
                &set("l", &[("LLM_API_KEY", true)]),
                None
            ),
            Some(ErrorCode::ProviderConflict)
        );
        // Two providers side by side are fine.
        assert_eq!(code(&[openai], &anthropic, None), None);
    }

    #[test]
    fn variables_are_not_credentials_but_still_collide() {
        let openai = set("openai", &[("OPENAI_API_KEY", true)]);
        let var = set("cfg", &[("OPENAI_API_KEY", false)]);
        assert_eq!(
            code(&[openai], &var, None),
            Some(ErrorCode::SecretKeyCollision)
        );
        let db = set("db", &[("DATABASE_URL", true)]);
        let db2 = set("db-2", &[("DATABASE_URL", true)]);
        assert_eq!(code(&[db], &db2, None), Some(ErrorCode::SecretKeyCollision));
    }

    #[test]
    fn old_conflicts_do_not_block_unrelated_bundles() {
        let a = set("a", &[("OPENAI_API_KEY", true)]);
        let b = set("b", &[("OPENAI_API_KEY", true)]);
        let c = set("c", &[("DATABASE_URL", true)]);
        assert_eq!(code(&[a, b], &c, None), None);
    }
}
