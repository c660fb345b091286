//! The caps of seed 001's Secrets API. They are product rules, so they live in one place.

/// Bundles one tenant may hold; the 51st is refused with 429.
pub const MAX_BUNDLES_PER_TENANT: usize = 50;
/// Entries (secrets and variables together) in one bundle.
pub const MAX_KEYS_PER_BUNDLE: usize = 50;
/// Largest value, in bytes, of one entry (64 KiB).
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Bundles one session may reference.
pub const MAX_BUNDLES_PER_SESSION: usize = 10;
