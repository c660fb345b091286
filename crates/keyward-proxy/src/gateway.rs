//! Gateway mode, one request through the pipeline:
//!
//! ```text
//! route → authenticate → pick credential → reserve audit slot → rewrite request
//!       → forward (first-byte timeout) → stream response (meter, redact, idle timeout) → audit
//! ```

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, Uri, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use keyward_core::providers::{self, Provider};

use crate::body::ResponseBody;
use crate::call::{Call, Finisher, Outcome};
use crate::error::ProxyError;
use crate::meter::{BodyKind, Meter};
use crate::redact::Redactor;
use crate::rewrite;
use crate::route::{self, Route};
use crate::session::{Credential, SessionState};
use crate::upstream::{BoxError, HttpClient, ReqBody};
use crate::{limits, DataPlane, ResBody};

/// Headers a client may carry its token in; all are removed before forwarding.
pub const CLIENT_AUTH_HEADERS: [HeaderName; 4] = [
    header::AUTHORIZATION,
    HeaderName::from_static("x-api-key"),
    HeaderName::from_static("api-key"),
    HeaderName::from_static("x-goog-api-key"),
];

/// Connection-level headers that must not be forwarded (RFC 9110 section 7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Every token-like value the client sent, in header order.
pub fn presented_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    static NAMES: [HeaderName; 4] = CLIENT_AUTH_HEADERS;
    NAMES.iter().flat_map(move |name| {
        headers.get_all(name).iter().filter_map(|v| {
            let text = v.to_str().ok()?.trim();
            let token = match text.split_once(' ') {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
                _ => text,
            };
            (!token.is_empty()).then_some(token)
        })
    })
}

/// Resolve the session from whichever auth header holds a valid token.
pub async fn authenticate(
    plane: &DataPlane,
    headers: &HeaderMap,
) -> Result<Arc<SessionState>, ProxyError> {
    for token in presented_tokens(headers) {
        match plane.sessions.lookup(token).await {
            Ok(Some(state)) => return Ok(state),
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(error = %e, "session lookup failed");
                return Err(ProxyError::Internal);
            }
        }
    }
    Err(ProxyError::Unauthorized)
}

/// How the client's credential headers are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRewrite {
    /// Gateway mode: every client auth header (it holds the session token) is removed and the
    /// real credential set.
    Gateway,
    /// Proxy mode: the session's placeholder is replaced in place wherever the client put it;
    /// if it sent none, the rule's header is added.
    Proxy,
    /// Static config mode's `passthrough: true`: the client's own credential headers are
    /// forwarded as they are and nothing is added.
    Passthrough,
}

/// Where a call goes and with what.
pub struct Target {
    pub route: &'static str,
    pub base: String,
    pub credential: Arc<Credential>,
    pub client: HttpClient,
    pub anthropic: bool,
    /// OpenAI-style API (adds `stream_options.include_usage` to streaming chat calls).
    pub openai_style: bool,
    pub model_override: Option<String>,
    pub metered: bool,
    pub auth: AuthRewrite,
}

fn pick_target(
    plane: &DataPlane,
    state: &SessionState,
    route: Route<'_>,
) -> Result<Target, ProxyError> {
    match route {
        Route::Builtin(rule) => {
            // No key of its own for the provider: the operator's free tier, if it has one.
            let free = || {
                let tier = plane.config.free_tier.as_ref()?;
                (tier.provider == rule.provider).then_some(&tier.credential)
            };
            let credential = state
                .credential(rule.provider)
                .or_else(free)
                .ok_or(ProxyError::NoCredential)?;
            Ok(Target {
                route: rule.route,
                base: plane.base_url(rule.route, rule.upstream_base),
                credential: credential.clone(),
                client: plane.upstreams.trusted.clone(),
                anthropic: rule.provider == Provider::Anthropic,
                openai_style: matches!(
                    rule.provider,
                    Provider::OpenAi | Provider::OpenRouter | Provider::Venice
                ),
                model_override: None,
                metered: true,
                auth: AuthRewrite::Gateway,
            })
        }
        Route::Llm => {
            let llm = state.llm.as_ref().ok_or(ProxyError::NoCredential)?;
            let (base, client) = if llm.trusted {
                (
                    plane.base_url("anthropic", &llm.base),
                    plane.upstreams.trusted.clone(),
                )
            } else {
                (llm.base.clone(), plane.upstreams.guarded.clone())
            };
            Ok(Target {
                route: providers::LLM_ROUTE,
                base,
                credential: llm.credential.clone(),
                client,
                anthropic: llm.anthropic,
                openai_style: !llm.anthropic,
                model_override: llm.model.clone(),
                metered: true,
                auth: AuthRewrite::Gateway,
            })
        }
        Route::Host(host) => {
            let host = host.to_ascii_lowercase();
            if let Some(custom) = state.custom_for_host(&host) {
                return Ok(Target {
                    route: "h",
                    base: format!("https://{host}"),
                    credential: custom.credential.clone(),
                    client: plane.upstreams.guarded.clone(),
                    anthropic: false,
                    openai_style: false,
                    model_override: None,
                    metered: false,
                    auth: AuthRewrite::Gateway,
                });
            }
            Err(ProxyError::HostNotAllowed)
        }
    }
}

