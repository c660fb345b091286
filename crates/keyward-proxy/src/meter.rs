//! Reads token usage from responses on the side, never delaying a byte.
//!
//! The data plane forwards every chunk as it arrives and shows it to a [`Meter`] by
//! reference. JSON bodies are kept (up to [`MAX_JSON_BODY`]) and parsed at the end; SSE
//! streams are read line by line, and only `data:` lines that can carry usage are parsed,
//! so the usual text deltas cost a `memchr` and a substring search. A stream cut short
//! still reports what it saw. Providers understood:
//!
//! - OpenAI Chat Completions: `usage.{prompt_tokens, completion_tokens,
//!   prompt_tokens_details.cached_tokens}`, streamed in the last chunk with
//!   `stream_options.include_usage` (earlier chunks say `"usage": null`);
//! - OpenAI Responses: `usage.{input_tokens, output_tokens, input_tokens_details.cached_tokens}`,
//!   streamed inside `response.completed` as `response.usage`;
//! - Anthropic Messages: `usage.{input_tokens, output_tokens, cache_read_input_tokens,
//!   cache_creation_input_tokens}`, streamed in `message_start` (`message.usage`) and then
//!   `message_delta` events whose counts are cumulative;
//! - Gemini: `usageMetadata.{promptTokenCount, candidatesTokenCount (+ thoughtsTokenCount,
//!   billed as output), cachedContentTokenCount}`, cumulative across stream chunks, also in
//!   a JSON array (`streamGenerateContent` without `alt=sse`).
//!
//! Counts are reported as the provider states them: OpenAI's and Gemini's input includes
//! the cached tokens, Anthropic's does not. Pricing accounts for that, not this module.
//! Every usage object seen overwrites the fields it contains, so cumulative counts end at
//! their last value.

use memchr::memmem;
use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

/// A JSON body is parsed whole up to this size; past it only its head and tail are kept.
pub const MAX_JSON_BODY: usize = 4 << 20;
/// An SSE line longer than this is skipped (no provider puts usage in such a line).
pub const MAX_SSE_LINE: usize = 1 << 20;
/// Head and tail kept of an oversized JSON body: the model comes first, usage last.
const EDGE: usize = 64 << 10;

/// Token usage of one response.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub model: Option<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    /// Whether any usage field was found (zero tokens and "not reported" differ).
    pub seen: bool,
}

/// How a response body is framed, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Sse,
    Other,
}

impl BodyKind {
    /// `text/event-stream` is SSE; `application/json` and any `+json` type are JSON;
    /// anything else (or no header) is not metered.
    pub fn from_content_type(ct: Option<&str>) -> Self {
        let Some(ct) = ct else { return Self::Other };
        let essence = ct.split(';').next().unwrap_or_default().trim();
        if essence.eq_ignore_ascii_case("text/event-stream") {
            Self::Sse
        } else if essence.eq_ignore_ascii_case("application/json")
            || essence.to_ascii_lowercase().ends_with("+json")
        {
            Self::Json
        } else {
            Self::Other
        }
    }
}

/// Watches one response body go by; see the module documentation.
pub struct Meter {
    kind: BodyKind,
    usage: Usage,
    /// JSON: the body so far (or its head once oversized). SSE: the unfinished line.
    buf: Vec<u8>,
    /// JSON: the latest bytes of an oversized body (`EDGE` to `2 * EDGE` of them).
    tail: Vec<u8>,
    /// JSON: the body outgrew `MAX_JSON_BODY`. SSE: the current line is being skipped.
    overflow: bool,
    finished: bool,
}

impl Meter {
    pub fn new(kind: BodyKind) -> Self {
        Self {
            kind,
            usage: Usage::default(),
            buf: Vec::new(),
            tail: Vec::new(),
            overflow: false,
            finished: false,
        }
    }

    /// Inspects a chunk that is being forwarded; never modifies or holds it.
    pub fn observe(&mut self, chunk: &[u8]) {
        if self.finished {
            return;
        }
        match self.kind {
            BodyKind::Json => self.observe_json(chunk),
            BodyKind::Sse => self.observe_sse(chunk),
            BodyKind::Other => {}
        }
    }

    /// Usage seen so far. For SSE this is live; a JSON body is only read by `finish`.
    pub fn usage(&self) -> &Usage {
        &self.usage
    }

    /// End of the body (complete or cut): settles and returns the usage. Idempotent.
    pub fn finish(&mut self) -> &Usage {
        if !self.finished {
            self.finished = true;
            let buf = std::mem::take(&mut self.buf);
            match self.kind {
                BodyKind::Json => self.finish_json(&buf),
                // A last line without its newline: use it if it is complete JSON.
                BodyKind::Sse if !self.overflow => self.sse_line(&buf),
                _ => {}
            }
            self.tail = Vec::new();
        }
        &self.usage
    }

