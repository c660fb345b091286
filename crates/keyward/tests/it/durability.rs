//! "A write that was acknowledged survives `kill -9` at any instant": writers create, PATCH
//! and delete bundles through the API while the server is SIGKILLed at pseudo-random moments, then the
//! server restarts on the same data dir and every acknowledged write must be there exactly.
//! The one request in flight at the kill may or may not have landed; both outcomes are allowed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use keyward_testkit::ApiClient;
use serde_json::{json, Value};

use crate::support::{bundle_path, list_bundles, new_tenant_token, start_server, SECRETS};

const ROUNDS: usize = 5;
const BUNDLES_PER_WRITER: usize = 20;

/// What a bundle holds as far as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    version: i64,
    keys: BTreeSet<String>,
    step: String,
}

impl State {
    fn of(view: &Value) -> Self {
        State {
            version: view["version"].as_i64().unwrap_or(-1),
            keys: view["key_names"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect(),
            step: view["variables"]["STEP"].as_str().unwrap_or("?").to_owned(),
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Create { name: String },
    Patch { name: String, n: u64 },
    Delete { name: String },
}

impl Op {
    /// The state after this op, from the state before it (`None`: no such bundle).
    fn apply(&self, before: Option<&State>) -> Option<State> {
        match (self, before) {
            (Op::Delete { .. }, _) | (Op::Patch { .. }, None) => None,
            (Op::Create { .. }, _) => Some(State {
                version: 1,
                keys: ["S".to_owned(), "STEP".to_owned()].into(),
                step: "0".to_owned(),
            }),
            (Op::Patch { n, .. }, Some(before)) => {
                let mut keys = before.keys.clone();
                if adds_key(*n, before) {
                    keys.insert(format!("K{n}"));
                }
                Some(State {
                    version: before.version + 1,
                    keys,
                    step: n.to_string(),
                })
            }
        }
    }

    fn name(&self) -> &str {
        match self {
            Op::Create { name } | Op::Patch { name, .. } | Op::Delete { name } => name,
        }
    }
}

fn adds_key(n: u64, before: &State) -> bool {
    n.is_multiple_of(5) && before.keys.len() < 40
}

/// One writer: a tenant, its acknowledged model, a counter. At most one request in flight.
struct Writer {
    token: String,
    prefix: &'static str,
    model: BTreeMap<String, State>,
    counter: u64,
    acked: u64,
}

impl Writer {
    fn next_op(&mut self) -> Op {
        self.counter += 1;
        let n = self.counter;
        if self.model.len() < BUNDLES_PER_WRITER && (self.model.is_empty() || n.is_multiple_of(4)) {
            // The lowest free slot, so deleted names are created again.
            let slot = (0..).find(|i| !self.model.contains_key(&format!("{}-{i}", self.prefix)));
            return Op::Create {
                name: format!("{}-{}", self.prefix, slot.unwrap_or(0)),
            };
        }
        let names: Vec<&String> = self.model.keys().collect();
        let name = names[usize::try_from(n).unwrap_or(0) % names.len()].clone();
        if n.is_multiple_of(9) && names.len() > 5 {
            return Op::Delete { name };
        }
        Op::Patch { name, n }
    }

    /// Writes until a request fails at the transport level; returns the op then in flight.
    async fn run(mut self, client: ApiClient) -> anyhow::Result<(Self, Op)> {
        loop {
            let op = self.next_op();
            let before = self.model.get(op.name());
            let sent = match &op {
                Op::Create { name } => {
                    let body = json!({"name": name, "values": {"S": format!("secret-{name}")},
                        "variables": {"STEP": "0"}});
                    client.post(SECRETS, Some(body)).await
                }
                Op::Patch { name, n } => {
                    let mut set = serde_json::Map::new();
                    set.insert("S".into(), json!(format!("secret-{n}")));
                    if before.is_some_and(|b| adds_key(*n, b)) {
                        set.insert(format!("K{n}"), json!("x"));
                    }
                    let body = json!({"set": set, "variables": {"STEP": n.to_string()}});
                    client.patch(&bundle_path(name), Some(body)).await
                }
                Op::Delete { name } => client.delete(&bundle_path(name), None).await,
            };
            let Ok((status, body)) = sent else {
                return Ok((self, op));
            };
            anyhow::ensure!(status.is_success(), "{op:?}: {status} {body}");
            match op.apply(before) {
                Some(after) => {
                    anyhow::ensure!(State::of(&body) == after, "{op:?}: {body}, want {after:?}");
                    self.model.insert(op.name().to_owned(), after);
                }
                None => {
                    anyhow::ensure!(body == json!({"status": "deleted"}), "{op:?}: {body}");
                    self.model.remove(op.name());
                }
            }
            self.acked += 1;
        }
    }

    /// After a restart: everything acknowledged is there exactly; the in-flight op either
    /// landed whole or not at all. The model then follows what the server holds.
    async fn verify(&mut self, client: &ApiClient, pending: Option<&Op>) -> anyhow::Result<()> {
        let listed: BTreeMap<String, State> = list_bundles(client)
            .await?
            .iter()
            .map(|v| (v["name"].as_str().unwrap_or("").to_owned(), State::of(v)))
            .collect();
        let mut expected = self.model.clone();
        if let Some(op) = pending {
            let after = op.apply(self.model.get(op.name()));
            if listed.get(op.name()) == after.as_ref() {
                match after {
                    Some(state) => expected.insert(op.name().to_owned(), state),
                    None => expected.remove(op.name()),
                };
            }
        }
        anyhow::ensure!(
            listed == expected,
            "after restart ({pending:?} in flight):\n server {listed:?}\n model  {expected:?}"
        );
        for (name, state) in &expected {
            let (status, view) = client.get(&bundle_path(name), None).await?;
            anyhow::ensure!(
                status == 200 && State::of(&view) == *state,
                "{name}: {view}"
            );
        }
        if let Some(Op::Delete { name }) = pending.filter(|op| !expected.contains_key(op.name())) {
            let (status, view) = client.get(&bundle_path(name), None).await?;
            anyhow::ensure!(status == 404, "deleted {name} still answers: {view}");
        }
        self.model = expected;
        Ok(())
    }
}

/// A small deterministic generator for kill delays (xorshift64).
fn next_delay(seed: &mut u64) -> Duration {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    Duration::from_millis(100 + *seed % 900)
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() -> anyhow::Result<()> {
    let (mut kw, admin) = start_server().await?;
    let other = new_tenant_token(&admin, "durable-b").await?;
    let mut writers = vec![
        Writer {
            token: kw.admin_token()?,
            prefix: "wa",
            model: BTreeMap::new(),
            counter: 0,
            acked: 0,
        },
        Writer {
            token: other,
            prefix: "wb",
            model: BTreeMap::new(),
            counter: 0,
            acked: 0,
        },
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for round in 0..ROUNDS {
        let tasks: Vec<_> = writers
            .drain(..)
            .map(|w| {
                let client = kw.client(&w.token);
                tokio::spawn(w.run(client))
            })
            .collect();
        tokio::time::sleep(next_delay(&mut seed)).await;
        kw.kill9()?;
        let mut pending = Vec::new();
        for task in tasks {
            let (writer, op) = tokio::time::timeout(Duration::from_secs(30), task).await???;
            writers.push(writer);
            pending.push(op);
        }
        kw.restart().await?;
        for (writer, op) in writers.iter_mut().zip(&pending) {
            let client = kw.client(&writer.token);
            writer
                .verify(&client, Some(op))
                .await
                .map_err(|e| e.context(format!("round {round}, writer {}", writer.prefix)))?;
        }
    }
    // A clean stop and start changes nothing either.
    kw.restart().await?;
    for writer in &mut writers {
        let client = kw.client(&writer.token);
        writer.verify(&client, None).await?;
        eprintln!(
            "durability: writer {} had {} writes acknowledged, {} bundles",
            writer.prefix,
            writer.acked,
            writer.model.len()
        );
        assert!(
            writer.acked >= 10,
            "writer {} got only {} writes acknowledged; the test proves little",
            writer.prefix,
            writer.acked
        );
    }
    Ok(())
}
