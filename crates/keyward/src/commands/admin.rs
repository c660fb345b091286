//! `keyward admin …`: operator maintenance.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use keyward_store::sqlite::SqliteStore;
use keyward_vault::Vault;
use serde_json::{json, Value};

use super::output;
use crate::cli::GlobalArgs;
use crate::client::{self, ApiClient, ClientError, ServerSource};
use crate::datadir::{self, DATABASE_FILE};
use crate::serve::master_key;

#[derive(clap::Subcommand, Debug)]
pub enum AdminCmd {
    /// Generate a new master key and re-wrap every tenant key under it
    #[command(
        long_about = "Generate a new master key and re-wrap every tenant key under it.\n\n\
        If a server runs on the data dir (its server.json names an API that answers), the \
        server rotates online, without downtime (operator token). Otherwise the data dir is \
        rotated offline. Secret values are not re-encrypted: they are sealed by tenant keys, \
        which stay the same. A crash at any point leaves a key that opens the data."
    )]
    RotateMasterKey,
}

pub async fn run(global: &GlobalArgs, cmd: AdminCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        AdminCmd::RotateMasterKey => rotate_master_key(global).await,
    }
}

async fn rotate_master_key(global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let dir = client::data_dir(global)?;
    let (url, source) = client::server_url(global, &dir);
    let answer = match source {
        ServerSource::Flag => Some(online(global, &dir, &url).await?),
        ServerSource::ServerFile => match online(global, &dir, &url).await {
            Ok(answer) => Some(answer),
            Err(e) if is_unreachable(&e) => {
                // server.json outlived its server (kill -9, crash) unless that process lives.
                if let Some(pid) = datadir::read_server_info(&dir)
                    .map(|info| info.pid)
                    .filter(|pid| process_alive(*pid))
                {
                    anyhow::bail!(
                        "{} names a running process (pid {pid}) whose API at {url} does not \
                         answer; stop that server before rotating offline (or delete the stale \
                         server.json if pid {pid} is not keyward)",
                        dir.join(datadir::SERVER_FILE).display()
                    );
                }
                None
            }
            Err(e) => return Err(e),
        },
        ServerSource::Default => None,
    };
    let (answer, how) = match answer {
        Some(answer) => (answer, format!("by the server at {url}")),
        None => {
            offline(&dir).await?;
            (
                json!({ "status": "rotated" }),
                format!("offline in {}", dir.display()),
            )
        }
    };
    if global.json {
        output::json(&answer)?;
    } else {
        output::emit(&format!("Master key rotated {how}.\n"))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn is_unreachable(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<ClientError>(),
        Some(ClientError::Unreachable { .. })
    )
}

async fn online(global: &GlobalArgs, dir: &Path, url: &str) -> anyhow::Result<Value> {
    let client = ApiClient::new(url, client::token(global, dir)?)?;
    Ok(client
        .post(&["v1", "admin", "rotate-master-key"], &json!({}))
        .await?)
}

/// Rotate with no server running: open the store, check the key, rotate. Never creates a key
/// or a database.
async fn offline(dir: &Path) -> anyhow::Result<()> {
    let db = dir.join(DATABASE_FILE);
    if !std::fs::metadata(&db).is_ok_and(|m| m.is_file() && m.len() > 0) {
        anyhow::bail!(
            "no keyward database in {} and no server to ask: nothing to rotate (wrong --data-dir?)",
            dir.display()
        );
    }
    // The database exists, so this loads the key (or fails); it never generates one.
    let (key, source) = master_key::load_or_create(dir)?;
    let store = SqliteStore::open(&db)
        .await
        .with_context(|| format!("cannot open the database in {}", dir.display()))?;
    let key = master_key::verify(dir, &store, key, source).await?;
    let vault = Vault::new(Arc::new(store), key);
    master_key::rotate(dir, &vault, source).await
}

/// Whether a process with this pid exists (`/proc`, else `kill -0`).
fn process_alive(pid: u32) -> bool {
    if Path::new("/proc/self").exists() {
        return Path::new("/proc").join(pid.to_string()).exists();
    }
    std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
