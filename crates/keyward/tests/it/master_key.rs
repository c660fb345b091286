//! The master key: a wrong or missing key refuses to start; `KEYWARD_MASTER_KEY` is never
//! written and becomes required; online rotation re-wraps without losing anything.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use keyward_testkit::{find_in_dir, ApiClient, KeywardProcess};
use serde_json::json;

use crate::support::{
    bin, bundle_path, foreign_master_key, new_tenant_token, run_until_exit, start_server, SECRETS,
};

fn read_key(dir: &Path) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(dir.join("master.key"))?
        .trim()
        .to_owned())
}

fn write_key(dir: &Path, key: &str) -> anyhow::Result<()> {
    let path = dir.join("master.key");
    std::fs::write(&path, format!("{key}\n"))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// A rotation of `name` that must decrypt its current values.
async fn rotates(client: &ApiClient, name: &str, n: u32) -> anyhow::Result<()> {
    let (status, body) = client
        .patch(
            &bundle_path(name),
            Some(json!({"set": {"ROTATED": format!("r{n}")}})),
        )
        .await?;
    anyhow::ensure!(status == 200, "rotating {name}: {status} {body}");
    Ok(())
}

async fn create(client: &ApiClient, name: &str) -> anyhow::Result<()> {
    let body = json!({"name": name, "values": {"OPENAI_API_KEY": format!("v-{name}")}});
    let (status, view) = client.post(SECRETS, Some(body)).await?;
    anyhow::ensure!(status == 201, "creating {name}: {status} {view}");
    Ok(())
}

#[tokio::test]
async fn wrong_or_missing_master_key_refuses_to_start() -> anyhow::Result<()> {
    let (mut kw, admin) = start_server().await?;
    let token = kw.admin_token()?;
    create(&admin, "keep").await?;
    kw.terminate().await?;
    let dir = kw.data_dir().to_path_buf();
    let good = read_key(&dir)?;

    write_key(&dir, &foreign_master_key(7))?;
    let (status, out) = run_until_exit(&dir, &[]).await?;
    assert!(!status.success(), "started with a wrong key: {out}");
    assert!(out.contains("master key does not match"), "message: {out}");

    for garbage in ["not a key", ""] {
        write_key(&dir, garbage)?;
        let (status, out) = run_until_exit(&dir, &[]).await?;
        assert!(
            !status.success(),
            "started with master.key {garbage:?}: {out}"
        );
        assert!(out.contains("master.key"), "message names the file: {out}");
    }

    std::fs::remove_file(dir.join("master.key"))?;
    let (status, out) = run_until_exit(&dir, &[]).await?;
    assert!(!status.success(), "started without its key: {out}");
    assert!(
        out.contains("master key") && out.contains("master.key"),
        "message: {out}"
    );
    assert!(
        !dir.join("master.key").exists(),
        "a new key was generated over existing data"
    );

    // A wrong key in the environment is refused the same way.
    let wrong = foreign_master_key(9);
    let (status, out) = run_until_exit(&dir, &[("KEYWARD_MASTER_KEY", &wrong)]).await?;
    assert!(
        !status.success() && out.contains("master key does not match"),
        "{out}"
    );

    write_key(&dir, &good)?;
    kw.restart().await?;
    let admin = kw.client(&token);
    rotates(&admin, "keep", 1).await?;
    Ok(())
}

#[tokio::test]
async fn env_master_key_is_never_written_and_then_required() -> anyhow::Result<()> {
    let key = foreign_master_key(42);
    let envs = [("KEYWARD_MASTER_KEY", key.as_str())];
    let dir = tempfile::Builder::new()
        .prefix("keyward-envkey-")
        .tempdir()?;
    let mut kw = KeywardProcess::start_in(bin(), dir.path(), &[], &envs).await?;
    let token = kw.admin_token()?;
    create(&kw.client(&token), "env-bundle").await?;
    assert!(
        !dir.path().join("master.key").exists(),
        "master.key written"
    );
    assert!(
        find_in_dir(dir.path(), key.as_bytes())?.is_empty(),
        "key text on disk"
    );
    kw.terminate().await?;
    assert!(
        !dir.path().join("master.key").exists(),
        "master.key written at stop"
    );

    let (status, out) = run_until_exit(dir.path(), &[]).await?;
    assert!(
        !status.success(),
        "started without KEYWARD_MASTER_KEY: {out}"
    );
    assert!(
        out.contains("KEYWARD_MASTER_KEY"),
        "message names the variable: {out}"
    );
    assert!(
        !dir.path().join("master.key").exists(),
        "a key file was generated"
    );
    let (status, out) = run_until_exit(
        dir.path(),
        &[("KEYWARD_MASTER_KEY", &foreign_master_key(43))],
    )
    .await?;
    assert!(
        !status.success() && out.contains("master key does not match"),
        "{out}"
    );
    let (status, out) =
        run_until_exit(dir.path(), &[("KEYWARD_MASTER_KEY", "not base64!")]).await?;
    assert!(
        !status.success() && out.contains("KEYWARD_MASTER_KEY"),
        "{out}"
    );

    kw.restart().await?;
    rotates(&kw.client(&token), "env-bundle", 1).await?;
    assert!(!dir.path().join("master.key").exists());
    kw.terminate().await?;
    Ok(())
}

#[tokio::test]
async fn online_master_key_rotation_rewraps_every_tenant() -> anyhow::Result<()> {
    let (mut kw, admin) = start_server().await?;
    let token = kw.admin_token()?;
    let a_token = new_tenant_token(&admin, "tenant-a").await?;
    let a = kw.client(&a_token);
    create(&admin, "ops").await?;
    create(&a, "app").await?;
    let dir = kw.data_dir().to_path_buf();
    let old = read_key(&dir)?;

    let (status, body) = admin.post("/v1/admin/rotate-master-key", None).await?;
    assert_eq!((status.as_u16(), body), (200, json!({"status": "rotated"})));
    let new = read_key(&dir)?;
    assert_ne!(new, old, "master.key unchanged");
    assert_eq!(new.len(), 44, "base64 of 32 bytes: {new:?}");
    let mode = std::fs::metadata(dir.join("master.key"))?
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "master.key mode {mode:o}");
    assert!(!dir.join("master.key.new").exists());

    // Old bundles still decrypt, new tenants and bundles work, all without a restart.
    rotates(&admin, "ops", 1).await?;
    rotates(&a, "app", 1).await?;
    let c_token = new_tenant_token(&admin, "tenant-c").await?;
    create(&kw.client(&c_token), "after").await?;
    let (status, body) = admin.post("/v1/admin/rotate-master-key", None).await?;
    assert_eq!(status, 200, "a second rotation: {body}");
    let newest = read_key(&dir)?;
    assert_ne!(newest, new);

    // The key file on disk opens everything after a restart; the old keys no longer do.
    kw.terminate().await?;
    for retired in [&old, &new] {
        write_key(&dir, retired)?;
        let (status, out) = run_until_exit(&dir, &[]).await?;
        assert!(
            !status.success(),
            "a retired key still starts the server: {out}"
        );
    }
    write_key(&dir, &newest)?;
    kw.restart().await?;
    rotates(&kw.client(&token), "ops", 2).await?;
    rotates(&kw.client(&a_token), "app", 2).await?;
    rotates(&kw.client(&c_token), "after", 1).await?;
    Ok(())
}

