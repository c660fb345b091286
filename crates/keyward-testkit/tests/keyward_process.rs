//! KeywardProcess against a stand-in `keyward` (a shell script honouring the server.json
//! contract), so the testkit can be tested without the real binary.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context as _;
use keyward_testkit::{KeywardProcess, MockOptions, MockUpstream};
use serde_json::json;

const FAKE: &str = r#"#!/bin/sh
DIR=""
for a in "$@"; do
  case "$prev" in --data-dir) DIR="$a";; esac
  prev="$a"
done
echo "fake keyward: $*"
echo "fake stderr line" >&2
env > "$DIR/env.txt"
if [ -n "$FAKE_FAIL" ]; then echo "boom: $FAKE_FAIL" >&2; exit 3; fi
echo "  tok-123  " > "$DIR/admin.token"
printf '{"pid": %s, "api_url": "%s", "proxy_url": "http://127.0.0.1:9"}' $$ "$FAKE_API" > "$DIR/server.json.tmp"
mv "$DIR/server.json.tmp" "$DIR/server.json"
trap 'echo "got TERM"; exit 0' TERM
while true; do sleep 0.05; done
"#;

/// Written once, before any test of this binary spawns (avoids ETXTBSY races with forks):
/// `get_or_init` makes concurrent callers wait for the first writer.
fn fake_bin() -> anyhow::Result<&'static Path> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let written = BIN.get_or_init(|| {
        let write = || -> std::io::Result<PathBuf> {
            let dir =
                std::env::temp_dir().join(format!("keyward-testkit-fake-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let path = dir.join("keyward");
            std::fs::write(&path, FAKE)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
            Ok(path)
        };
        write().map_err(|e| e.to_string())
    });
    written
        .as_deref()
        .map_err(|e| anyhow::anyhow!("writing fake keyward: {e}"))
}

#[tokio::test]
async fn start_client_terminate_restart_kill() -> anyhow::Result<()> {
    let bin = fake_bin()?;
    let api = MockUpstream::start(MockOptions::default()).await?;
    let mut kw = KeywardProcess::start(bin, &["--verbose"], &[("FAKE_API", &api.url())]).await?;
    assert_eq!(kw.api_url(), api.url());
    assert_eq!(kw.proxy_url(), "http://127.0.0.1:9");
    assert_eq!(kw.admin_token()?, "tok-123");
    let first_pid = kw.pid();
    assert!(kw.is_running());

    // Arguments and a cleared environment.
    let logs = kw.logs();
    assert!(logs.contains("serve --data-dir"), "{logs}");
    assert!(logs.contains("--api-listen 127.0.0.1:0 --proxy-listen 127.0.0.1:0 --verbose"));
    assert!(logs.contains("fake stderr line"));
    assert!(!kw.log_dir().starts_with(kw.data_dir()));
    let env = std::fs::read_to_string(kw.data_dir().join("env.txt"))?;
    assert!(env.contains("FAKE_API="));
    assert!(!env.contains("CARGO"), "env must be cleared: {env}");

    // ApiClient: bearer token, JSON in and out.
    let client = kw.client("tok-123");
    let (status, body) = client.post("/v1/things", Some(json!({"a": 1}))).await?;
    assert_eq!(status, 200);
    assert_eq!(body["path"], "/v1/things");
    let rec = api.last_request().context("recorded")?;
    assert_eq!(rec.header("authorization"), Some("Bearer tok-123"));
    assert_eq!(rec.body_json(), Some(json!({"a": 1})));
    let (_, body) = kw.anon_client().delete("/x", None).await?;
    assert_eq!(body["method"], "DELETE");
    assert_eq!(
        api.last_request()
            .context("recorded")?
            .header("authorization"),
        None
    );

    // SIGTERM is delivered and the exit status returned.
    let status = kw.terminate().await?;
    assert!(status.success(), "{status}");
    assert!(kw.logs().contains("got TERM"));
    assert!(!kw.is_running());

    kw.restart().await?;
    assert_ne!(kw.pid(), first_pid);
    assert!(kw.is_running());
    let status = kw.kill9()?;
    assert!(!status.success());
    assert!(kw.kill9().is_err(), "nothing left to kill");
    Ok(())
}

#[tokio::test]
async fn early_exit_reports_logs() -> anyhow::Result<()> {
    let bin = fake_bin()?;
    let err = KeywardProcess::start(bin, &[], &[("FAKE_FAIL", "no master key")])
        .await
        .err()
        .context("start must fail")?;
    let msg = format!("{err:#}");
    assert!(msg.contains("boom: no master key"), "{msg}");
    Ok(())
}

#[tokio::test]
async fn explicit_data_dir_is_used() -> anyhow::Result<()> {
    let bin = fake_bin()?;
    let dir = tempfile::tempdir()?;
    let dir_str = dir.path().to_str().context("utf-8 temp path")?;
    let kw =
        KeywardProcess::start(bin, &["--data-dir", dir_str], &[("FAKE_API", "http://x")]).await?;
    assert_eq!(kw.data_dir(), dir.path());
    assert_eq!(kw.logs().matches("--data-dir").count(), 1);
    drop(kw);
    let kw2 = KeywardProcess::start_in(bin, dir.path(), &[], &[("FAKE_API", "http://y")]).await?;
    assert_eq!(kw2.api_url(), "http://y");
    assert!(dir.path().join("server.json").exists());
    Ok(())
}
