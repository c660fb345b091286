use keyward_store::{BundleId, TenantId};

/// What the vault announces on its broadcast channel ([`crate::Vault::subscribe`]). In-process
/// only for now; with PostgreSQL it will also travel over LISTEN/NOTIFY.
#[derive(Debug, Clone)]
pub enum VaultEvent {
    /// A bundle was rotated or deleted.
    BundleChanged(BundleChanged),
    /// A session ended (or was revoked): its token no longer works, its event socket closes,
    /// and the data plane drops what it cached for it.
    SessionEnded { tenant: TenantId, session: String },
}

/// A bundle was rotated or deleted. Sessions that use it get a `config_update` frame and the
/// data plane drops its cached credentials.
#[derive(Debug, Clone)]
pub struct BundleChanged {
    pub tenant: TenantId,
    pub bundle: BundleId,
    pub name: String,
    /// Keys whose value changed, were added or were removed; sorted.
    pub keys: Vec<String>,
    /// The bundle's version after the change.
    pub version: i64,
    pub deleted: bool,
}
