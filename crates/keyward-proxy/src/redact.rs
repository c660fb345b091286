//! Removes echoed secrets from everything that flows back to the agent.
//!
//! An upstream that rejects a key often quotes it back ("invalid api key: sk-…"), and a
//! misbehaving tool may print a whole environment. Whatever the encoding, the agent must
//! never read a real secret value, so each value is searched for in every form it is
//! likely to take on the wire (see [`Redactor::new`]) and replaced by [`REDACTED`].
//!
//! The search is one leftmost-longest Aho-Corasick automaton per session, built once.
//! Streams are handled by [`RedactStream`], which gives exactly the output that
//! [`Redactor::redact_all`] gives for the whole body, however the body is chunked, while
//! holding back only a tail that could still grow into a secret. Nothing here does I/O or
//! waits: the data plane calls it from a body wrapper, chunk by chunk.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};

/// What every occurrence of a secret is replaced with.
pub const REDACTED: &[u8] = b"[REDACTED]";

/// Values shorter than this are not redacted: a 4-byte "secret" such as `true` or `1234`
/// matches ordinary text far too often, and mangling responses would do more harm than
/// hiding such a value does good. Real credentials are much longer.
pub const MIN_SECRET_LEN: usize = 8;

/// Values longer than this (certificates, private keys, blobs) are searched for only raw,
/// in standard base64 and JSON-escaped: the other encodings are unlikely for such values,
/// and each costs several times the value's length in automaton memory and build time.
pub const FULL_ENCODINGS_MAX: usize = 4096;

/// The secret values of one session, compiled into a search automaton.
///
/// Cheap to clone (an `Arc` inside); share one per session. Its `Debug` output shows only
/// the number of patterns, never a value.
#[derive(Clone, Default)]
pub struct Redactor {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    ac: AhoCorasick,
    /// All patterns, sorted and deduplicated: "is this tail a proper prefix of some
    /// pattern?" is a binary search.
    sorted: Vec<Vec<u8>>,
    /// Bit set over `(first byte, second byte)` pairs that start a pattern, so the
    /// hold-back check rejects almost every position with one lookup.
    starts: Box<[u64; 1024]>,
    /// First bytes of patterns, for a tail position that has no second byte yet.
    first: [bool; 256],
    /// Length of the longest pattern: a held-back tail is always shorter than this.
    max_len: usize,
    /// Length of the longest pattern that does not start with `%` or `\`. The long
    /// encodings (every byte percent- or `\u`-escaped) all start with one of those two,
    /// so the rest of the hold-back window is searched for them alone, with `memchr2`.
    near_len: usize,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let patterns = self.inner.as_ref().map_or(0, |i| i.sorted.len());
        f.debug_struct("Redactor")
            .field("patterns", &patterns)
            .finish()
    }
}

