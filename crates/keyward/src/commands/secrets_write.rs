//! `keyward secrets set` and `keyward secrets import`: values go in, merged into the bundle
//! (PATCH) or, if it does not exist yet, creating it (POST). No value is ever printed.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Read as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use keyward_core::dotenv;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::secrets::{bundle_path, Bundle, SECRETS};
use super::{output, usage_error};
use crate::cli::GlobalArgs;
use crate::client::{self, ApiClient, ClientError};

/// Arguments of `keyward secrets set`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Values given as arguments can end up in your shell history and are visible \
to other local users while the command runs; for secrets prefer --value-stdin or `secrets import`.

Examples:
  keyward secrets set github GITHUB_TOKEN=ghp_…
  printf %s \"$TOKEN\" | keyward secrets set github --value-stdin GITHUB_TOKEN
  keyward secrets set github --variable GITHUB_ORG=acme
  keyward secrets set crm --value-stdin CRM_KEY \\
      --inject-host api.crm.example --inject-header 'X-Custom-Auth: {CRM_KEY}'"
)]
pub struct SetArgs {
    /// Bundle name (lowercase letters, digits, `-`); created if it does not exist. An agent's
    /// name writes to the agent's own bundle, AGENT-secrets, created and attached on first use
    #[arg(value_name = "BUNDLE|AGENT")]
    pub bundle: String,
    /// Entries as KEY=VALUE (split at the first `=`); with --value-stdin, a single KEY
    #[arg(value_name = "KEY=VALUE", required = true)]
    pub entries: Vec<String>,
    /// Store the entries as plain variables (shown by `secrets get`) instead of secrets
    #[arg(long)]
    pub variable: bool,
    /// Read the value of the single KEY from stdin; one trailing newline (LF or CRLF) is removed
    #[arg(long)]
    pub value_stdin: bool,
    /// Host the secret may be sent to in a custom header (repeatable; needs --inject-header)
    #[arg(
        long = "inject-host",
        value_name = "HOST",
        requires = "inject_header",
        conflicts_with = "variable"
    )]
    pub inject_hosts: Vec<String>,
    /// Header that carries the secret, with the key as placeholder: 'X-Custom-Auth: {KEY}'
    #[arg(
        long,
        value_name = "HEADER",
        requires = "inject_hosts",
        conflicts_with = "variable"
    )]
    pub inject_header: Option<String>,
}

/// Arguments of `keyward secrets import`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "The file is read byte for byte: `$VAR` is never expanded. Accepted: \
`export ` prefixes, # comments, 'single' (literal) and \"double\" (\\n \\r \\t \\\" \\\\) quotes, \
multi-line quoted values, CRLF line ends and a leading BOM. One bad line rejects the whole file; \
the error names the line, never its text."
)]
pub struct ImportArgs {
    /// Bundle name; created if it does not exist
    #[arg(value_name = "BUNDLE")]
    pub bundle: String,
    /// The .env file, or `-` to read stdin
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Store the entries as plain variables (shown by `secrets get`) instead of secrets
    #[arg(long)]
    pub variable: bool,
}

/// What to merge into a bundle.
#[derive(Default)]
struct Changes {
    secrets: BTreeMap<String, String>,
    variables: BTreeMap<String, String>,
    injections: BTreeMap<String, Value>,
}

impl Changes {
    fn new(pairs: Vec<(String, String)>, variable: bool) -> Self {
        let mut changes = Changes::default();
        let target = if variable {
            &mut changes.variables
        } else {
            &mut changes.secrets
        };
        target.extend(pairs);
        changes
    }

    fn keys(&self) -> Vec<String> {
        self.secrets
            .keys()
            .chain(self.variables.keys())
            .cloned()
            .collect()
    }
}

