//! What one load run sends: a parsed, loopback-only target and the request to repeat.
//! `http://` URLs go straight to their (loopback) host; `https://` ones need a [`Via`]: the
//! loopback address to connect to, or an HTTP proxy to tunnel through.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::Context;
use bytes::Bytes;
use http::header::{HeaderName, CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::Full;

use super::tls::{TlsRoute, Via};

/// The request every worker sends, over and over.
#[derive(Debug)]
pub struct Spec {
    pub addr: SocketAddr,
    /// HTTPS: how to open the connection (straight or through a proxy) and the TLS client.
    pub tls: Option<TlsRoute>,
    path: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Spec {
    /// Parse `url` (http, host 127.0.0.1, ::1 or localhost) and `Name: value` headers.
    pub fn new(url: &str, headers: &[String], body: Bytes) -> anyhow::Result<Self> {
        let uri: Uri = url.parse().with_context(|| format!("bad URL {url}"))?;
        anyhow::ensure!(
            uri.scheme_str() == Some("http"),
            "only http:// URLs are supported"
        );
        let authority = uri.authority().context("the URL has no host")?;
        let ip = match authority.host() {
            "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
            host => host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .with_context(|| format!("{host} is not a loopback address"))?,
        };
        anyhow::ensure!(ip.is_loopback(), "the load generator only targets loopback");
        let addr = SocketAddr::new(ip, authority.port_u16().unwrap_or(80));
        Self::build(&uri, addr, None, headers, body)
    }

    /// Parse `url` (https, any host name: it is the SNI, the certificate name and the `Host`)
    /// reached `via` a loopback address or proxy, trusting only the CA(s) in `cacert`.
    pub fn https(
        url: &str,
        headers: &[String],
        body: Bytes,
        via: &Via,
        cacert: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let uri: Uri = url.parse().with_context(|| format!("bad URL {url}"))?;
        anyhow::ensure!(
            uri.scheme_str() == Some("https"),
            "with --proxy, --connect-to or --cacert the URL must be https://"
        );
        let authority = uri.authority().context("the URL has no host")?;
        let route = TlsRoute::new(
            authority.host(),
            authority.port_u16().unwrap_or(443),
            via,
            cacert,
        )?;
        Self::build(&uri, route.addr, Some(route), headers, body)
    }

    fn build(
        uri: &Uri,
        addr: SocketAddr,
        tls: Option<TlsRoute>,
        headers: &[String],
        body: Bytes,
    ) -> anyhow::Result<Self> {
        let authority = uri.authority().context("the URL has no host")?;
        let path: Uri = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .context("bad path")?;

        let mut map = HeaderMap::new();
        map.insert(HOST, HeaderValue::from_str(authority.as_str())?);
        map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for raw in headers {
            let (name, value) = raw
                .split_once(':')
                .with_context(|| format!("header {raw:?} is not `Name: value`"))?;
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .with_context(|| format!("bad header name in {raw:?}"))?;
            map.insert(name, HeaderValue::from_str(value.trim())?);
        }
        Ok(Spec {
            addr,
            tls,
            path,
            headers: map,
            body,
        })
    }

    /// One request to send (cheap: the body and header values are shared).
    pub fn request(&self) -> anyhow::Result<Request<Full<Bytes>>> {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(self.path.clone())
            .body(Full::new(self.body.clone()))?;
        *req.headers_mut() = self.headers.clone();
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_loopback_only() {
        let ok = Spec::new(
            "http://127.0.0.1:9/openai/v1/chat/completions?x=1",
            &["Authorization: Bearer t".into()],
            Bytes::new(),
        )
        .unwrap();
        assert_eq!(ok.addr, "127.0.0.1:9".parse().unwrap());
        let req = ok.request().unwrap();
        assert_eq!(req.uri(), "/openai/v1/chat/completions?x=1");
        assert_eq!(req.headers()["authorization"], "Bearer t");
        assert_eq!(req.headers()["host"], "127.0.0.1:9");
        assert!(Spec::new("http://[::1]:9/", &[], Bytes::new()).is_ok());
        assert!(Spec::new("http://10.0.0.1:9/", &[], Bytes::new()).is_err());
        assert!(Spec::new("http://example.com/", &[], Bytes::new()).is_err());
        assert!(Spec::new("https://127.0.0.1/", &[], Bytes::new()).is_err());
    }
}
