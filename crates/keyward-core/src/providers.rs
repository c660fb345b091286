//! The built-in injection rules of SPEC.md section 3: which entry name is a credential for
//! which provider, where that provider lives, and how its key goes on the wire.

/// How a credential is put on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStyle {
    /// `Authorization: Bearer {v}`
    Bearer,
    /// `x-api-key: {v}` (Anthropic)
    XApiKey,
    /// `x-goog-api-key: {v}` (Gemini)
    XGoogApiKey,
}

impl AuthStyle {
    /// The header name, lowercase.
    pub const fn header(self) -> &'static str {
        match self {
            AuthStyle::Bearer => "authorization",
            AuthStyle::XApiKey => "x-api-key",
            AuthStyle::XGoogApiKey => "x-goog-api-key",
        }
    }
}

/// A provider keyward knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    Anthropic,
    OpenAi,
    OpenRouter,
    Venice,
    Gemini,
}

/// One built-in rule.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinRule {
    pub provider: Provider,
    /// The entry name that holds the key, e.g. `OPENAI_API_KEY`.
    pub key_name: &'static str,
    /// The gateway-mode path prefix, e.g. `openai` for `/openai/…`.
    pub route: &'static str,
    /// Where the prefix-stripped path is appended, e.g. `https://openrouter.ai/api`.
    pub upstream_base: &'static str,
    /// The provider's host, for proxy mode and `/h/{host}`.
    pub host: &'static str,
    pub auth: AuthStyle,
    /// The environment variable SDKs read their base URL from, and the suffix of the gateway
    /// URL it gets (what the SDK appends its paths to).
    pub base_url_env: &'static str,
    pub gateway_suffix: &'static str,
    /// How a proxy-mode placeholder for this key starts (shaped like a real key).
    pub placeholder_prefix: &'static str,
}

pub const BUILTIN_RULES: &[BuiltinRule] = &[
    BuiltinRule {
        provider: Provider::Anthropic,
        key_name: "ANTHROPIC_API_KEY",
        route: "anthropic",
        upstream_base: "https://api.anthropic.com",
        host: "api.anthropic.com",
        auth: AuthStyle::XApiKey,
        base_url_env: "ANTHROPIC_BASE_URL",
        gateway_suffix: "/anthropic",
        placeholder_prefix: "sk-ant-api03-kw",
    },
    BuiltinRule {
        provider: Provider::OpenAi,
        key_name: "OPENAI_API_KEY",
        route: "openai",
        upstream_base: "https://api.openai.com",
        host: "api.openai.com",
        auth: AuthStyle::Bearer,
        base_url_env: "OPENAI_BASE_URL",
        gateway_suffix: "/openai/v1",
        placeholder_prefix: "sk-proj-kw",
    },
    BuiltinRule {
        provider: Provider::OpenRouter,
        key_name: "OPENROUTER_API_KEY",
        route: "openrouter",
        upstream_base: "https://openrouter.ai/api",
        host: "openrouter.ai",
        auth: AuthStyle::Bearer,
        base_url_env: "OPENROUTER_BASE_URL",
        gateway_suffix: "/openrouter/v1",
        placeholder_prefix: "sk-or-v1-kw",
    },
    BuiltinRule {
        provider: Provider::Venice,
        key_name: "VENICE_API_KEY",
        route: "venice",
        upstream_base: "https://api.venice.ai/api",
        host: "api.venice.ai",
        auth: AuthStyle::Bearer,
        base_url_env: "VENICE_BASE_URL",
        gateway_suffix: "/venice/v1",
        placeholder_prefix: "kw-ph-venice-",
    },
    BuiltinRule {
        provider: Provider::Gemini,
        key_name: "GEMINI_API_KEY",
        route: "gemini",
        upstream_base: "https://generativelanguage.googleapis.com",
        host: "generativelanguage.googleapis.com",
        auth: AuthStyle::XGoogApiKey,
        base_url_env: "GEMINI_BASE_URL",
        gateway_suffix: "/gemini",
        placeholder_prefix: "AIzaSy-kw",
    },
];

/// The vendor-neutral credential of seed 001: `LLM_API_KEY`, sent to `LLM_BASE_URL` (Anthropic
/// when unset), with `LLM_MODEL` overriding the request's model.
pub const LLM_API_KEY: &str = "LLM_API_KEY";
pub const LLM_BASE_URL: &str = "LLM_BASE_URL";
pub const LLM_MODEL: &str = "LLM_MODEL";
/// The gateway route of the `LLM_*` credential.
pub const LLM_ROUTE: &str = "llm";

/// Placeholder prefix of credentials with no built-in shape (custom rules, OpenAI-compatible
/// `LLM_API_KEY`).
pub const GENERIC_PLACEHOLDER_PREFIX: &str = "kw-ph-";

pub fn rule_for_key(key_name: &str) -> Option<&'static BuiltinRule> {
    BUILTIN_RULES.iter().find(|r| r.key_name == key_name)
}

pub fn rule_for_route(route: &str) -> Option<&'static BuiltinRule> {
    BUILTIN_RULES.iter().find(|r| r.route == route)
}

pub fn rule_for_host(host: &str) -> Option<&'static BuiltinRule> {
    BUILTIN_RULES
        .iter()
        .find(|r| r.host.eq_ignore_ascii_case(host))
}

pub fn rule_for_provider(provider: Provider) -> &'static BuiltinRule {
    // Every Provider variant has exactly one row in BUILTIN_RULES (checked by a test).
    BUILTIN_RULES
        .iter()
        .find(|r| r.provider == provider)
        .unwrap_or(&BUILTIN_RULES[0])
}

/// Which provider an `LLM_BASE_URL` talks to, judged by its host (seed 004's "one credential
/// per provider" rule needs it). `None` for any other OpenAI-compatible endpoint.
pub fn provider_of_base_url(base_url: &str) -> Option<Provider> {
    let rest = base_url.split_once("://").map_or(base_url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    rule_for_host(host).map(|r| r.provider)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_has_one_rule() {
        for p in [
            Provider::Anthropic,
            Provider::OpenAi,
            Provider::OpenRouter,
            Provider::Venice,
            Provider::Gemini,
        ] {
            assert_eq!(BUILTIN_RULES.iter().filter(|r| r.provider == p).count(), 1);
            assert_eq!(rule_for_provider(p).provider, p);
        }
    }

    #[test]
    fn base_url_provider() {
        assert_eq!(
            provider_of_base_url("https://api.openai.com/v1"),
            Some(Provider::OpenAi)
        );
        assert_eq!(
            provider_of_base_url("https://API.anthropic.com:443"),
            Some(Provider::Anthropic)
        );
        assert_eq!(provider_of_base_url("https://api.coding67.com/v1"), None);
    }
}
