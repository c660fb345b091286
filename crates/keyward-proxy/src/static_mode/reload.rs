//! Live reload: the config file is polled (every [`POLL`]; no inotify, which misses the
//! symlink swaps of Kubernetes volumes and editors that write a new file and rename it). A
//! change is loaded in full — every key read again — and applied to new requests only if it is
//! valid; otherwise the running config stays and the log says why, with the line. Listener
//! binds and the audit file are fixed at start: a change to them is refused with a log asking
//! for a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::snapshot::Snapshot;
use super::StaticPlane;

/// How often the config file is checked.
pub const POLL: Duration = Duration::from_millis(500);

/// Poll `path` until `stop` turns true. The whole file is read each time and compared by
/// digest: config files are small, and mtimes can be coarse or left unchanged by tools.
pub async fn watch(plane: Arc<StaticPlane>, path: PathBuf, mut stop: watch::Receiver<bool>) {
    // What the running config was loaded from, so a change made before this task started
    // is still seen.
    let mut seen = plane.snapshot().digest;
    loop {
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        // Missing for a moment (mid-swap) or unreadable: try again next time.
        let Ok(bytes) = tokio::fs::read(&path).await else {
            continue;
        };
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        if seen == digest {
            continue;
        }
        seen = digest;
        let load_path = path.clone();
        let load = move || Snapshot::from_bytes(&load_path, &bytes);
        match tokio::task::spawn_blocking(load).await {
            Ok(Ok(next)) => apply(&plane, &path, next),
            Ok(Err(e)) => tracing::error!(
                config = %path.display(),
                error = %e,
                "config change refused; the previous config keeps running"
            ),
            Err(e) => tracing::error!(error = %e, "config reload task failed"),
        }
    }
}

fn apply(plane: &StaticPlane, path: &Path, next: Snapshot) {
    let current = plane.snapshot();
    let (old, new) = (current.binds(), next.binds());
    if old != new {
        tracing::error!(
            config = %path.display(),
            running = ?old,
            file = ?new,
            "config change refused: listeners (their binds and order) are fixed at start; restart keyward to apply"
        );
        return;
    }
    if current.audit_file != next.audit_file {
        tracing::error!(
            config = %path.display(),
            running = %current.audit_file.display(),
            file = %next.audit_file.display(),
            "config change refused: the audit file is fixed at start; restart keyward to apply"
        );
        return;
    }
    let routes = next.route_count();
    plane.replace(next);
    tracing::info!(config = %path.display(), routes, "config reloaded");
}
