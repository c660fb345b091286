//! Rejections by the server, finding (or not) the server and the token, tenants and tokens.

use serde_json::{json, Value};

use super::{kw, run, server, strings, CANARY};

fn names(list: &Value) -> Vec<&str> {
    list["bundles"]
        .as_array()
        .expect("bundles")
        .iter()
        .map(|b| b["name"].as_str().expect("name"))
        .collect()
}

#[tokio::test]
async fn server_rejections_exit_1_and_store_nothing() {
    let kp = server().await;
    let dir = kp.data_dir();
    let reserved = kw(dir, &["secrets", "set", "b", "HTTPS_PROXY=x"]);
    assert_eq!(reserved.code, 1, "{}", reserved.stderr);
    assert!(
        reserved.stderr.contains("(reserved_key_name)"),
        "{}",
        reserved.stderr
    );
    let secret = format!("KEYWARD_X={CANARY}");
    let reserved = kw(dir, &["secrets", "set", "b", &secret]);
    assert_eq!(reserved.code, 1);
    reserved.never_shows(CANARY);

    let bad_name = kw(dir, &["secrets", "set", "Bad_Name", "A=1"]);
    assert_eq!(bad_name.code, 1, "{}", bad_name.stderr);
    assert!(
        bad_name.stderr.contains("(invalid_name)"),
        "{}",
        bad_name.stderr
    );
    for name in ["..", "a/b"] {
        assert_eq!(kw(dir, &["secrets", "get", name]).code, 1, "{name}");
    }
    let list = kw(dir, &["secrets", "list", "--json"]).ok();
    assert_eq!(list.json(), json!({ "bundles": [] }));
}

#[test]
fn missing_server_or_token_is_explained() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_str().expect("utf-8 path");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let args = [
        "--data-dir",
        path,
        "--server",
        &url,
        "--token",
        "t",
        "secrets",
        "list",
    ];
    let down = run(&args, &[], None);
    assert_eq!(down.code, 1);
    let expected = format!("cannot reach keyward at {url}: is `keyward serve` running?");
    assert!(down.stderr.contains(&expected), "{}", down.stderr);

    let no_token = run(&["--data-dir", path, "secrets", "list"], &[], None);
    assert_eq!(no_token.code, 1);
    assert!(
        no_token.stderr.contains("no API token"),
        "{}",
        no_token.stderr
    );
}

#[tokio::test]
async fn tenants_create_prints_a_token_that_works_with_server_flag() {
    let kp = server().await;
    let dir = kp.data_dir();
    let out = kw(dir, &["tenants", "create", "acme"]).ok();
    assert!(out.stdout.contains("Created tenant acme"), "{}", out.stdout);
    let token = out
        .stdout
        .lines()
        .last()
        .expect("token line")
        .trim()
        .to_owned();
    // No data dir to discover: server and token come from the flags only.
    let as_acme = |args: &[&str]| {
        let flags = ["--server", kp.api_url(), "--token", token.as_str()];
        run(&[&flags[..], args].concat(), &[], None)
    };
    as_acme(&["secrets", "set", "mine", "A=1"]).ok();
    assert_eq!(
        names(&as_acme(&["secrets", "list", "--json"]).ok().json()),
        ["mine"]
    );
    // The operator's tenant does not see acme's bundles.
    let operator = kw(dir, &["secrets", "list", "--json"]).ok().json();
    assert!(names(&operator).is_empty());

    let denied = as_acme(&["tenants", "create", "other"]);
    assert_eq!(denied.code, 1);
    assert!(denied.stderr.contains("(forbidden)"), "{}", denied.stderr);
    let taken = kw(dir, &["tenants", "create", "acme"]);
    assert_eq!(taken.code, 1);
    assert!(taken.stderr.contains("(tenant_exists)"), "{}", taken.stderr);
    let beta = kw(dir, &["tenants", "create", "beta", "--json"])
        .ok()
        .json();
    assert_eq!(beta["name"], "beta");
    assert!(beta["token"].as_str().is_some_and(|t| !t.is_empty()));
}

#[tokio::test]
async fn tokens_create_and_revoke() {
    let kp = server().await;
    let dir = kp.data_dir();
    let human = kw(dir, &["tokens", "create"]).ok();
    assert!(human.stdout.starts_with("Token id: "), "{}", human.stdout);
    let created = kw(dir, &["tokens", "create", "--json"]).ok().json();
    let id = created["id"].as_str().expect("id");
    let token = created["token"].as_str().expect("token");
    assert!(created["created_at"].is_string());

    // $KEYWARD_TOKEN wins over the data dir's admin.token.
    let path = dir.to_str().expect("utf-8 path");
    let with_env = |args: &[&str]| {
        let all = [&["--data-dir", path][..], args].concat();
        run(&all, &[("KEYWARD_TOKEN", token)], None)
    };
    with_env(&["secrets", "set", "shared", "A=1"]).ok();
    let revoked = kw(dir, &["tokens", "revoke", id]).ok();
    assert!(revoked.stdout.contains(id), "{}", revoked.stdout);
    let refused = with_env(&["secrets", "list"]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("(unauthorized)"),
        "{}",
        refused.stderr
    );
    let again = kw(dir, &["tokens", "revoke", id]);
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.contains("(token_not_found)"),
        "{}",
        again.stderr
    );
    // The admin token still works, and sees what the revoked token stored.
    let b = kw(dir, &["secrets", "get", "shared", "--json"]).ok().json();
    assert_eq!(strings(&b["key_names"]), ["A"]);
}
