//! `keyward run -- CMD…`: start an agent with no real key in its environment. A session is
//! created, CMD runs with a clean environment plus the session's env (in proxy mode: the
//! proxy settings, placeholders and a CA bundle that trusts keyward's CA), signals are
//! forwarded, and the session ends when CMD exits, with CMD's exit code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{json, Value};

use crate::cli::GlobalArgs;
use crate::client;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Agent whose bundles the session gets
    #[arg(long)]
    pub agent: Option<String>,
    /// Bundle to give the session (repeatable)
    #[arg(long = "bundle", value_name = "BUNDLE")]
    pub bundles: Vec<String>,
    /// How the agent reaches providers: through keyward as its HTTPS proxy (no base-URL
    /// change), or through gateway URLs
    #[arg(long, value_enum, default_value_t = RunMode::Proxy)]
    pub mode: RunMode,
    /// Allow only these hosts (plus the session's credential hosts); repeatable
    #[arg(long = "egress-allow", value_name = "HOST")]
    pub egress_allow: Vec<String>,
    /// Keep the whole host environment (minus KEYWARD_*) instead of a clean one
    #[arg(long)]
    pub inherit_env: bool,
    /// The command and its arguments
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunMode {
    Proxy,
    Gateway,
}

/// Variables of the host kept in the clean environment.
const KEPT: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "TZ", "TMPDIR",
];

/// Variables that name the CA bundle, for the runtimes that read them.
const CA_VARS: &[&str] = &[
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
    "DENO_CERT",
    "CARGO_HTTP_CAINFO",
];

/// Where distributions keep their trusted roots, in order of preference.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

fn host_env(inherit: bool) -> BTreeMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| {
            if k.to_ascii_uppercase().starts_with("KEYWARD_") {
                return false;
            }
            inherit || KEPT.contains(&k.as_str()) || k.starts_with("LC_")
        })
        .collect()
}

/// System roots followed by keyward's CA, so tunnelled hosts still verify.
fn write_ca_bundle(dir: &Path, ca_pem: &str) -> anyhow::Result<PathBuf> {
    let mut bundle = SYSTEM_BUNDLES
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    if !bundle.is_empty() && !bundle.ends_with('\n') {
        bundle.push('\n');
    }
    bundle.push_str(ca_pem);
    let path = dir.join("ca-bundle.pem");
    std::fs::write(&path, bundle).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

pub async fn run(global: &GlobalArgs, args: RunArgs) -> anyhow::Result<ExitCode> {
    let api = client::connect(global)?;
    let mut request = json!({
        "mode": match args.mode { RunMode::Proxy => "proxy", RunMode::Gateway => "gateway" },
        "secrets": args.bundles,
    });
    if let Some(agent) = &args.agent {
        request["agent"] = json!(agent);
    }
    if !args.egress_allow.is_empty() {
        request["egress"] = json!({"mode": "deny-unlisted", "allow": args.egress_allow});
    }
    let created = api.post(&["v1", "sessions"], &request).await?;
    let session_id = created["session_id"]
        .as_str()
        .context("the server returned no session id")?
        .to_owned();
    let result = run_child(&args, &created).await;
    // The session ends with the command, whatever happened to it.
    if let Err(e) = api.delete(&["v1", "sessions", &session_id]).await {
        eprintln!("keyward: could not end session {session_id}: {e}");
    }
    result
}

async fn run_child(args: &RunArgs, created: &Value) -> anyhow::Result<ExitCode> {
    let mut env = host_env(args.inherit_env);
    if let Some(session_env) = created["env"].as_object() {
        for (k, v) in session_env {
            if let Some(v) = v.as_str() {
                env.insert(k.clone(), v.to_owned());
            }
        }
    }
    let scratch = tempfile::Builder::new().prefix("keyward-run-").tempdir()?;
    if args.mode == RunMode::Proxy {
        let ca_pem = created["ca_pem"]
            .as_str()
            .context("the server returned no CA certificate for a proxy-mode session")?;
        let bundle = write_ca_bundle(scratch.path(), ca_pem)?;
        for var in CA_VARS {
            env.insert((*var).to_owned(), bundle.display().to_string());
        }
        env.insert("NODE_USE_ENV_PROXY".into(), "1".into());
        env.insert("NO_PROXY".into(), "localhost,127.0.0.1,::1".into());
        env.insert("no_proxy".into(), "localhost,127.0.0.1,::1".into());
    }
    let (program, rest) = args.command.split_first().context("no command given")?;
    // Listening before the child exists: a signal that arrives while it starts is passed on,
    // instead of killing keyward run and leaving the child running on a session never ended.
    let mut signals = Signals::listen()?;
    let mut child = tokio::process::Command::new(program)
        .args(rest)
        .env_clear()
        .envs(&env)
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    let status = wait_forwarding_signals(&mut child, &mut signals).await?;
    drop(scratch);
    Ok(exit_code(status))
}

/// The signals keyward run passes on to the child.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
}

impl Signals {
    fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
            quit: signal(SignalKind::quit())?,
        })
    }
}

/// Wait for the child, passing SIGINT, SIGTERM, SIGHUP and SIGQUIT on to it.
async fn wait_forwarding_signals(
    child: &mut tokio::process::Child,
    signals: &mut Signals,
) -> anyhow::Result<std::process::ExitStatus> {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;

    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    let Signals {
        int,
        term,
        hup,
        quit,
    } = signals;
    loop {
        let forward = tokio::select! {
            status = child.wait() => return Ok(status?),
            _ = int.recv() => Signal::SIGINT,
            _ = term.recv() => Signal::SIGTERM,
            _ = hup.recv() => Signal::SIGHUP,
            _ = quit.recv() => Signal::SIGQUIT,
        };
        if let Some(pid) = pid {
            let _ = kill(pid, forward);
        }
    }
}

fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    // Killed by a signal: the shell convention.
    let signal = status.signal().unwrap_or(1);
    ExitCode::from(u8::try_from(128 + signal).unwrap_or(1))
}
