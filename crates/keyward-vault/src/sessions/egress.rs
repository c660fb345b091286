//! Egress policies: which hosts a session's traffic may reach through the data plane.
//! `{"mode": "allow"}` lets everything through; `{"mode": "deny-unlisted", "allow": [...]}`
//! only the listed hosts (exact names or `*.suffix`) plus the hosts of the session's own
//! credentials (SPEC section 7). Parsed once at creation; stored in its normalised JSON form.

use keyward_core::{providers, ErrorCode};
use serde_json::{json, Value};

use crate::{ResolvedSession, Result, VaultError};

/// Most patterns one policy may list; keeps the per-request match cheap.
const MAX_PATTERNS: usize = 256;

/// A validated egress policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressPolicy {
    /// `deny-unlisted`: hosts not listed (and not a credential's) are refused.
    pub deny_unlisted: bool,
    /// Lowercase host names, or `*.suffix` patterns matching any subdomain of `suffix`.
    pub allow: Vec<String>,
}

fn invalid(message: impl Into<String>) -> VaultError {
    VaultError::rejected(ErrorCode::InvalidRequest, message)
}

impl EgressPolicy {
    /// Parse the `egress` field of a session request.
    pub fn from_json(value: &Value) -> Result<Self> {
        let Some(object) = value.as_object() else {
            return Err(invalid("egress must be an object with a \"mode\""));
        };
        if let Some(field) = object.keys().find(|k| *k != "mode" && *k != "allow") {
            return Err(invalid(format!(
                "egress: unknown field {:?} (expected \"mode\" and \"allow\")",
                truncate(field)
            )));
        }
        let deny_unlisted = match object.get("mode").and_then(Value::as_str) {
            Some("allow") => false,
            Some("deny-unlisted") => true,
            _ => {
                return Err(invalid(
                    "egress.mode must be \"allow\" or \"deny-unlisted\"",
                ))
            }
        };
        let allow = match object.get("allow") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => parse_patterns(items)?,
            Some(_) => return Err(invalid("egress.allow must be a list of host names")),
        };
        if !deny_unlisted && !allow.is_empty() {
            return Err(invalid(
                "egress.allow only applies to mode \"deny-unlisted\"; mode \"allow\" lets every host through",
            ));
        }
        Ok(Self {
            deny_unlisted,
            allow,
        })
    }

    /// The normalised JSON form (what is stored and shown).
    pub fn to_json(&self) -> Value {
        if self.deny_unlisted {
            json!({"mode": "deny-unlisted", "allow": self.allow})
        } else {
            json!({"mode": "allow"})
        }
    }

    /// Whether `host` is listed: equal to an entry, or a subdomain of a `*.suffix` entry.
    /// Says nothing about mode or credential hosts: see [`ResolvedSession::egress_allows`].
    pub fn matches(&self, host: &str) -> bool {
        let host = normalise_host(host);
        self.allow
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(suffix) => host
                    .strip_suffix(suffix)
                    .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
                None => *pattern == host,
            })
    }
}

impl ResolvedSession {
    /// Whether the egress policy lets the session reach `host`: always without a policy or
    /// in mode `allow`; in `deny-unlisted`, the listed hosts and the hosts the session's own
    /// credentials are sent to (built-in rules, custom rules, `LLM_BASE_URL`).
    pub fn egress_allows(&self, host: &str) -> bool {
        let Some(policy) = self.session.egress.as_ref().filter(|p| p.deny_unlisted) else {
            return true;
        };
        policy.matches(host)
            || self
                .credential_hosts()
                .iter()
                .any(|h| *h == normalise_host(host))
    }

    /// Hosts the session's credentials go to, lowercase.
    pub fn credential_hosts(&self) -> Vec<String> {
        let mut hosts = Vec::new();
        for entry in self.entries.iter().filter(|e| e.is_secret) {
            if let Some(rule) = providers::rule_for_key(&entry.name) {
                hosts.push(rule.host.to_owned());
            }
            if let Some(custom) = &entry.injection {
                hosts.extend(custom.hosts.iter().cloned());
            }
            if entry.name == providers::LLM_API_KEY {
                let host = self
                    .llm_base_url()
                    .and_then(|url| url_host(&url))
                    .unwrap_or_else(|| {
                        providers::rule_for_provider(providers::Provider::Anthropic)
                            .host
                            .to_owned()
                    });
                hosts.push(host);
            }
        }
        hosts
    }
}

fn parse_patterns(items: &[Value]) -> Result<Vec<String>> {
    if items.len() > MAX_PATTERNS {
        return Err(invalid(format!(
            "egress.allow lists at most {MAX_PATTERNS} hosts"
        )));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Some(raw) = item.as_str() else {
            return Err(invalid("egress.allow must be a list of host names"));
        };
        let pattern = normalise_host(raw);
        let name = pattern.strip_prefix("*.").unwrap_or(&pattern);
        if !crate::injection::is_host_name(name) {
            return Err(invalid(format!(
                "egress.allow: {:?} is not a host name or *.suffix pattern",
                truncate(raw)
            )));
        }
        out.push(pattern);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn normalise_host(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The host of an http(s) URL, lowercase.
pub(crate) fn url_host(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    uri.host().map(|h| {
        h.trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase()
    })
}

/// A client-given string as it may appear in a message: short, so an error never carries a
/// long pasted value.
fn truncate(raw: &str) -> String {
    raw.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<EgressPolicy> {
        EgressPolicy::from_json(&v)
    }

    #[test]
    fn valid_policies_normalise() {
        let p = parse(json!({"mode": "deny-unlisted", "allow": ["API.Example.com.", "*.corp.io", "api.example.com"]}))
            .map_err(|e| e.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(p.deny_unlisted);
        assert_eq!(p.allow, vec!["*.corp.io", "api.example.com"]);
        assert_eq!(
            p.to_json(),
            json!({"mode": "deny-unlisted", "allow": ["*.corp.io", "api.example.com"]})
        );
        let open = parse(json!({"mode": "allow"})).map_err(|e| e.to_string());
        assert_eq!(open.map(|p| p.deny_unlisted), Ok(false));
    }

    #[test]
    fn invalid_policies_are_400() {
        for bad in [
            json!({}),
            json!({"mode": "block"}),
            json!({"mode": 1}),
            json!("allow"),
            json!({"mode": "deny-unlisted", "allow": "a.io"}),
            json!({"mode": "deny-unlisted", "allow": [1]}),
            json!({"mode": "deny-unlisted", "allow": ["http://a.io"]}),
            json!({"mode": "deny-unlisted", "allow": ["*"]}),
            json!({"mode": "deny-unlisted", "alow": ["a.io"]}),
            json!({"mode": "allow", "allow": ["a.io"]}),
        ] {
            let code = parse(bad.clone()).map(|_| ()).map_err(|e| e.code());
            assert_eq!(code, Err(ErrorCode::InvalidRequest), "{bad}");
        }
    }

    #[test]
    fn matching_is_exact_or_subdomain() {
        let p = EgressPolicy {
            deny_unlisted: true,
            allow: vec!["*.corp.io".into(), "api.example.com".into()],
        };
        assert!(p.matches("api.example.com"));
        assert!(p.matches("API.EXAMPLE.COM."));
        assert!(!p.matches("x.api.example.com"));
        assert!(p.matches("a.corp.io"));
        assert!(p.matches("a.b.corp.io"));
        assert!(!p.matches("corp.io"));
        assert!(!p.matches("evilcorp.io"));
        assert!(!p.matches("corp.io.evil.com"));
    }
}
