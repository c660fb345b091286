//! Custom injection rules (seed 002): how a secret that is not a built-in provider key is put
//! on outbound requests, e.g. `{"hosts": ["api.example.com"], "header": "X-Custom-Auth: {NAME}"}`.

use keyward_core::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::VaultError;

/// Header names a rule may not set: they frame or route the request, or carry the agent's own
/// state.
const REFUSED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "cookie",
];

/// A rule as clients send it and as it is stored (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectionRule {
    /// Hosts the credential may be sent to (exact names, lowercase).
    pub hosts: Vec<String>,
    /// `Header-Name: template` with exactly one `{KEY}` placeholder naming the entry.
    pub header: String,
}

/// A validated rule, split for the data plane: `name: prefix VALUE suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderTemplate {
    pub name: String,
    pub prefix: String,
    pub suffix: String,
}

fn invalid(message: impl Into<String>) -> VaultError {
    VaultError::rejected(ErrorCode::InvalidInjection, message)
}

fn is_header_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

pub(crate) fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl InjectionRule {
    /// Check the rule for the entry `key` and normalise its hosts to lowercase.
    pub fn validate(mut self, key: &str) -> Result<(Self, HeaderTemplate), VaultError> {
        if self.hosts.is_empty() || self.hosts.len() > 20 {
            return Err(invalid(format!("injection for {key}: give 1 to 20 hosts")));
        }
        for host in &mut self.hosts {
            *host = host.trim().to_ascii_lowercase();
            if !is_host_name(host) {
                return Err(invalid(format!(
                    "injection for {key}: hosts must be plain DNS names"
                )));
            }
        }
        self.hosts.sort();
        self.hosts.dedup();
        let template = parse_template(&self.header, key)?;
        Ok((self, template))
    }

    /// The header template of a rule that was validated when it was stored.
    pub fn template(&self, key: &str) -> Result<HeaderTemplate, VaultError> {
        parse_template(&self.header, key)
    }
}

fn parse_template(header: &str, key: &str) -> Result<HeaderTemplate, VaultError> {
    let Some((name, value)) = header.split_once(':') else {
        return Err(invalid(format!(
            "injection for {key}: header must look like 'Name: {{{key}}}'"
        )));
    };
    let name = name.trim();
    if !is_header_token(name) {
        return Err(invalid(format!("injection for {key}: invalid header name")));
    }
    if REFUSED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(invalid(format!(
            "injection for {key}: header {name} cannot be set by a rule"
        )));
    }
    let value = value.trim();
    let placeholder = format!("{{{key}}}");
    let Some((prefix, suffix)) = value.split_once(&placeholder) else {
        return Err(invalid(format!(
            "injection for {key}: the template must contain {placeholder}"
        )));
    };
    if prefix.contains(['{', '}']) || suffix.contains(['{', '}']) {
        return Err(invalid(format!(
            "injection for {key}: the template must contain exactly one placeholder"
        )));
    }
    if value.bytes().any(|b| b.is_ascii_control()) {
        return Err(invalid(format!(
            "injection for {key}: control characters in header template"
        )));
    }
    Ok(HeaderTemplate {
        name: name.to_owned(),
        prefix: prefix.to_owned(),
        suffix: suffix.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(hosts: &[&str], header: &str) -> InjectionRule {
        InjectionRule {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            header: header.into(),
        }
    }

    #[test]
    fn accepts_seed_002_rule() {
        let (rule, t) = rule(&["API.example.com"], "X-Custom-Auth: {CUSTOM_API_SECRET}")
            .validate("CUSTOM_API_SECRET")
            .map_err(|e| e.to_string())
            .expect("valid rule");
        assert_eq!(rule.hosts, vec!["api.example.com"]);
        assert_eq!(t.name, "X-Custom-Auth");
        assert_eq!((t.prefix.as_str(), t.suffix.as_str()), ("", ""));
        let (_, t) =
            super::InjectionRule::validate(self::rule(&["a.io"], "Authorization: Token {K}"), "K")
                .map_err(|e| e.to_string())
                .expect("valid");
        assert_eq!(t.prefix, "Token ");
    }

    #[test]
    fn refuses_bad_rules() {
        for (hosts, header) in [
            (&["a.io"][..], "Host: {K}"),
            (&["a.io"][..], "content-length: {K}"),
            (&["a.io"][..], "Transfer-Encoding: {K}"),
            (&["a.io"][..], "Connection: {K}"),
            (&["a.io"][..], "Cookie: {K}"),
            (&["a.io"][..], "X-A: {K} {K}"),
            (&["a.io"][..], "X-A: {OTHER}"),
            (&["a.io"][..], "X-A: static"),
            (&["a.io"][..], "no colon {K}"),
            (&["a.io"][..], "Bad Name: {K}"),
            (&[][..], "X-A: {K}"),
            (&["http://a.io"][..], "X-A: {K}"),
        ] {
            assert!(
                rule(hosts, header).validate("K").is_err(),
                "{header} {hosts:?}"
            );
        }
    }
}
