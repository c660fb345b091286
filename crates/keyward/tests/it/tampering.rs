//! Tampering with the database while the server is stopped: a flipped bit in a sealed value,
//! or a sealed value moved into another tenant's (or bundle's) row, must fail to open: the
//! operations that decrypt answer 500 `decryption_failed`, without any plaintext.

use keyward_testkit::{ApiClient, KeywardProcess};
use serde_json::json;
use sqlx::Row as _;

use crate::support::{assert_error, bundle_path, new_tenant_token, open_db, start_server, SECRETS};

const SELECT_SEALED: &str = "SELECT e.bundle_id, e.sealed FROM entries e \
     JOIN bundles b ON b.id = e.bundle_id JOIN tenants t ON t.id = b.tenant_id \
     WHERE t.name = ? AND b.name = ? AND e.name = ? AND b.deleted_at IS NULL";

/// (bundle id, sealed bytes) of one secret entry.
async fn sealed(
    db: &sqlx::SqlitePool,
    tenant: &str,
    bundle: &str,
    key: &str,
) -> anyhow::Result<(i64, Vec<u8>)> {
    let row = sqlx::query(SELECT_SEALED)
        .bind(tenant)
        .bind(bundle)
        .bind(key)
        .fetch_one(db)
        .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

async fn set_sealed(
    db: &sqlx::SqlitePool,
    bundle_id: i64,
    key: &str,
    bytes: &[u8],
) -> anyhow::Result<()> {
    let done = sqlx::query("UPDATE entries SET sealed = ? WHERE bundle_id = ? AND name = ?")
        .bind(bytes)
        .bind(bundle_id)
        .bind(key)
        .execute(db)
        .await?;
    anyhow::ensure!(done.rows_affected() == 1, "no entry updated");
    Ok(())
}

/// PUT and PATCH on `name` both fail closed; the bundle is unchanged; nothing in `plaintexts`
/// appears in the answers or the log.
async fn assert_fails_closed(
    kw: &KeywardProcess,
    client: &ApiClient,
    name: &str,
    plaintexts: &[&str],
) -> anyhow::Result<()> {
    let (_, before) = client.get(&bundle_path(name), None).await?;
    let attempts = [
        (reqwest::Method::PATCH, json!({"set": {"NEW_KEY": "n"}})),
        (
            reqwest::Method::PUT,
            json!({"values": {"OPENAI_API_KEY": "replacement"}}),
        ),
    ];
    for (method, body) in attempts {
        let resp = client
            .send(method.clone(), &bundle_path(name), Some(body))
            .await?;
        assert_error(resp.status, &resp.json, 500, "decryption_failed");
        for plain in plaintexts {
            assert!(
                !resp.text.contains(plain),
                "{method}: plaintext in {}",
                resp.text
            );
        }
    }
    let (status, after) = client.get(&bundle_path(name), None).await?;
    assert_eq!(status, 200, "metadata stays readable: {after}");
    assert_eq!(after, before, "a failed rotation changed the bundle");
    let logs = kw.logs();
    for plain in plaintexts {
        assert!(!logs.contains(plain), "plaintext in the server log");
    }
    Ok(())
}

#[tokio::test]
async fn flipped_bit_in_a_sealed_value_fails_closed() -> anyhow::Result<()> {
    let (mut kw, admin) = start_server().await?;
    let token = kw.admin_token()?;
    for name in ["victim", "control"] {
        let body =
            json!({"name": name, "values": {"OPENAI_API_KEY": format!("plain-{name}-5150")}});
        let (status, _) = admin.post(SECRETS, Some(body)).await?;
        assert_eq!(status, 201);
    }
    kw.terminate().await?;
    {
        let db = open_db(kw.data_dir()).await?;
        let (id, mut bytes) = sealed(&db, "default", "victim", "OPENAI_API_KEY").await?;
        assert!(
            !bytes.windows(16).any(|w| w == b"plain-victim-515"),
            "value stored in clear"
        );
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x10;
        set_sealed(&db, id, "OPENAI_API_KEY", &bytes).await?;
        db.close().await;
    }
    kw.restart().await?;
    let admin = kw.client(&token);
    assert_fails_closed(
        &kw,
        &admin,
        "victim",
        &["plain-victim-5150", "plain-control-5150"],
    )
    .await?;
    // The untouched bundle still opens and rotates.
    let (status, body) = admin
        .patch(&bundle_path("control"), Some(json!({"set": {"X": "1"}})))
        .await?;
    assert_eq!(status, 200, "{body}");
    // Deleting the tampered bundle needs no decryption and clears the way.
    let (status, _) = admin.delete(&bundle_path("victim"), None).await?;
    assert_eq!(status, 200);
    Ok(())
}

#[tokio::test]
async fn sealed_value_moved_to_another_row_fails_to_open() -> anyhow::Result<()> {
    let (mut kw, admin) = start_server().await?;
    let a_token = new_tenant_token(&admin, "tenant-a").await?;
    let b_token = new_tenant_token(&admin, "tenant-b").await?;
    let (a, b) = (kw.client(&a_token), kw.client(&b_token));
    for (client, name, value) in [
        (&a, "keys", "a-secret-keys-7071"),
        (&a, "keys-two", "a-secret-two-7072"),
        (&b, "keys", "b-secret-keys-7073"),
    ] {
        let body = json!({"name": name, "values": {"OPENAI_API_KEY": value}});
        let (status, view) = client.post(SECRETS, Some(body)).await?;
        assert_eq!((status.as_u16(), &view["version"]), (201, &json!(1)));
    }
    kw.terminate().await?;
    {
        let db = open_db(kw.data_dir()).await?;
        let (_, a_blob) = sealed(&db, "tenant-a", "keys", "OPENAI_API_KEY").await?;
        // Same key name, same version: only tenant and bundle differ.
        let (b_id, _) = sealed(&db, "tenant-b", "keys", "OPENAI_API_KEY").await?;
        set_sealed(&db, b_id, "OPENAI_API_KEY", &a_blob).await?;
        // And within one tenant, into another bundle.
        let (a2_id, _) = sealed(&db, "tenant-a", "keys-two", "OPENAI_API_KEY").await?;
        set_sealed(&db, a2_id, "OPENAI_API_KEY", &a_blob).await?;
        db.close().await;
    }
    kw.restart().await?;
    let (a, b) = (kw.client(&a_token), kw.client(&b_token));
    let all = [
        "a-secret-keys-7071",
        "a-secret-two-7072",
        "b-secret-keys-7073",
    ];
    assert_fails_closed(&kw, &b, "keys", &all).await?;
    assert_fails_closed(&kw, &a, "keys-two", &all).await?;
    // The blob in its own row still opens.
    let (status, body) = a
        .patch(&bundle_path("keys"), Some(json!({"set": {"X": "1"}})))
        .await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}

#[tokio::test]
async fn tampered_key_name_version_or_tenant_key_fail_closed() -> anyhow::Result<()> {
    let (mut kw, admin) = start_server().await?;
    let a_token = new_tenant_token(&admin, "tenant-a").await?;
    let b_token = new_tenant_token(&admin, "tenant-b").await?;
    let (a, b) = (kw.client(&a_token), kw.client(&b_token));
    for (client, name) in [
        (&a, "keys"),
        (&a, "renamed"),
        (&a, "reversioned"),
        (&b, "b-keys"),
    ] {
        let body = json!({"name": name, "values": {"OPENAI_API_KEY": format!("value-of-{name}")}});
        let (status, _) = client.post(SECRETS, Some(body)).await?;
        assert_eq!(status, 201);
    }
    kw.terminate().await?;
    {
        let db = open_db(kw.data_dir()).await?;
        let (renamed, _) = sealed(&db, "tenant-a", "renamed", "OPENAI_API_KEY").await?;
        sqlx::query("UPDATE entries SET name = 'ANTHROPIC_API_KEY' WHERE bundle_id = ?")
            .bind(renamed)
            .execute(&db)
            .await?;
        let (reversioned, _) = sealed(&db, "tenant-a", "reversioned", "OPENAI_API_KEY").await?;
        sqlx::query("UPDATE bundles SET version = 2 WHERE id = ?")
            .bind(reversioned)
            .execute(&db)
            .await?;
        sqlx::query("UPDATE entries SET version = 2 WHERE bundle_id = ?")
            .bind(reversioned)
            .execute(&db)
            .await?;
        let row = sqlx::query("SELECT wrapped_key FROM tenants WHERE name = 'tenant-b'")
            .fetch_one(&db)
            .await?;
        let mut wrapped: Vec<u8> = row.try_get(0)?;
        let last = wrapped.len() - 1;
        wrapped[last] ^= 0x01;
        sqlx::query("UPDATE tenants SET wrapped_key = ? WHERE name = 'tenant-b'")
            .bind(wrapped)
            .execute(&db)
            .await?;
        db.close().await;
    }
    kw.restart().await?;
    let (a, b) = (kw.client(&a_token), kw.client(&b_token));
    let all = [
        "value-of-keys",
        "value-of-renamed",
        "value-of-reversioned",
        "value-of-b-keys",
    ];
    assert_fails_closed(&kw, &a, "renamed", &all).await?;
    assert_fails_closed(&kw, &a, "reversioned", &all).await?;
    let (status, body) = a
        .patch(&bundle_path("keys"), Some(json!({"set": {"X": "1"}})))
        .await?;
    assert_eq!(
        status, 200,
        "an untouched bundle of the same tenant: {body}"
    );

    // B's data key no longer unwraps: every operation that seals or opens fails closed.
    assert_fails_closed(&kw, &b, "b-keys", &all).await?;
    let resp = b
        .send(
            reqwest::Method::POST,
            SECRETS,
            Some(json!({"name": "new", "values": {"K": "value-of-new"}})),
        )
        .await?;
    assert_error(resp.status, &resp.json, 500, "decryption_failed");
    assert!(!resp.text.contains("value-of-new"));
    let (status, list) = b.get(SECRETS, None).await?;
    assert_eq!(status, 200, "metadata needs no key: {list}");
    assert_eq!(
        list["bundles"].as_array().map(Vec::len),
        Some(1),
        "nothing created"
    );
    Ok(())
}