pub async fn handle(plane: Arc<DataPlane>, req: Request<Incoming>) -> Response<ResBody> {
    let path = req.uri().path().to_owned();
    let Some((route, rest)) = route::route(&path) else {
        return ProxyError::NotFound.response();
    };
    let rest = rest.to_owned();
    let route_name = match route {
        Route::Builtin(rule) => rule.route,
        Route::Llm => providers::LLM_ROUTE,
        Route::Host(_) => "h",
    };
    let host_param = match route {
        Route::Host(h) => Some(h.to_ascii_lowercase()),
        _ => None,
    };
    let state = match authenticate(&plane, req.headers()).await {
        Ok(state) => state,
        Err(e) => return e.response(),
    };
    let (parts, body) = req.into_parts();
    let route = match &host_param {
        Some(h) => Route::Host(h),
        None => route,
    };
    let slot = match plane.audit.reserve() {
        Ok(slot) => slot,
        Err(_) => return ProxyError::AuditUnavailable.response(),
    };
    let target = pick_target(&plane, &state, route);
    let host = match (&target, route) {
        (Ok(t), _) => host_of(&t.base),
        (Err(_), Route::Builtin(rule)) => rule.host.to_owned(),
        (Err(_), _) => host_param.clone().unwrap_or_default(),
    };
    let mut call = Call::new(&state, route_name, &parts, host);
    let target = match target {
        Ok(t) => t,
        Err(e) => {
            let finisher = Finisher {
                call,
                slot: Some(slot),
                metrics: plane.metrics.clone(),
            };
            return blocked(finisher, e);
        }
    };
    call.credential = Some((target.credential.name.clone(), target.credential.version));
    let finisher = Finisher {
        call,
        slot: Some(slot),
        metrics: plane.metrics.clone(),
    };
    let body = body.map_err(|e| -> BoxError { Box::new(e) }).boxed();
    forward(plane.clone(), state, target, parts, body, rest, finisher).await
}

fn host_of(base: &str) -> String {
    base.parse::<Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_owned))
        .unwrap_or_default()
}

/// Answer a refused call, audited as `blocked:<code>`.
pub fn blocked(finisher: Finisher, error: ProxyError) -> Response<ResBody> {
    let response = error.response();
    finisher.finish(Outcome {
        status: Some(response.status().as_u16()),
        ttfb_ms: None,
        bytes_out: 0,
        usage: None,
        error: None,
        blocked: Some(error.code()),
    });
    response
}

/// Answer a call that failed upstream before any response byte.
fn failed(finisher: Finisher, error: ProxyError) -> Response<ResBody> {
    let response = error.response();
    finisher.finish(Outcome {
        status: Some(response.status().as_u16()),
        ttfb_ms: None,
        bytes_out: 0,
        usage: None,
        error: Some(error.code()),
        blocked: None,
    });
    response
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().contains("json"))
}

