//! Connecting to an upstream: resolve (operator `--resolve` entries first), refuse private
//! destinations for tenant-chosen hosts, dial the very address that was checked, then TLS with
//! ALPN. Plugged into hyper's pooled client as its connector.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::ip;

/// Why a connection could not be made. Never carries a credential.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("upstream URL has no host")]
    NoHost,
    #[error("upstream host did not resolve: {0}")]
    Dns(String),
    #[error("upstream host resolves to a private, loopback or link-local address")]
    PrivateDestination,
    #[error("connection refused or failed: {0}")]
    Io(#[from] io::Error),
    #[error("connecting timed out")]
    Timeout,
    #[error("TLS handshake failed: {0}")]
    Tls(String),
}

/// Operator-given `--resolve HOST:PORT=IP:PORT` entries.
pub type ResolveMap = HashMap<(String, u16), SocketAddr>;

#[derive(Clone)]
pub struct Connector {
    inner: Arc<ConnectorInner>,
}

struct ConnectorInner {
    tls: Arc<ClientConfig>,
    resolve: Arc<ResolveMap>,
    /// Refuse private destinations (tenant-chosen hosts without `--allow-private-upstreams`).
    guard: bool,
    connect_timeout: Duration,
}

impl Connector {
    pub fn new(
        tls: Arc<ClientConfig>,
        resolve: Arc<ResolveMap>,
        guard: bool,
        connect_timeout: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(ConnectorInner {
                tls,
                resolve,
                guard,
                connect_timeout,
            }),
        }
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = UpstreamIo;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<UpstreamIo, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let timeout = inner.connect_timeout;
            tokio::time::timeout(timeout, connect(inner, uri))
                .await
                .map_err(|_| ConnectError::Timeout)?
        })
    }
}

/// Resolve `host:port` to the addresses that may be dialed.
pub async fn resolve(
    resolve_map: &ResolveMap,
    guard: bool,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, ConnectError> {
    if let Some(addr) = resolve_map.get(&(host.to_ascii_lowercase(), port)) {
        // Operator-given targets are trusted as given, private or not.
        return Ok(vec![*addr]);
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| ConnectError::Dns(e.kind().to_string()))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(ConnectError::Dns("no addresses".into()));
    }
    if guard {
        let allowed: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| !ip::is_refused(a.ip()))
            .collect();
        if allowed.is_empty() {
            return Err(ConnectError::PrivateDestination);
        }
        return Ok(allowed);
    }
    Ok(addrs)
}

/// Dial the first address that answers.
pub async fn dial(addrs: &[SocketAddr]) -> Result<TcpStream, ConnectError> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(ConnectError::Io(last.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, "no address to dial")
    })))
}

async fn connect(inner: Arc<ConnectorInner>, uri: Uri) -> Result<UpstreamIo, ConnectError> {
    let host = uri.host().ok_or(ConnectError::NoHost)?;
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let addrs = resolve(&inner.resolve, inner.guard, host, port).await?;
    let tcp = dial(&addrs).await?;
    if !https {
        return Ok(UpstreamIo {
            io: TokioIo::new(Stream::Plain(tcp)),
            h2: false,
        });
    }
    let name = ServerName::try_from(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
    )
    .map_err(|e| ConnectError::Tls(e.to_string()))?;
    let tls = tokio_rustls::TlsConnector::from(inner.tls.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| ConnectError::Tls(e.to_string()))?;
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    Ok(UpstreamIo {
        io: TokioIo::new(Stream::Tls(Box::new(tls))),
        h2,
    })
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A connected upstream stream, plain or TLS, telling hyper whether ALPN chose HTTP/2.
pub struct UpstreamIo {
    io: TokioIo<Stream>,
    h2: bool,
}

impl Connection for UpstreamIo {
    fn connected(&self) -> Connected {
        if self.h2 {
            Connected::new().negotiated_h2()
        } else {
            Connected::new()
        }
    }
}

impl Read for UpstreamIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl Write for UpstreamIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