/// `^[A-Za-z_][A-Za-z0-9_]*$`, at most 256 bytes: text that may be named in a message.
pub(crate) fn looks_like_key(text: &str) -> bool {
    let mut bytes = text.bytes();
    text.len() <= 256
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

pub(crate) async fn set(global: &GlobalArgs, args: SetArgs) -> anyhow::Result<ExitCode> {
    let mut pairs = match parse_set_args(&args) {
        Ok(pairs) => pairs,
        Err(message) => return Ok(usage_error("secrets", "set", message)),
    };
    let client = client::connect(global)?;
    if args.value_stdin {
        let key = args.entries.first().cloned().unwrap_or_default();
        pairs = vec![(key.clone(), value_from_stdin(&key)?)];
    }
    let mut changes = Changes::new(pairs, args.variable);
    if let Some(header) = &args.inject_header {
        for key in changes.secrets.keys() {
            let rule = json!({ "hosts": args.inject_hosts, "header": header });
            changes.injections.insert(key.clone(), rule);
        }
    }
    let keys = changes.keys();
    let target = super::agent_bundle::resolve(&client, &args.bundle).await?;
    let (answer, created) = create_or_merge(&client, &target.bundle, &changes).await?;
    super::agent_bundle::attach(&client, &target).await?;
    let kind = if args.variable { " as variables" } else { "" };
    let kind = match &target.agent {
        Some(agent) => format!("{kind} for agent {agent}"),
        None => kind.to_owned(),
    };
    report(
        global,
        &answer,
        created,
        &format!("{}{kind}", output::names(&keys)),
    )
}

/// Check the rules clap cannot express; the pairs are empty with `--value-stdin`. Messages
/// never quote an argument's text: it may be a secret.
fn parse_set_args(args: &SetArgs) -> Result<Vec<(String, String)>, String> {
    if args.value_stdin {
        return match args.entries.as_slice() {
            [key] if !key.contains('=') => Ok(Vec::new()),
            [_] => {
                Err("with --value-stdin give the KEY alone: its value is read from stdin".into())
            }
            _ => Err("--value-stdin takes exactly one KEY".into()),
        };
    }
    if args.inject_header.is_some() && args.entries.len() != 1 {
        return Err("--inject-host/--inject-header apply to one secret: give one KEY=VALUE".into());
    }
    let mut pairs: Vec<(String, String)> = Vec::with_capacity(args.entries.len());
    for (index, entry) in args.entries.iter().enumerate() {
        let Some((key, value)) = entry.split_once('=') else {
            return Err(format!(
                "entry {} after BUNDLE is not KEY=VALUE (it has no `=`)",
                index + 1
            ));
        };
        if pairs.iter().any(|(k, _)| k == key) {
            return Err(if looks_like_key(key) {
                format!("key {key} is given twice")
            } else {
                format!("entry {} repeats a key", index + 1)
            });
        }
        pairs.push((key.to_owned(), value.to_owned()));
    }
    Ok(pairs)
}

/// Read a value from stdin, without one trailing `\n` or `\r\n`.
fn value_from_stdin(key: &str) -> anyhow::Result<String> {
    let mut stdin = std::io::stdin().lock();
    if stdin.is_terminal() {
        eprintln!("Enter the value of {key}, then press Ctrl-D:");
    }
    let mut raw = Zeroizing::new(Vec::new());
    stdin
        .read_to_end(&mut raw)
        .context("cannot read the value from stdin")?;
    let value = std::str::from_utf8(&raw)
        .map_err(|_| anyhow::anyhow!("the value on stdin is not valid UTF-8 text"))?;
    let value = value
        .strip_suffix("\r\n")
        .or_else(|| value.strip_suffix('\n'))
        .unwrap_or(value);
    Ok(value.to_owned())
}

pub(crate) async fn import(global: &GlobalArgs, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let from_stdin = args.file.as_os_str() == "-";
    let label = if from_stdin {
        "stdin".to_owned()
    } else {
        args.file.display().to_string()
    };
    let mut raw = Zeroizing::new(Vec::new());
    if from_stdin {
        std::io::stdin()
            .lock()
            .read_to_end(&mut raw)
            .context("cannot read stdin")?;
    } else {
        *raw = std::fs::read(&args.file).with_context(|| format!("cannot read {label}"))?;
    }
    // The parser's errors carry a line number and a fixed reason, never the line's text.
    let entries = dotenv::parse(&raw).map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
    if entries.is_empty() {
        anyhow::bail!("{label} holds no KEY=value entries; nothing was imported");
    }
    let pairs = entries.into_iter().map(|e| (e.key, e.value)).collect();
    let changes = Changes::new(pairs, args.variable);
    let keys = changes.keys();
    let client = client::connect(global)?;
    let (answer, created) = create_or_merge(&client, &args.bundle, &changes).await?;
    let kind = if args.variable { " as variables" } else { "" };
    report(
        global,
        &answer,
        created,
        &format!("{}{kind}", output::names(&keys)),
    )
}

/// Merge into the bundle (PATCH); if it does not exist, create it (POST). Returns the bundle
/// and whether it was created.
async fn create_or_merge(
    client: &ApiClient,
    bundle: &str,
    changes: &Changes,
) -> Result<(Value, bool), ClientError> {
    let patch = json!({
        "set": changes.secrets,
        "variables": changes.variables,
        "injections": changes.injections,
    });
    match client.patch(&bundle_path(bundle), &patch).await {
        Err(e) if e.code() == Some("secret_bundle_not_found") => {}
        other => return other.map(|v| (v, false)),
    }
    let create = json!({
        "name": bundle,
        "values": changes.secrets,
        "variables": changes.variables,
        "injections": changes.injections,
    });
    match client.post(&SECRETS, &create).await {
        Ok(v) => Ok((v, true)),
        // Created by someone else in between: merge after all.
        Err(e) if e.code() == Some("secret_bundle_exists") => client
            .patch(&bundle_path(bundle), &patch)
            .await
            .map(|v| (v, false)),
        Err(e) => Err(e),
    }
}

fn report(
    global: &GlobalArgs,
    answer: &Value,
    created: bool,
    what: &str,
) -> anyhow::Result<ExitCode> {
    if global.json {
        output::json(answer)?;
        return Ok(ExitCode::SUCCESS);
    }
    let b = Bundle::from_json(answer)?;
    let verb = if created {
        "Created bundle"
    } else {
        "Updated bundle"
    };
    output::emit(&format!(
        "{verb} {} (version {}): set {what}.\n",
        b.name, b.version
    ))?;
    Ok(ExitCode::SUCCESS)
}