impl Redactor {
    /// Compiles the session's secret values. Each value of at least [`MIN_SECRET_LEN`]
    /// bytes is searched for as: the raw bytes; standard base64 with and without padding;
    /// the JSON string body as `serde_json` writes it (UTF-8 values); URL-safe base64 with
    /// and without padding; percent-encoding of the bytes outside
    /// RFC 3986's unreserved set (also as `encodeURIComponent` and Python's `quote` leave
    /// `!'()*` and `/` alone) and of every byte, each in upper- and lowercase hex; and, for
    /// UTF-8 values, the JSON string body with `/` written `\/` (as PHP does) and with
    /// every character written as `\uXXXX` in lower- and uppercase hex.
    ///
    /// Values longer than [`FULL_ENCODINGS_MAX`] get the first three forms only.
    ///
    /// The automaton is a contiguous NFA rather than a DFA: about 25 times less memory
    /// (some 50 KiB for five API keys, against megabytes) for a modest cost in speed, as
    /// the prefilter skips most of the text anyway. Building only fails if it would exceed
    /// aho-corasick's size limits, far beyond a session's caps; should it happen, the raw
    /// values alone are searched for.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let values: Vec<&[u8]> = secrets
            .into_iter()
            .filter(|s| s.len() >= MIN_SECRET_LEN)
            .collect();
        let mut patterns = Vec::new();
        for value in &values {
            encodings(value, &mut patterns);
        }
        Self::compile(patterns)
            .or_else(|| Self::compile(values.iter().map(|v| v.to_vec()).collect()))
            .unwrap_or_default()
    }

    fn compile(mut patterns: Vec<Vec<u8>>) -> Option<Self> {
        patterns.sort_unstable();
        patterns.dedup();
        if patterns.is_empty() {
            return Some(Self::default());
        }
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .build(&patterns)
            .ok()?;
        let mut starts = Box::new([0u64; 1024]);
        let mut first = [false; 256];
        for p in &patterns {
            if let [a, b, ..] = p.as_slice() {
                let bit = usize::from(*a) << 8 | usize::from(*b);
                starts[bit / 64] |= 1 << (bit % 64);
            }
            if let Some(a) = p.first() {
                first[usize::from(*a)] = true;
            }
        }
        let max_len = patterns.iter().map(Vec::len).max().unwrap_or(0);
        let near_len = patterns
            .iter()
            .filter(|p| !p.starts_with(b"%") && !p.starts_with(b"\\"))
            .map(Vec::len)
            .max()
            .unwrap_or(0);
        let inner = Inner {
            ac,
            sorted: patterns,
            starts,
            first,
            max_len,
            near_len,
        };
        Some(Self {
            inner: Some(Arc::new(inner)),
        })
    }

    /// Approximate heap bytes held (about 10 per pattern byte, some 50 KiB for five API
    /// keys): sessions that share a set of secrets can share one `Redactor`.
    pub fn memory_usage(&self) -> usize {
        self.inner.as_ref().map_or(0, |i| {
            let patterns: usize = i.sorted.iter().map(Vec::len).sum();
            i.ac.memory_usage() + i.starts.len() * 8 + patterns
        })
    }

    /// True when there is nothing to redact (no value was long enough).
    pub fn is_empty(&self) -> bool {
        self.inner.is_none()
    }

    /// Replaces every occurrence in a complete buffer (a header value, a small body).
    /// Borrows the input, without allocating, when nothing matched.
    pub fn redact_all<'b>(&self, input: &'b [u8]) -> Cow<'b, [u8]> {
        let Some(inner) = &self.inner else {
            return Cow::Borrowed(input);
        };
        let mut matches = inner.ac.find_iter(input).peekable();
        if matches.peek().is_none() {
            return Cow::Borrowed(input);
        }
        let mut out = Vec::with_capacity(input.len());
        let mut pos = 0;
        for m in matches {
            out.extend_from_slice(&input[pos..m.start()]);
            out.extend_from_slice(REDACTED);
            pos = m.end();
        }
        out.extend_from_slice(&input[pos..]);
        Cow::Owned(out)
    }

    /// A redactor for one response body.
    pub fn stream(&self) -> RedactStream {
        RedactStream {
            inner: self.inner.clone(),
            held: Bytes::new(),
            redactions: 0,
        }
    }
}

/// Redacts one body chunk by chunk; see [`Redactor::stream`].
pub struct RedactStream {
    inner: Option<Arc<Inner>>,
    /// Bytes that may be the start of a secret, waiting for the next chunk to decide.
    held: Bytes,
    redactions: u64,
}

impl RedactStream {
    /// Feeds one chunk and returns what can be sent on now.
    ///
    /// A tail that could be the start of a secret (a proper prefix of one of its
    /// encodings) is held back until the next chunk or [`finish`](Self::finish) decides
    /// it; nothing else is ever delayed, so an SSE event ending in `"\n\n"` goes out whole
    /// (unless a secret itself contains a blank line). When nothing matched and nothing is
    /// held, the input `Bytes` is returned itself, without copying.
    pub fn push(&mut self, chunk: Bytes) -> Bytes {
        let Some(inner) = &self.inner else {
            return chunk;
        };
        let buf = if self.held.is_empty() {
            chunk
        } else {
            let mut joined = BytesMut::with_capacity(self.held.len() + chunk.len());
            joined.extend_from_slice(&self.held);
            joined.extend_from_slice(&chunk);
            joined.freeze()
        };
        let (out, held, n) = inner.scan(buf, false);
        self.held = held;
        self.redactions += n;
        out
    }

    /// End of the body: returns whatever was held back (redacted, should it match now).
    pub fn finish(&mut self) -> Bytes {
        let held = std::mem::take(&mut self.held);
        let Some(inner) = &self.inner else {
            return held;
        };
        let (out, _, n) = inner.scan(held, true);
        self.redactions += n;
        out
    }

    /// How many replacements this stream has made so far (for the audit record).
    pub fn redactions(&self) -> u64 {
        self.redactions
    }
}

