//! `GET /v1/sessions/{id}/events`: a WebSocket on which a running session hears about
//! rotations of its bundles (seed 001's `config_update` frame) and about its own end.
//!
//! The vault's broadcast is subscribed to *before* the caller is authorised, so no event
//! that happens during the upgrade is missed; a receiver that falls behind is told that
//! everything may have changed rather than silently losing a frame.

use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use keyward_core::ErrorCode;
use keyward_vault::{BundleChanged, Session, Vault, VaultEvent};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;

use super::session_auth::authorize;
use crate::views::ErrorEnvelope;
use crate::{ApiError, AppState};

/// How often the server pings an idle socket, so dead peers are noticed and proxies keep
/// the connection open.
const PING_EVERY: Duration = Duration::from_secs(30);

/// Subscribe to a session's events (WebSocket). Frames:
/// `{"type":"system","event":"config_update","keys":[…]}` after a rotation of one of its
/// bundles, `{"type":"system","event":"session_ended"}` before the server closes.
#[utoipa::path(get, path = "/v1/sessions/{id}/events", tag = "sessions",
    security(("bearer" = [])), params(("id" = String, Path, description = "ses_…")),
    responses((status = 101, description = "WebSocket established"),
        (status = 400, body = ErrorEnvelope, description = "not a WebSocket upgrade"),
        (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn session_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let events = state.vault.subscribe();
    let reader = authorize(&state, &headers, &id).await?;
    let upgrade = upgrade.map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            "this endpoint is a WebSocket: send an Upgrade request",
        )
    })?;
    let vault = state.vault.clone();
    Ok(upgrade.on_upgrade(move |socket| pump(socket, vault, reader.session, events)))
}

fn system_frame(event: &str, keys: Option<&[String]>) -> Message {
    let mut frame = serde_json::json!({"type": "system", "event": event});
    if let Some(keys) = keys {
        frame["keys"] = serde_json::json!(keys);
    }
    Message::Text(frame.to_string().into())
}

/// What to do with one vault event.
enum Step {
    Send(Message),
    End,
    Nothing,
}

async fn pump(
    mut socket: WebSocket,
    vault: Vault,
    mut session: Session,
    mut events: Receiver<VaultEvent>,
) {
    if session.is_running() {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            let step = tokio::select! {
                event = events.recv() => on_event(&vault, &mut session, event).await,
                incoming = socket.recv() => match incoming {
                    // Pongs and client frames need no answer (axum answers pings).
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                    Some(Ok(_)) => Step::Nothing,
                },
                _ = ping.tick() => Step::Send(Message::Ping(Default::default())),
            };
            match step {
                Step::Send(message) => {
                    if socket.send(message).await.is_err() {
                        return;
                    }
                }
                Step::End => break,
                Step::Nothing => {}
            }
        }
    }
    let _ = socket.send(system_frame("session_ended", None)).await;
    let _ = socket.send(Message::Close(None)).await;
}

async fn on_event(
    vault: &Vault,
    session: &mut Session,
    event: Result<VaultEvent, RecvError>,
) -> Step {
    match event {
        Ok(VaultEvent::BundleChanged(change)) => on_bundle_change(vault, session, &change).await,
        Ok(VaultEvent::SessionEnded {
            tenant,
            session: id,
        }) if tenant == session.tenant && id == session.id => Step::End,
        Ok(VaultEvent::SessionEnded { .. }) => Step::Nothing,
        Err(RecvError::Lagged(_)) => on_lagged(vault, session).await,
        // The vault is gone: the server is shutting down.
        Err(RecvError::Closed) => Step::End,
    }
}

async fn on_bundle_change(vault: &Vault, session: &mut Session, change: &BundleChanged) -> Step {
    // Deletions are not rotations: a running session keeps the values it resolved (seed 001).
    if change.deleted || change.tenant != session.tenant || change.keys.is_empty() {
        return Step::Nothing;
    }
    if !session.uses_bundle(change.bundle) {
        // A resume may have pointed the session at a re-created bundle since it connected.
        match vault.get_session(session.tenant, &session.id).await {
            Ok(fresh) => *session = fresh,
            Err(_) => return Step::Nothing,
        }
        if !session.uses_bundle(change.bundle) {
            return Step::Nothing;
        }
    }
    Step::Send(system_frame("config_update", Some(&change.keys)))
}

/// Events were dropped: tell the agent every key may have changed (or that it ended).
async fn on_lagged(vault: &Vault, session: &mut Session) -> Step {
    tracing::warn!(
        session = session.id,
        "event socket fell behind; sending a full config_update"
    );
    let Ok(fresh) = vault.get_session(session.tenant, &session.id).await else {
        return Step::Nothing;
    };
    *session = fresh;
    if !session.is_running() {
        return Step::End;
    }
    match vault.resolve_session(session).await {
        Ok(resolved) => {
            let keys: Vec<String> = resolved.entries.iter().map(|e| e.name.clone()).collect();
            Step::Send(system_frame("config_update", Some(&keys)))
        }
        Err(_) => Step::Nothing,
    }
}