/// Rotations race with bundle writes and tenant creation, and the server is SIGKILLed in the
/// middle: no request fails meanwhile, and every restart opens everything, including tenants
/// created while a rotation was running.
#[tokio::test]
async fn rotation_under_load_survives_sigkill() -> anyhow::Result<()> {
    let (mut kw, admin) = start_server().await?;
    let token = kw.admin_token()?;
    create(&admin, "live").await?;
    let mut tenants: Vec<String> = Vec::new();
    let mut rotations = 0;
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for round in 0..4u32 {
        let admin = kw.client(&token);
        let rotator = {
            let admin = admin.clone();
            tokio::spawn(async move {
                let mut done = 0u32;
                while let Ok((status, body)) = admin.post("/v1/admin/rotate-master-key", None).await
                {
                    anyhow::ensure!(status == 200, "rotation: {status} {body}");
                    done += 1;
                }
                Ok(done)
            })
        };
        let writer = tokio::spawn(async move {
            let mut created = Vec::new();
            for i in 0u32.. {
                let sent = if i % 3 == 0 {
                    let name = format!("t-{round}-{i}");
                    admin
                        .post("/v1/tenants", Some(json!({ "name": name })))
                        .await
                } else {
                    let body = json!({"set": {"N": format!("{round}-{i}")}});
                    admin.patch(&bundle_path("live"), Some(body)).await
                };
                let Ok((status, body)) = sent else { break };
                anyhow::ensure!(
                    status.is_success(),
                    "write during rotation: {status} {body}"
                );
                if let Some(t) = body["token"].as_str() {
                    created.push(t.to_owned());
                }
            }
            Ok(created)
        });
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(std::time::Duration::from_millis(150 + seed % 600)).await;
        kw.kill9()?;
        rotations += rotator.await??;
        tenants.extend(writer.await??);

        kw.restart().await?;
        assert!(
            !kw.data_dir().join("master.key.new").exists(),
            "round {round}"
        );
        rotates(&kw.client(&token), "live", round).await?;
    }
    assert!(
        rotations > 0,
        "no rotation completed; the test proves little"
    );
    for (i, t) in tenants.iter().enumerate() {
        create(&kw.client(t), &format!("b{i}")).await?;
        rotates(&kw.client(t), &format!("b{i}"), 0).await?;
    }
    eprintln!(
        "master key: {rotations} rotations, {} tenants created",
        tenants.len()
    );
    Ok(())
}
