//! Accepting connections on the data-plane listener: HTTP/1.1 and HTTP/2 (prior knowledge) on
//! one port, each connection on its own task, graceful shutdown that lets streams finish.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::error::ProxyError;
use crate::upstream::BoxError;
use crate::{forward_proxy, gateway, DataPlane, ResBody};

/// How long shutdown waits for open streams.
const DRAIN: Duration = Duration::from_secs(10);

pub async fn serve(
    plane: Arc<DataPlane>,
    listener: TcpListener,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    serve_with(listener, stop, move |req| dispatch(plane.clone(), req)).await;
}

/// The accept loop with any request handler (static config mode brings its own).
pub async fn serve_with<H, F>(
    listener: TcpListener,
    mut stop: tokio::sync::watch::Receiver<bool>,
    handler: H,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<ResBody>> + Send + 'static,
{
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let mut stopped = std::pin::pin!(async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    });
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let handler = handler.clone();
                let service = service_fn(move |req| {
                    let response = handler(req);
                    async move { Ok::<_, Infallible>(response.await) }
                });
                let conn = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            () = &mut stopped => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
}

async fn dispatch(plane: Arc<DataPlane>, req: Request<Incoming>) -> Response<ResBody> {
    if req.method() == http::Method::CONNECT {
        return forward_proxy::connect(plane, req).await;
    }
    // An absolute-form target (`GET http://host/…`) is a forward-proxy request, whatever its
    // path. HTTP/2 always carries scheme and authority, so there only CONNECT proxies.
    let http1 = matches!(
        req.version(),
        http::Version::HTTP_10 | http::Version::HTTP_11
    );
    if http1 && req.uri().scheme().is_some() {
        return forward_proxy::absolute(plane, req).await;
    }
    match req.uri().path() {
        "/healthz" => json(StatusCode::OK, r#"{"status":"ok"}"#),
        "/readyz" => {
            if plane.audit.reserve().is_ok() {
                json(StatusCode::OK, r#"{"status":"ready"}"#)
            } else {
                ProxyError::AuditUnavailable.response()
            }
        }
        _ => gateway::handle(plane, req).await,
    }
}

/// A small JSON answer (health checks).
pub fn json(status: StatusCode, body: &'static str) -> Response<ResBody> {
    let mut response = Response::new(
        Full::new(Bytes::from_static(body.as_bytes()))
            .map_err(|never| -> BoxError { match never {} })
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