    fn observe_json(&mut self, chunk: &[u8]) {
        if !self.overflow && self.buf.len() + chunk.len() <= MAX_JSON_BODY {
            self.buf.extend_from_slice(chunk);
            return;
        }
        if !self.overflow {
            self.overflow = true;
            self.tail = self.buf.split_off(EDGE.min(self.buf.len()));
        }
        self.tail.extend_from_slice(chunk);
        if self.tail.len() > 2 * EDGE {
            self.tail.drain(..self.tail.len() - EDGE);
        }
    }

    fn finish_json(&mut self, body: &[u8]) {
        if self.overflow {
            let tail = std::mem::take(&mut self.tail);
            return self.scan_fallback(body, &tail);
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(value) => self.apply(&value),
            // Some OpenAI-compatible servers label an event stream as JSON.
            Err(_) if body.trim_ascii_start().starts_with(b"data:") => {
                for line in body.split(|&b| b == b'\n' || b == b'\r') {
                    self.sse_line(line);
                }
            }
            Err(_) => self.scan_fallback(body, body),
        }
    }

    /// Best effort for a body that was cut or too large to parse: the first model named in
    /// `head` (providers put it before the content) and the last `"usage"` or
    /// `"usageMetadata"` object of `tail` (they put it after).
    fn scan_fallback(&mut self, head: &[u8], tail: &[u8]) {
        let mut found = serde_json::Map::new();
        for key in ["model", "modelVersion", "usage", "usageMetadata"] {
            let at_end = key.starts_with("usage");
            let source = if at_end { tail } else { head };
            if let Some(v) = value_after_key(source, key, at_end) {
                found.insert(key.to_owned(), v);
            }
        }
        self.apply(&Value::Object(found));
    }

    fn observe_sse(&mut self, mut chunk: &[u8]) {
        while let Some(i) = memchr::memchr2(b'\n', b'\r', chunk) {
            // A CRLF ending leaves an empty line between CR and LF: harmless.
            let (piece, rest) = (&chunk[..i], &chunk[i + 1..]);
            if self.overflow {
                self.overflow = false;
            } else if self.buf.is_empty() {
                self.sse_line(piece);
            } else {
                let mut line = std::mem::take(&mut self.buf);
                line.extend_from_slice(piece);
                self.sse_line(&line);
                line.clear();
                self.buf = line;
            }
            chunk = rest;
        }
        if self.overflow || chunk.is_empty() {
            return;
        }
        self.buf.extend_from_slice(chunk);
        // Only `data:` lines matter, and no line longer than the cap is kept.
        let prefix = self.buf.len().min(5);
        if self.buf.len() > MAX_SSE_LINE || self.buf[..prefix] != b"data:"[..prefix] {
            self.overflow = true;
            self.buf.clear();
        }
    }

    fn sse_line(&mut self, line: &[u8]) {
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        let data = data.strip_prefix(b" ").unwrap_or(data);
        let wanted = carries_usage(data)
            || (self.usage.model.is_none() && memmem::find(data, b"\"model").is_some());
        if wanted {
            if let Ok(value) = serde_json::from_slice::<Value>(data) {
                self.apply(&value);
            }
        }
    }

    /// Takes the model and usage of one event or body (an array: of each element).
    fn apply(&mut self, value: &Value) {
        let items = match value {
            Value::Array(items) => items.as_slice(),
            other => std::slice::from_ref(other),
        };
        for item in items {
            // The payload sits at the top, in `response` (Responses API events) or in
            // `message` (Anthropic's message_start).
            for obj in [Some(item), item.get("response"), item.get("message")]
                .into_iter()
                .flatten()
            {
                self.apply_object(obj);
            }
        }
    }

