//! The mock OpenAI upstream: answers `POST …/chat/completions` with one fixed `chat.completion`
//! (with `usage`, so keyward's metering does its real work) over HTTP/1.1 keep-alive. It checks
//! nothing — not even the key — because every microsecond it spends is charged to all three
//! targets alike and only blurs the comparison.
//!
//! With `--tls` it also serves the same over HTTPS (rustls, ring), HTTP/1.1 only, with a
//! certificate for `api.openai.com` signed by a CA minted at start (`--ca-out`): the upstream of
//! the proxy-mode rows, where keyward intercepts TLS on one side and calls TLS on the other.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
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
    /// Also serve HTTPS (certificate for api.openai.com) on --tls-listen; its address is the
    /// ready file's second line
    #[arg(long, requires = "ca_out")]
    pub tls: bool,
    /// Address of the HTTPS listener (port 0: any free port)
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub tls_listen: SocketAddr,
    /// Write the CA that signed the HTTPS certificate (PEM) here, for the clients to trust
    #[arg(long, value_name = "FILE")]
    pub ca_out: Option<PathBuf>,
}

/// The host name the HTTPS certificate is for.
pub const TLS_HOST: &str = "api.openai.com";

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
    let mut ready = addr.to_string();
    let mut tls = None;
    if args.tls {
        let ca_out = args.ca_out.as_deref().context("--tls needs --ca-out")?;
        let (ca_pem, config) = mint_tls()?;
        write_atomically(ca_out, &ca_pem)?;
        let tls_listener = TcpListener::bind(args.tls_listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.tls_listen))?;
        ready.push('\n');
        ready.push_str(&tls_listener.local_addr()?.to_string());
        tls = Some((tls_listener, tokio_rustls::TlsAcceptor::from(config)));
    }
    if let Some(path) = &args.ready_file {
        write_atomically(path, &ready)?;
    }
    println!("{ready}");
    match tls {
        None => serve(listener).await,
        Some((tls_listener, acceptor)) => {
            tokio::try_join!(serve(listener), serve_tls(tls_listener, acceptor))?;
            Ok(())
        }
    }
}

/// Accept TLS connections forever; one task per connection (the handshake included).
async fn serve_tls(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
) -> anyhow::Result<()> {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("keyward-bench upstream: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(stream).await else {
                return;
            };
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
    }
}

/// A fresh CA (returned as PEM) and a server config presenting a leaf for [`TLS_HOST`] it
/// signed; ring provider, ALPN http/1.1 only (so every client speaks HTTP/1.1 to it).
fn mint_tls() -> anyhow::Result<(String, Arc<rustls::ServerConfig>)> {
    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "keyward-bench upstream CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.use_authority_key_identifier_extension = true;
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .context("self-signing the CA")?;
    let ca_pem = ca_cert.pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().context("generating the leaf key")?;
    let mut leaf_params = CertificateParams::new(vec![TLS_HOST.to_owned()])?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, TLS_HOST);
    leaf_params.is_ca = IsCa::ExplicitNoCa;
    leaf_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.use_authority_key_identifier_extension = true;
    let leaf_cert = leaf_params
        .signed_by(&leaf_key, &issuer)
        .context("signing the leaf")?;

    let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone(), ca_cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("rustls protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("rustls server certificate")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((ca_pem, Arc::new(config)))
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

pub fn write_atomically(path: &std::path::Path, contents: &str) -> anyhow::Result<()> {
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
