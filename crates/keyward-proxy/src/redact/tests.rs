use super::*;

const KEY: &[u8] = b"sk-proj-Ab3/x+y=Z_q~9!(k)*";

fn redactor(secrets: &[&[u8]]) -> Redactor {
    Redactor::new(secrets.iter().copied())
}

/// Streams `chunks` through a fresh stream and concatenates the output.
fn streamed(r: &Redactor, chunks: &[&[u8]]) -> (Vec<u8>, u64) {
    let mut s = r.stream();
    let mut out = Vec::new();
    for c in chunks {
        out.extend_from_slice(&s.push(Bytes::copy_from_slice(c)));
    }
    out.extend_from_slice(&s.finish());
    (out, s.redactions())
}

fn every_encoding(secret: &[u8]) -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    encodings(secret, &mut all);
    all.sort();
    all.dedup();
    all
}

#[test]
fn each_encoding_is_caught() {
    let r = redactor(&[KEY]);
    let text = std::str::from_utf8(KEY).unwrap();
    let json = serde_json::to_string(&serde_json::json!({ "k": text })).unwrap();
    let forms: Vec<Vec<u8>> = vec![
        KEY.to_vec(),
        STANDARD.encode(KEY).into_bytes(),
        STANDARD_NO_PAD.encode(KEY).into_bytes(),
        URL_SAFE_NO_PAD.encode(KEY).into_bytes(),
        b"sk-proj-Ab3%2Fx%2By%3DZ_q~9%21%28k%29%2A".to_vec(),
        b"sk-proj-Ab3%2fx%2by%3dZ_q~9%21%28k%29%2a".to_vec(),
        b"sk-proj-Ab3/x%2By%3DZ_q~9%21%28k%29%2A".to_vec(),
        b"sk-proj-Ab3%2Fx%2By%3DZ_q~9!(k)*".to_vec(),
        KEY.iter()
            .flat_map(|b| format!("%{b:02X}").into_bytes())
            .collect(),
        KEY.iter()
            .flat_map(|b| format!("%{b:02x}").into_bytes())
            .collect(),
        json.as_bytes()[6..json.len() - 2].to_vec(),
        text.chars()
            .flat_map(|c| format!("\\u{:04x}", c as u32).into_bytes())
            .collect(),
        text.chars()
            .flat_map(|c| format!("\\u{:04X}", c as u32).into_bytes())
            .collect(),
    ];
    for form in forms {
        let input = [b"error: key ".as_slice(), &form, b" was rejected"].concat();
        let out = r.redact_all(&input);
        assert_eq!(
            &*out,
            b"error: key [REDACTED] was rejected",
            "{}",
            String::from_utf8_lossy(&form)
        );
    }
}

