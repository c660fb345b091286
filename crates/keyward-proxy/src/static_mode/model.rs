//! The config file's shape, as serde reads it. Every rule that can be checked on one node is
//! checked while deserialising (`try_from`), so a bad value is reported by the YAML or TOML
//! reader with its line and column. Unknown fields are refused everywhere.
//!
//! ```yaml
//! listeners:
//!   - bind: 127.0.0.1:3000
//!     routes:
//!       - path: /openai
//!         backend: { provider: openai, model: gpt-4o-mini }
//!         auth: { key: "$OPENAI_API_KEY" }     # or "sk-…", { file: key.txt }, passthrough: true
//!         clients: [ { token_sha256: "<hex>", name: alice } ]
//! audit: { file: audit.jsonl }
//! ```

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use keyward_crypto::Secret;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listeners: Vec<ListenerConfig>,
    #[serde(default)]
    pub audit: Option<AuditConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// JSON-lines audit file, relative to the config file's folder.
    pub file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    pub bind: Bind,
    pub routes: Vec<RouteConfig>,
}

/// `IP:PORT` or `localhost:PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Bind(pub SocketAddr);

impl TryFrom<String> for Bind {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        if let Ok(addr) = raw.parse() {
            return Ok(Bind(addr));
        }
        raw.strip_prefix("localhost:")
            .and_then(|port| port.parse::<u16>().ok())
            .map(|port| Bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))))
            .ok_or_else(|| "bind must be IP:PORT or localhost:PORT".to_owned())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub path: RoutePath,
    pub backend: Backend,
    pub auth: Auth,
    /// Absent: any client that reaches the listener may call the route.
    #[serde(default)]
    pub clients: Option<Clients>,
}

/// A path prefix such as `/openai`; stored without its trailing slash (`/` becomes empty).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct RoutePath(pub String);

impl TryFrom<String> for RoutePath {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        if !raw.starts_with('/') {
            return Err("path must start with /".into());
        }
        if raw.contains(['?', '#', ' ']) || raw.contains("//") {
            return Err("path must be a plain path prefix such as /openai".into());
        }
        let path = raw.trim_end_matches('/').to_owned();
        if path == "/healthz" {
            return Err("/healthz is keyward's own health check".into());
        }
        Ok(RoutePath(path))
    }
}

/// The provider kinds of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Anthropic,
    #[serde(rename = "openai")]
    OpenAi,
    #[serde(rename = "openrouter")]
    OpenRouter,
    Venice,
    Gemini,
    /// Any OpenAI-compatible endpoint, at `base_url`.
    Custom,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackend {
    provider: ProviderKind,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    base_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawBackend")]
pub struct Backend {
    pub provider: ProviderKind,
    /// Overrides the `model` of every JSON request body.
    pub model: Option<String>,
    /// `custom` only, without a trailing slash.
    pub base_url: Option<String>,
}

impl TryFrom<RawBackend> for Backend {
    type Error = String;

    fn try_from(raw: RawBackend) -> Result<Self, String> {
        if raw.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
            return Err("model must not be empty (leave it out to keep the request's)".into());
        }
        if raw.provider == ProviderKind::Gemini && raw.model.is_some() {
            return Err("gemini takes its model from the URL path: model cannot be set".into());
        }
        let base_url = match (raw.provider, raw.base_url) {
            (ProviderKind::Custom, Some(url)) => Some(check_base_url(&url)?),
            (ProviderKind::Custom, None) => {
                return Err("provider custom needs base_url: https://…".into())
            }
            (_, Some(_)) => {
                return Err(
                    "base_url is only for provider custom (a built-in provider is \
                            redirected with --upstream NAME=URL)"
                        .into(),
                )
            }
            (_, None) => None,
        };
        Ok(Backend {
            provider: raw.provider,
            model: raw.model,
            base_url,
        })
    }
}

/// `https://…`, or `http://` to a loopback host (a local model server).
fn check_base_url(raw: &str) -> Result<String, String> {
    let bad = || "base_url must be an https:// URL (http:// only to localhost)".to_owned();
    let url = raw.trim().trim_end_matches('/');
    let uri: http::Uri = url.parse().map_err(|_| bad())?;
    let host = uri.host().ok_or_else(bad)?;
    if uri.query().is_some() {
        return Err("base_url must not have a query".into());
    }
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match uri.scheme_str() {
        Some("https") => Ok(url.to_owned()),
        Some("http") if loopback => Ok(url.to_owned()),
        _ => Err(bad()),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    #[serde(default)]
    key: Option<KeySpec>,
    #[serde(default)]
    passthrough: bool,
}

/// Where the upstream credential comes from.
#[derive(Debug, Deserialize)]
#[serde(try_from = "RawAuth")]
pub enum Auth {
    Key(KeySpec),
    /// Forward the client's own credential headers as they are.
    Passthrough,
}

impl TryFrom<RawAuth> for Auth {
    type Error = &'static str;

    fn try_from(raw: RawAuth) -> Result<Self, Self::Error> {
        match (raw.key, raw.passthrough) {
            (Some(key), false) => Ok(Auth::Key(key)),
            (None, true) => Ok(Auth::Passthrough),
            (Some(_), true) => Err("auth takes either key or passthrough: true, not both"),
            (None, false) => Err(
                "auth needs key (\"$ENV_VAR\", an inline key or { file: PATH }) \
                                  or passthrough: true",
            ),
        }
    }
}

/// `key:` — `"$VAR"` / `"${VAR}"`, an inline value, or `{ file: PATH }`.
pub enum KeySpec {
    Inline(Secret),
    Env(String),
    File(PathBuf),
}

impl fmt::Debug for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySpec::Inline(_) => f.write_str("Inline([REDACTED])"),
            KeySpec::Env(name) => write!(f, "Env({name})"),
            KeySpec::File(path) => write!(f, "File({})", path.display()),
        }
    }
}

