//! Inside an intercepted CONNECT: keyward terminates the agent's TLS with a leaf minted for the
//! CONNECT host (after checking the ClientHello's SNI names that same host), then runs every
//! request through the gateway pipeline with placeholder replacement instead of token
//! stripping. Each request's `Host`/`:authority` must name the CONNECT host too, and a
//! placeholder of another credential anywhere in it is an exfiltration attempt.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::upgrade::Upgraded;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

use crate::call::{Call, Finisher};
use crate::error::ProxyError;
use crate::forward_proxy::{leaked_in_head, leaked_placeholder};
use crate::gateway::{blocked, forward, AuthRewrite, Target};
use crate::session::SessionState;
use crate::upstream::{BoxError, ReqBody};
use crate::{DataPlane, ResBody};

/// How much of a request body is scanned for placeholders.
pub const SCAN_BYTES: usize = 64 * 1024;

pub async fn serve(
    plane: Arc<DataPlane>,
    token: String,
    host: String,
    port: u16,
    upgraded: Upgraded,
) {
    let Some(config) = plane.tls_server.clone() else {
        return;
    };
    let acceptor = tokio_rustls::LazyConfigAcceptor::new(
        rustls::server::Acceptor::default(),
        TokioIo::new(upgraded),
    );
    let Ok(start) = acceptor.await else {
        return;
    };
    let sni = start
        .client_hello()
        .server_name()
        .map(str::to_ascii_lowercase);
    let config = match sni {
        Some(name) if name == host => config,
        // Clients send no SNI for an IP address (RFC 6066): then the CONNECT host itself, an
        // IP literal, is what the certificate is minted for.
        None if host.parse::<std::net::IpAddr>().is_ok() => {
            match plane.minter.as_ref().map(|m| m.certified_key(&host)) {
                Some(Ok(key)) => crate::mint::fixed_server_config(key),
                _ => return,
            }
        }
        _ => {
            // No certificate is minted for a name other than the CONNECT host: the
            // handshake is dropped and the attempt audited.
            audit_refused(&plane, &token, &host, ProxyError::SniMismatch).await;
            return;
        }
    };
    let Ok(tls) = start.into_stream(config).await else {
        return;
    };
    let service = service_fn(move |req| {
        let plane = plane.clone();
        let token = token.clone();
        let host = host.clone();
        async move { Ok::<_, std::convert::Infallible>(request(plane, token, host, port, req).await) }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    if let Err(e) = builder
        .serve_connection_with_upgrades(TokioIo::new(tls), service)
        .await
    {
        tracing::debug!(error = %e, "intercepted connection ended with an error");
    }
}

async fn audit_refused(plane: &DataPlane, token: &str, host: &str, error: ProxyError) {
    let Ok(Some(state)) = plane.sessions.lookup(token).await else {
        return;
    };
    let Ok(slot) = plane.audit.reserve() else {
        return;
    };
    let parts = Request::builder()
        .method(http::Method::CONNECT)
        .uri(host)
        .body(())
        .map(|r| r.into_parts().0)
        .unwrap_or_else(|_| Request::new(()).into_parts().0);
    let mut call = Call::new(&state, "connect", &parts, host.to_owned());
    call.mode = keyward_audit::AuditMode::Proxy;
    let _ = blocked(
        Finisher {
            call,
            slot: Some(slot),
            metrics: plane.metrics.clone(),
        },
        error,
    );
}

/// The host a request names (`:authority` or `Host`), lowercase, without the port.
fn request_host<B>(req: &Request<B>) -> Option<String> {
    let raw = req.uri().host().map(str::to_owned).or_else(|| {
        req.headers()
            .get(http::header::HOST)?
            .to_str()
            .ok()
            .map(str::to_owned)
    })?;
    let host = match raw.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => raw.as_str(),
    };
    Some(host.trim_matches(['[', ']']).to_ascii_lowercase())
}

async fn request(
    plane: Arc<DataPlane>,
    token: String,
    host: String,
    port: u16,
    req: Request<Incoming>,
) -> Response<ResBody> {
    let (token, host) = (token.as_str(), host.as_str());
    // Looked up per request: a rotation applies to the very next request, an ended session
    // stops at once.
    let state = match plane.sessions.lookup(token).await {
        Ok(Some(state)) => state,
        Ok(None) => return ProxyError::Unauthorized.response(),
        Err(_) => return ProxyError::Internal.response(),
    };
    let slot = match plane.audit.reserve() {
        Ok(slot) => slot,
        Err(_) => return ProxyError::AuditUnavailable.response(),
    };
    let named = request_host(&req);
    let (parts, body) = req.into_parts();
    // Owned copies: nothing borrowed from the session state is held across an await.
    let chosen = state.credential_for_host(host).map(|hc| {
        (
            hc.credential.clone(),
            hc.anthropic,
            hc.openai_style,
            hc.model_override.map(str::to_owned),
            hc.route,
            hc.metered,
        )
    });
    let route = chosen.as_ref().map_or("connect", |c| c.4);
    let mut call = Call::new(&state, route, &parts, host.to_owned());
    call.mode = keyward_audit::AuditMode::Proxy;
    let mut finisher = Finisher {
        call,
        slot: Some(slot),
        metrics: plane.metrics.clone(),
    };
    if named.as_deref() != Some(host) {
        return blocked(finisher, ProxyError::HostMismatch);
    }
    let Some((credential, anthropic, openai_style, model_override, route, metered)) = chosen else {
        return blocked(finisher, ProxyError::NoCredential);
    };
    let (prefix, rest) = match read_prefix(body, SCAN_BYTES).await {
        Ok(split) => split,
        Err(_) => return blocked(finisher, ProxyError::BadRequest),
    };
    let own = Some(credential.name.as_str());
    let leaked = leaked_in_head(&state, &parts.uri, &parts.headers, own)
        .or_else(|| leaked_placeholder(&state, &prefix, own))
        .map(|c| c.name.clone());
    if let Some(name) = leaked {
        return exfiltration(&plane, &state, finisher, &name).await;
    }
    finisher.call.credential = Some((credential.name.clone(), credential.version));
    let credential = credential.clone();
    let base = if port == 443 {
        format!("https://{host}")
    } else {
        format!("https://{host}:{port}")
    };
    let target = Target {
        route,
        base,
        credential,
        client: plane.upstreams.guarded.clone(),
        anthropic,
        openai_style,
        model_override,
        metered,
        auth: AuthRewrite::Proxy,
    };
    let path = parts.uri.path().to_owned();
    let body = prefixed_body(prefix, rest);
    forward(
        plane.clone(),
        state.clone(),
        target,
        parts,
        body,
        path,
        finisher,
    )
    .await
}

/// Refuse a request that carries a placeholder to the wrong host, audited as
/// `blocked:exfiltration_attempt`; optionally end the session on the spot.
pub async fn exfiltration(
    plane: &DataPlane,
    state: &SessionState,
    finisher: Finisher,
    credential: &str,
) -> Response<ResBody> {
    tracing::warn!(
        session = state.session_id,
        credential,
        host = finisher.call.host,
        "placeholder sent to a host its credential does not belong to"
    );
    let response = blocked(finisher, ProxyError::ExfiltrationAttempt);
    if let Some(vault) = plane
        .sessions
        .vault()
        .filter(|_| plane.config.end_session_on_exfiltration)
    {
        if let Err(e) = vault.end_session(state.tenant, &state.session_id).await {
            tracing::error!(error = %e, "could not end the session after an exfiltration attempt");
        }
    }
    response
}

/// Read up to `limit` bytes of a body (at least; whole frames), returning them and what is
/// left of the body (`None` once it ended).
pub async fn read_prefix(
    mut body: Incoming,
    limit: usize,
) -> Result<(Bytes, Option<Incoming>), hyper::Error> {
    let mut prefix = BytesMut::new();
    while prefix.len() < limit {
        match body.frame().await {
            Some(frame) => {
                if let Ok(data) = frame?.into_data() {
                    prefix.extend_from_slice(&data);
                }
            }
            None => return Ok((prefix.freeze(), None)),
        }
    }
    Ok((prefix.freeze(), Some(body)))
}

/// The scanned prefix followed by the rest of the body, streamed.
pub fn prefixed_body(prefix: Bytes, rest: Option<Incoming>) -> ReqBody {
    Prefixed {
        prefix: (!prefix.is_empty()).then_some(prefix),
        rest,
    }
    .boxed()
}

struct Prefixed {
    prefix: Option<Bytes>,
    rest: Option<Incoming>,
}

impl Body for Prefixed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(prefix) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        match self.rest.as_mut() {
            Some(rest) => Pin::new(rest)
                .poll_frame(cx)
                .map_err(|e| -> BoxError { Box::new(e) }),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.rest.as_ref().is_none_or(|r| r.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let prefix = self.prefix.as_ref().map_or(0, |p| p.len() as u64);
        match &self.rest {
            None => SizeHint::with_exact(prefix),
            Some(rest) => {
                let inner = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(inner.lower() + prefix);
                if let Some(upper) = inner.upper() {
                    hint.set_upper(upper + prefix);
                }
                hint
            }
        }
    }
}
