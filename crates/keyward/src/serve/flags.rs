//! The data plane's outbound flags, shared by API mode and (later) static config mode.

use std::path::PathBuf;
use std::time::Duration;

use keyward_proxy::config::{parse_duration, parse_resolve, parse_upstream};
use keyward_proxy::ProxyConfig;

#[derive(clap::Args, Debug, Clone)]
pub struct OutboundArgs {
    /// Replace a provider's base URL: NAME=URL (NAME: anthropic, openai, openrouter, venice,
    /// gemini). Trusted as given. Repeatable.
    #[arg(long = "upstream", value_name = "NAME=URL")]
    pub upstreams: Vec<String>,
    /// Resolve HOST:PORT to IP:PORT for every outbound call, like curl's --resolve. Trusted as
    /// given, even when private. Repeatable.
    #[arg(long = "resolve", value_name = "HOST:PORT=IP:PORT")]
    pub resolves: Vec<String>,
    /// Also trust this CA (PEM) for upstream TLS. Repeatable.
    #[arg(long = "upstream-ca", value_name = "FILE")]
    pub upstream_cas: Vec<PathBuf>,
    /// DANGEROUS: let tenant-chosen upstreams (LLM_BASE_URL, custom hosts) reach private,
    /// loopback and link-local addresses.
    #[arg(long)]
    pub allow_private_upstreams: bool,
    /// End a session as soon as it sends a credential placeholder to a foreign host
    #[arg(long)]
    pub end_session_on_exfiltration: bool,
    /// Seconds to connect to an upstream (a unit suffix such as 10s or 1m also works)
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = duration)]
    pub connect_timeout: Duration,
    /// Seconds to wait for an upstream's response head
    #[arg(long, value_name = "SECS", default_value = "600", value_parser = duration)]
    pub first_byte_timeout: Duration,
    /// Seconds a response may stall between two chunks
    #[arg(long, value_name = "SECS", default_value = "300", value_parser = duration)]
    pub idle_timeout: Duration,
    /// Price table replacing the built-in one: YAML, JSON or TOML mapping each model to USD per
    /// million tokens, {input, output, cache_read, cache_write} (optionally under `models:`)
    #[arg(long, value_name = "FILE")]
    pub prices: Option<PathBuf>,
}

fn duration(raw: &str) -> Result<Duration, String> {
    parse_duration(raw).map_err(|e| e.to_string())
}

impl OutboundArgs {
    pub fn to_config(&self) -> anyhow::Result<ProxyConfig> {
        let mut config = ProxyConfig {
            upstream_cas: self.upstream_cas.clone(),
            allow_private_upstreams: self.allow_private_upstreams,
            connect_timeout: self.connect_timeout,
            first_byte_timeout: self.first_byte_timeout,
            idle_timeout: self.idle_timeout,
            end_session_on_exfiltration: self.end_session_on_exfiltration,
            ..ProxyConfig::default()
        };
        if let Some(path) = &self.prices {
            let table = keyward_proxy::prices::PriceTable::from_path(path)?;
            tracing::info!(models = table.len(), file = %path.display(), "price table loaded");
            config.prices = std::sync::Arc::new(table);
        }
        for raw in &self.upstreams {
            let (name, url) = parse_upstream(raw)?;
            config.upstream_overrides.insert(name, url);
        }
        for raw in &self.resolves {
            let (key, addr) = parse_resolve(raw)?;
            config.resolve.insert(key, addr);
        }
        if self.allow_private_upstreams {
            tracing::warn!(
                "--allow-private-upstreams: tenant-chosen upstreams may reach private addresses"
            );
        }
        Ok(config)
    }
}
