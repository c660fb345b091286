//! `keyward serve --config FILE`: static config mode (seed 003). The data plane runs from the
//! file's listeners and routes with no database, no tenants and no control API; audit records
//! go to a JSON-lines file (`keyward audit verify --file` checks it). The outbound flags
//! (`--upstream`, `--resolve`, `--upstream-ca`, `--allow-private-upstreams`, the timeouts)
//! apply as in server mode; `--api-listen`, `--proxy-listen` and `--public-url` do not.
//!
//! With `--data-dir`, keyward writes `server.json` there once every listener is bound
//! (`proxy_url` is the first listener, `listeners` all of them, `api_url` empty) and removes it
//! on exit, so scripts and tests can wait for it; nothing else is written to the data dir.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use keyward_audit::{AuditWriter, JsonlSink};
use keyward_proxy::static_mode::{Snapshot, StaticPlane};
use keyward_proxy::{DataPlane, Metrics};
use serde::Serialize;
use tokio::net::TcpListener;

use super::ServeArgs;
use crate::cli::GlobalArgs;
use crate::datadir::{self, SERVER_FILE};

/// `server.json` in static mode: the server mode's fields plus every listener.
#[derive(Serialize)]
struct StaticServerInfo {
    pid: u32,
    mode: &'static str,
    api_url: String,
    proxy_url: String,
    listeners: Vec<String>,
    config: PathBuf,
    audit_file: PathBuf,
}

pub async fn run(global: &GlobalArgs, args: &ServeArgs, config: &Path) -> anyhow::Result<ExitCode> {
    let proxy_config = args.outbound.to_config()?;
    let config = &std::path::absolute(config)
        .with_context(|| format!("cannot resolve {}", config.display()))?;
    let load_path = config.clone();
    let snapshot = tokio::task::spawn_blocking(move || Snapshot::load(&load_path))
        .await
        .context("loading the config")??;

    let audit_file = snapshot.audit_file.clone();
    let sink = JsonlSink::open(&audit_file)
        .await
        .with_context(|| format!("cannot open the audit file {}", audit_file.display()))?;
    let audit = AuditWriter::start(Arc::new(sink), Default::default());
    let data = DataPlane::without_vault(proxy_config, audit.clone(), Metrics::new())?;

    let mut bound = Vec::with_capacity(snapshot.listeners.len());
    for listener in &snapshot.listeners {
        let socket = TcpListener::bind(listener.bind)
            .await
            .with_context(|| format!("cannot listen on {}", listener.bind))?;
        bound.push(socket);
    }
    let urls = bound
        .iter()
        .map(|socket| socket.local_addr().map(|a| format!("http://{a}")))
        .collect::<Result<Vec<_>, _>>()?;
    let routes = snapshot.route_count();
    let plane = StaticPlane::new(data, snapshot);

    let server_file = match &global.data_dir {
        Some(dir) => Some(write_server_info(dir, config, &audit_file, &urls)?),
        None => None,
    };
    tracing::info!(
        config = %config.display(),
        listeners = ?urls,
        routes,
        audit_file = %audit_file.display(),
        "keyward listening (static config mode)"
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::with_capacity(bound.len() + 1);
    for (index, socket) in bound.into_iter().enumerate() {
        let serve = plane.clone().serve(index, socket, stop_rx.clone());
        tasks.push(tokio::spawn(serve));
    }
    tasks.push(tokio::spawn(
        plane.clone().watch(config.to_owned(), stop_rx),
    ));
    super::shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = task.await;
    }
    audit.flush_and_stop().await;
    if let Some(path) = server_file {
        let _ = std::fs::remove_file(path);
    }
    Ok(ExitCode::SUCCESS)
}

fn write_server_info(
    dir: &Path,
    config: &Path,
    audit_file: &Path,
    urls: &[String],
) -> anyhow::Result<PathBuf> {
    datadir::ensure(dir)?;
    let info = StaticServerInfo {
        pid: std::process::id(),
        mode: "static",
        api_url: String::new(),
        proxy_url: urls.first().cloned().unwrap_or_default(),
        listeners: urls.to_vec(),
        config: config.to_owned(),
        audit_file: audit_file.to_owned(),
    };
    let path = dir.join(SERVER_FILE);
    datadir::write_private(&path, &serde_json::to_vec(&info)?)?;
    Ok(path)
}
