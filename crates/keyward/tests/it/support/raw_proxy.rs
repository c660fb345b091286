//! Raw proxy requests: a CONNECT or an absolute-form request written by hand, so that a test
//! controls every byte of the head (no auth, odd auth, any authority) and reads the proxy's
//! own answer (a client library turns a refused CONNECT into an opaque error).

use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// `Basic base64(kw:token)`.
pub fn basic(token: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("kw:{token}"));
    format!("Basic {encoded}")
}

/// The head and body of a proxy's answer to a raw request.
#[derive(Debug)]
pub struct RawReply {
    pub status: u16,
    /// Header lines, lowercase names.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// Asserts status and `error.code`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:#?}");
        assert_eq!(self.json()["error"]["code"], code, "{self:#?}");
    }
}

/// Sends `CONNECT authority` (with `Proxy-Authorization: auth` when given) and reads the
/// answer's head (and body, unless 200). Returns the open stream for a tunnel.
pub async fn raw_connect(
    proxy: &str,
    authority: &str,
    auth: Option<&str>,
) -> anyhow::Result<(RawReply, TcpStream)> {
    let mut head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(auth) = auth {
        head.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    head.push_str("\r\n");
    raw_request(proxy, head.as_bytes()).await
}

/// Writes `request` to the proxy and reads one answer (head, then `content-length` bytes of
/// body, except for a 200 to CONNECT).
pub async fn raw_request(proxy: &str, request: &[u8]) -> anyhow::Result<(RawReply, TcpStream)> {
    let mut stream = TcpStream::connect(proxy).await?;
    stream.write_all(request).await?;
    let read = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = stream.read(&mut chunk).await?;
            anyhow::ensure!(n > 0, "proxy closed: {}", String::from_utf8_lossy(&buf));
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("status line: {head}"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = buf[end..].to_vec();
        if status != 200 {
            while body.len() < len {
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        }
        Ok::<_, anyhow::Error>(RawReply {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    };
    let reply = tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .context("no answer from the proxy")??;
    Ok((reply, stream))
}
