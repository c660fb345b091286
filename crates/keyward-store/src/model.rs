//! Rows as the rest of keyward sees them. Ids are chosen by the caller (random), so the
//! associated data that binds a ciphertext to its row can be computed before the insert.

use chrono::{DateTime, Utc};
use rand::Rng;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);

        impl $name {
            /// A fresh random id (63 bits: collisions are caught by the primary key).
            pub fn random() -> Self {
                Self(rand::thread_rng().gen_range(1..i64::MAX))
            }
        }
    };
}

id_type!(
    /// A tenant's internal id. Clients only ever see tenant names.
    TenantId
);
id_type!(
    /// A bundle's internal id, stable across rotations, distinct after delete + re-create.
    BundleId
);
id_type!(
    /// An agent's internal id. Clients name agents; the id ties attachments to one agent.
    AgentId
);

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    /// The tenant's data key, wrapped by the master key for this tenant id.
    pub wrapped_key: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

/// What a token may do beyond its tenant's own objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// The operator token of the `default` tenant: may also create tenants.
    Operator,
    /// A tenant API token.
    Tenant,
}

impl TokenKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TokenKind::Operator => "operator",
            TokenKind::Tenant => "tenant",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "operator" => Some(TokenKind::Operator),
            "tenant" => Some(TokenKind::Tenant),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TokenRecord {
    /// Public id (`tok_…`), used to revoke.
    pub id: String,
    pub tenant: TenantId,
    pub kind: TokenKind,
    /// SHA-256 of the token text; the text itself is never stored.
    pub digest: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

/// Whether an entry is a secret (sealed, never returned) or a plain variable (seed 004).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryValue {
    /// `version(1) || nonce || ciphertext || tag`, sealed by the tenant's data key under
    /// `Aad::entry(tenant, bundle, name, version)`.
    Sealed(Vec<u8>),
    /// A plain configuration value, returned in listings.
    Variable(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    /// The bundle version at which this entry was last written.
    pub version: i64,
    pub value: EntryValue,
    /// A custom injection rule (JSON), for secrets that are credentials of a custom host.
    pub injection: Option<String>,
}

#[derive(Debug, Clone)]
pub struct BundleMeta {
    pub id: BundleId,
    pub name: String,
    /// 1 at creation, +1 per rotation.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub last_rotated_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct Bundle {
    pub meta: BundleMeta,
    /// Sorted by name.
    pub entries: Vec<Entry>,
}
