//! The `keyward` CLI against a real server. Every command runs with `--data-dir` and nothing
//! else (environment cleared but PATH and HOME), proving it finds the server and the token on
//! its own.

// Helpers outside `#[test]` functions panic on a failed setup step, as the tests do.
#![allow(clippy::expect_used)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use keyward_testkit::KeywardProcess;
use serde_json::Value;

use crate::support;

mod access;
mod import;
mod rotate;
mod secrets;

const CANARY: &str = "sk-CANARY-cli-5d1e9b";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).expect("stdout is JSON")
    }

    fn never_shows(&self, secret: &str) {
        assert!(
            !self.stdout.contains(secret),
            "stdout leaks: {}",
            self.stdout
        );
        assert!(
            !self.stderr.contains(secret),
            "stderr leaks: {}",
            self.stderr
        );
    }
}

/// Runs `keyward ARGS` with a cleared environment (plus `envs`) and `stdin`.
fn run(args: &[&str], envs: &[(&str, &str)], stdin: Option<&[u8]>) -> Run {
    let mut cmd = Command::new(support::bin());
    cmd.args(args).env_clear();
    for key in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(key) {
            cmd.env(key, v);
        }
    }
    cmd.envs(envs.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawning keyward");
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input).expect("writing stdin");
    }
    let out = child.wait_with_output().expect("waiting for keyward");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `keyward --data-dir DIR ARGS`.
fn kw(dir: &Path, args: &[&str]) -> Run {
    kw_stdin(dir, args, None)
}

fn kw_stdin(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let dir = dir.to_str().expect("utf-8 temp path");
    let all: Vec<&str> = ["--data-dir", dir].iter().chain(args).copied().collect();
    run(&all, &[], stdin)
}

async fn server() -> KeywardProcess {
    KeywardProcess::start(support::bin(), &[], &[])
        .await
        .expect("starting keyward")
}

/// `secrets get BUNDLE --json`.
fn bundle(dir: &Path, name: &str) -> Value {
    kw(dir, &["secrets", "get", name, "--json"]).ok().json()
}

fn strings(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_str().expect("a string"))
        .collect()
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let cases: &[&[&str]] = &[
        &["secrets", "set", "b", "NOEQUALS"],
        &["secrets", "set", "b", "A=1", CANARY],
        &["secrets", "set", "b", "A=1", "A=2"],
        &["secrets", "set", "b", "--value-stdin", "A", "B"],
        &["secrets", "set", "b", "--value-stdin", "A=x"],
        &["secrets", "set", "b"],
        &["secrets", "list", "--bogus"],
        &["secrets", "set", "b", "A=1", "--inject-host", "h.example"],
        &["nonsense"],
    ];
    for args in cases {
        let out = kw(dir, args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("Usage"), "{args:?}: {}", out.stderr);
        out.never_shows(CANARY);
    }
    // Nothing was created in the data dir.
    assert_eq!(std::fs::read_dir(dir).map(Iterator::count).ok(), Some(0));
}

#[test]
fn help_on_every_command() {
    let commands: &[&[&str]] = &[
        &[],
        &["secrets"],
        &["secrets", "set"],
        &["secrets", "list"],
        &["secrets", "get"],
        &["secrets", "delete"],
        &["secrets", "import"],
        &["tenants", "create"],
        &["tokens", "create"],
        &["tokens", "revoke"],
        &["admin", "rotate-master-key"],
    ];
    for command in commands {
        let out = run(&[*command, &["--help"]].concat(), &[], None).ok();
        assert!(
            out.stdout.contains("Usage: keyward"),
            "{command:?}: {}",
            out.stdout
        );
    }
    let set = run(&["secrets", "set", "--help"], &[], None).ok();
    assert!(set.stdout.contains("--value-stdin") && set.stdout.contains("--inject-header"));
}