#[test]
fn json_escapes_as_serde_writes_them() {
    let secret = "pass\"word\\with\nnewline/é😀";
    let r = redactor(&[secret.as_bytes()]);
    let body = serde_json::to_vec(&serde_json::json!({ "error": secret })).unwrap();
    assert_eq!(&*r.redact_all(&body), br#"{"error":"[REDACTED]"}"#);
    let php = r#"{"error":"pass\"word\\with\nnewline\/é😀"}"#;
    assert_eq!(&*r.redact_all(php.as_bytes()), br#"{"error":"[REDACTED]"}"#);
    let escaped: String = secret
        .encode_utf16()
        .map(|u| format!("\\u{u:04X}"))
        .collect();
    assert!(escaped.contains("\\uD83D\\uDE00"));
    assert_eq!(&*r.redact_all(escaped.as_bytes()), REDACTED);
}

#[test]
fn split_at_every_boundary_matches_redact_all() {
    let r = redactor(&[KEY, b"another-secret-value"]);
    for form in every_encoding(KEY) {
        let whole = [b"data: {\"e\":\"".as_slice(), &form, b"\"}\n\n"].concat();
        let expected = r.redact_all(&whole).into_owned();
        assert!(expected.windows(REDACTED.len()).any(|w| w == REDACTED));
        for i in 0..=whole.len() {
            let (out, n) = streamed(&r, &[&whole[..i], &whole[i..]]);
            assert_eq!(out, expected, "split at {i}");
            assert_eq!(n, 1);
        }
    }
}

#[test]
fn three_way_splits_match_redact_all() {
    let r = redactor(&[KEY]);
    let whole = [b"x ".as_slice(), KEY, b" y ", KEY, b"z"].concat();
    let expected = r.redact_all(&whole).into_owned();
    assert_eq!(expected, b"x [REDACTED] y [REDACTED]z");
    for i in 0..=whole.len() {
        for j in i..=whole.len() {
            let (out, n) = streamed(&r, &[&whole[..i], &whole[i..j], &whole[j..]]);
            assert_eq!(out, expected, "splits at {i}, {j}");
            assert_eq!(n, 2);
        }
    }
}

#[test]
fn no_match_is_zero_copy() {
    let r = redactor(&[KEY]);
    let mut s = r.stream();
    let chunk = Bytes::from_static(b"data: {\"delta\":\"hello world\"}\n\n");
    let out = s.push(chunk.clone());
    assert_eq!(out.as_ptr(), chunk.as_ptr());
    assert_eq!(out.len(), chunk.len());
    assert!(s.finish().is_empty());
    assert_eq!(s.redactions(), 0);
    assert!(matches!(r.redact_all(b"nothing here"), Cow::Borrowed(_)));
}

#[test]
fn sse_events_are_not_held_back() {
    let r = redactor(&[KEY]);
    let mut s = r.stream();
    // Ends in "s", which starts the key: held back until the next chunk decides.
    assert_eq!(s.push(Bytes::from_static(b"data: yes")), &b"data: ye"[..]);
    assert_eq!(s.push(Bytes::from_static(b"\n\n")), &b"s\n\n"[..]);
    assert_eq!(
        s.push(Bytes::from_static(b"data: x\n\n")),
        &b"data: x\n\n"[..]
    );
}

#[test]
fn unfinished_prefix_is_emitted_on_finish() {
    let r = redactor(&[KEY]);
    let mut s = r.stream();
    assert_eq!(
        s.push(Bytes::from_static(b"token: sk-proj-Ab")),
        &b"token: "[..]
    );
    assert_eq!(s.finish(), &b"sk-proj-Ab"[..]);
    assert_eq!(s.redactions(), 0);
}

#[test]
fn adjacent_and_overlapping_secrets() {
    let a: &[u8] = b"abcdefgh12";
    let b: &[u8] = b"12345678zz";
    let long: &[u8] = b"abcdefgh1234567890";
    let r = redactor(&[a, b, long]);
    assert_eq!(
        &*r.redact_all(b"abcdefgh12abcdefgh12"),
        b"[REDACTED][REDACTED]"
    );
    // Leftmost wins, then longest: `long` beats `a` (same start) and `b` (later start).
    assert_eq!(&*r.redact_all(b"<abcdefgh1234567890>"), b"<[REDACTED]>");
    assert_eq!(
        &*r.redact_all(b"<abcdefgh12345678zz>"),
        b"<[REDACTED]345678zz>"
    );
    let whole = b"abcdefgh12345678zz|abcdefgh1234567890|12345678zz";
    let expected = r.redact_all(whole).into_owned();
    for i in 0..=whole.len() {
        for j in i..=whole.len() {
            let parts: [&[u8]; 3] = [&whole[..i], &whole[i..j], &whole[j..]];
            assert_eq!(streamed(&r, &parts).0, expected, "splits at {i}, {j}");
        }
    }
}

#[test]
fn short_values_are_skipped() {
    let r = redactor(&[b"1234567", b""]);
    assert!(r.is_empty());
    assert_eq!(&*r.redact_all(b"pin 1234567"), b"pin 1234567");
    let chunk = Bytes::from_static(b"1234567");
    assert_eq!(r.stream().push(chunk.clone()).as_ptr(), chunk.as_ptr());
    assert!(!redactor(&[b"12345678"]).is_empty());
}

#[test]
fn debug_never_shows_values() {
    let shown = format!("{:?}", redactor(&[KEY]));
    assert!(!shown.contains("sk-proj"), "{shown}");
}

/// xorshift64*: deterministic, good enough to pick chunk sizes and filler.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_chunkings_match_redact_all() {
    let secrets: [&[u8]; 3] = [KEY, b"ghp_0123456789abcdefXYZ", b"sk-ant-api03-secretvalue"];
    let r = redactor(&secrets);
    let mut pieces: Vec<Vec<u8>> = secrets.iter().flat_map(|s| every_encoding(s)).collect();
    // Near misses: prefixes of every pattern, so hold-back is exercised constantly.
    let prefixes: Vec<Vec<u8>> = pieces.iter().map(|p| p[..p.len() / 2].to_vec()).collect();
    pieces.extend(prefixes);
    pieces.extend([
        b"s".to_vec(),
        b"\n\n".to_vec(),
        b"data: ".to_vec(),
        b"%".to_vec(),
    ]);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..300 {
        let mut whole = Vec::new();
        for _ in 0..rng.below(12) {
            whole.extend_from_slice(&pieces[rng.below(pieces.len())]);
        }
        let expected = r.redact_all(&whole).into_owned();
        let mut chunks = Vec::new();
        let mut rest = &whole[..];
        while !rest.is_empty() {
            let (head, tail) = rest.split_at(rng.below(rest.len().min(40)) + 1);
            chunks.push(head);
            rest = tail;
        }
        assert_eq!(streamed(&r, &chunks).0, expected);
    }
}

#[test]
fn long_values_get_the_common_forms_only() {
    let pem: Vec<u8> = b"-----BEGIN PRIVATE KEY-----\n"
        .iter()
        .chain(
            b"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC/+x\n"
                .iter()
                .cycle()
                .take(5000),
        )
        .copied()
        .collect();
    let r = redactor(&[&pem]);
    let json = serde_json::to_string(std::str::from_utf8(&pem).unwrap()).unwrap();
    let json = json.trim_matches('"').as_bytes().to_vec();
    for form in [pem.clone(), STANDARD.encode(&pem).into_bytes(), json] {
        let input = [b"<".as_slice(), &form, b">"].concat();
        assert!(r.redact_all(&input).starts_with(b"<[REDACTED]"));
    }
    let escaped = percent(&pem, true, |_| false);
    assert!(matches!(r.redact_all(&escaped), Cow::Borrowed(_)));
    assert!(r.memory_usage() < 1 << 20, "{}", r.memory_usage());
}

#[test]
fn shareable_across_tasks() {
    fn check<T: Send + Sync + 'static>() {}
    check::<Redactor>();
    check::<RedactStream>();
    check::<crate::meter::Meter>();
}