/// `$NAME` or `${NAME}` with an environment-variable name, or `None` if `raw` is no reference.
pub(crate) fn env_reference(raw: &str) -> Option<Result<&str, &'static str>> {
    let rest = raw.strip_prefix('$')?;
    let name = match rest.strip_prefix('{') {
        Some(inner) => inner.strip_suffix('}').unwrap_or(""),
        None => rest,
    };
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    Some(if valid {
        Ok(name)
    } else {
        Err("a key starting with $ must name an environment variable: \"$NAME\" or \"${NAME}\"")
    })
}

impl<'de> Deserialize<'de> for KeySpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KeySpecVisitor)
    }
}

struct KeySpecVisitor;

impl<'de> Visitor<'de> for KeySpecVisitor {
    type Value = KeySpec;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"$ENV_VAR\", an inline key, or { file: PATH }")
    }

    fn visit_str<E: de::Error>(self, raw: &str) -> Result<KeySpec, E> {
        match env_reference(raw) {
            Some(Ok(name)) => Ok(KeySpec::Env(name.to_owned())),
            Some(Err(message)) => Err(E::custom(message)),
            None if raw.trim().is_empty() => Err(E::custom("key must not be empty")),
            None => Ok(KeySpec::Inline(Secret::from_string(raw.trim().to_owned()))),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeySpec, A::Error> {
        let mut file: Option<PathBuf> = None;
        while let Some(field) = map.next_key::<String>()? {
            if field != "file" {
                return Err(de::Error::unknown_field(&field, &["file"]));
            }
            if file.is_some() {
                return Err(de::Error::duplicate_field("file"));
            }
            let path: PathBuf = map.next_value()?;
            if path.as_os_str().is_empty() {
                return Err(de::Error::custom("file must name a file"));
            }
            file = Some(path);
        }
        file.map(KeySpec::File)
            .ok_or_else(|| de::Error::missing_field("file"))
    }
}

/// The clients allowed on a route (at least one).
#[derive(Debug, Deserialize)]
#[serde(try_from = "Vec<Client>")]
pub struct Clients(pub Vec<Client>);

impl TryFrom<Vec<Client>> for Clients {
    type Error = &'static str;

    fn try_from(list: Vec<Client>) -> Result<Self, Self::Error> {
        if list.is_empty() {
            return Err(
                "clients is empty: list client tokens, or leave clients out to let \
                        any client call",
            );
        }
        Ok(Clients(list))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    token_sha256: String,
    #[serde(default)]
    name: Option<String>,
}

/// One allowed client: the SHA-256 of the token it sends (as `Authorization: Bearer`,
/// `x-api-key`, `api-key` or `x-goog-api-key`), and a name for the audit log.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawClient")]
pub struct Client {
    pub token_sha256: [u8; 32],
    pub name: Option<String>,
}

impl TryFrom<RawClient> for Client {
    type Error = &'static str;

    fn try_from(raw: RawClient) -> Result<Self, Self::Error> {
        let mut digest = [0u8; 32];
        let hex = raw.token_sha256.trim().as_bytes();
        let nibble = |c: u8| {
            char::from(c)
                .to_digit(16)
                .and_then(|d| u8::try_from(d).ok())
        };
        let valid = hex.len() == 64
            && hex.chunks(2).zip(digest.iter_mut()).all(|(pair, out)| {
                match (nibble(pair[0]), pair.get(1).copied().and_then(nibble)) {
                    (Some(hi), Some(lo)) => {
                        *out = hi << 4 | lo;
                        true
                    }
                    _ => false,
                }
            });
        if !valid {
            return Err(
                "token_sha256 must be 64 hex characters: the SHA-256 of the client's \
                        token (printf %s TOKEN | sha256sum)",
            );
        }
        Ok(Client {
            token_sha256: digest,
            name: raw.name.filter(|n| !n.trim().is_empty()),
        })
    }
}
