use std::sync::atomic::Ordering;
use std::time::Duration;

use super::*;
use crate::test_helpers::{sample, MemorySink};
use crate::{verify, GENESIS_HASH};

fn quick() -> AuditWriterConfig {
    AuditWriterConfig {
        retry_initial: Duration::from_millis(5),
        retry_max: Duration::from_millis(20),
        ..AuditWriterConfig::default()
    }
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test]
async fn group_commits_a_thousand_writes_in_a_few_transactions() {
    let sink = Arc::new(MemorySink::default());
    let writer = AuditWriter::start(sink.clone(), quick());
    for i in 0..1000 {
        let tenant = if i % 4 == 0 { "other" } else { "acme" };
        writer.reserve().unwrap().write(sample(tenant, i));
    }
    writer.clone().flush_and_stop().await;

    let appends = sink.appends.load(Ordering::SeqCst);
    assert!(appends <= 10, "{appends} transactions for 1000 records");
    assert_eq!(sink.stored().len(), 1000);
    let acme = sink.of_tenant("acme");
    assert_eq!(verify(&acme), Ok(750));
    assert_eq!(verify(&sink.of_tenant("other")), Ok(250));
    assert_eq!(acme[0].prev_hash, GENESIS_HASH);
    assert_eq!(writer.write_failures(), 0);
    assert_eq!(writer.reserve().unwrap_err(), AuditUnavailable::Stopped);
}

#[tokio::test]
async fn continues_the_chain_the_sink_already_holds() {
    let sink = Arc::new(MemorySink::default());
    let writer = AuditWriter::start(sink.clone(), quick());
    writer.reserve().unwrap().write(sample("acme", 1));
    writer.flush_and_stop().await;
    let writer = AuditWriter::start(sink.clone(), quick());
    writer.reserve().unwrap().write(sample("acme", 2));
    writer.flush_and_stop().await;
    let acme = sink.of_tenant("acme");
    assert_eq!(acme.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(verify(&acme), Ok(2));
}

#[tokio::test]
async fn refuses_when_unhealthy_keeps_the_batch_and_recovers() {
    let sink = Arc::new(MemorySink::default());
    sink.fail.store(true, Ordering::SeqCst);
    let writer = AuditWriter::start(sink.clone(), quick());
    writer.reserve().unwrap().write(sample("acme", 1));
    eventually("the writer turns unhealthy", || !writer.is_healthy()).await;
    assert_eq!(writer.reserve().unwrap_err(), AuditUnavailable::Unhealthy);
    assert!(writer.write_failures() >= 1);
    assert!(sink.stored().is_empty());

    sink.fail.store(false, Ordering::SeqCst);
    eventually("the writer recovers", || writer.is_healthy()).await;
    writer.reserve().unwrap().write(sample("acme", 2));
    writer.clone().flush_and_stop().await;
    let acme = sink.of_tenant("acme");
    assert_eq!(acme.len(), 2, "the failed batch was kept, not lost");
    assert_eq!(verify(&acme), Ok(2));
}

#[tokio::test]
async fn refuses_when_the_queue_is_full() {
    let sink = Arc::new(MemorySink::default());
    let writer = AuditWriter::start(
        sink.clone(),
        AuditWriterConfig {
            capacity: 2,
            ..quick()
        },
    );
    let a = writer.reserve().unwrap();
    let b = writer.reserve().unwrap();
    assert_eq!(writer.queue_depth(), 2);
    assert_eq!(writer.reserve().unwrap_err(), AuditUnavailable::QueueFull);
    a.write(sample("acme", 1));
    drop(b); // an unused slot frees its room and records nothing
    writer.clone().flush_and_stop().await;
    assert_eq!(sink.stored().len(), 1);
    assert_eq!(writer.queue_depth(), 0);
}

#[tokio::test]
async fn flush_waits_for_slots_still_out() {
    let sink = Arc::new(MemorySink::default());
    let writer = AuditWriter::start(sink.clone(), quick());
    let slot = writer.reserve().unwrap();
    let flushing = tokio::spawn(writer.clone().flush_and_stop());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!flushing.is_finished());
    assert_eq!(writer.reserve().unwrap_err(), AuditUnavailable::Stopped);
    slot.write(sample("acme", 1));
    flushing.await.unwrap();
    assert_eq!(sink.stored().len(), 1);
}

#[tokio::test]
async fn gives_up_during_shutdown_if_the_sink_never_recovers() {
    let sink = Arc::new(MemorySink::default());
    sink.fail.store(true, Ordering::SeqCst);
    let writer = AuditWriter::start(sink.clone(), quick());
    writer.reserve().unwrap().write(sample("acme", 1));
    tokio::time::timeout(Duration::from_secs(10), writer.flush_and_stop())
        .await
        .unwrap();
    assert!(sink.stored().is_empty());
}

#[tokio::test]
async fn a_commit_that_landed_despite_an_error_is_not_written_twice() {
    let sink = Arc::new(MemorySink::default());
    sink.lose_ack.store(true, Ordering::SeqCst);
    let writer = AuditWriter::start(sink.clone(), quick());
    writer.reserve().unwrap().write(sample("acme", 1));
    eventually("the retry notices the batch landed", || {
        writer.is_healthy() && writer.write_failures() == 1
    })
    .await;
    writer.reserve().unwrap().write(sample("acme", 2));
    writer.clone().flush_and_stop().await;
    let acme = sink.of_tenant("acme");
    assert_eq!(acme.len(), 2);
    assert_eq!(verify(&acme), Ok(2));
}
