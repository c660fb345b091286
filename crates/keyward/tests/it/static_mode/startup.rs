//! A bad config file stops `keyward serve --config` at start (exit 1) with an error that
//! names the line, the variable or the path — and never the key.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;

use super::{config, route};
use crate::support::bin;

const INLINE: &str = "sk-proj-INLINE-startup-0123456789abcdef";

/// Runs `keyward serve --config DIR/NAME` on `text`; it must exit by itself. Returns the exit
/// code and stderr.
async fn refused(name: &str, text: &str, envs: &[(&str, &str)]) -> anyhow::Result<(i32, String)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(name);
    std::fs::write(&path, text)?;
    let out = tokio::process::Command::new(bin())
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .env_clear()
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), out)
        .await
        .context("keyward kept running on a bad config")??;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains(INLINE), "the key in an error: {stderr}");
    Ok((out.status.code().unwrap_or(-1), stderr))
}

#[tokio::test]
async fn bad_files_are_refused_naming_the_line_variable_or_path() -> anyhow::Result<()> {
    let inline = format!("{{ key: \"{INLINE}\" }}");

    // An unknown field, on line 6.
    let text = config(&[route("/openai", "{ provider: openai }", &inline)])
        .replace("        auth:", "        auht:");
    let (code, err) = refused("keyward.yaml", &text, &[]).await?;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("keyward.yaml:6:"), "{err}");
    assert!(err.contains("unknown field `auht`"), "{err}");

    // A key pasted where the provider goes: named by line, not echoed.
    let text = config(&[route(
        "/openai",
        &format!("{{ provider: {INLINE} }}"),
        "{ passthrough: true }",
    )]);
    let (code, err) = refused("keyward.yaml", &text, &[]).await?;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("keyward.yaml:5:"), "{err}");

    // custom without base_url.
    let text = config(&[route("/c", "{ provider: custom }", &inline)]);
    let (_, err) = refused("keyward.yaml", &text, &[]).await?;
    assert!(
        err.contains("keyward.yaml:5:") && err.contains("base_url"),
        "{err}"
    );

    // An unset variable and a missing key file.
    let text = config(&[route(
        "/o",
        "{ provider: openai }",
        "{ key: \"$KW_UNSET_KEY\" }",
    )]);
    let (code, err) = refused("keyward.yaml", &text, &[]).await?;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("KW_UNSET_KEY"), "{err}");
    let text = config(&[route(
        "/o",
        "{ provider: openai }",
        "{ key: { file: nope.txt } }",
    )]);
    let (code, err) = refused("keyward.yaml", &text, &[]).await?;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("nope.txt"), "{err}");

    // TOML by extension, with the same kind of error.
    let text = format!(
        "[[listeners]]\nbind = \"127.0.0.1:0\"\n[[listeners.routes]]\npath = \"/o\"\n\
         backend = {{ provider = \"openai\" }}\nauth = \"{INLINE}\"\n"
    );
    let (code, err) = refused("keyward.toml", &text, &[]).await?;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("keyward.toml:6:"), "{err}");
    Ok(())
}
