//! Row decoding. Timestamps are stored as RFC 3339 UTC text with millisecond precision.

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use crate::{BundleId, BundleMeta, Entry, EntryValue, Result, StoreError, Tenant, TenantId};
use crate::{TokenKind, TokenRecord};

pub(super) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) fn parse_ts(text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt("timestamp"))
}

pub(super) fn opt_ts(text: Option<String>) -> Result<Option<DateTime<Utc>>> {
    text.as_deref().map(parse_ts).transpose()
}

pub(super) fn tenant_from_row(row: &SqliteRow) -> Result<Tenant> {
    Ok(Tenant {
        id: TenantId(row.try_get("id")?),
        name: row.try_get("name")?,
        wrapped_key: row.try_get("wrapped_key")?,
        created_at: parse_ts(row.try_get("created_at")?)?,
    })
}

pub(super) fn token_from_row(row: &SqliteRow) -> Result<TokenRecord> {
    let kind: &str = row.try_get("kind")?;
    Ok(TokenRecord {
        id: row.try_get("id")?,
        tenant: TenantId(row.try_get("tenant_id")?),
        kind: TokenKind::parse(kind).ok_or(StoreError::Corrupt("token kind"))?,
        digest: row.try_get("digest")?,
        created_at: parse_ts(row.try_get("created_at")?)?,
    })
}

pub(super) fn bundle_meta_from_row(row: &SqliteRow) -> Result<BundleMeta> {
    Ok(BundleMeta {
        id: BundleId(row.try_get("id")?),
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        created_at: parse_ts(row.try_get("created_at")?)?,
        last_rotated_at: opt_ts(row.try_get("last_rotated_at")?)?,
        deleted_at: opt_ts(row.try_get("deleted_at")?)?,
    })
}

pub(super) fn entry_from_row(row: &SqliteRow) -> Result<Entry> {
    let sealed: Option<Vec<u8>> = row.try_get("sealed")?;
    let plain: Option<String> = row.try_get("plain")?;
    let value = match (sealed, plain) {
        (Some(bytes), None) => EntryValue::Sealed(bytes),
        (None, Some(text)) => EntryValue::Variable(text),
        _ => return Err(StoreError::Corrupt("entry has both or neither value")),
    };
    Ok(Entry {
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        value,
        injection: row.try_get("injection")?,
    })
}
