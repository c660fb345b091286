//! `keyward secrets import`.

use serde_json::json;

use super::{bundle, kw, kw_stdin, server, CANARY};

#[tokio::test]
async fn import_dotenv_keeps_values_byte_for_byte() {
    let kp = server().await;
    let dir = kp.data_dir();
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let text = "\u{feff}# a comment\r\n\
        export EXPORTED=plain\r\n\
        \r\n\
        SINGLE='lit $HOME \\n # kept'   # comment\r\n\
        DOUBLE=\"tab\\there \\\"q\\\"\"\r\n\
        MULTI=\"line1\r\n  line2\r\n\"\r\n\
        HOMEVAR=$HOME/x\r\n\
        TRAIL=value # comment\r\n";
    std::fs::write(file.path(), text).expect("writing .env");
    let path = file.path().to_str().expect("utf-8 path");
    kw(dir, &["secrets", "import", "env", path, "--variable"]).ok();
    let expected = json!({
        "EXPORTED": "plain",
        "SINGLE": "lit $HOME \\n # kept",
        "DOUBLE": "tab\there \"q\"",
        "MULTI": "line1\n  line2\n",
        "HOMEVAR": "$HOME/x",
        "TRAIL": "value",
    });
    assert_eq!(bundle(dir, "env")["variables"], expected);

    // From stdin, as secrets, merged into an existing bundle.
    let dotenv = format!("NEW_SECRET='{CANARY}'\n");
    let args = ["secrets", "import", "env", "-"];
    kw_stdin(dir, &args, Some(dotenv.as_bytes()))
        .ok()
        .never_shows(CANARY);
    let b = bundle(dir, "env");
    assert_eq!(b["key_names"].as_array().map(Vec::len), Some(7));
    assert!(b["variables"].get("NEW_SECRET").is_none());
}

#[tokio::test]
async fn import_rejects_a_bad_line_without_echoing_it() {
    let kp = server().await;
    let dir = kp.data_dir();
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let text = format!("A=1\n# fine\n{CANARY}\nB=2\n");
    std::fs::write(file.path(), text).expect("writing .env");
    let path = file.path().to_str().expect("utf-8 path");
    let out = kw(dir, &["secrets", "import", "bad", path]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("line 3"), "{}", out.stderr);
    out.never_shows(CANARY);
    assert_eq!(kw(dir, &["secrets", "get", "bad"]).code, 1);
    let list = kw(dir, &["secrets", "list", "--json"]).ok();
    assert_eq!(list.json()["bundles"], json!([]));
}
