use keyward_store::{BundleId, TenantId};

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
