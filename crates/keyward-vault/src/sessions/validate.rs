//! Checks on a session request that need no I/O. They all run before anything is read or
//! written, so a refused request changes nothing.

use std::collections::BTreeSet;

use keyward_core::{caps, ErrorCode, Name};

use crate::bundles::{check_key, check_value};
use crate::{NewSession, Result, VaultError};

/// Longest `user_id`, in bytes.
pub const MAX_USER_ID_BYTES: usize = 256;
/// Most variables a request's `env` may hold; bounds the sealed blob stored per session.
pub const MAX_ENV_KEYS: usize = 100;
/// Longest `llm.model` / `llm.base_url`, in bytes.
const MAX_LLM_FIELD_BYTES: usize = 2048;
/// `llm.vendor` values: Anthropic, or any OpenAI-compatible endpoint (seed 001).
const VENDORS: &[&str] = &["anthropic", "openai"];

fn invalid(message: impl Into<String>) -> VaultError {
    VaultError::rejected(ErrorCode::InvalidRequest, message)
}

/// Validate a request in place (the vendor is lowercased) and return its bundle names, parsed.
pub(crate) fn check_request(req: &mut NewSession) -> Result<Vec<Name>> {
    let bundles = check_bundle_names(&req.secrets)?;
    if let Some(agent) = &req.agent {
        Name::parse(agent).map_err(|e| VaultError::rejected(e.into(), format!("agent: {e}")))?;
    }
    check_llm(req)?;
    if let Some(user_id) = &req.user_id {
        if user_id.len() > MAX_USER_ID_BYTES || user_id.chars().any(char::is_control) {
            return Err(invalid(format!(
                "user_id must be at most {MAX_USER_ID_BYTES} bytes without control characters"
            )));
        }
    }
    if req.env.len() > MAX_ENV_KEYS {
        return Err(VaultError::rejected(
            ErrorCode::TooManyKeys,
            format!("env holds at most {MAX_ENV_KEYS} variables"),
        ));
    }
    for (key, value) in &req.env {
        check_key(key)?;
        check_value(key, value)?;
    }
    Ok(bundles)
}

fn check_bundle_names(secrets: &[String]) -> Result<Vec<Name>> {
    if secrets.len() > caps::MAX_BUNDLES_PER_SESSION {
        return Err(VaultError::rejected(
            ErrorCode::TooManyBundles,
            format!(
                "a session references at most {} secret bundles",
                caps::MAX_BUNDLES_PER_SESSION
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut names = Vec::with_capacity(secrets.len());
    for raw in secrets {
        let name = Name::parse(raw)
            .map_err(|e| VaultError::rejected(e.into(), format!("secrets: {e}")))?;
        if !seen.insert(name.clone()) {
            return Err(invalid(format!("secrets: bundle {name} is listed twice")));
        }
        names.push(name);
    }
    Ok(names)
}

fn check_llm(req: &mut NewSession) -> Result<()> {
    let llm = &mut req.llm;
    if let Some(vendor) = &mut llm.vendor {
        vendor.make_ascii_lowercase();
        if !VENDORS.contains(&vendor.as_str()) {
            return Err(invalid(
                "llm.vendor must be \"anthropic\" or \"openai\" (any OpenAI-compatible endpoint)",
            ));
        }
    }
    if let Some(model) = &llm.model {
        if model.is_empty()
            || model.len() > MAX_LLM_FIELD_BYTES
            || model.chars().any(char::is_control)
        {
            return Err(invalid(
                "llm.model must be a non-empty name without control characters",
            ));
        }
    }
    if let Some(url) = &llm.base_url {
        check_base_url(url)?;
    }
    Ok(())
}

/// An `http://` or `https://` URL with a host and no user info. Only its syntax is checked:
/// whether the host is private is decided at connect time, on the resolved address (SPEC 7).
fn check_base_url(url: &str) -> Result<()> {
    let refuse = || invalid("llm.base_url must be an http:// or https:// URL with a host");
    if url.len() > MAX_LLM_FIELD_BYTES {
        return Err(refuse());
    }
    let uri: http::Uri = url.parse().map_err(|_| refuse())?;
    let scheme_ok = uri
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"));
    let authority = uri.authority().ok_or_else(refuse)?;
    if !scheme_ok || authority.as_str().contains('@') || authority.host().is_empty() {
        return Err(refuse());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LlmSettings;

    fn code(mut req: NewSession) -> Option<ErrorCode> {
        check_request(&mut req).err().map(|e| e.code())
    }

    fn with_llm(vendor: Option<&str>, base_url: Option<&str>) -> NewSession {
        NewSession {
            llm: LlmSettings {
                vendor: vendor.map(str::to_owned),
                model: None,
                base_url: base_url.map(str::to_owned),
            },
            ..NewSession::default()
        }
    }

    #[test]
    fn bundle_list_rules() {
        let names = |n: usize| (0..n).map(|i| format!("b{i}")).collect::<Vec<_>>();
        let req = |secrets| NewSession {
            secrets,
            ..NewSession::default()
        };
        assert_eq!(code(req(names(10))), None);
        assert_eq!(code(req(names(11))), Some(ErrorCode::TooManyBundles));
        assert_eq!(
            code(req(vec!["Bad_Name".into()])),
            Some(ErrorCode::InvalidName)
        );
        assert_eq!(
            code(req(vec!["a".into(), "a".into()])),
            Some(ErrorCode::InvalidRequest)
        );
    }

    #[test]
    fn llm_rules() {
        assert_eq!(
            code(with_llm(
                Some("OpenAI"),
                Some("https://api.coding67.com/v1")
            )),
            None
        );
        assert_eq!(
            code(with_llm(Some("anthropic"), Some("http://10.0.0.5:8080"))),
            None
        );
        assert_eq!(
            code(with_llm(Some("gemini"), None)),
            Some(ErrorCode::InvalidRequest)
        );
        for bad in [
            "ftp://a.io",
            "a.io/v1",
            "https://",
            "https://u:p@a.io/",
            "not a url",
            "/v1",
        ] {
            assert_eq!(
                code(with_llm(None, Some(bad))),
                Some(ErrorCode::InvalidRequest),
                "{bad}"
            );
        }
    }

    #[test]
    fn env_and_user_rules() {
        let env = |k: &str, v: &str| NewSession {
            env: [(k.to_owned(), v.to_owned())].into(),
            ..NewSession::default()
        };
        assert_eq!(code(env("FOO", "bar")), None);
        assert_eq!(
            code(env("HTTPS_PROXY", "x")),
            Some(ErrorCode::ReservedKeyName)
        );
        assert_eq!(
            code(env("keyward_x", "x")),
            Some(ErrorCode::ReservedKeyName)
        );
        assert_eq!(code(env("1A", "x")), Some(ErrorCode::InvalidKeyName));
        assert_eq!(code(env("A", "a\0b")), Some(ErrorCode::ValueContainsNul));
        let big = "x".repeat(caps::MAX_VALUE_BYTES + 1);
        assert_eq!(code(env("A", &big)), Some(ErrorCode::ValueTooLarge));
        let user = |u: String| NewSession {
            user_id: Some(u),
            ..NewSession::default()
        };
        assert_eq!(code(user("u".repeat(256))), None);
        assert_eq!(code(user("u".repeat(257))), Some(ErrorCode::InvalidRequest));
        let agent = NewSession {
            agent: Some("Not Valid".into()),
            ..NewSession::default()
        };
        assert_eq!(code(agent), Some(ErrorCode::InvalidName));
    }
}