    fn apply_object(&mut self, obj: &Value) {
        if self.usage.model.is_none() {
            let model = obj.get("model").or_else(|| obj.get("modelVersion"));
            if let Some(m) = model.and_then(Value::as_str).filter(|m| !m.is_empty()) {
                self.usage.model = Some(m.to_owned());
            }
        }
        let n = |v: &Value, path: &[&str]| path.iter().try_fold(v, |v, k| v.get(k))?.as_u64();
        let u = &mut self.usage;
        let mut set = |field: &mut u64, value: Option<u64>| {
            if let Some(value) = value {
                *field = value;
                u.seen = true;
            }
        };
        if let Some(usage) = obj.get("usage").filter(|v| v.is_object()) {
            let input = n(usage, &["prompt_tokens"]).or_else(|| n(usage, &["input_tokens"]));
            let output = n(usage, &["completion_tokens"]).or_else(|| n(usage, &["output_tokens"]));
            let cache_read = n(usage, &["prompt_tokens_details", "cached_tokens"])
                .or_else(|| n(usage, &["input_tokens_details", "cached_tokens"]))
                .or_else(|| n(usage, &["cache_read_input_tokens"]));
            let cache_write = n(usage, &["cache_creation_input_tokens"]);
            set(&mut u.input_tokens, input);
            set(&mut u.output_tokens, output);
            set(&mut u.cache_read_tokens, cache_read);
            set(&mut u.cache_write_tokens, cache_write);
        }
        if let Some(meta) = obj.get("usageMetadata").filter(|v| v.is_object()) {
            let candidates = n(meta, &["candidatesTokenCount"]);
            let thoughts = n(meta, &["thoughtsTokenCount"]);
            let output = match (candidates, thoughts) {
                (None, None) => None,
                (c, t) => Some(c.unwrap_or(0) + t.unwrap_or(0)),
            };
            set(&mut u.input_tokens, n(meta, &["promptTokenCount"]));
            set(&mut u.output_tokens, output);
            set(
                &mut u.cache_read_tokens,
                n(meta, &["cachedContentTokenCount"]),
            );
        }
    }
}

/// Whether an SSE payload names a usage object that is not `null`. OpenAI sends
/// `"usage":null` in every chunk when usage is requested; those are not worth parsing.
fn carries_usage(data: &[u8]) -> bool {
    memmem::find_iter(data, b"\"usage").any(|i| {
        let after = &data[i + 6..];
        if after.starts_with(b"Metadata\"") {
            return true;
        }
        let Some(after) = after.strip_prefix(b"\"") else {
            return false;
        };
        let value = after.trim_ascii_start();
        let value = value.strip_prefix(b":").unwrap_or(value).trim_ascii_start();
        !value.starts_with(b"null")
    })
}

/// The value after the first (or last) `"key":` in `buf` that parses, for bodies that do
/// not parse as a whole.
fn value_after_key(buf: &[u8], key: &str, last: bool) -> Option<Value> {
    let needle = format!("\"{key}\"");
    let parse = |i: usize| {
        let rest = buf[i + needle.len()..]
            .trim_ascii_start()
            .strip_prefix(b":")?;
        let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<Value>();
        values.next()?.ok()
    };
    let mut hits = memmem::find_iter(buf, needle.as_bytes());
    if last {
        hits.collect::<Vec<_>>().into_iter().rev().find_map(parse)
    } else {
        hits.find_map(parse)
    }
}

/// What a request body says about its cost, for limits checked before forwarding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// The top-level `model` (the last one, should the key repeat, as upstreams read it).
    pub model: Option<String>,
    /// `max_tokens`, `max_completion_tokens`, `max_output_tokens` or
    /// `generationConfig.maxOutputTokens`, whichever is present.
    pub max_output_tokens: Option<u64>,
    /// Body bytes / 4: about one token per four bytes of English text and JSON. Inline
    /// images make this an overestimate, which is the safe side for a limit.
    pub estimated_input_tokens: u64,
}

/// The model named in a request body, if it is a JSON object with a string `model`.
pub fn request_model(body: &[u8]) -> Option<String> {
    inspect_request(body).model
}

/// Reads the fields of [`RequestInfo`] in one pass, skipping everything else without
/// building it (bodies reach 32 MiB with inline images).
pub fn inspect_request(body: &[u8]) -> RequestInfo {
    let mut de = serde_json::Deserializer::from_slice(body);
    let mut info = de.deserialize_map(RequestVisitor).unwrap_or_default();
    info.estimated_input_tokens = (body.len() as u64).div_ceil(4);
    info
}

struct RequestVisitor;

impl<'de> Visitor<'de> for RequestVisitor {
    type Value = RequestInfo;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RequestInfo, A::Error> {
        let mut info = RequestInfo::default();
        let mut model = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "model" => model = map.next_value::<Value>()?.as_str().map(str::to_owned),
                "max_tokens" | "max_completion_tokens" | "max_output_tokens" => {
                    let v = map.next_value::<Value>()?.as_u64();
                    info.max_output_tokens = info.max_output_tokens.or(v);
                }
                "generationConfig" => {
                    let v = map.next_value::<Value>()?;
                    let v = v.get("maxOutputTokens").and_then(Value::as_u64);
                    info.max_output_tokens = info.max_output_tokens.or(v);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        info.model = model;
        Ok(info)
    }
}

#[cfg(test)]
mod tests;
