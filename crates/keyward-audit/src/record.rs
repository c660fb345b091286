//! The audit record: what keyward writes about one call through the data plane. Field names are
//! those of SPEC section 7, and the field order here is the order of the canonical JSON that
//! is hashed — reordering or renaming a field breaks verification of existing records.
//!
//! The caller fills it with NAMES, never values: `credential` is an entry name such as
//! `OPENAI_API_KEY`, `path` went through [`mask_query`], `request_headers` came from
//! [`safe_headers`]. Nothing in a record may be a secret.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::sanitize::{mask_query, safe_headers};

/// How the agent reached the data plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditMode {
    /// Reverse proxy: `…:8421/openai/v1`, `/anthropic`, `/llm`.
    Gateway,
    /// `HTTPS_PROXY`: CONNECT, TLS terminated with keyward's CA.
    Proxy,
}

/// The values of [`AuditRecord::decision`].
pub mod decision {
    /// Forwarded with the tenant's own credential.
    pub const FORWARDED: &str = "forwarded";
    /// Forwarded with the operator's shared free-tier credential.
    pub const FREE_TIER: &str = "free_tier";

    /// Refused before forwarding, with the stable error code the client got
    /// (`blocked:exfiltration_attempt`, `blocked:no_credential`, `blocked:rate_limited`…).
    pub fn blocked(code: &str) -> String {
        format!("blocked:{code}")
    }
}

/// One call through the data plane. See the module docs: no field may hold a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When the call arrived; serialised as RFC 3339 UTC with milliseconds.
    #[serde(with = "ts_millis")]
    pub ts: DateTime<Utc>,
    /// Tenant NAME (the chain is per tenant).
    pub tenant: String,
    /// Agent name, if the token belongs to an agent.
    pub agent: Option<String>,
    /// Session id, if the call used a session token.
    pub session: Option<String>,
    /// The platform's end-user id given at session creation.
    pub user_id: Option<String>,
    pub method: String,
    /// Upstream host (without credentials or port userinfo).
    pub host: String,
    /// Path and query, sensitive query values already masked ([`mask_query`]).
    pub path: String,
    /// The agent's request headers minus credentials ([`safe_headers`]).
    pub request_headers: BTreeMap<String, String>,
    /// Status answered to the agent; `None` if no answer was sent.
    pub status: Option<u16>,
    /// Request body bytes received from the agent.
    pub bytes_in: u64,
    /// Response body bytes sent to the agent.
    pub bytes_out: u64,
    pub duration_ms: u64,
    /// Time to the upstream's first response byte.
    pub ttfb_ms: Option<u64>,
    /// NAME of the injected credential entry (e.g. `OPENAI_API_KEY`), never its value.
    pub credential: Option<String>,
    /// Version of the bundle the credential was read from.
    pub credential_version: Option<i64>,
    pub model: Option<String>,
    pub tokens_in: Option<u64>,
    pub tokens_out: Option<u64>,
    /// `None` when the model has no price.
    pub cost_usd: Option<f64>,
    /// [`decision::FORWARDED`], [`decision::FREE_TIER`] or [`decision::blocked`].
    pub decision: String,
    /// Why the call failed or its stream was cut (`upstream_reset`, `idle_timeout`…).
    pub error: Option<String>,
    pub mode: AuditMode,
    /// Cached input tokens read, when the response reported any (OpenAI and Gemini count
    /// them inside `tokens_in`, Anthropic apart). Written only when non-zero, after the SPEC
    /// fields, so records without them keep their exact bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_cache_read: Option<u64>,
    /// Input tokens written to the cache (Anthropic), when non-zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_cache_write: Option<u64>,
}

impl AuditRecord {
    /// A record stamped now, decided [`decision::FORWARDED`], with everything optional empty.
    /// `path` must already be masked.
    pub fn new(
        tenant: impl Into<String>,
        mode: AuditMode,
        method: impl Into<String>,
        host: impl Into<String>,
        path: impl Into<String>,
    ) -> Self {
        Self {
            ts: Utc::now(),
            tenant: tenant.into(),
            agent: None,
            session: None,
            user_id: None,
            method: method.into(),
            host: host.into(),
            path: path.into(),
            request_headers: BTreeMap::new(),
            status: None,
            bytes_in: 0,
            bytes_out: 0,
            duration_ms: 0,
            ttfb_ms: None,
            credential: None,
            credential_version: None,
            model: None,
            tokens_in: None,
            tokens_out: None,
            cost_usd: None,
            decision: decision::FORWARDED.to_owned(),
            error: None,
            mode,
            tokens_cache_read: None,
            tokens_cache_write: None,
        }
    }
}

/// Every JSON field of a serialised [`AuditRecord`], in order.
pub const RECORD_FIELDS: [&str; 23] = [
    "ts",
    "tenant",
    "agent",
    "session",
    "user_id",
    "method",
    "host",
    "path",
    "request_headers",
    "status",
    "bytes_in",
    "bytes_out",
    "duration_ms",
    "ttfb_ms",
    "credential",
    "credential_version",
    "model",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "decision",
    "error",
    "mode",
];

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`: fixed width, so text order is time order in the store.
mod ts_millis {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| serde::de::Error::custom("ts is not an RFC 3339 timestamp"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_spec_field_names_in_order() {
        let mut record = AuditRecord::new(
            "acme",
            AuditMode::Gateway,
            "POST",
            "api.openai.com",
            "/v1/x",
        );
        record.ts = DateTime::parse_from_rfc3339("2025-03-04T05:06:07.123456Z")
            .unwrap()
            .to_utc();
        let json = serde_json::to_string(&record).unwrap();
        assert!(json.starts_with(r#"{"ts":"2025-03-04T05:06:07.123Z","tenant":"acme","#));
        assert!(json.ends_with(r#""decision":"forwarded","error":null,"mode":"gateway"}"#));
        let mut at = 0;
        for field in RECORD_FIELDS {
            let found = json[at..].find(&format!("\"{field}\":")).unwrap();
            at += found;
        }
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value.as_object().unwrap().len(), RECORD_FIELDS.len());
    }

    #[test]
    fn round_trips_to_the_same_bytes() {
        let mut record = AuditRecord::new("acme", AuditMode::Proxy, "GET", "h", "/");
        record.cost_usd = Some(0.000_123_456_789_012_345_6);
        record.tokens_in = Some(u64::MAX);
        record
            .request_headers
            .insert("x-é".into(), "\"quoted\" \u{1}".into());
        let json = serde_json::to_string(&record).unwrap();
        let back: AuditRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        assert_eq!(decision::blocked("no_credential"), "blocked:no_credential");
    }
}