impl Inner {
    /// Redacts `buf`, returning `(output, held back tail, replacements)`.
    ///
    /// This follows the leftmost-longest process of [`Redactor::redact_all`] and stops at
    /// the first position whose outcome later bytes could still change: a position `t`
    /// where `buf[t..]` is a proper prefix of a pattern. A match starting at or after such
    /// a `t` might be pre-empted by a longer or earlier one, so it is held back too.
    fn scan(&self, buf: Bytes, at_end: bool) -> (Bytes, Bytes, u64) {
        let open_from = |from: usize| {
            if at_end {
                None
            } else {
                self.open_prefix(&buf, from)
            }
        };
        let mut open = open_from(0);
        let mut out: Option<BytesMut> = None;
        let mut pos = 0;
        let mut count = 0;
        for m in self.ac.find_iter(&buf[..]) {
            if open.is_some_and(|t| t <= m.start()) {
                break;
            }
            let o = out.get_or_insert_with(|| BytesMut::with_capacity(buf.len()));
            o.extend_from_slice(&buf[pos..m.start()]);
            o.extend_from_slice(REDACTED);
            count += 1;
            pos = m.end();
            if open.is_some_and(|t| t < pos) {
                open = open_from(pos);
            }
        }
        let cut = open.unwrap_or(buf.len());
        let held = buf.slice(cut..);
        let emitted = match out {
            None => buf.slice(..cut),
            Some(mut o) => {
                o.extend_from_slice(&buf[pos..cut]);
                o.freeze()
            }
        };
        (emitted, held, count)
    }

    /// The earliest position `t >= from` such that `buf[t..]` is a proper prefix of some
    /// pattern. Only the last `max_len - 1` bytes can qualify; of those before the last
    /// `near_len - 1`, only a `%` or `\`. A two-byte bit set rejects nearly every other
    /// position with one lookup before the binary search.
    fn open_prefix(&self, buf: &[u8], from: usize) -> Option<usize> {
        let len = buf.len();
        let far = len.saturating_sub(self.max_len.saturating_sub(1)).max(from);
        let near = len.saturating_sub(self.near_len.saturating_sub(1)).max(far);
        let escaped = memchr::memchr2_iter(b'%', b'\\', &buf[far..near]).map(|i| far + i);
        escaped
            .chain((near..len).filter(|&t| self.plausible(buf, t)))
            .find(|&t| self.is_proper_prefix(&buf[t..]))
    }

    fn plausible(&self, buf: &[u8], t: usize) -> bool {
        let a = usize::from(buf[t]);
        match buf.get(t + 1) {
            Some(&b) => {
                let bit = a << 8 | usize::from(b);
                self.starts[bit >> 6] & (1 << (bit & 63)) != 0
            }
            None => self.first[a],
        }
    }

    fn is_proper_prefix(&self, tail: &[u8]) -> bool {
        // Patterns that start with `tail` sort right after it (or after `tail` itself).
        let i = self.sorted.partition_point(|p| p.as_slice() < tail);
        self.sorted[i..]
            .iter()
            .take(2)
            .any(|p| p.len() > tail.len() && p.starts_with(tail))
    }
}

/// Appends the encodings of `secret` that [`Redactor::new`] documents.
fn encodings(secret: &[u8], out: &mut Vec<Vec<u8>>) {
    let full = secret.len() <= FULL_ENCODINGS_MAX;
    out.push(secret.to_vec());
    out.push(STANDARD.encode(secret).into_bytes());
    out.push(STANDARD_NO_PAD.encode(secret).into_bytes());
    let text = std::str::from_utf8(secret).ok();
    if let Some(text) = text {
        let json = serde_json::to_string(text).unwrap_or_default();
        if let Some(body) = json.strip_prefix('"').and_then(|j| j.strip_suffix('"')) {
            out.push(body.as_bytes().to_vec());
            if full {
                out.push(body.replace('/', "\\/").into_bytes());
            }
        }
    }
    if !full {
        return;
    }
    out.push(URL_SAFE.encode(secret).into_bytes());
    out.push(URL_SAFE_NO_PAD.encode(secret).into_bytes());
    for upper in [true, false] {
        for keep in [&b""[..], b"!'()*", b"/"] {
            out.push(percent(secret, upper, |b| {
                is_unreserved(b) || keep.contains(&b)
            }));
        }
        out.push(percent(secret, upper, |_| false));
        if let Some(text) = text {
            out.push(unicode_escaped(text, upper));
        }
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_digit(nibble: u16, upper: bool) -> u8 {
    let digits = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    digits[usize::from(nibble & 0xf)]
}

/// Percent-encodes every byte for which `keep` is false.
fn percent(secret: &[u8], upper: bool, keep: impl Fn(u8) -> bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(secret.len() * 3);
    for &b in secret {
        if keep(b) {
            out.push(b);
        } else {
            let b = u16::from(b);
            out.extend_from_slice(&[b'%', hex_digit(b >> 4, upper), hex_digit(b, upper)]);
        }
    }
    out
}

/// Writes every character as a JSON `\uXXXX` escape (a surrogate pair outside the BMP).
fn unicode_escaped(text: &str, upper: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() * 6);
    for unit in text.encode_utf16() {
        out.extend_from_slice(b"\\u");
        for shift in [12, 8, 4, 0] {
            out.push(hex_digit(unit >> shift, upper));
        }
    }
    out
}

#[cfg(test)]
mod tests;
