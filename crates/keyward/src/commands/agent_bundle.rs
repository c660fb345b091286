//! `keyward secrets set AGENT KEY=VALUE` (seed 002: `superserve secrets set my-agent …`). When
//! the name is an agent's, the keys go into the agent's own bundle, `AGENT-secrets`, created
//! and attached on first use; otherwise the name is a bundle's, as before. An agent wins over
//! a bundle of the same name, since that is what the seed's users type.

use anyhow::Context as _;
use keyward_core::Name;
use serde_json::json;

use super::agents::{agent_path, agent_sub};
use crate::client::ApiClient;

/// Suffix of an agent's own bundle.
const OWN_SUFFIX: &str = "-secrets";

/// Where `secrets set NAME` writes.
pub(crate) struct Target {
    pub bundle: String,
    /// The agent the bundle belongs to, when NAME named one.
    pub agent: Option<String>,
}

/// Resolve NAME: an agent's own bundle if NAME is an agent, else the bundle NAME.
pub(crate) async fn resolve(client: &ApiClient, name: &str) -> anyhow::Result<Target> {
    match client.get(&agent_path(name)).await {
        Ok(_) => {
            let bundle = format!("{name}{OWN_SUFFIX}");
            Name::parse(&bundle).map_err(|_| {
                anyhow::anyhow!(
                    "agent {name}: its own bundle would be named {bundle}, which is longer than \
                     a bundle name may be; create a bundle and `keyward agents attach` it \
                     (invalid_name)"
                )
            })?;
            Ok(Target {
                bundle,
                agent: Some(name.to_owned()),
            })
        }
        // No such agent (or a server without agents): NAME is a bundle, as it always was.
        Err(e)
            if matches!(
                e.code(),
                Some("agent_not_found" | "invalid_name" | "not_found")
            ) =>
        {
            Ok(Target {
                bundle: name.to_owned(),
                agent: None,
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Attach the target's bundle to its agent (idempotent on the server).
pub(crate) async fn attach(client: &ApiClient, target: &Target) -> anyhow::Result<()> {
    let Some(agent) = &target.agent else {
        return Ok(());
    };
    client
        .post(
            &agent_sub(agent, "secrets"),
            &json!({ "bundle": target.bundle }),
        )
        .await
        .with_context(|| {
            format!(
                "bundle {} was written but not attached to agent {agent}",
                target.bundle
            )
        })?;
    Ok(())
}
