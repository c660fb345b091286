//! The mock OpenAI upstream: answers `POST …/chat/completions` with one fixed `chat.completion`
//! (with `usage`, so keyward's metering does its real work) over HTTP/1.1 keep-alive. It checks
//! nothing — not even the key — because every microsecond it spends is charged to all three
//! targets alike and only blurs the comparison.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on (port 0: any free port)
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Write the bound address to this file once listening (atomically: temp file, rename)
    #[arg(long, value_name = "FILE")]
    pub ready_file: Option<PathBuf>,
    /// Runtime worker threads
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// A realistic non-streaming reply (~400 bytes), `usage` included.
pub const COMPLETION: &str = concat!(
    r#"{"id":"chatcmpl-kwbench0000000000000000000000","object":"chat.completion","#,
    r#""created":1700000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"#,
    r#""message":{"role":"assistant","content":"Hello! This is a fixed reply from the "#,
    r#"keyward-bench mock upstream.","#,
    r#""refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"#,
    r#""completion_tokens":24,"total_tokens":36},"system_fingerprint":"fp_kwbench"}"#
);

const NOT_FOUND: &str = r#"{"error":{"message":"not found","type":"invalid_request_error"}}"#;

pub async fn run(args: Args) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    if let Some(path) = &args.ready_file {
        write_atomically(path, &addr.to_string())?;
    }
    println!("{addr}");
    serve(listener).await
}

/// Accept forever; one task per connection.
pub async fn serve(listener: TcpListener) -> anyhow::Result<()> {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                eprintln!("keyward-bench upstream: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
    }
}

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let found = req.method() == Method::POST && req.uri().path().ends_with("/chat/completions");
    // Read the request body to its end so the connection stays reusable.
    let _ = req.into_body().collect().await;
    let (status, body) = if found {
        (StatusCode::OK, COMPLETION)
    } else {
        (StatusCode::NOT_FOUND, NOT_FOUND)
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

fn write_atomically(path: &std::path::Path, contents: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::COMPLETION;

    #[test]
    fn completion_is_json_of_about_400_bytes_with_usage() {
        let v: serde_json::Value = serde_json::from_str(COMPLETION).unwrap();
        assert_eq!(v["usage"]["total_tokens"], 36);
        assert!(
            (380..=440).contains(&COMPLETION.len()),
            "{}",
            COMPLETION.len()
        );
    }
}
