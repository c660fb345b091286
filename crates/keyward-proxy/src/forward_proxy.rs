//! Proxy mode (`HTTPS_PROXY=http://kw:<token>@host:8421`), the way in that needs no base-URL
//! change:
//!
//! ```text
//! CONNECT host:port ─ proxy auth (407) ─┬─ host has a credential rule → intercept (TLS with a
//!                                       │    leaf minted for host; SNI and every Host must match)
//!                                       └─ otherwise → egress policy → private-address guard
//!                                            → tunnel bytes untouched
//! GET http://host/… (absolute form)    ─ proxy auth → placeholder scan → egress → forward plain
//! ```

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::call::{Call, Finisher, Outcome};
use crate::error::{json_error, ProxyError};
use crate::gateway::{blocked, strip_hop_by_hop};
use crate::limits::admit::admit;
use crate::session::{Credential, SessionState};
use crate::upstream::{connector, BoxError, ConnectError};
use crate::{intercept, DataPlane, ResBody};

/// Token from `Proxy-Authorization: Basic base64(user:token)` (or `Bearer token`).
pub fn proxy_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::PROXY_AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_owned());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_user, password) = text.split_once(':')?;
    Some(password.to_owned())
}

fn proxy_auth_required() -> Response<ResBody> {
    let mut response = json_error(
        StatusCode::PROXY_AUTHENTICATION_REQUIRED,
        "proxy_auth_required",
        "proxy credentials are missing or invalid: use http://kw:<session token>@host:port",
    );
    response.headers_mut().insert(
        header::PROXY_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"keyward\""),
    );
    response
}

async fn authenticate(
    plane: &DataPlane,
    headers: &HeaderMap,
) -> Result<(Arc<SessionState>, String), Response<ResBody>> {
    let Some(token) = proxy_token(headers) else {
        return Err(proxy_auth_required());
    };
    match plane.sessions.lookup(&token).await {
        Ok(Some(state)) => Ok((state, token)),
        Ok(None) => Err(proxy_auth_required()),
        Err(e) => {
            tracing::error!(error = %e, "session lookup failed");
            Err(ProxyError::Internal.response())
        }
    }
}

/// The first credential of the session whose placeholder occurs in `haystack`, other than
/// `allowed` (the credential that belongs on this host).
pub fn leaked_placeholder<'s>(
    state: &'s SessionState,
    haystack: &[u8],
    allowed: Option<&str>,
) -> Option<&'s Credential> {
    let leaked = |c: &Credential| {
        Some(c.name.as_str()) != allowed
            && memchr::memmem::find(haystack, c.placeholder.as_bytes()).is_some()
    };
    for (_, c) in &state.builtin {
        if leaked(c) {
            return Some(c);
        }
    }
    if let Some(llm) = &state.llm {
        if leaked(&llm.credential) {
            return Some(&llm.credential);
        }
    }
    for custom in &state.custom {
        if leaked(&custom.credential) {
            return Some(&custom.credential);
        }
    }
    None
}

/// Scan the URL and every header for a placeholder that does not belong on this host.
pub fn leaked_in_head<'s>(
    state: &'s SessionState,
    uri: &Uri,
    headers: &HeaderMap,
    allowed: Option<&str>,
) -> Option<&'s Credential> {
    if let Some(c) = leaked_placeholder(state, uri.to_string().as_bytes(), allowed) {
        return Some(c);
    }
    for value in headers.values() {
        if let Some(c) = leaked_placeholder(state, value.as_bytes(), allowed) {
            return Some(c);
        }
    }
    None
}

fn empty_ok() -> Response<ResBody> {
    Response::new(
        Empty::<Bytes>::new()
            .map_err(|never| -> BoxError { match never {} })
            .boxed(),
    )
}

fn mode_proxy(call: &mut Call) {
    call.mode = keyward_audit::AuditMode::Proxy;
}

