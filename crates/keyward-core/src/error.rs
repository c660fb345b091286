//! Stable error codes. Clients, scripts and tests match on these strings, so a code, once
//! shipped, never changes meaning. Each code knows the HTTP status it is answered with.

/// Every error code keyward reports, with the HTTP status that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    // 400: the request is malformed or breaks a rule. Nothing was changed.
    /// The body is not valid JSON, or not the JSON shape the endpoint takes.
    InvalidJson,
    /// A field is missing, has the wrong type, or has a value outside its range.
    InvalidRequest,
    /// A tenant, bundle or agent name does not match `^[a-z0-9][a-z0-9-]{0,62}$`.
    InvalidName,
    /// An entry name is not an environment-variable name.
    InvalidKeyName,
    /// An entry name is one keyward sets itself (`KEYWARD_*`, proxy and CA variables).
    ReservedKeyName,
    /// A value is larger than 64 KiB.
    ValueTooLarge,
    /// A value contains a NUL byte (it could not become an environment variable).
    ValueContainsNul,
    /// A bundle would hold more than 50 entries.
    TooManyKeys,
    /// The same key is given both as a secret and as a variable.
    DuplicateKey,
    /// A custom injection rule is malformed.
    InvalidInjection,
    /// A session names more than 10 bundles.
    TooManyBundles,
    /// A bundle named in a request body does not exist.
    UnknownBundle,
    /// Two bundles of one session define the same key.
    SecretKeyCollision,
    /// An agent named in a request body (a session's `agent`) does not exist.
    UnknownAgent,
    // 401 / 403
    /// No token, or a token that is unknown, revoked or ended.
    Unauthorized,
    /// The token is valid but may not do this (only the operator creates tenants).
    Forbidden,
    // 404
    /// No such route.
    NotFound,
    /// The route exists but does not take this method.
    MethodNotAllowed,
    /// No such secret bundle in this tenant.
    SecretBundleNotFound,
    /// No such token in this tenant.
    TokenNotFound,
    /// No such session in this tenant.
    SessionNotFound,
    /// No such agent in this tenant.
    AgentNotFound,
    /// The bundle named in the path is not attached to the agent.
    BundleNotAttached,
    // 409
    /// A bundle with this name already exists in this tenant.
    SecretBundleExists,
    /// The master key comes from `KEYWARD_MASTER_KEY` and cannot be rotated in place.
    MasterKeyNotRotatable,
    /// A tenant with this name already exists.
    TenantExists,
    /// An agent with this name already exists in this tenant.
    AgentExists,
    /// The bundle is attached to an agent; detach it first (seed 004).
    BundleAttached,
    /// The agent would hold two credentials for one provider (seed 004).
    ProviderConflict,
    /// The session has ended; it cannot be resumed (create a new one).
    SessionEnded,
    // 413 / 429
    /// The request body is larger than this endpoint accepts.
    PayloadTooLarge,
    /// The tenant already holds 50 bundles.
    BundleQuotaExceeded,
    // 5xx
    /// A session resumed after one of its bundles was deleted (seed 001).
    SecretBundleNotFoundAtResume,
    /// A stored value failed to decrypt: tampered, moved, or sealed under another key.
    DecryptionFailed,
    /// Anything else; the cause is logged, never shown.
    Internal,
    /// The store could not be reached or refused the write.
    StoreUnavailable,
}

impl ErrorCode {
    /// The stable snake_case string clients match on.
    pub const fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidJson => "invalid_json",
            InvalidRequest => "invalid_request",
            InvalidName => "invalid_name",
            InvalidKeyName => "invalid_key_name",
            ReservedKeyName => "reserved_key_name",
            ValueTooLarge => "value_too_large",
            ValueContainsNul => "value_contains_nul",
            TooManyKeys => "too_many_keys",
            DuplicateKey => "duplicate_key",
            InvalidInjection => "invalid_injection",
            TooManyBundles => "too_many_bundles",
            UnknownBundle => "unknown_bundle",
            SecretKeyCollision => "secret_key_collision",
            UnknownAgent => "unknown_agent",
            Unauthorized => "unauthorized",
            Forbidden => "forbidden",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            SecretBundleNotFound => "secret_bundle_not_found",
            TokenNotFound => "token_not_found",
            SessionNotFound => "session_not_found",
            AgentNotFound => "agent_not_found",
            BundleNotAttached => "bundle_not_attached",
            SecretBundleExists => "secret_bundle_exists",
            MasterKeyNotRotatable => "master_key_not_rotatable",
            TenantExists => "tenant_exists",
            AgentExists => "agent_exists",
            BundleAttached => "bundle_attached",
            ProviderConflict => "provider_conflict",
            SessionEnded => "session_ended",
            PayloadTooLarge => "payload_too_large",
            BundleQuotaExceeded => "bundle_quota_exceeded",
            SecretBundleNotFoundAtResume => "secret_bundle_not_found_at_resume",
            DecryptionFailed => "decryption_failed",
            Internal => "internal_error",
            StoreUnavailable => "store_unavailable",
        }
    }

    /// The HTTP status this code is answered with.
    pub const fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            InvalidJson | InvalidRequest | InvalidName | InvalidKeyName | ReservedKeyName
            | ValueTooLarge | ValueContainsNul | TooManyKeys | DuplicateKey | InvalidInjection
            | TooManyBundles | UnknownBundle | SecretKeyCollision => 400,
            UnknownAgent => 400,
            Unauthorized => 401,
            Forbidden => 403,
            MethodNotAllowed => 405,
            NotFound | SecretBundleNotFound | TokenNotFound | SessionNotFound => 404,
            AgentNotFound | BundleNotAttached => 404,
            SecretBundleExists | TenantExists | SessionEnded | MasterKeyNotRotatable => 409,
            AgentExists | BundleAttached | ProviderConflict => 409,
            PayloadTooLarge => 413,
            BundleQuotaExceeded => 429,
            DecryptionFailed | Internal => 500,
            SecretBundleNotFoundAtResume => 502,
            StoreUnavailable => 503,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<crate::NameError> for ErrorCode {
    fn from(e: crate::NameError) -> Self {
        match e {
            crate::NameError::InvalidName => ErrorCode::InvalidName,
            crate::NameError::InvalidKeyName => ErrorCode::InvalidKeyName,
            crate::NameError::ReservedKeyName => ErrorCode::ReservedKeyName,
        }
    }
}
