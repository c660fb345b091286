//! `keyward limits set|get|clear` against a running server: what the CLI sets is what the API
//! reads back, the tenant is the default scope name, and usage errors exit 2.

use serde_json::{json, Value};

use crate::limits::session_limits;
use crate::support::gateway::Gateway;

#[tokio::test]
async fn the_cli_sets_reads_and_clears_limits() -> anyhow::Result<()> {
    let (gw, session) = Gateway::with_provider_session(&[]).await?;
    let token = gw.kw.admin_token()?;
    let cli = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(crate::support::bin());
        cmd.args(["--server", gw.kw.api_url(), "--token", &token])
            .args(args);
        cmd.output()
    };
    let id = session.id.as_str();
    let set = cli(&[
        "limits",
        "set",
        "session",
        id,
        "--rpm",
        "7",
        "--budget-day",
        "2.5",
    ])
    .await?;
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let got = cli(&["limits", "get", "session", id, "--json"]).await?;
    let got: Value = serde_json::from_slice(&got.stdout)?;
    assert_eq!(
        got,
        json!({"requests_per_minute": 7, "budget_usd_per_day": 2.5})
    );
    let tenant = cli(&["limits", "set", "tenant", "--concurrent", "3"]).await?;
    assert!(tenant.status.success());
    assert_eq!(
        gw.admin.get("/v1/limits/tenant/me", None).await?.1,
        json!({"concurrent_requests": 3})
    );
    let cleared = cli(&["limits", "clear", "session", id]).await?;
    assert!(cleared.status.success());
    assert_eq!(
        gw.admin.get(&session_limits(&session), None).await?.1,
        json!({})
    );
    // Usage errors exit 2; a refusal of the server exits 1.
    assert_eq!(
        cli(&["limits", "set", "session", id]).await?.status.code(),
        Some(2)
    );
    assert_eq!(
        cli(&["limits", "get", "session"]).await?.status.code(),
        Some(2)
    );
    let missing = cli(&["limits", "get", "session", "ses_nope"]).await?;
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("session_not_found"));
    Ok(())
}
