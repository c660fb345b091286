//! `keyward secrets set|list|get|delete`.

use super::{bundle, kw, kw_stdin, server, strings, CANARY};

#[tokio::test]
async fn set_creates_then_merges_and_never_prints_values() {
    let kp = server().await;
    let dir = kp.data_dir();
    let first = format!("A={CANARY}");
    let created = kw(dir, &["secrets", "set", "app", &first]).ok();
    assert!(
        created.stdout.contains("Created bundle app"),
        "{}",
        created.stdout
    );
    created.never_shows(CANARY);

    let merged = kw(dir, &["secrets", "set", "app", "B=x=y", "C="]).ok();
    assert!(
        merged.stdout.contains("Updated bundle app"),
        "{}",
        merged.stdout
    );
    let b = bundle(dir, "app");
    assert_eq!(strings(&b["key_names"]), ["A", "B", "C"]);
    assert_eq!(b["version"], 2);

    // Human list and get; --json given after the subcommand.
    let list = kw(dir, &["secrets", "list"]).ok();
    assert!(list.stdout.starts_with("NAME"), "{}", list.stdout);
    assert!(list.stdout.contains("app") && list.stdout.contains("A, B, C"));
    let get = kw(dir, &["secrets", "get", "app"]).ok();
    assert!(
        get.stdout.contains("Secrets:       A, B, C"),
        "{}",
        get.stdout
    );
    let listed = kw(dir, &["secrets", "list", "--json"]).ok();
    let entry = &listed.json()["bundles"][0];
    for field in [
        "name",
        "key_names",
        "created_at",
        "last_rotated_at",
        "variables",
    ] {
        assert!(entry.get(field).is_some(), "{field} missing in {entry}");
    }
    assert_eq!(entry["name"], "app");
    for out in [list, get, listed] {
        out.never_shows(CANARY);
    }
}

#[tokio::test]
async fn variables_and_value_stdin() {
    let kp = server().await;
    let dir = kp.data_dir();
    kw(
        dir,
        &["secrets", "set", "cfg", "--variable", "V=plain value"],
    )
    .ok();
    let stdin = |key: &str, input: &[u8]| {
        let args = ["secrets", "set", "cfg", "--variable", "--value-stdin", key];
        kw_stdin(dir, &args, Some(input)).ok();
    };
    stdin("LF", b"abc\n\n");
    stdin("CRLF", b"abc\r\n\r\n");
    stdin("NONE", b"abc");
    let secret = format!("{CANARY}\n");
    let set = kw_stdin(
        dir,
        &["secrets", "set", "cfg", "--value-stdin", "S"],
        Some(secret.as_bytes()),
    )
    .ok();
    set.never_shows(CANARY);

    let b = bundle(dir, "cfg");
    let variables = &b["variables"];
    assert_eq!(variables["V"], "plain value");
    assert_eq!(variables["LF"], "abc\n");
    assert_eq!(variables["CRLF"], "abc\r\n");
    assert_eq!(variables["NONE"], "abc");
    assert!(variables.get("S").is_none());
    assert!(strings(&b["key_names"]).contains(&"S"));
    let get = kw(dir, &["secrets", "get", "cfg"]).ok();
    assert!(get.stdout.contains("  V=plain value\n"), "{}", get.stdout);
    assert!(get.stdout.contains("LF=\"abc\\n\""), "{}", get.stdout);
    get.never_shows(CANARY);
}

#[tokio::test]
async fn inject_rule_is_stored() {
    let kp = server().await;
    let dir = kp.data_dir();
    let token = format!("TOK={CANARY}");
    let args = [
        "secrets",
        "set",
        "crm",
        &token,
        "--inject-host",
        "api.crm.example",
        "--inject-host",
        "eu.crm.example",
        "--inject-header",
        "X-Custom-Auth: {TOK}",
    ];
    kw(dir, &args).ok().never_shows(CANARY);
    let rule = &bundle(dir, "crm")["injections"]["TOK"];
    assert_eq!(
        strings(&rule["hosts"]),
        ["api.crm.example", "eu.crm.example"]
    );
    assert_eq!(rule["header"], "X-Custom-Auth: {TOK}");
    let get = kw(dir, &["secrets", "get", "crm"]).ok();
    assert!(
        get.stdout.contains("X-Custom-Auth: {TOK}"),
        "{}",
        get.stdout
    );

    // One secret only, and never a variable.
    let inject = ["--inject-host", "h.example", "--inject-header", "X: {A}"];
    let two = [&["secrets", "set", "crm", "A=1", "B=2"][..], &inject].concat();
    assert_eq!(kw(dir, &two).code, 2);
    let variable = [&["secrets", "set", "crm", "--variable", "A=1"][..], &inject].concat();
    assert_eq!(kw(dir, &variable).code, 2);
    assert_eq!(strings(&bundle(dir, "crm")["key_names"]), ["TOK"]);
}

#[tokio::test]
async fn delete_bundle_and_keys() {
    let kp = server().await;
    let dir = kp.data_dir();
    kw(dir, &["secrets", "set", "d", "A=1", "B=2", "C=3"]).ok();
    kw(dir, &["secrets", "delete", "d", "A", "B"]).ok();
    assert_eq!(strings(&bundle(dir, "d")["key_names"]), ["C"]);

    let missing = kw(dir, &["secrets", "delete", "d", "C", "NOPE"]);
    assert_eq!(missing.code, 1, "{}", missing.stderr);
    assert!(missing.stderr.contains("NOPE"), "{}", missing.stderr);
    assert_eq!(strings(&bundle(dir, "d")["key_names"]), ["C"]);

    let deleted = kw(dir, &["secrets", "delete", "d"]).ok();
    assert!(
        deleted.stdout.contains("Deleted bundle d"),
        "{}",
        deleted.stdout
    );
    let gone = kw(dir, &["secrets", "get", "d"]);
    assert_eq!(gone.code, 1);
    assert!(gone.stderr.starts_with("keyward: "), "{}", gone.stderr);
    assert!(
        gone.stderr.contains("(secret_bundle_not_found)"),
        "{}",
        gone.stderr
    );
    let again = kw(dir, &["--json", "secrets", "delete", "d"]);
    assert_eq!(again.code, 1);
}
