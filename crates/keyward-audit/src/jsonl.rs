//! [`JsonlSink`]: the audit log as a JSON-lines file, for static-config mode (no database).
//! One line per record in the form of [`crate::line`], all tenants in one file, each batch
//! fsynced before it is acknowledged. `keyward audit verify --file` checks such a file.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Seek};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::line::to_line;
use crate::{AuditError, AuditSink, StoredAuditRecord};

/// Appends records to a JSON-lines file.
#[derive(Debug)]
pub struct JsonlSink {
    path: PathBuf,
    state: tokio::sync::Mutex<State>,
}

#[derive(Debug)]
struct State {
    file: tokio::fs::File,
    /// Bytes known to be complete lines; a failed append is cut back to this.
    len: u64,
    /// Last `(seq, hash)` per tenant.
    heads: HashMap<String, (i64, String)>,
}

/// The part of a line needed to continue its tenant's chain.
#[derive(Deserialize)]
struct LineHead {
    seq: i64,
    tenant: String,
    hash: String,
}

impl JsonlSink {
    /// Open (creating, mode 0600) the file and read each tenant's last record. A last line cut
    /// short by a crash is removed; any other line that is not an audit record is an error.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, AuditError> {
        let path = path.as_ref().to_owned();
        let scan_path = path.clone();
        let (file, len, heads) = tokio::task::spawn_blocking(move || scan(&scan_path))
            .await
            .map_err(|e| AuditError::Io(std::io::Error::other(e)))??;
        Ok(Self {
            path,
            state: tokio::sync::Mutex::new(State {
                file: tokio::fs::File::from_std(file),
                len,
                heads,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

type Scanned = (std::fs::File, u64, HashMap<String, (i64, String)>);

fn scan(path: &Path) -> Result<Scanned, AuditError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    let mut heads = HashMap::new();
    let mut complete: u64 = 0;
    let mut reader = BufReader::new(&mut file);
    let mut line = String::new();
    let mut number = 0usize;
    loop {
        line.clear();
        let read = reader.read_line(&mut line)?;
        if read == 0 || !line.ends_with('\n') {
            break; // end of file, or a torn last line
        }
        number += 1;
        complete += read as u64;
        if line.trim().is_empty() {
            continue;
        }
        let head: LineHead = serde_json::from_str(&line).map_err(|_| {
            AuditError::Json(format!(
                "line {number} of {} is not an audit record",
                path.display()
            ))
        })?;
        heads.insert(head.tenant, (head.seq, head.hash));
    }
    drop(reader);
    if file.metadata()?.len() != complete {
        file.set_len(complete)?;
        file.sync_data()?;
    }
    file.seek(std::io::SeekFrom::End(0))?;
    Ok((file, complete, heads))
}

async fn write_synced(file: &mut tokio::fs::File, bytes: &[u8]) -> std::io::Result<()> {
    file.write_all(bytes).await?;
    file.flush().await?;
    file.sync_data().await
}

#[async_trait]
impl AuditSink for JsonlSink {
    async fn last_hash(&self, tenant: &str) -> Result<Option<(i64, String)>, AuditError> {
        Ok(self.state.lock().await.heads.get(tenant).cloned())
    }

    async fn append(&self, batch: &[StoredAuditRecord]) -> Result<(), AuditError> {
        let mut text = String::new();
        for record in batch {
            text.push_str(&to_line(record));
            text.push('\n');
        }
        let mut state = self.state.lock().await;
        if let Err(e) = write_synced(&mut state.file, text.as_bytes()).await {
            // All or nothing: cut a partly written batch off again.
            let len = state.len;
            if let Err(cut) = state.file.set_len(len).await {
                tracing::error!(error = %cut, "cannot cut a failed audit batch off the file");
            }
            return Err(e.into());
        }
        state.len += text.len() as u64;
        for record in batch {
            state
                .heads
                .insert(record.tenant.clone(), (record.seq, record.hash.clone()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::parse_line;
    use crate::test_helpers::chain_of;
    use crate::verify;

    #[tokio::test]
    async fn appends_lines_and_resumes_the_chains_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let acme = chain_of("acme", 3);
        let other = chain_of("other", 2);
        {
            let sink = JsonlSink::open(&path).await.unwrap();
            assert_eq!(sink.last_hash("acme").await.unwrap(), None);
            sink.append(&acme[..2]).await.unwrap();
            sink.append(&[other[0].clone(), acme[2].clone(), other[1].clone()])
                .await
                .unwrap();
        }
        // A crash in the middle of a line leaves a torn tail; reopening cuts it off.
        let mut text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}{{\"seq\":4,\"ten")).unwrap();
        let sink = JsonlSink::open(&path).await.unwrap();
        assert_eq!(
            sink.last_hash("acme").await.unwrap(),
            Some((3, acme[2].hash.clone()))
        );
        assert_eq!(
            sink.last_hash("other").await.unwrap(),
            Some((2, other[1].hash.clone()))
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);

        let lines: Vec<_> = text.lines().map(|l| parse_line(l).unwrap()).collect();
        let of = |t: &str| -> Vec<_> { lines.iter().filter(|r| r.tenant == t).cloned().collect() };
        assert_eq!(of("acme"), acme);
        assert_eq!(verify(&of("acme")), Ok(3));
        assert_eq!(verify(&of("other")), Ok(2));

        text.push_str("not a record\n");
        std::fs::write(&path, text).unwrap();
        assert!(JsonlSink::open(&path).await.is_err());
    }
}
