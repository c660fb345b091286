//! Unit tests of the session env (gateway mode) and of the managed-key rule.

use std::collections::BTreeMap;

use chrono::Utc;
use keyward_crypto::Secret;
use keyward_store::{BundleId, TenantId};

use super::{credential_placeholder, managed_keys, session_env, KEYWARD_GATEWAY_URL};
use crate::{InjectionRule, LlmSettings, OpenedEntry, ResolvedSession, Session, SessionMode};

const URL: &str = "http://127.0.0.1:8421";
const TOKEN: &str = "kw_s_0123";

fn secret(name: &str, value: &str) -> OpenedEntry {
    OpenedEntry {
        name: name.into(),
        version: 1,
        value: Secret::from_string(value.into()),
        is_secret: true,
        injection: None,
    }
}

fn variable(name: &str, value: &str) -> OpenedEntry {
    OpenedEntry {
        is_secret: false,
        ..secret(name, value)
    }
}

fn resolved(
    mut entries: Vec<OpenedEntry>,
    llm: LlmSettings,
    env: &[(&str, &str)],
) -> ResolvedSession {
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    ResolvedSession {
        session: Session {
            id: "ses_000000000000000000000000".into(),
            tenant: TenantId(1),
            agent: None,
            mode: SessionMode::Gateway,
            llm,
            bundles: vec![(BundleId(1), "b".into())],
            user_id: None,
            egress: None,
            created_at: Utc::now(),
            ended_at: None,
        },
        tenant_name: "t".into(),
        entries,
        request_env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Secret::from_string((*v).to_owned())))
            .collect(),
    }
}

