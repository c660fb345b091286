//! The HTTPS routes of the load generator: straight to a TLS server (the direct-tls baseline),
//! or through an HTTP proxy's `CONNECT` tunnel with TLS inside it (keyward's proxy mode). One
//! TCP connection, one tunnel and one TLS session per worker, kept alive like the others.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use base64::Engine as _;
use http::Uri;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Where the TCP connection of an HTTPS run goes.
#[derive(Debug, Clone)]
pub enum Via {
    /// Straight to this (loopback) address, e.g. the mock upstream's HTTPS port.
    Direct(SocketAddr),
    /// An HTTP proxy URL, `http://USER:PASSWORD@127.0.0.1:PORT` (loopback only); the
    /// credentials go in `Proxy-Authorization: Basic`.
    Proxy(String),
}

/// How to open one HTTPS connection.
pub struct TlsRoute {
    /// The TCP peer: the server itself or the proxy.
    pub addr: SocketAddr,
    server_name: ServerName<'static>,
    connector: TlsConnector,
    /// The whole `CONNECT` request head when going through a proxy.
    connect: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsRoute")
            .field("addr", &self.addr)
            .field("server_name", &self.server_name)
            .field("via_proxy", &self.connect.is_some())
            .finish()
    }
}

impl TlsRoute {
    /// `host`/`port`: the origin of the URL (SNI, certificate name, CONNECT target);
    /// `cacert`: the PEM file of the CA(s) to trust (nothing else is trusted).
    pub fn new(host: &str, port: u16, via: &Via, cacert: &Path) -> anyhow::Result<Self> {
        let server_name = ServerName::try_from(host.to_owned())
            .with_context(|| format!("{host} is not a valid TLS server name"))?;
        let connector = TlsConnector::from(client_config(cacert)?);
        let (addr, connect) = match via {
            Via::Direct(addr) => (*addr, None),
            Via::Proxy(url) => {
                let (addr, credentials) = parse_proxy(url)?;
                let mut head = format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n");
                if let Some(credentials) = credentials {
                    let basic = base64::engine::general_purpose::STANDARD.encode(credentials);
                    head.push_str(&format!("Proxy-Authorization: Basic {basic}\r\n"));
                }
                head.push_str("\r\n");
                (addr, Some(head.into_bytes()))
            }
        };
        anyhow::ensure!(
            addr.ip().is_loopback(),
            "the load generator only targets loopback"
        );
        Ok(TlsRoute {
            addr,
            server_name,
            connector,
            connect,
        })
    }

    /// TCP connect, the `CONNECT` exchange when proxied, then the TLS handshake.
    pub async fn open(&self) -> anyhow::Result<TlsStream<TcpStream>> {
        let mut stream = TcpStream::connect(self.addr).await?;
        stream.set_nodelay(true)?;
        if let Some(head) = &self.connect {
            stream.write_all(head).await?;
            read_connect_answer(&mut stream).await?;
        }
        let tls = self
            .connector
            .connect(self.server_name.clone(), stream)
            .await
            .context("TLS handshake")?;
        Ok(tls)
    }
}

/// Read the proxy's answer head to its blank line and require a 2xx. Nothing may follow it
/// before the client's TLS hello, so reading past the head is an error.
async fn read_connect_answer(stream: &mut TcpStream) -> anyhow::Result<()> {
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        anyhow::ensure!(n > 0, "the proxy closed the connection during CONNECT");
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            anyhow::ensure!(
                end + 4 == head.len(),
                "the proxy sent data after its CONNECT answer"
            );
            break;
        }
        anyhow::ensure!(head.len() <= 16 * 1024, "CONNECT answer head too long");
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next().unwrap_or_default();
    let status = status_line.split_whitespace().nth(1).unwrap_or_default();
    anyhow::ensure!(
        status.starts_with('2') && status.len() == 3,
        "CONNECT refused: {status_line}"
    );
    Ok(())
}

/// `http://[USER[:PASSWORD]@]HOST:PORT[/]` → the address (an IP literal or localhost) and
/// `USER:PASSWORD` (percent-decoded) when given.
fn parse_proxy(url: &str) -> anyhow::Result<(SocketAddr, Option<String>)> {
    let uri: Uri = url
        .parse()
        .with_context(|| format!("bad proxy URL {url}"))?;
    anyhow::ensure!(
        uri.scheme_str() == Some("http"),
        "the proxy URL must be http://"
    );
    let authority = uri.authority().context("the proxy URL has no host")?;
    let credentials = authority
        .as_str()
        .rsplit_once('@')
        .map(|(userinfo, _)| percent_decode(userinfo))
        .transpose()?;
    let host = authority.host();
    let ip = if host == "localhost" {
        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
    } else {
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .with_context(|| format!("proxy host {host} is not an IP address"))?
    };
    let port = authority.port_u16().unwrap_or(80);
    Ok((SocketAddr::new(ip, port), credentials))
}

fn percent_decode(raw: &str) -> anyhow::Result<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw
                .get(i + 1..i + 3)
                .context("bad percent-encoding in the proxy URL")?;
            out.push(u8::from_str_radix(hex, 16).context("bad percent-encoding")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).context("the proxy credentials are not UTF-8")
}

/// A ring-backed rustls client trusting only the CA(s) in `cacert`, ALPN http/1.1.
fn client_config(cacert: &Path) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cacert)
        .with_context(|| format!("cannot read {}", cacert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("bad PEM in {}", cacert.display()))?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in {}", cacert.display());
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots.add(cert)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("rustls protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proxy_urls() {
        let (addr, creds) = parse_proxy("http://kw:tok%2Fen@127.0.0.1:8421").unwrap();
        assert_eq!(addr, "127.0.0.1:8421".parse().unwrap());
        assert_eq!(creds.as_deref(), Some("kw:tok/en"));
        let (addr, creds) = parse_proxy("http://localhost:9/").unwrap();
        assert_eq!(addr, "127.0.0.1:9".parse().unwrap());
        assert!(creds.is_none());
        assert!(parse_proxy("https://127.0.0.1:9").is_err());
        assert!(parse_proxy("http://proxy.example:9").is_err());
    }
}
