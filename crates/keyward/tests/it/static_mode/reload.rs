//! Live reload: a valid change is applied to new requests without a restart; an invalid one
//! is logged with its line and the running config keeps serving.

use std::time::Duration;

use keyward_testkit::CANARY_OPENAI;

use super::{config, route, sdk_call, StaticKw};

const OPENAI: &str = "{ provider: openai }";
const CLIENT_TOKEN: &str = "sk-client-placeholder-not-a-real-key";

/// Calls `prefix` through the SDK every 100 ms until it answers `status` (up to 10 s).
async fn until_status(st: &StaticKw, prefix: &str, status: u64) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let out = sdk_call(st.url(), prefix, CLIENT_TOKEN).await?;
        if out["status"] == status {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{prefix} still answers {out}; logs:\n{}",
            st.kw.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_valid_change_applies_and_an_invalid_one_keeps_the_old_config() -> anyhow::Result<()> {
    let env_key = "{ key: \"$OPENAI_API_KEY\" }";
    let first = config(&[route("/openai", OPENAI, env_key)]);
    let st = StaticKw::start(&first, &[("OPENAI_API_KEY", CANARY_OPENAI)], &[]).await?;
    assert_eq!(
        sdk_call(st.url(), "/openai", CLIENT_TOKEN).await?["status"],
        200
    );
    assert_eq!(
        sdk_call(st.url(), "/second", CLIENT_TOKEN).await?["status"],
        404
    );

    // A new route appears without a restart.
    let second = config(&[
        route("/openai", OPENAI, env_key),
        route("/second", "{ provider: openai, model: gpt-4o }", env_key),
    ]);
    st.rewrite_config(&second)?;
    until_status(&st, "/second", 200).await?;
    assert!(st.wait_log("config reloaded", 10).await, "{}", st.kw.logs());
    let req = st.openai.last_request().expect("a request");
    assert_eq!(req.body_json().unwrap_or_default()["model"], "gpt-4o");

    // A typo on line 8: refused, logged with the line, and the running config stays.
    let broken = second.replace("- path: /second\n", "- path: /second\n        modle: x\n");
    assert_ne!(broken, second);
    st.rewrite_config(&broken)?;
    assert!(
        st.wait_log("config change refused", 10).await,
        "{}",
        st.kw.logs()
    );
    let logs = st.kw.logs();
    assert!(logs.contains("keyward.yaml:8:"), "{logs}");
    assert!(logs.contains("unknown field `modle`"), "{logs}");
    assert_eq!(
        sdk_call(st.url(), "/openai", CLIENT_TOKEN).await?["status"],
        200
    );
    assert_eq!(
        sdk_call(st.url(), "/second", CLIENT_TOKEN).await?["status"],
        200
    );

    // An unset variable is refused too, naming it.
    let unset = config(&[route("/openai", OPENAI, "{ key: \"$NOT_SET_ANYWHERE\" }")]);
    st.rewrite_config(&unset)?;
    assert!(
        st.wait_log("NOT_SET_ANYWHERE", 10).await,
        "{}",
        st.kw.logs()
    );
    assert_eq!(
        sdk_call(st.url(), "/second", CLIENT_TOKEN).await?["status"],
        200
    );

    // Removing a route is a valid change as well.
    st.rewrite_config(&first)?;
    until_status(&st, "/second", 404).await?;
    assert_eq!(
        sdk_call(st.url(), "/openai", CLIENT_TOKEN).await?["status"],
        200
    );
    st.verify_audit().await?;
    st.assert_not_logged(CANARY_OPENAI);
    Ok(())
}

#[tokio::test]
async fn a_changed_listener_needs_a_restart() -> anyhow::Result<()> {
    let yaml = config(&[route("/openai", OPENAI, "{ key: \"$K\" }")]);
    let st = StaticKw::start(&yaml, &[("K", CANARY_OPENAI)], &[]).await?;
    let moved = yaml.replace("127.0.0.1:0", "127.0.0.1:1");
    st.rewrite_config(&format!("{moved}      - path: /more\n        backend: {OPENAI}\n        auth: {{ passthrough: true }}\n"))?;
    assert!(
        st.wait_log("restart keyward to apply", 10).await,
        "{}",
        st.kw.logs()
    );
    assert_eq!(
        sdk_call(st.url(), "/openai", CLIENT_TOKEN).await?["status"],
        200
    );
    assert_eq!(
        sdk_call(st.url(), "/more", CLIENT_TOKEN).await?["status"],
        404
    );
    Ok(())
}
