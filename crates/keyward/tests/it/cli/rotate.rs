//! `keyward admin rotate-master-key`: online through the running server, offline on the data
//! dir; either way the data stays readable and the server restarts.

use std::path::Path;

use serde_json::json;

use super::{kw, server, strings};

fn master_key(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("master.key")).expect("reading master.key")
}

/// The bundle is listed, and a write (which seals under the tenant key) succeeds.
fn still_usable(dir: &Path) {
    let list = kw(dir, &["secrets", "list", "--json"]).ok().json();
    assert_eq!(list["bundles"][0]["name"], "keep", "{list}");
    kw(dir, &["secrets", "set", "keep", "LATER=3"]).ok();
    let b = kw(dir, &["secrets", "get", "keep", "--json"]).ok().json();
    assert_eq!(strings(&b["key_names"]), ["A", "LATER", "V"]);
    assert_eq!(b["variables"]["V"], "visible");
}

fn seed(dir: &Path) {
    kw(dir, &["secrets", "set", "keep", "A=1"]).ok();
    kw(dir, &["secrets", "set", "keep", "--variable", "V=visible"]).ok();
}

#[tokio::test]
async fn rotate_master_key_online() {
    let mut kp = server().await;
    let dir = kp.data_dir().to_path_buf();
    seed(&dir);
    let before = master_key(&dir);
    let out = kw(&dir, &["admin", "rotate-master-key"]).ok();
    assert!(out.stdout.contains("by the server"), "{}", out.stdout);
    let after = master_key(&dir);
    assert_ne!(before, after);

    // The running server uses the new key: a PUT rotation re-seals the values.
    let admin = kp.client(&kp.admin_token().expect("admin token"));
    let body = json!({ "values": { "A": "2" }, "variables": { "V": "visible" } });
    let (status, answer) = admin
        .put("/v1/tenants/me/secrets/keep", Some(body))
        .await
        .expect("PUT");
    assert_eq!(status.as_u16(), 200, "{answer}");

    let again = kw(&dir, &["admin", "rotate-master-key", "--json"]).ok();
    assert_eq!(again.json(), json!({ "status": "rotated" }));
    assert_ne!(master_key(&dir), after);

    kp.restart().await.expect("restart after online rotation");
    still_usable(&dir);
}

#[tokio::test]
async fn rotate_master_key_offline() {
    let mut kp = server().await;
    let dir = kp.data_dir().to_path_buf();
    seed(&dir);
    kp.terminate().await.expect("terminate");
    assert!(!dir.join("server.json").exists());
    let before = master_key(&dir);
    let out = kw(&dir, &["admin", "rotate-master-key"]).ok();
    assert!(out.stdout.contains("offline"), "{}", out.stdout);
    assert_ne!(master_key(&dir), before);
    assert!(!dir.join("master.key.new").exists());

    kp.restart().await.expect("restart after offline rotation");
    still_usable(&dir);
}

#[tokio::test]
async fn rotate_after_a_crash_ignores_the_stale_server_json() {
    let mut kp = server().await;
    let dir = kp.data_dir().to_path_buf();
    seed(&dir);
    kp.kill9().expect("kill -9");
    assert!(dir.join("server.json").exists());
    let before = master_key(&dir);
    let out = kw(&dir, &["admin", "rotate-master-key"]).ok();
    assert!(out.stdout.contains("offline"), "{}", out.stdout);
    assert_ne!(master_key(&dir), before);
    kp.restart().await.expect("restart after offline rotation");
    still_usable(&dir);
}

#[test]
fn rotate_offline_never_creates_a_key_or_a_database() {
    let tmp = tempfile::tempdir().expect("temp dir");
    for dir in [tmp.path().to_path_buf(), tmp.path().join("missing")] {
        let out = kw(&dir, &["admin", "rotate-master-key"]);
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(out.stderr.contains("no keyward database"), "{}", out.stderr);
    }
    assert_eq!(
        std::fs::read_dir(tmp.path()).map(Iterator::count).ok(),
        Some(0)
    );
}
