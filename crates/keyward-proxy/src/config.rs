//! The data plane's settings, parsed once from the command line ("parse, don't validate").

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::upstream::ResolveMap;

/// Why a flag value was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyConfigError {
    #[error("--upstream expects NAME=URL with NAME one of anthropic, openai, openrouter, venice, gemini (got {0})")]
    Upstream(String),
    #[error("--resolve expects HOST:PORT=IP:PORT (got {0})")]
    Resolve(String),
    #[error("invalid duration {0}: give whole seconds (e.g. 30) or a unit (30s, 5m)")]
    Duration(String),
    #[error("cannot use --upstream-ca {0}: {1}")]
    UpstreamCa(String, String),
    #[error("TLS setup failed: {0}")]
    Tls(String),
}

#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// `--upstream NAME=URL`: replaces a provider's whole base URL (trusted as given).
    pub upstream_overrides: HashMap<String, String>,
    /// `--resolve HOST:PORT=IP:PORT` (trusted as given).
    pub resolve: ResolveMap,
    /// `--upstream-ca FILE`: extra trusted roots for upstream TLS.
    pub upstream_cas: Vec<PathBuf>,
    /// `--allow-private-upstreams`: let tenant-chosen hosts resolve to private addresses.
    pub allow_private_upstreams: bool,
    pub connect_timeout: Duration,
    /// Until the response head arrives (reasoning models are slow).
    pub first_byte_timeout: Duration,
    /// Between two body chunks.
    pub idle_timeout: Duration,
    /// Largest request body that is read whole (for model override and metering).
    pub max_buffered_body: usize,
    /// End a session as soon as it sends a placeholder to a foreign host.
    pub end_session_on_exfiltration: bool,
    /// What calls cost (`--prices FILE`, else the built-in table).
    pub prices: Arc<crate::prices::PriceTable>,
    /// The keyless free tier (`--free-tier FILE`).
    pub free_tier: Option<Arc<crate::free_tier::FreeTier>>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            upstream_overrides: HashMap::new(),
            resolve: ResolveMap::new(),
            upstream_cas: Vec::new(),
            allow_private_upstreams: false,
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(300),
            max_buffered_body: 64 * 1024 * 1024,
            end_session_on_exfiltration: false,
            prices: Arc::default(),
            free_tier: None,
        }
    }
}

const PROVIDER_NAMES: &[&str] = &["anthropic", "openai", "openrouter", "venice", "gemini"];

/// `NAME=URL` of `--upstream`.
pub fn parse_upstream(raw: &str) -> Result<(String, String), ProxyConfigError> {
    let bad = || ProxyConfigError::Upstream(raw.to_owned());
    let (name, url) = raw.split_once('=').ok_or_else(bad)?;
    let name = name.trim().to_ascii_lowercase();
    if !PROVIDER_NAMES.contains(&name.as_str()) {
        return Err(bad());
    }
    let uri: http::Uri = url.trim().parse().map_err(|_| bad())?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(bad());
    }
    Ok((name, url.trim().trim_end_matches('/').to_owned()))
}

/// `HOST:PORT=IP:PORT` of `--resolve`, like curl's.
pub fn parse_resolve(raw: &str) -> Result<((String, u16), SocketAddr), ProxyConfigError> {
    let bad = || ProxyConfigError::Resolve(raw.to_owned());
    let (from, to) = raw.split_once('=').ok_or_else(bad)?;
    let (host, port) = from.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let target: SocketAddr = to.trim().parse().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok(((host.to_ascii_lowercase(), port), target))
}

/// Whole seconds (`30`) or a number with `ms`, `s`, `m` or `h`.
pub fn parse_duration(raw: &str) -> Result<Duration, ProxyConfigError> {
    let bad = || ProxyConfigError::Duration(raw.to_owned());
    let text = raw.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(bad)?),
        "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(bad)?),
        _ => return Err(bad()),
    };
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse() {
        assert_eq!(
            parse_upstream("openai=http://127.0.0.1:9000/").unwrap(),
            ("openai".into(), "http://127.0.0.1:9000".into())
        );
        assert!(parse_upstream("nope=http://x").is_err());
        assert!(parse_upstream("openai=ftp://x").is_err());
        let ((h, p), a) = parse_resolve("API.openai.com:443=127.0.0.1:9443").unwrap();
        assert_eq!((h.as_str(), p, a.port()), ("api.openai.com", 443, 9443));
        assert!(parse_resolve("api.openai.com=127.0.0.1:1").is_err());
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("2d").is_err());
    }
}