fn expected(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn builtin_credentials_get_the_token_and_base_urls() {
    let r = resolved(
        vec![
            secret("OPENAI_API_KEY", "sk-real-openai"),
            secret("ANTHROPIC_API_KEY", "sk-real-anthropic"),
            secret("DATABASE_URL", "postgres://u:p@db/x"),
            variable("FEATURE", "on"),
        ],
        LlmSettings::default(),
        &[("EXTRA", "1")],
    );
    assert_eq!(
        session_env(&r, &format!("{URL}/"), TOKEN),
        expected(&[
            ("ANTHROPIC_API_KEY", TOKEN),
            ("ANTHROPIC_BASE_URL", "http://127.0.0.1:8421/anthropic"),
            ("DATABASE_URL", "postgres://u:p@db/x"),
            ("EXTRA", "1"),
            ("FEATURE", "on"),
            ("OPENAI_API_KEY", TOKEN),
            ("OPENAI_BASE_URL", "http://127.0.0.1:8421/openai/v1"),
        ])
    );
}

#[test]
fn llm_keys_point_at_the_llm_route_and_hide_the_real_base_url() {
    let entries = vec![
        secret("LLM_API_KEY", "sk-real-llm"),
        variable("LLM_BASE_URL", "https://api.coding67.com/v1"),
        variable("LLM_MODEL", "deepseek-v4-pro"),
    ];
    let env = session_env(
        &resolved(entries.clone(), LlmSettings::default(), &[]),
        URL,
        TOKEN,
    );
    assert_eq!(
        env,
        expected(&[
            ("LLM_API_KEY", TOKEN),
            ("LLM_BASE_URL", "http://127.0.0.1:8421/llm"),
            ("LLM_MODEL", "deepseek-v4-pro"),
        ])
    );
    // The request's llm settings win over the bundle's LLM_* entries.
    let llm = LlmSettings {
        vendor: Some("openai".into()),
        model: Some("gpt-request".into()),
        base_url: Some("https://other.example/v1".into()),
    };
    let env = session_env(&resolved(entries, llm, &[]), URL, TOKEN);
    assert_eq!(
        env.get("LLM_MODEL").map(String::as_str),
        Some("gpt-request")
    );
    assert!(!env
        .values()
        .any(|v| v.contains("coding67") || v.contains("other.example")));
}

#[test]
fn custom_rules_get_the_token_and_the_gateway_url() {
    let mut custom = secret("CUSTOM_API_SECRET", "abc123");
    custom.injection = Some(InjectionRule {
        hosts: vec!["api.example.com".into()],
        header: "X-Custom-Auth: {CUSTOM_API_SECRET}".into(),
    });
    let env = session_env(
        &resolved(vec![custom], LlmSettings::default(), &[]),
        URL,
        TOKEN,
    );
    assert_eq!(
        env,
        expected(&[("CUSTOM_API_SECRET", TOKEN), (KEYWARD_GATEWAY_URL, URL)])
    );
}

#[test]
fn variables_named_like_credentials_stay_plain() {
    let env = session_env(
        &resolved(
            vec![variable("OPENAI_API_KEY", "not-secret")],
            LlmSettings::default(),
            &[],
        ),
        URL,
        TOKEN,
    );
    assert_eq!(env, expected(&[("OPENAI_API_KEY", "not-secret")]));
}

#[test]
fn request_env_overrides_plain_values_but_never_managed_ones() {
    let r = resolved(
        vec![
            secret("OPENAI_API_KEY", "sk-real"),
            variable("MODE", "bundle"),
        ],
        LlmSettings::default(),
        &[
            ("MODE", "request"),
            ("OPENAI_BASE_URL", "https://evil.example"),
        ],
    );
    let env = session_env(&r, URL, TOKEN);
    assert_eq!(env.get("MODE").map(String::as_str), Some("request"));
    assert_eq!(
        env.get("OPENAI_BASE_URL").map(String::as_str),
        Some("http://127.0.0.1:8421/openai/v1")
    );
}

#[test]
fn managed_keys_follow_the_entries() {
    let entries = vec![
        secret("ANTHROPIC_API_KEY", "k"),
        secret("LLM_API_KEY", "k"),
        variable("X", "1"),
    ];
    let keys: Vec<String> = managed_keys(&entries, &LlmSettings::default())
        .into_iter()
        .collect();
    assert_eq!(
        keys,
        [
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_BASE_URL",
            "LLM_API_KEY",
            "LLM_BASE_URL",
        ]
    );
    let llm = LlmSettings {
        model: Some("m".into()),
        ..LlmSettings::default()
    };
    assert!(managed_keys(&[], &llm).contains("LLM_MODEL"));
    assert!(
        managed_keys(&[variable("LLM_MODEL", "m")], &LlmSettings::default()).contains("LLM_MODEL")
    );
    assert!(managed_keys(&[variable("X", "1")], &LlmSettings::default()).is_empty());
}

#[test]
fn proxy_env_has_placeholders_and_proxy_settings() {
    let entries = vec![
        secret("OPENAI_API_KEY", "sk-real-openai-0123456789"),
        secret("ANTHROPIC_API_KEY", "sk-ant-real-0123456789"),
        secret("DATABASE_URL", "postgres://db"),
    ];
    let mut resolved = resolved(entries, LlmSettings::default(), &[]);
    resolved.session.mode = SessionMode::Proxy;
    let env = session_env(&resolved, "http://127.0.0.1:8421", "kw_s_tok");
    let openai = env.get("OPENAI_API_KEY").expect("placeholder");
    assert!(openai.starts_with("sk-proj-kw"), "{openai}");
    assert_eq!(
        openai,
        &credential_placeholder("kw_s_tok", "OPENAI_API_KEY", None)
    );
    assert!(env["ANTHROPIC_API_KEY"].starts_with("sk-ant-api03-kw"));
    assert_eq!(env["HTTPS_PROXY"], "http://kw:kw_s_tok@127.0.0.1:8421");
    assert_eq!(env["NO_PROXY"], "localhost,127.0.0.1,::1");
    assert_eq!(env["DATABASE_URL"], "postgres://db");
    assert!(!env.contains_key("OPENAI_BASE_URL"));
    assert!(!env.values().any(|v| v.contains("real")));
}
