//! Errors the data plane answers itself, as `{"error": {"code", "message"}}` JSON. Each knows
//! its status and the audit decision it stands for. Messages never name a credential value.

use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body_util::{BodyExt, Full};

use crate::upstream::{BoxError, ConnectError};
use crate::ResBody;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyError {
    /// No token, or a token that is unknown, revoked or ended.
    Unauthorized,
    /// The session has no credential for this provider or host.
    NoCredential,
    /// No route matches the path.
    NotFound,
    /// `/h/{host}` names a host no rule of the session covers.
    HostNotAllowed,
    /// A tenant-chosen destination resolves to a private address.
    PrivateDestination,
    /// The session's egress policy does not allow the host.
    EgressDenied,
    /// A placeholder was sent to a host its credential does not belong to.
    ExfiltrationAttempt,
    /// A request's `Host`/`:authority` differs from the CONNECT host.
    HostMismatch,
    /// The TLS SNI differs from the CONNECT host.
    SniMismatch,
    /// The request is malformed.
    BadRequest,
    /// The request body is larger than keyward reads.
    PayloadTooLarge,
    /// The upstream could not be reached (refused, DNS, reset before the response).
    UpstreamUnreachable,
    /// TLS with the upstream failed.
    UpstreamTls,
    /// The upstream did not answer in time.
    UpstreamTimeout,
    /// The upstream broke the connection in the middle of its answer.
    UpstreamReset,
    /// The audit log cannot take records: refuse rather than forward unaudited.
    AuditUnavailable,
    /// Anything else (logged).
    Internal,
}

impl ProxyError {
    pub const fn code(self) -> &'static str {
        match self {
            ProxyError::Unauthorized => "unauthorized",
            ProxyError::NoCredential => "no_credential",
            ProxyError::NotFound => "not_found",
            ProxyError::HostNotAllowed => "host_not_allowed",
            ProxyError::PrivateDestination => "private_destination",
            ProxyError::EgressDenied => "egress_denied",
            ProxyError::ExfiltrationAttempt => "exfiltration_attempt",
            ProxyError::HostMismatch => "host_mismatch",
            ProxyError::SniMismatch => "sni_mismatch",
            ProxyError::BadRequest => "bad_request",
            ProxyError::PayloadTooLarge => "payload_too_large",
            ProxyError::UpstreamUnreachable => "upstream_unreachable",
            ProxyError::UpstreamTls => "upstream_tls_error",
            ProxyError::UpstreamTimeout => "upstream_timeout",
            ProxyError::UpstreamReset => "upstream_reset",
            ProxyError::AuditUnavailable => "audit_unavailable",
            ProxyError::Internal => "internal_error",
        }
    }

    pub const fn status(self) -> StatusCode {
        match self {
            ProxyError::Unauthorized | ProxyError::NoCredential => StatusCode::UNAUTHORIZED,
            ProxyError::NotFound => StatusCode::NOT_FOUND,
            ProxyError::HostNotAllowed
            | ProxyError::PrivateDestination
            | ProxyError::EgressDenied
            | ProxyError::ExfiltrationAttempt
            | ProxyError::HostMismatch
            | ProxyError::SniMismatch => StatusCode::FORBIDDEN,
            ProxyError::BadRequest => StatusCode::BAD_REQUEST,
            ProxyError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::UpstreamUnreachable
            | ProxyError::UpstreamTls
            | ProxyError::UpstreamReset => StatusCode::BAD_GATEWAY,
            ProxyError::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::AuditUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub const fn message(self) -> &'static str {
        match self {
            ProxyError::Unauthorized => "a valid session or agent token is required",
            ProxyError::NoCredential => "this session has no credential for that provider",
            ProxyError::NotFound => "no data-plane route matches this path",
            ProxyError::HostNotAllowed => "no credential rule of this session names that host",
            ProxyError::PrivateDestination => {
                "the upstream resolves to a private, loopback or link-local address"
            }
            ProxyError::EgressDenied => "the session's egress policy does not allow this host",
            ProxyError::ExfiltrationAttempt => {
                "a credential placeholder was sent to a host it does not belong to"
            }
            ProxyError::HostMismatch => "the request's host differs from the CONNECT host",
            ProxyError::SniMismatch => "the TLS server name differs from the CONNECT host",
            ProxyError::BadRequest => "malformed request",
            ProxyError::PayloadTooLarge => "request body too large",
            ProxyError::UpstreamUnreachable => "the upstream could not be reached",
            ProxyError::UpstreamTls => "TLS with the upstream failed",
            ProxyError::UpstreamTimeout => "the upstream did not answer in time",
            ProxyError::UpstreamReset => "the upstream broke off its answer",
            ProxyError::AuditUnavailable => {
                "the audit log is not accepting records; refusing to forward unaudited"
            }
            ProxyError::Internal => "internal error",
        }
    }

    /// Classify a failure of the upstream client (before any response byte).
    pub fn from_upstream(err: &hyper_util::client::legacy::Error) -> Self {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = source {
            if let Some(ce) = e.downcast_ref::<ConnectError>() {
                return match ce {
                    ConnectError::PrivateDestination => ProxyError::PrivateDestination,
                    ConnectError::Timeout => ProxyError::UpstreamTimeout,
                    ConnectError::Tls(_) => ProxyError::UpstreamTls,
                    _ => ProxyError::UpstreamUnreachable,
                };
            }
            source = e.source();
        }
        ProxyError::UpstreamUnreachable
    }

    pub fn response(self) -> Response<ResBody> {
        json_error(self.status(), self.code(), self.message())
    }
}

pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response<ResBody> {
    let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| -> BoxError { match never {} })
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
