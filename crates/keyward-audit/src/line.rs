//! The flat JSON form of a stored record, used by `GET /v1/audit`, `keyward audit export` and
//! [`crate::JsonlSink`]: the record's own fields, plus `seq`, `prev_hash` and `hash`.
//!
//! ```text
//! {"seq":1,"ts":"2025-…Z","tenant":"acme",…,"mode":"gateway","prev_hash":"000…","hash":"9f2…"}
//! ```
//!
//! [`to_line`] splices the stored `record_json` in byte for byte. [`parse_line`] goes back by
//! re-serialising the record in its canonical field order, so a line whose fields were edited,
//! added or retyped no longer hashes to its `hash`.

use serde_json::{Map, Value};

use crate::chain::canonical_json;
use crate::record::RECORD_FIELDS;
use crate::{AuditError, AuditRecord, StoredAuditRecord};

/// Fields a line has besides the record's own.
const CHAIN_FIELDS: [&str; 3] = ["seq", "prev_hash", "hash"];

/// Access to the record inside a [`StoredAuditRecord`] (which lives in `keyward-store`).
pub trait StoredAuditRecordExt {
    /// The record, parsed from its stored JSON.
    fn record(&self) -> Result<AuditRecord, AuditError>;
    /// The flat JSON line of this record ([`to_line`]).
    fn to_line(&self) -> String;
}

impl StoredAuditRecordExt for StoredAuditRecord {
    fn record(&self) -> Result<AuditRecord, AuditError> {
        serde_json::from_str(&self.record_json).map_err(|e| AuditError::json(&e))
    }

    fn to_line(&self) -> String {
        to_line(self)
    }
}

/// `{"seq":…, <record_json's fields as stored>, "prev_hash":…, "hash":…}`. If the stored
/// JSON is not an object (only a tampered row is not), it is carried as a string field
/// `record_json` instead, so the line is still JSON and verification reports the record.
pub fn to_line(stored: &StoredAuditRecord) -> String {
    let text = stored.record_json.trim();
    let body = match serde_json::from_str::<Map<String, Value>>(text) {
        Ok(map) if !map.is_empty() => {
            // An object: `{` … `}` around at least one member.
            text.get(1..text.len() - 1).map(str::to_owned)
        }
        _ => None,
    };
    let body = body.unwrap_or_else(|| {
        format!(
            "\"tenant\":{},\"record_json\":{}",
            Value::String(stored.tenant.clone()),
            Value::String(stored.record_json.clone())
        )
    });
    format!(
        "{{\"seq\":{},{body},\"prev_hash\":{},\"hash\":{}}}",
        stored.seq,
        Value::String(stored.prev_hash.clone()),
        Value::String(stored.hash.clone())
    )
}

/// Why a line could not be turned back into a stored record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// Not a JSON object with an integer `seq`: not an audit line at all.
    #[error("not an audit record (no JSON object with an integer seq)")]
    NotARecord,
    /// It has a `seq` but its fields are not a valid record: it was edited.
    #[error("audit record seq {seq} does not have a record's fields and types")]
    Unreadable { seq: i64, tenant: Option<String> },
}

/// A line (as written by [`to_line`] or returned by the API) back to the stored record whose
/// hash it claims.
pub fn parse_line(line: &str) -> Result<StoredAuditRecord, LineError> {
    let value: Value = serde_json::from_str(line).map_err(|_| LineError::NotARecord)?;
    from_value(value)
}

/// [`parse_line`] for an already parsed JSON value.
pub fn from_value(value: Value) -> Result<StoredAuditRecord, LineError> {
    let Value::Object(mut map) = value else {
        return Err(LineError::NotARecord);
    };
    let seq = map
        .get("seq")
        .and_then(Value::as_i64)
        .ok_or(LineError::NotARecord)?;
    let tenant = map.get("tenant").and_then(Value::as_str).map(str::to_owned);
    let unreadable = || LineError::Unreadable {
        seq,
        tenant: tenant.clone(),
    };
    let mut text = |key: &str| match map.remove(key) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(unreadable()),
    };
    let prev_hash = text("prev_hash")?;
    let hash = text("hash")?;
    map.remove("seq");
    if map
        .keys()
        .any(|k| !RECORD_FIELDS.contains(&k.as_str()) || CHAIN_FIELDS.contains(&k.as_str()))
    {
        return Err(unreadable());
    }
    let record: AuditRecord =
        serde_json::from_value(Value::Object(map)).map_err(|_| unreadable())?;
    let record_json = canonical_json(&record).map_err(|_| unreadable())?;
    Ok(StoredAuditRecord {
        seq,
        tenant: record.tenant,
        record_json,
        prev_hash,
        hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_helpers::chain_of;
    use crate::verify;

    #[test]
    fn a_line_round_trips_to_the_stored_record() {
        let records = chain_of("acme", 3);
        for stored in &records {
            let line = stored.to_line();
            assert!(line.starts_with(&format!("{{\"seq\":{},\"ts\":", stored.seq)));
            assert!(line.ends_with(&format!("\"hash\":\"{}\"}}", stored.hash)));
            assert_eq!(parse_line(&line).unwrap(), *stored);
            assert_eq!(stored.record().unwrap().tenant, "acme");
        }
    }

    #[test]
    fn an_edited_line_no_longer_verifies() {
        let records = chain_of("acme", 3);
        let edit = |from: &str, to: &str| {
            let mut parsed: Vec<_> = records.iter().map(|r| parse_line(&r.to_line())).collect();
            parsed[1] = parse_line(&records[1].to_line().replacen(from, to, 1));
            parsed
        };
        // A value changed.
        let parsed: Vec<_> = edit("\"bytes_out\":", "\"bytes_out\":1");
        let parsed: Vec<_> = parsed.into_iter().map(Result::unwrap).collect();
        assert_eq!(verify(&parsed).unwrap_err().seq, 2);
        // A field added, or a type changed: the line is not a record any more.
        let added = edit("\"mode\":", "\"note\":\"ok\",\"mode\":");
        assert!(matches!(
            added[1],
            Err(LineError::Unreadable { seq: 2, .. })
        ));
        let retyped = edit("\"status\":200", "\"status\":\"200\"");
        assert!(matches!(
            retyped[1],
            Err(LineError::Unreadable { seq: 2, .. })
        ));
        assert_eq!(parse_line("{}"), Err(LineError::NotARecord));
        assert_eq!(parse_line("not json"), Err(LineError::NotARecord));
    }

    #[test]
    fn a_row_that_is_not_an_object_still_makes_a_json_line() {
        let mut stored = chain_of("acme", 1).remove(0);
        stored.record_json = "garbage \"quoted\"".into();
        let line = to_line(&stored);
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["record_json"], "garbage \"quoted\"");
        assert!(matches!(
            parse_line(&line),
            Err(LineError::Unreadable { seq: 1, .. })
        ));
    }
}
