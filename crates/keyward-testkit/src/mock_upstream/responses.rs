//! Provider-shaped payloads: OpenAI chat completions, Anthropic messages, model lists, echoes.

use base64::Engine as _;
use hyper::body::Bytes;
use serde_json::{json, Value};

/// The assistant text of every successful completion.
pub const ASSISTANT_TEXT: &str = "Hello from mock";
/// The streamed pieces of [`ASSISTANT_TEXT`], one per content delta.
pub const ASSISTANT_DELTAS: &[&str] = &["Hello", " from", " mock"];

const CREATED: u64 = 1_700_000_000;

/// Which provider endpoint a request hit (by path suffix, any prefix allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    OpenAiChat,
    AnthropicMessages,
    Models,
    Other,
}

pub(crate) fn classify(method: &str, path_and_query: &str) -> Endpoint {
    let path = path_and_query.split('?').next().unwrap_or_default();
    let path = path.trim_end_matches('/');
    match method {
        "POST" if path.ends_with("/chat/completions") => Endpoint::OpenAiChat,
        "POST" if path.ends_with("/messages") => Endpoint::AnthropicMessages,
        "GET" if path.ends_with("/models") => Endpoint::Models,
        _ => Endpoint::Other,
    }
}

fn sse_data(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

fn sse_event(name: &str, v: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {v}\n\n"))
}

pub(crate) fn openai_json(model: &str, p: u64, c: u64) -> Value {
    json!({
        "id": "chatcmpl-mock-0001",
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": ASSISTANT_TEXT, "refusal": null},
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
        "system_fingerprint": "fp_mock"
    })
}

fn openai_chunk(model: &str, delta: Value, finish: Value, with_usage_field: bool) -> Value {
    let mut chunk = json!({
        "id": "chatcmpl-mock-0001",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "system_fingerprint": "fp_mock",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
    });
    if with_usage_field {
        chunk["usage"] = Value::Null;
    }
    chunk
}

/// SSE events of a streamed chat completion, `[DONE]` last.
pub(crate) fn openai_sse(model: &str, p: u64, c: u64, include_usage: bool) -> Vec<Bytes> {
    let mut out = vec![sse_data(&openai_chunk(
        model,
        json!({"role": "assistant", "content": ""}),
        Value::Null,
        include_usage,
    ))];
    for piece in ASSISTANT_DELTAS {
        out.push(sse_data(&openai_chunk(
            model,
            json!({"content": piece}),
            Value::Null,
            include_usage,
        )));
    }
    out.push(sse_data(&openai_chunk(
        model,
        json!({}),
        json!("stop"),
        include_usage,
    )));
    if include_usage {
        out.push(sse_data(&json!({
            "id": "chatcmpl-mock-0001",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_mock",
            "choices": [],
            "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
        })));
    }
    out.push(Bytes::from_static(b"data: [DONE]\n\n"));
    out
}

pub(crate) fn anthropic_json(model: &str, p: u64, c: u64) -> Value {
    json!({
        "id": "msg_mock_0001",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": ASSISTANT_TEXT}],
        "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": {"input_tokens": p, "output_tokens": c}
    })
}

/// SSE events of a streamed Anthropic message, `message_stop` last.
pub(crate) fn anthropic_sse(model: &str, p: u64, c: u64) -> Vec<Bytes> {
    let mut out = vec![
        sse_event(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": "msg_mock_0001", "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": p, "output_tokens": 1}
            }}),
        ),
        sse_event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""}}),
        ),
    ];
    for piece in ASSISTANT_DELTAS {
        out.push(sse_event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": piece}}),
        ));
    }
    out.push(sse_event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    ));
    out.push(sse_event(
        "message_delta",
        &json!({"type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                "usage": {"output_tokens": c}}),
    ));
    out.push(sse_event("message_stop", &json!({"type": "message_stop"})));
    out
}

pub(crate) fn models_json() -> Value {
    let model =
        |id: &str| json!({"id": id, "object": "model", "created": CREATED, "owned_by": "mock"});
    json!({"object": "list", "data": [model("gpt-4o-mini"), model("gpt-4o"), model("mock-model")]})
}

pub(crate) fn other_json(method: &str, path: &str) -> Value {
    json!({"ok": true, "method": method, "path": path})
}

pub(crate) fn status_json(status: u16) -> Value {
    json!({
        "type": "error",
        "error": {"type": "mock_error", "message": format!("mock upstream: status {status}"), "code": status}
    })
}

/// The encodings of `key` that [`crate::Behavior::EchoAuth`] writes into its body, as the raw
/// text that appears on the wire: `verbatim`, `base64` (standard, padded), `urlencoded`
/// (every byte percent-encoded, e.g. `%73%6B`), `json_escaped` (every char as `\uXXXX`, which a
/// JSON parser turns back into the key).
pub fn echo_variants(key: &str) -> Vec<(&'static str, String)> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(key.as_bytes());
    let pct: String = key.bytes().map(|b| format!("%{b:02X}")).collect();
    let json_esc: String = key.encode_utf16().map(|u| format!("\\u{u:04x}")).collect();
    vec![
        ("verbatim", key.to_owned()),
        ("base64", b64),
        ("urlencoded", pct),
        ("json_escaped", json_esc),
    ]
}

/// Body text of the EchoAuth 401. Built by hand so the `json_escaped` variant keeps its
/// `\uXXXX` form on the wire (serde_json would print plain characters).
pub(crate) fn echo_auth_body(header_name: &str, header_value: &str, key: &str) -> String {
    let q = |s: &str| Value::String(s.to_owned()).to_string();
    let mut fields = vec![
        format!(
            "\"message\":{}",
            q(&format!("Incorrect API key provided: {key}"))
        ),
        "\"type\":\"invalid_request_error\"".to_owned(),
        "\"code\":\"invalid_api_key\"".to_owned(),
        format!("\"header\":{}", q(header_name)),
        format!("\"received\":{}", q(header_value)),
    ];
    for (name, value) in echo_variants(key) {
        let rendered = if name == "json_escaped" {
            format!("\"{value}\"")
        } else {
            q(&value)
        };
        fields.push(format!("\"key_{name}\":{rendered}"));
    }
    format!("{{\"error\":{{{}}}}}", fields.join(","))
}

/// SSE events echoing `key` inside a content delta, the key split across the first two events
/// (so across two body frames). The caller inserts a pause between them.
pub(crate) fn echo_split_sse(endpoint: Endpoint, model: &str, key: &str) -> Vec<Bytes> {
    let text = format!("your key is {key} (echoed by a careless upstream)");
    let (events, idx) = match endpoint {
        Endpoint::AnthropicMessages => {
            let mut events = anthropic_sse(model, 1, 1);
            // events[2] is the first text delta: replace it by the echo.
            events[2] = sse_event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": 0,
                        "delta": {"type": "text_delta", "text": text}}),
            );
            (events, 2)
        }
        _ => {
            let mut events = openai_sse(model, 1, 1, false);
            // events[1] is the first content delta: replace it by the echo.
            events[1] = sse_data(&openai_chunk(
                model,
                json!({"content": text}),
                Value::Null,
                false,
            ));
            (events, 1)
        }
    };
    split_event_list(events, idx, key)
}

/// Splits `events[idx]` into two frames in the middle of `key`.
fn split_event_list(mut events: Vec<Bytes>, idx: usize, key: &str) -> Vec<Bytes> {
    let Some(event) = events.get(idx).cloned() else {
        return events;
    };
    let pos = find(&event, key.as_bytes()).map(|start| start + key.len() / 2);
    if let Some(pos) = pos.filter(|p| *p > 0 && *p < event.len()) {
        events.splice(idx..=idx, [event.slice(..pos), event.slice(pos..)]);
    }
    events
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}