pub async fn forward(
    plane: Arc<DataPlane>,
    state: Arc<SessionState>,
    target: Target,
    parts: http::request::Parts,
    body: ReqBody,
    rest: String,
    mut finisher: Finisher,
) -> Response<ResBody> {
    let uri_text = route::upstream_uri(&target.base, &rest, parts.uri.query());
    let Ok(uri) = uri_text.parse::<Uri>() else {
        return blocked(finisher, ProxyError::BadRequest);
    };

    // The body is read whole only for JSON calls to LLM APIs, where keyward may rewrite it
    // (model override, include_usage) and reads the model for the audit record.
    let has_body = !matches!(parts.method, http::Method::GET | http::Method::HEAD);
    let mut read_whole = None;
    let req_body: ReqBody = if target.metered && has_body && is_json(&parts.headers) {
        let bytes = match collect_limited(body, plane.config.max_buffered_body).await {
            Ok(bytes) => bytes,
            Err(error) => return blocked(finisher, error),
        };
        let rewritten = rewrite::request_body(
            &bytes,
            target.model_override.as_deref(),
            target.openai_style && rest.ends_with("/chat/completions"),
        );
        let bytes = match rewritten {
            Some(r) => {
                finisher.call.model = r.model;
                r.body.unwrap_or(bytes)
            }
            None => bytes,
        };
        finisher.call.bytes_in = bytes.len() as u64;
        read_whole = Some(bytes.clone());
        Full::new(bytes)
            .map_err(|never| -> BoxError { match never {} })
            .boxed()
    } else {
        finisher.call.bytes_in = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        body
    };
    let admitted = limits::admit::admit(
        &plane,
        &state,
        Some(&target),
        read_whole.as_deref(),
        &mut finisher,
    );
    if let Err(refused) = admitted.await {
        return refused.respond(finisher);
    }
    // A free-tier call carries the operator's key: that is the secret to scrub.
    let redactor = match limits::admit::free_tier_of(&plane, &target) {
        Some(tier) => &tier.redactor,
        None => &state.redactor,
    };

    let mut upstream = Request::new(req_body);
    *upstream.method_mut() = parts.method.clone();
    *upstream.uri_mut() = uri;
    *upstream.version_mut() = Version::HTTP_11;
    let headers = upstream.headers_mut();
    let strip_auth = target.auth == AuthRewrite::Gateway;
    copy_request_headers(
        &parts.headers,
        headers,
        finisher.call.bytes_in,
        target.metered,
        strip_auth,
    );
    let inject = match target.auth {
        AuthRewrite::Gateway => true,
        AuthRewrite::Proxy => !replace_placeholder(headers, &target.credential),
        AuthRewrite::Passthrough => false,
    };
    if inject {
        headers.insert(
            target.credential.header.clone(),
            target.credential.value.clone(),
        );
    }
    if target.anthropic && !headers.contains_key("anthropic-version") {
        headers.insert(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static("2023-06-01"),
        );
    }

    let sent_at = Instant::now();
    let response = match tokio::time::timeout(
        plane.config.first_byte_timeout,
        target.client.request(upstream),
    )
    .await
    {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => {
            let error = ProxyError::from_upstream(&e);
            tracing::warn!(
                route = target.route,
                code = error.code(),
                error = %error_chain(&e),
                "upstream call failed"
            );
            if error == ProxyError::PrivateDestination {
                return blocked(finisher, error);
            }
            return failed(finisher, error);
        }
        Err(_) => return failed(finisher, ProxyError::UpstreamTimeout),
    };
    let ttfb = sent_at.elapsed();
    plane
        .metrics
        .upstream_ttfb
        .get_or_create(&crate::metrics::RouteLabels {
            route: target.route,
        })
        .observe(ttfb.as_secs_f64());

    let (mut head, incoming) = response.into_parts();
    strip_hop_by_hop(&mut head.headers);
    redact_headers(redactor, &mut head.headers);
    let ttfb_ms = u64::try_from(ttfb.as_millis()).unwrap_or(u64::MAX);
    if let Some(length) = small_complete_body(&head.headers) {
        return buffered_response(
            &plane,
            redactor,
            target.metered,
            head,
            incoming,
            length,
            finisher,
            ttfb_ms,
        )
        .await;
    }
    head.headers.remove(header::CONTENT_LENGTH);
    let meter = target.metered.then(|| {
        let ct = head
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        Meter::new(BodyKind::from_content_type(ct))
    });
    let redact = (!redactor.is_empty()).then(|| redactor.stream());
    let status = head.status.as_u16();
    let body = ResponseBody::new(
        incoming,
        plane.config.idle_timeout,
        redact,
        meter,
        finisher,
        status,
        ttfb_ms,
        plane.metrics.clone(),
    );
    Response::from_parts(head, body.boxed())
}

/// Largest response read whole before it is sent on (see [`buffered_response`]).
const MAX_BUFFERED_RESPONSE: u64 = 256 * 1024;

/// The length of a response that is not a stream: a `Content-Length` of at most
/// [`MAX_BUFFERED_RESPONSE`] and no event stream.
fn small_complete_body(headers: &HeaderMap) -> Option<u64> {
    let length: u64 = headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let event_stream = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("text/event-stream"));
    (length <= MAX_BUFFERED_RESPONSE && !event_stream).then_some(length)
}

