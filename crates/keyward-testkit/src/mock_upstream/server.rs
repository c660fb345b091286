//! The accept loop and request handler of [`super::MockUpstream`].

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt as _;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::body::{ScriptBody, Step};
use super::responses::{self, classify, Endpoint};
use super::{lock, Behavior, RecordedRequest, Shared};

/// Pause between the two frames that split the key in [`Behavior::EchoAuthStreamSplit`],
/// and before a [`Behavior::ResetMidStream`] failure (so hyper flushes what came before).
const SPLIT_PAUSE: Duration = Duration::from_millis(20);

pub(super) async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    shared: Arc<Shared>,
) {
    // Connections live in this JoinSet: aborting the accept task drops (aborts) them all.
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let Ok((stream, _peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        conns.spawn(async move {
            match acceptor {
                Some(acceptor) => {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        serve(TokioIo::new(tls), shared).await;
                    }
                }
                None => serve(TokioIo::new(stream), shared).await,
            }
        });
    }
}

async fn serve<I>(io: I, shared: Arc<Shared>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| handle(shared.clone(), req));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let _ = builder.serve_connection(io, svc).await;
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<ScriptBody>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let v = json!({"error": format!("mock: reading request body: {e}")});
            return Ok(json_response(400, &v));
        }
    };
    let rec = RecordedRequest {
        method: parts.method.as_str().to_owned(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned()),
        version: format!("{:?}", parts.version),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (n.as_str().to_owned(), v)
            })
            .collect(),
        body: body.to_vec(),
    };
    lock(&shared.requests).push(rec.clone());
    let behavior = *lock(&shared.behavior);
    Ok(respond(&shared, &rec, behavior).await)
}

async fn respond(
    shared: &Shared,
    rec: &RecordedRequest,
    behavior: Behavior,
) -> Response<ScriptBody> {
    if let Behavior::Delay { first_byte } = behavior {
        tokio::time::sleep(first_byte).await;
    }
    let endpoint = classify(&rec.method, &rec.path);
    let req_json = rec.body_json().unwrap_or(Value::Null);
    let model = req_json
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock-model")
        .to_owned();
    let stream = req_json.get("stream").and_then(Value::as_bool) == Some(true);

    match behavior {
        Behavior::Status(code) => return json_response(code, &responses::status_json(code)),
        Behavior::EchoAuth => {
            let (name, value, key) = rec.credential().unwrap_or_default();
            let text = responses::echo_auth_body(&name, &value, &key);
            let mut resp = response(401, "application/json", ScriptBody::full(text));
            if let Ok(v) = hyper::header::HeaderValue::from_str(&value) {
                resp.headers_mut().insert("x-echo", v);
            }
            return resp;
        }
        Behavior::EchoAuthStreamSplit => {
            let key = rec.presented_key().unwrap_or_default();
            let events = responses::echo_split_sse(endpoint, &model, &key);
            return response(200, SSE, ScriptBody::new(paced(events, SPLIT_PAUSE)));
        }
        _ => {}
    }

    let expected = lock(&shared.expected_key).clone();
    if let Some(expected) = expected {
        if !rec.carries_key(&expected) {
            return json_response(401, &json!({"error": "mock: wrong key"}));
        }
    }

    let p = shared.prompt_tokens.load(Ordering::SeqCst);
    let c = shared.completion_tokens.load(Ordering::SeqCst);
    let (content_type, chunks) = match endpoint {
        Endpoint::OpenAiChat if stream => {
            let include_usage = req_json
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                == Some(true);
            (SSE, responses::openai_sse(&model, p, c, include_usage))
        }
        Endpoint::OpenAiChat => (JSON, json_chunks(&responses::openai_json(&model, p, c))),
        Endpoint::AnthropicMessages if stream => (SSE, responses::anthropic_sse(&model, p, c)),
        Endpoint::AnthropicMessages => {
            (JSON, json_chunks(&responses::anthropic_json(&model, p, c)))
        }
        Endpoint::Models => (JSON, json_chunks(&responses::models_json())),
        Endpoint::Other => (
            JSON,
            json_chunks(&responses::other_json(&rec.method, &rec.path)),
        ),
    };
    let steps = match behavior {
        Behavior::StallAfterFirstChunk { stall } => {
            let mut chunks = chunks.into_iter();
            let mut steps: Vec<Step> = chunks.next().map(Step::Data).into_iter().collect();
            steps.push(Step::Sleep(stall));
            steps.extend(paced(chunks.collect(), shared.chunk_delay));
            steps
        }
        Behavior::ResetMidStream => {
            let keep = chunks.len().saturating_sub(1).clamp(1, 2);
            let mut steps = paced(chunks.into_iter().take(keep).collect(), shared.chunk_delay);
            // Pause so hyper flushes what was sent before the failure drops the connection.
            steps.push(Step::Sleep(SPLIT_PAUSE));
            steps.push(Step::Fail);
            steps
        }
        _ if content_type == JSON => vec![Step::Data(chunks.concat().into())],
        _ => paced(chunks, shared.chunk_delay),
    };
    response(200, content_type, ScriptBody::new(steps))
}

const JSON: &str = "application/json";
const SSE: &str = "text/event-stream";

/// A JSON body as two halves, so stall/reset behaviours can cut it; joined again otherwise.
fn json_chunks(v: &Value) -> Vec<Bytes> {
    let bytes = Bytes::from(v.to_string());
    let mid = bytes.len() / 2;
    vec![bytes.slice(..mid), bytes.slice(mid..)]
}

fn paced(chunks: Vec<Bytes>, pause: Duration) -> Vec<Step> {
    let mut steps = Vec::with_capacity(chunks.len() * 2);
    for (i, chunk) in chunks.into_iter().enumerate() {
        if i > 0 && !pause.is_zero() {
            steps.push(Step::Sleep(pause));
        }
        steps.push(Step::Data(chunk));
    }
    steps
}

fn json_response(status: u16, v: &Value) -> Response<ScriptBody> {
    response(status, JSON, ScriptBody::full(v.to_string()))
}

fn response(status: u16, content_type: &'static str, body: ScriptBody) -> Response<ScriptBody> {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = resp.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    if content_type == SSE {
        headers.insert(
            hyper::header::CACHE_CONTROL,
            hyper::header::HeaderValue::from_static("no-cache"),
        );
    }
    headers.insert(
        "x-mock-upstream",
        hyper::header::HeaderValue::from_static("1"),
    );
    resp
}
