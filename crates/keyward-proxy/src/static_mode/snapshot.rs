//! One loaded config: the file's listeners and routes with every key read, checked as a whole
//! (no duplicate binds or paths). Built from scratch on each load; calls use whichever
//! snapshot was current when they arrived.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use keyward_core::providers::{self, AuthStyle, BuiltinRule, Provider};
use sha2::{Digest, Sha256};

use super::error::StaticConfigError;
use super::keys::KeyCell;
use super::model::{Auth, Client, FileConfig, KeySpec, ProviderKind, RouteConfig};
use super::parse;

/// The default audit file, next to the config file.
pub const DEFAULT_AUDIT_FILE: &str = "audit.jsonl";

pub struct Snapshot {
    /// In file order; a listener task serves the entry at its index.
    pub listeners: Vec<ListenerRoutes>,
    /// Fixed at start: a reload that changes it is refused.
    pub audit_file: PathBuf,
    /// SHA-256 of the file's bytes this snapshot was loaded from.
    pub digest: [u8; 32],
}

pub struct ListenerRoutes {
    pub bind: SocketAddr,
    /// Longest path first, so the most specific prefix wins.
    pub routes: Vec<StaticRoute>,
}

/// Where a route's calls go.
#[derive(Debug, Clone)]
pub enum Upstream {
    Builtin(&'static BuiltinRule),
    /// An OpenAI-compatible endpoint the config names.
    Custom(String),
}

pub enum RouteAuth {
    Key(KeyCell),
    Passthrough,
}

pub struct StaticRoute {
    /// The prefix, without a trailing slash (empty for `/`).
    pub path: String,
    /// `BIND` + path, the `session` of the route's audit records.
    pub label: String,
    pub upstream: Upstream,
    pub model: Option<String>,
    pub auth: RouteAuth,
    /// `None`: any client may call.
    pub clients: Option<Vec<Client>>,
}

impl ListenerRoutes {
    /// The route whose prefix `path` falls under, and the rest of the path after it.
    pub fn find<'p>(&self, path: &'p str) -> Option<(&StaticRoute, &'p str)> {
        self.routes.iter().find_map(|route| {
            let rest = path.strip_prefix(route.path.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then_some((route, rest))
        })
    }
}

impl Snapshot {
    /// Read, parse and load `path`: every key is read now, so a missing variable or key file
    /// refuses the whole file.
    pub fn load(path: &Path) -> Result<Self, StaticConfigError> {
        let bytes = std::fs::read(path).map_err(|error| StaticConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::from_bytes(path, &bytes)
    }

    /// Parse and load `bytes`, the contents of `path`.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, StaticConfigError> {
        let text = std::str::from_utf8(bytes).map_err(|e| StaticConfigError::Read {
            path: path.to_owned(),
            error: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        let config = parse::parse(path, text)?;
        Self::from_config(path, config, Sha256::digest(bytes).into())
    }

    fn from_config(
        path: &Path,
        config: FileConfig,
        digest: [u8; 32],
    ) -> Result<Self, StaticConfigError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        if config.listeners.is_empty() {
            return Err(StaticConfigError::NoListeners {
                path: path.to_owned(),
            });
        }
        let mut binds = HashSet::new();
        let mut listeners = Vec::with_capacity(config.listeners.len());
        for listener in config.listeners {
            let bind = listener.bind.0;
            // Port 0 (any free port, as tests use) may repeat.
            if bind.port() != 0 && !binds.insert(bind) {
                return Err(StaticConfigError::DuplicateBind {
                    path: path.to_owned(),
                    bind: bind.to_string(),
                });
            }
            let mut paths = HashSet::new();
            let mut routes = Vec::with_capacity(listener.routes.len());
            for route in listener.routes {
                if !paths.insert(route.path.0.clone()) {
                    return Err(StaticConfigError::DuplicatePath {
                        path: path.to_owned(),
                        bind: bind.to_string(),
                        route_path: display_path(&route.path.0).to_owned(),
                    });
                }
                routes.push(load_route(dir, bind, route)?);
            }
            routes.sort_by_key(|r| std::cmp::Reverse(r.path.len()));
            listeners.push(ListenerRoutes { bind, routes });
        }
        let audit_file = config
            .audit
            .map_or_else(|| PathBuf::from(DEFAULT_AUDIT_FILE), |a| a.file);
        Ok(Self {
            listeners,
            audit_file: dir.join(audit_file),
            digest,
        })
    }

    pub fn binds(&self) -> Vec<SocketAddr> {
        self.listeners.iter().map(|l| l.bind).collect()
    }

    pub fn route_count(&self) -> usize {
        self.listeners.iter().map(|l| l.routes.len()).sum()
    }
}

fn display_path(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

fn load_route(
    dir: &Path,
    bind: SocketAddr,
    route: RouteConfig,
) -> Result<StaticRoute, StaticConfigError> {
    let label = format!("{bind}{}", display_path(&route.path.0));
    let (upstream, style) = match route.backend.provider {
        ProviderKind::Custom => (
            Upstream::Custom(route.backend.base_url.clone().unwrap_or_default()),
            AuthStyle::Bearer,
        ),
        kind => {
            let rule = providers::rule_for_provider(builtin(kind));
            (Upstream::Builtin(rule), rule.auth)
        }
    };
    let auth = match route.auth {
        Auth::Passthrough => RouteAuth::Passthrough,
        Auth::Key(KeySpec::Env(var)) => RouteAuth::Key(KeyCell::from_env(&var, style, &label)?),
        Auth::Key(KeySpec::File(file)) => {
            RouteAuth::Key(KeyCell::from_file(&dir.join(file), style, &label)?)
        }
        Auth::Key(KeySpec::Inline(secret)) => {
            tracing::warn!(
                route = %label,
                "inline key in the config file: anyone who can read the file has it; prefer \
                 key: \"$ENV_VAR\" or key: {{ file: PATH }}"
            );
            RouteAuth::Key(KeyCell::inline(&secret, style, &label)?)
        }
    };
    let source = match &auth {
        RouteAuth::Key(cell) => cell.origin().label(),
        RouteAuth::Passthrough => "passthrough".to_owned(),
    };
    tracing::info!(route = %label, upstream = upstream_name(&upstream), key = %source, "route loaded");
    Ok(StaticRoute {
        path: route.path.0,
        label,
        upstream,
        model: route.backend.model,
        auth,
        clients: route.clients.map(|c| c.0),
    })
}

fn upstream_name(upstream: &Upstream) -> &'static str {
    match upstream {
        Upstream::Builtin(rule) => rule.route,
        Upstream::Custom(_) => "custom",
    }
}

fn builtin(kind: ProviderKind) -> Provider {
    match kind {
        ProviderKind::Anthropic => Provider::Anthropic,
        ProviderKind::OpenRouter => Provider::OpenRouter,
        ProviderKind::Venice => Provider::Venice,
        ProviderKind::Gemini => Provider::Gemini,
        ProviderKind::OpenAi | ProviderKind::Custom => Provider::OpenAi,
    }
}
