//! Response bodies. Secret values have no field here: they cannot be returned by mistake.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use keyward_store::{Bundle, EntryValue};
use serde::Serialize;
use utoipa::ToSchema;

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A secret bundle's metadata. Values of secrets are never returned.
#[derive(Serialize, ToSchema)]
pub struct BundleView {
    pub name: String,
    /// Every entry's name, secrets and variables, sorted.
    pub key_names: Vec<String>,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC; null until the first rotation.
    pub last_rotated_at: Option<String>,
    /// Plain variables with their values.
    pub variables: BTreeMap<String, String>,
    /// Custom injection rules, by secret name.
    pub injections: BTreeMap<String, serde_json::Value>,
    /// 1 at creation, +1 per rotation.
    pub version: i64,
}

impl From<&Bundle> for BundleView {
    fn from(b: &Bundle) -> Self {
        let mut variables = BTreeMap::new();
        let mut injections = BTreeMap::new();
        for e in &b.entries {
            if let EntryValue::Variable(v) = &e.value {
                variables.insert(e.name.clone(), v.clone());
            }
            if let Some(rule) = e.injection.as_deref() {
                if let Ok(json) = serde_json::from_str(rule) {
                    injections.insert(e.name.clone(), json);
                }
            }
        }
        let mut key_names: Vec<String> = b.entries.iter().map(|e| e.name.clone()).collect();
        key_names.sort();
        BundleView {
            name: b.meta.name.clone(),
            key_names,
            created_at: rfc3339(b.meta.created_at),
            last_rotated_at: b.meta.last_rotated_at.map(rfc3339),
            variables,
            injections,
            version: b.meta.version,
        }
    }
}

/// `GET /v1/tenants/me/secrets`.
#[derive(Serialize, ToSchema)]
pub struct BundleList {
    pub bundles: Vec<BundleView>,
}

/// `{"status": "deleted"}`.
#[derive(Serialize, ToSchema)]
pub struct StatusView {
    pub status: &'static str,
}

/// A tenant just created, with its first API token (shown once).
#[derive(Serialize, ToSchema)]
pub struct TenantCreated {
    pub name: String,
    pub token: String,
}

/// A token just issued (shown once).
#[derive(Serialize, ToSchema)]
pub struct TokenCreated {
    pub id: String,
    pub token: String,
    pub created_at: String,
}

/// The caller's tenant.
#[derive(Serialize, ToSchema)]
pub struct WhoAmI {
    pub tenant: String,
    pub token_id: String,
    pub operator: bool,
}

/// The error envelope of every 4xx/5xx.
#[derive(Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable snake_case code.
    pub code: String,
    pub message: String,
}