/// A small response of known length (an ordinary JSON answer, not a stream) is read whole,
/// metered and scrubbed, and sent with its exact new length: the agent gets one write instead
/// of a chunked body, and an upstream that fails mid-body still gets a clean 502/504 because
/// nothing was sent yet. Streams never take this path.
#[allow(clippy::too_many_arguments)]
async fn buffered_response(
    plane: &DataPlane,
    redactor: &crate::redact::Redactor,
    metered: bool,
    mut head: http::response::Parts,
    mut incoming: Incoming,
    length: u64,
    finisher: Finisher,
    ttfb_ms: u64,
) -> Response<ResBody> {
    let mut body = bytes::BytesMut::with_capacity(usize::try_from(length).unwrap_or(0));
    loop {
        match tokio::time::timeout(plane.config.idle_timeout, incoming.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    body.extend_from_slice(&data);
                }
            }
            Ok(None) => break,
            Ok(Some(Err(_))) => return failed(finisher, ProxyError::UpstreamReset),
            Err(_) => return failed(finisher, ProxyError::UpstreamTimeout),
        }
    }
    let body = body.freeze();
    let usage = metered.then(|| {
        let ct = head
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let mut meter = Meter::new(BodyKind::from_content_type(ct));
        meter.observe(&body);
        meter.finish().clone()
    });
    let body = match redactor.redact_all(&body) {
        std::borrow::Cow::Borrowed(_) => body,
        std::borrow::Cow::Owned(clean) => Bytes::from(clean),
    };
    head.headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    finisher.finish(Outcome {
        status: Some(head.status.as_u16()),
        ttfb_ms: Some(ttfb_ms),
        bytes_out: body.len() as u64,
        usage: usage.as_ref(),
        error: None,
        blocked: None,
    });
    Response::from_parts(
        head,
        Full::new(body)
            .map_err(|never| -> BoxError { match never {} })
            .boxed(),
    )
}

/// An error and its causes on one line (hyper's top-level message alone says little).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Read a whole request body, refusing one larger than `limit`.
async fn collect_limited(mut body: ReqBody, limit: usize) -> Result<Bytes, ProxyError> {
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ProxyError::BadRequest)?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(ProxyError::PayloadTooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

/// Copy the client's headers minus connection-level ones, its auth headers, `Host` (set from
/// the upstream URI) and `Accept-Encoding` (keyward must read the response to meter and redact
/// it, so it asks for an uncompressed one).
fn copy_request_headers(
    from: &HeaderMap,
    to: &mut HeaderMap,
    body_len: u64,
    rewritten: bool,
    strip_auth: bool,
) {
    to.reserve(from.len() + 2);
    for (name, value) in from {
        if HOP_BY_HOP.contains(name)
            || (strip_auth && CLIENT_AUTH_HEADERS.contains(name))
            || name == header::HOST
            || name == header::ACCEPT_ENCODING
            || (rewritten && name == header::CONTENT_LENGTH)
        {
            continue;
        }
        to.append(name.clone(), value.clone());
    }
    to.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    if rewritten && body_len > 0 {
        to.insert(header::CONTENT_LENGTH, HeaderValue::from(body_len));
    }
}

/// Replace the credential's placeholder with the real value in every header that carries it
/// (e.g. `Authorization: Bearer sk-ant-api03-kw…` becomes `Bearer sk-ant-…`, not a second
/// credential header). Returns whether any header carried it.
fn replace_placeholder(headers: &mut HeaderMap, credential: &Credential) -> bool {
    let needle = credential.placeholder.as_bytes();
    let finder = memchr::memmem::Finder::new(needle);
    let mut replaced = false;
    for value in headers.values_mut() {
        let bytes = value.as_bytes();
        if finder.find(bytes).is_none() {
            continue;
        }
        let mut out = Vec::with_capacity(bytes.len() + credential.secret.len());
        let mut rest = bytes;
        while let Some(i) = finder.find(rest) {
            out.extend_from_slice(&rest[..i]);
            out.extend_from_slice(credential.secret.expose());
            rest = &rest[i + needle.len()..];
        }
        out.extend_from_slice(rest);
        if let Ok(mut v) = HeaderValue::from_bytes(&out) {
            v.set_sensitive(true);
            *value = v;
            replaced = true;
        }
    }
    replaced
}

pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// An upstream that echoes the key in a header must not hand it over either.
fn redact_headers(redactor: &Redactor, headers: &mut HeaderMap) {
    if redactor.is_empty() {
        return;
    }
    for value in headers.values_mut() {
        if let std::borrow::Cow::Owned(clean) = redactor.redact_all(value.as_bytes()) {
            if let Ok(v) = HeaderValue::from_bytes(&clean) {
                *value = v;
            }
        }
    }
}
