//! Per-chunk costs the data plane adds to every proxied response: secret redaction and
//! usage metering. Run with `cargo bench -p keyward-proxy --bench hot_paths`.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use keyward_proxy::meter::{BodyKind, Meter};
use keyward_proxy::redact::Redactor;

const SECRETS: [&[u8]; 5] = [
    b"sk-proj-kwBENCHaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    b"sk-ant-api03-kwBENCHbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    b"AIzaSyBENCHcccccccccccccccccccccccccccc",
    b"ghp_BENCHdddddddddddddddddddddddddddddddd",
    b"postgres://app:BENCH-eeeeeeeeeeee@db.internal:5432/app",
];

/// An OpenAI-style chat completion stream of about `size` bytes (text deltas, then usage).
fn openai_sse(size: usize, echo: Option<&[u8]>) -> Vec<u8> {
    let mut body = Vec::with_capacity(size + 512);
    let mut i = 0;
    while body.len() < size {
        let word = if i % 7 == 0 { "streams " } else { "tokens " };
        body.extend_from_slice(
            format!(
                "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{word}\"}},\"finish_reason\":null}}],\"usage\":null}}\n\n"
            )
            .as_bytes(),
        );
        i += 1;
        if i == 30 {
            if let Some(secret) = echo {
                body.extend_from_slice(b"data: {\"error\":\"bad key ");
                body.extend_from_slice(secret);
                body.extend_from_slice(b"\"}\n\n");
            }
        }
    }
    body.extend_from_slice(b"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":1200,\"completion_tokens\":900,\"total_tokens\":2100}}\n\ndata: [DONE]\n\n");
    body
}

fn chunks(body: &[u8], size: usize) -> Vec<Bytes> {
    body.chunks(size).map(Bytes::copy_from_slice).collect()
}

fn redaction(c: &mut Criterion) {
    let redactor = Redactor::new(SECRETS);
    let mut group = c.benchmark_group("redact");
    for (name, echo) in [
        ("sse_16k_no_match", None),
        ("sse_16k_one_match", Some(SECRETS[1])),
    ] {
        let body = openai_sse(16 << 10, echo);
        let parts = chunks(&body, 256);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut stream = redactor.stream();
                let mut sent = 0;
                for part in &parts {
                    sent += stream.push(part.clone()).len();
                }
                sent += stream.finish().len();
                black_box((sent, stream.redactions()))
            })
        });
    }
    let header: Vec<u8> = b"Bearer "
        .iter()
        .copied()
        .chain((0..1017).map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789-_."[i % 39]))
        .collect();
    group.throughput(Throughput::Bytes(header.len() as u64));
    group.bench_function("header_1k", |b| {
        b.iter(|| black_box(redactor.redact_all(black_box(&header)).len()))
    });
    group.finish();
}

fn metering(c: &mut Criterion) {
    let body = openai_sse(16 << 10, None);
    let parts = chunks(&body, 256);
    let mut group = c.benchmark_group("meter");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("openai_sse_16k", |b| {
        b.iter(|| {
            let mut meter = Meter::new(BodyKind::Sse);
            for part in &parts {
                meter.observe(part);
            }
            black_box(meter.finish().output_tokens)
        })
    });
    group.finish();
}

criterion_group!(benches, redaction, metering);
criterion_main!(benches);