/// `CONNECT host:port`.
pub async fn connect(plane: Arc<DataPlane>, req: Request<Incoming>) -> Response<ResBody> {
    let Some(authority) = req.uri().authority().cloned() else {
        return ProxyError::BadRequest.response();
    };
    let host = authority
        .host()
        .trim_matches(['[', ']'])
        .to_ascii_lowercase();
    let port = authority.port_u16().unwrap_or(443);
    let (state, token) = match authenticate(&plane, req.headers()).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let slot = match plane.audit.reserve() {
        Ok(slot) => slot,
        Err(_) => return ProxyError::AuditUnavailable.response(),
    };
    let (parts, body) = req.into_parts();
    let mut call = Call::new(&state, "connect", &parts, host.clone());
    let req = Request::from_parts(parts, body);
    mode_proxy(&mut call);
    let intercept = state.credential_for_host(&host).is_some() && plane.minter.is_some();
    if intercept {
        // The TLS session and every request inside it are checked and audited one by one;
        // the CONNECT itself is recorded as the interception it starts.
        call.decision = "intercepted";
        let finisher = Finisher {
            call,
            slot: Some(slot),
            metrics: plane.metrics.clone(),
        };
        finisher.finish(Outcome {
            status: Some(200),
            ttfb_ms: None,
            bytes_out: 0,
            usage: None,
            error: None,
            blocked: None,
        });
        let on_upgrade = hyper::upgrade::on(req);
        let plane = plane.clone();
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => intercept::serve(plane, token, host, port, upgraded).await,
                Err(e) => tracing::debug!(error = %e, "CONNECT upgrade failed"),
            }
        });
        return empty_ok();
    }
    let mut finisher = Finisher {
        call,
        slot: Some(slot),
        metrics: plane.metrics.clone(),
    };
    if !state.egress_allows(&host) {
        return blocked(finisher, ProxyError::EgressDenied);
    }
    // A tunnel or plain-HTTP call counts as a request and holds a concurrency slot.
    if let Err(refused) = admit(&plane, &state, None, None, &mut finisher).await {
        return refused.respond(finisher);
    }
    let guard = !plane.config.allow_private_upstreams;
    let addrs = match connector::resolve(&plane.config.resolve, guard, &host, port).await {
        Ok(addrs) => addrs,
        Err(ConnectError::PrivateDestination) => {
            return blocked(finisher, ProxyError::PrivateDestination)
        }
        Err(_) => return blocked(finisher, ProxyError::UpstreamUnreachable),
    };
    let dialed = tokio::time::timeout(plane.config.connect_timeout, connector::dial(&addrs)).await;
    let upstream = match dialed {
        Ok(Ok(stream)) => stream,
        Ok(Err(_)) => return blocked(finisher, ProxyError::UpstreamUnreachable),
        Err(_) => return blocked(finisher, ProxyError::UpstreamTimeout),
    };
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let mut finisher = Some(finisher);
        let outcome = match on_upgrade.await {
            Ok(upgraded) => {
                let mut client = TokioIo::new(upgraded);
                let mut upstream = upstream;
                tokio::io::copy_bidirectional(&mut client, &mut upstream).await
            }
            Err(e) => Err(std::io::Error::other(e)),
        };
        if let Some(f) = finisher.take() {
            let (bytes_in, bytes_out, error) = match outcome {
                Ok((up, down)) => (up, down, None),
                Err(_) => (0, 0, Some("tunnel_error")),
            };
            let mut f = f;
            f.call.bytes_in = bytes_in;
            f.call.decision = "tunnelled";
            f.finish(Outcome {
                status: Some(200),
                ttfb_ms: None,
                bytes_out,
                usage: None,
                error,
                blocked: None,
            });
        }
    });
    empty_ok()
}

/// An absolute-form `http://` request through the proxy: never carries a credential (that
/// would be cleartext), so any placeholder in it is an exfiltration attempt.
pub async fn absolute(plane: Arc<DataPlane>, req: Request<Incoming>) -> Response<ResBody> {
    let (state, _token) = match authenticate(&plane, req.headers()).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let slot = match plane.audit.reserve() {
        Ok(slot) => slot,
        Err(_) => return ProxyError::AuditUnavailable.response(),
    };
    let host = req
        .uri()
        .host()
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let (parts, body) = req.into_parts();
    let mut call = Call::new(&state, "http", &parts, host.clone());
    mode_proxy(&mut call);
    let mut finisher = Finisher {
        call,
        slot: Some(slot),
        metrics: plane.metrics.clone(),
    };
    if parts.uri.scheme_str() != Some("http") || host.is_empty() {
        return blocked(finisher, ProxyError::BadRequest);
    }
    let (prefix, rest) = match intercept::read_prefix(body, intercept::SCAN_BYTES).await {
        Ok(split) => split,
        Err(_) => return blocked(finisher, ProxyError::BadRequest),
    };
    let leaked = leaked_in_head(&state, &parts.uri, &parts.headers, None)
        .or_else(|| leaked_placeholder(&state, &prefix, None))
        .map(|c| c.name.clone());
    if let Some(name) = leaked {
        return intercept::exfiltration(&plane, &state, finisher, &name).await;
    }
    if !state.egress_allows(&host) {
        return blocked(finisher, ProxyError::EgressDenied);
    }
    // A tunnel or plain-HTTP call counts as a request and holds a concurrency slot.
    if let Err(refused) = admit(&plane, &state, None, None, &mut finisher).await {
        return refused.respond(finisher);
    }
    let mut upstream = Request::new(intercept::prefixed_body(prefix, rest));
    *upstream.method_mut() = parts.method.clone();
    *upstream.uri_mut() = parts.uri.clone();
    *upstream.version_mut() = Version::HTTP_11;
    for (name, value) in &parts.headers {
        if name != header::PROXY_AUTHORIZATION && name != header::HOST {
            upstream.headers_mut().append(name.clone(), value.clone());
        }
    }
    strip_hop_by_hop(upstream.headers_mut());
    let sent = std::time::Instant::now();
    let result = tokio::time::timeout(
        plane.config.first_byte_timeout,
        plane.upstreams.guarded.request(upstream),
    )
    .await;
    let response = match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            let error = ProxyError::from_upstream(&e);
            return blocked(finisher, error);
        }
        Err(_) => return blocked(finisher, ProxyError::UpstreamTimeout),
    };
    let (mut head, incoming) = response.into_parts();
    strip_hop_by_hop(&mut head.headers);
    let status = head.status.as_u16();
    let body = crate::body::ResponseBody::new(
        incoming,
        plane.config.idle_timeout,
        None,
        None,
        finisher,
        status,
        u64::try_from(sent.elapsed().as_millis()).unwrap_or(u64::MAX),
        plane.metrics.clone(),
    );
    Response::from_parts(head, body.boxed())
}
