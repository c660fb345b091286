//! One request in static config mode. Only the front differs from the server mode; from the
//! audit slot on it is the very same pipeline ([`gateway::forward`]):
//!
//! ```text
//! /healthz? → route (longest path prefix of this listener) → client allow-list (401)
//!   → the route's key (a changed key file is re-read here) → reserve audit slot
//!   → gateway::forward: model override, inject, stream back metered + redacted, audit
//! ```

use std::sync::Arc;

use http::{Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use keyward_core::providers::Provider;
use keyward_crypto::token;

use super::snapshot::{RouteAuth, StaticRoute, Upstream};
use super::StaticPlane;
use crate::call::{Call, Finisher};
use crate::error::{json_error, ProxyError};
use crate::gateway::{self, AuthRewrite, Target};
use crate::upstream::BoxError;
use crate::{server, ResBody};

pub async fn handle(
    plane: Arc<StaticPlane>,
    listener: usize,
    req: Request<Incoming>,
) -> Response<ResBody> {
    if req.uri().path() == "/healthz" {
        return server::json(StatusCode::OK, r#"{"status":"ok"}"#);
    }
    // Static mode is a reverse proxy only: no CONNECT, no absolute-form proxy requests.
    if req.method() == http::Method::CONNECT || req.uri().scheme().is_some() {
        return ProxyError::NotFound.response();
    }
    let snapshot = plane.snapshot();
    let path = req.uri().path().to_owned();
    let Some((route, rest)) = snapshot.listeners.get(listener).and_then(|l| l.find(&path)) else {
        return ProxyError::NotFound.response();
    };
    let Ok(client) = allowed_client(route, req.headers()) else {
        return json_error(
            StatusCode::UNAUTHORIZED,
            ProxyError::Unauthorized.code(),
            "this route takes only the client tokens its config lists",
        );
    };
    let (loaded, auth) = match &route.auth {
        RouteAuth::Key(cell) => (cell.current(), AuthRewrite::Gateway),
        RouteAuth::Passthrough => (plane.passthrough.clone(), AuthRewrite::Passthrough),
    };
    let data = &plane.data;
    let slot = match data.audit.reserve() {
        Ok(slot) => slot,
        Err(_) => return ProxyError::AuditUnavailable.response(),
    };
    let target = target(data, route, loaded.credential.clone(), auth);
    let (parts, body) = req.into_parts();
    let mut call = Call::new(&loaded.state, target.route, &parts, host_of(&target.base));
    call.session = route.label.clone();
    call.user_id = client;
    if auth == AuthRewrite::Gateway {
        call.credential = Some((target.credential.name.clone(), target.credential.version));
    }
    let finisher = Finisher {
        call,
        slot: Some(slot),
        metrics: data.metrics.clone(),
    };
    let rest = rest.to_owned();
    let body = body.map_err(|e| -> BoxError { Box::new(e) }).boxed();
    let state = loaded.state.clone();
    gateway::forward(data.clone(), state, target, parts, body, rest, finisher).await
}

/// A client token the route does not list, or none (401).
struct NotListed;

/// `Ok(name)` of the client if the route lets it call (`None`: an open route); the name is
/// the config's, else the start of the token's digest.
fn allowed_client(
    route: &StaticRoute,
    headers: &http::HeaderMap,
) -> Result<Option<String>, NotListed> {
    let Some(clients) = &route.clients else {
        return Ok(None);
    };
    for presented in gateway::presented_tokens(headers) {
        let digest = token::digest(presented);
        if let Some(client) = clients
            .iter()
            .find(|c| token::digests_match(&c.token_sha256, &digest))
        {
            let name = client
                .name
                .clone()
                .unwrap_or_else(|| format!("sha256:{}", short_hex(&client.token_sha256)));
            return Ok(Some(name));
        }
    }
    Err(NotListed)
}

/// The first 8 bytes in hex: enough to tell clients apart in the audit log.
fn short_hex(digest: &[u8; 32]) -> String {
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn target(
    data: &crate::DataPlane,
    route: &StaticRoute,
    credential: Arc<crate::session::Credential>,
    auth: AuthRewrite,
) -> Target {
    let (label, base, client, provider) = match &route.upstream {
        Upstream::Builtin(rule) => (
            rule.route,
            data.base_url(rule.route, rule.upstream_base),
            data.upstreams.trusted.clone(),
            Some(rule.provider),
        ),
        // The config's author chose the host: private addresses need --allow-private-upstreams.
        Upstream::Custom(base) => ("custom", base.clone(), data.upstreams.guarded.clone(), None),
    };
    Target {
        route: label,
        base,
        credential,
        client,
        anthropic: provider == Some(Provider::Anthropic),
        openai_style: matches!(
            provider,
            None | Some(Provider::OpenAi | Provider::OpenRouter | Provider::Venice)
        ),
        model_override: route.model.clone(),
        metered: true,
        auth,
    }
}

fn host_of(base: &str) -> String {
    base.parse::<Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_owned))
        .unwrap_or_default()
}
