//! `keyward serve`: initialise the data dir on first start, open the store, and run the control
//! API and the data plane until SIGTERM/SIGINT.

pub mod ca;
mod flags;
mod logging;
pub mod master_key;
mod static_config;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use keyward_api::{AppState, MasterKeyRotator};
use keyward_store::sqlite::SqliteStore;
use keyward_vault::Vault;
use tokio::net::TcpListener;

use crate::cli::GlobalArgs;
use crate::datadir::{self, ServerInfo, ADMIN_TOKEN_FILE, DATABASE_FILE, SERVER_FILE};
use logging::LogFormat;
use master_key::KeySource;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Static config mode: serve the listeners and routes of this YAML (or .toml) file, with no
    /// database and no control API. --api-listen, --proxy-listen and --public-url do not apply;
    /// the outbound flags do. The file is reloaded when it changes.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address of the control API
    #[arg(long, default_value = "127.0.0.1:8420", value_name = "ADDR")]
    pub api_listen: SocketAddr,
    /// Address of the data plane (gateway and proxy mode)
    #[arg(long, default_value = "127.0.0.1:8421", value_name = "ADDR")]
    pub proxy_listen: SocketAddr,
    /// Log format
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// URL agents reach the data plane at, put in session envs (default: http://PROXY_ADDR).
    /// Set it when keyward runs behind a load balancer or in a container.
    #[arg(long, value_name = "URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,
    /// Keyless free tier: a shared provider key (YAML, JSON or TOML: provider, key as "$ENV"
    /// or {file: PATH}, allowed_models, requests_per_minute per tenant) that sessions without a
    /// key of their own for that provider use
    #[arg(long, value_name = "FILE")]
    pub free_tier: Option<PathBuf>,
    #[command(flatten)]
    pub outbound: flags::OutboundArgs,
}

/// An http(s) URL without a trailing slash (SDK paths are appended to it).
fn parse_public_url(raw: &str) -> Result<String, String> {
    let url = raw.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("must start with http:// or https://")?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err("must name a host".into());
    }
    Ok(url.to_owned())
}

pub async fn run(global: &GlobalArgs, args: ServeArgs) -> anyhow::Result<ExitCode> {
    logging::init(args.log_format);
    if let Some(config) = &args.config {
        return static_config::run(global, &args, config).await;
    }
    let mut proxy_config = args.outbound.to_config()?;
    if let Some(path) = &args.free_tier {
        let tier = keyward_proxy::free_tier::FreeTier::from_path(path)?;
        tracing::info!(provider = ?tier.provider, rpm = tier.requests_per_minute, "free tier enabled");
        proxy_config.free_tier = Some(Arc::new(tier));
    }
    let dir = datadir::resolve(global.data_dir.as_deref())?;
    datadir::ensure(&dir)?;
    let (key, source) = master_key::load_or_create(&dir)?;
    datadir::create_private_file(&dir.join(DATABASE_FILE))?;
    let store = SqliteStore::open(&dir.join(DATABASE_FILE))
        .await
        .with_context(|| format!("cannot open the database in {}", dir.display()))?;
    let key = master_key::verify(&dir, &store, key, source).await?;
    let store = Arc::new(store);
    let vault = Vault::new(store.clone(), key);
    if let Some(issued) = vault.bootstrap().await? {
        let path = dir.join(ADMIN_TOKEN_FILE);
        datadir::write_private(&path, format!("{}\n", issued.token).as_bytes())?;
        // Shown once, on the terminal of whoever initialised the install.
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "keyward initialised {}.\nOperator token (shown once, saved to {}):\n{}",
            dir.display(),
            path.display(),
            issued.token
        )?;
    }

    let (minter, ca_pem) = ca::load_or_create(&dir, &vault).await?;

    let api_listener = TcpListener::bind(args.api_listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.api_listen))?;
    let proxy_listener = TcpListener::bind(args.proxy_listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.proxy_listen))?;
    let api_addr = api_listener.local_addr()?;
    let proxy_addr = proxy_listener.local_addr()?;

    let rotator = Arc::new(DataDirRotator {
        dir: dir.clone(),
        vault: vault.clone(),
        source,
    });
    let state = AppState {
        vault: vault.clone(),
        master_key_rotator: Some(rotator),
        audit_store: Some(store.clone()),
        data_plane_url: args
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{proxy_addr}")),
        ca_pem: Some(ca_pem),
        free_tier_provider: proxy_config.free_tier.as_ref().map(|t| t.provider),
    };
    // One audit record per data-plane call, group-committed to the store off the hot path.
    let audit = keyward_audit::AuditWriter::start(store.clone(), Default::default());
    let metrics = keyward_proxy::Metrics::new();
    let plane = keyward_proxy::DataPlane::new(
        proxy_config,
        vault.clone(),
        audit.clone(),
        metrics.clone(),
        Some(minter),
    )?;
    let api = keyward_api::router(state).route(
        "/metrics",
        axum::routing::get({
            let audit = audit.clone();
            move || async move {
                metrics.set_audit(audit.queue_depth(), audit.write_failures());
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.encode(),
                )
            }
        }),
    );

    let info = ServerInfo {
        pid: std::process::id(),
        api_url: format!("http://{api_addr}"),
        proxy_url: format!("http://{proxy_addr}"),
    };
    datadir::write_private(&dir.join(SERVER_FILE), &serde_json::to_vec(&info)?)?;
    tracing::info!(api = %api_addr, data_plane = %proxy_addr, data_dir = %dir.display(), "keyward listening");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let api_task = tokio::spawn(serve_until(api_listener, api, stop_rx.clone()));
    let proxy_task = tokio::spawn(keyward_proxy::server::serve(plane, proxy_listener, stop_rx));
    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = tokio::join!(api_task, proxy_task);
    audit.flush_and_stop().await;
    if datadir::read_server_info(&dir).is_some_and(|i| i.pid == std::process::id()) {
        let _ = std::fs::remove_file(dir.join(SERVER_FILE));
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve_until(
    listener: TcpListener,
    app: axum::Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let graceful = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(graceful)
        .await
    {
        tracing::error!(error = %e, "listener failed");
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

/// Online master-key rotation for `POST /v1/admin/rotate-master-key`.
struct DataDirRotator {
    dir: PathBuf,
    vault: Vault,
    source: KeySource,
}

#[async_trait::async_trait]
impl MasterKeyRotator for DataDirRotator {
    async fn rotate(&self) -> Result<(), keyward_api::RotateError> {
        if self.source == KeySource::Env {
            return Err(keyward_api::RotateError::Unsupported(
                "the master key comes from KEYWARD_MASTER_KEY, which keyward never writes, so it \
                 cannot be rotated in place"
                    .into(),
            ));
        }
        master_key::rotate(&self.dir, &self.vault, self.source)
            .await
            .map_err(|e| keyward_api::RotateError::Failed(format!("{e:#}")))
    }
}
