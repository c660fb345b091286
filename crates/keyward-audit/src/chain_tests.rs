use super::*;
use crate::test_helpers::{chain_of, sample};

fn broken_at(records: &[StoredAuditRecord]) -> (i64, BreakReason) {
    let brk = verify(records).unwrap_err();
    (brk.seq, brk.reason)
}

#[test]
fn an_intact_chain_verifies() {
    let records = chain_of("acme", 5);
    assert_eq!(records[0].prev_hash, GENESIS_HASH);
    assert_eq!(records[0].seq, 1);
    assert_eq!(records[1].prev_hash, records[0].hash);
    assert_eq!(verify(&records), Ok(5));
    assert_eq!(verify(&[]), Ok(0));
}

#[test]
fn the_hash_is_over_prev_hash_newline_and_json() {
    let json = canonical_json(&sample("acme", 1)).unwrap();
    let expected = hex::encode(Sha256::digest(format!("{GENESIS_HASH}\n{json}").as_bytes()));
    let mut head = ChainHead::genesis();
    assert_eq!(head.append("acme", json).hash, expected);
}

#[test]
fn detects_a_changed_field() {
    let mut records = chain_of("acme", 5);
    records[2].record_json = records[2]
        .record_json
        .replace("\"status\":200", "\"status\":201");
    assert_eq!(broken_at(&records), (3, BreakReason::Changed));
}

#[test]
fn detects_a_changed_record_whose_hash_was_recomputed() {
    let mut records = chain_of("acme", 5);
    records[2].record_json = records[2].record_json.replace("coder", "other");
    records[2].hash = hash(&records[2].prev_hash, &records[2].record_json);
    assert_eq!(broken_at(&records), (4, BreakReason::Removed));
}

#[test]
fn detects_a_removed_record() {
    let mut records = chain_of("acme", 5);
    records.remove(2);
    assert_eq!(broken_at(&records), (3, BreakReason::Removed));

    let mut first_gone = chain_of("acme", 3);
    first_gone.remove(0);
    assert_eq!(broken_at(&first_gone), (1, BreakReason::Removed));
}

#[test]
fn detects_a_removed_record_with_the_rest_renumbered() {
    let mut records = chain_of("acme", 5);
    records.remove(2);
    for r in &mut records[2..] {
        r.seq -= 1;
    }
    assert_eq!(broken_at(&records), (3, BreakReason::Removed));
}

#[test]
fn detects_a_reordered_pair() {
    let mut records = chain_of("acme", 5);
    records.swap(1, 2);
    assert_eq!(broken_at(&records), (2, BreakReason::Reordered));

    // Swapped content under unchanged seq numbers.
    let mut records = chain_of("acme", 5);
    let (a, b) = (records[1].clone(), records[2].clone());
    records[1] = StoredAuditRecord { seq: 2, ..b };
    records[2] = StoredAuditRecord { seq: 3, ..a };
    assert_eq!(broken_at(&records), (2, BreakReason::Removed));
}

#[test]
fn detects_a_forged_record_appended_with_a_wrong_prev_hash() {
    let mut records = chain_of("acme", 3);
    let json = canonical_json(&sample("acme", 99)).unwrap();
    let prev_hash = "f".repeat(64);
    records.push(StoredAuditRecord {
        seq: 4,
        tenant: "acme".into(),
        hash: hash(&prev_hash, &json),
        record_json: json,
        prev_hash,
    });
    assert_eq!(broken_at(&records), (4, BreakReason::Removed));
}

#[test]
fn detects_a_duplicate_and_a_foreign_record() {
    let mut records = chain_of("acme", 3);
    records.insert(2, records[1].clone());
    assert_eq!(broken_at(&records), (2, BreakReason::Inserted));

    let mut records = chain_of("acme", 3);
    records[2].tenant = "other".into();
    assert_eq!(broken_at(&records), (3, BreakReason::Inserted));
}

#[test]
fn the_verifier_checks_page_by_page_and_reports_its_head() {
    let records = chain_of("acme", 4);
    let mut verifier = Verifier::new();
    for r in &records {
        verifier.push(r).unwrap();
    }
    assert_eq!(verifier.checked(), 4);
    assert_eq!(verifier.head().seq, 4);
    assert_eq!(verifier.head().hash, records[3].hash);
    let brk = ChainBreak {
        seq: 7,
        reason: BreakReason::Changed,
    };
    assert_eq!(
        brk.to_string(),
        "audit chain broken at seq 7: its content does not match its hash (edited)"
    );
}
