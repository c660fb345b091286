use super::*;

fn usage(model: &str, input: u64, output: u64, cache_read: u64, cache_write: u64) -> Usage {
    Usage {
        model: Some(model.to_owned()),
        input_tokens: input,
        output_tokens: output,
        cache_read_tokens: cache_read,
        cache_write_tokens: cache_write,
        seen: true,
    }
}

fn metered(kind: BodyKind, chunks: &[&[u8]]) -> Usage {
    let mut m = Meter::new(kind);
    for c in chunks {
        m.observe(c);
    }
    m.finish().clone()
}

/// The SSE body gives `expected` whole, byte by byte, and split at every position.
fn check_sse(body: &str, expected: &Usage) {
    let body = body.as_bytes();
    assert_eq!(&metered(BodyKind::Sse, &[body]), expected);
    let bytes: Vec<&[u8]> = body.chunks(1).collect();
    assert_eq!(&metered(BodyKind::Sse, &bytes), expected);
    for i in 0..=body.len() {
        let (a, b) = body.split_at(i);
        assert_eq!(&metered(BodyKind::Sse, &[a, b]), expected, "split at {i}");
    }
    let crlf = String::from_utf8_lossy(body).replace('\n', "\r\n");
    assert_eq!(&metered(BodyKind::Sse, &[crlf.as_bytes()]), expected);
}

const OPENAI_JSON: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hi, \"usage\": none"},"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":3,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#;

const OPENAI_SSE: &str = concat!(
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null}],\"usage\": null}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":5,\"total_tokens\":17,\"prompt_tokens_details\":{\"cached_tokens\":2}}}\n\n",
    "data: [DONE]\n\n",
);

const ANTHROPIC_SSE: &str = concat!(
    "event: message_start\n",
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-20250514\",\"stop_reason\":null,\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":7,\"cache_read_input_tokens\":10,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: ping\n",
    "data: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n",
    "event: message_delta\n",
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":null},\"usage\":{\"output_tokens\":8}}\n\n",
    "event: message_delta\n",
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":25,\"output_tokens\":15}}\n\n",
    "event: message_stop\n",
    "data: {\"type\":\"message_stop\"}\n\n",
);

const RESPONSES_SSE: &str = concat!(
    "event: response.created\n",
    "data: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"model\":\"gpt-4.1-2025-04-14\",\"status\":\"in_progress\",\"output\":[],\"usage\":null}}\n\n",
    "event: response.output_text.delta\n",
    "data: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hi\"}\n\n",
    "event: response.completed\n",
    "data: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"model\":\"gpt-4.1-2025-04-14\",\"status\":\"completed\",\"usage\":{\"input_tokens\":36,\"input_tokens_details\":{\"cached_tokens\":4},\"output_tokens\":87,\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":123}}}\n\n",
);

const GEMINI_SSE: &str = concat!(
    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"}],\"role\":\"model\"}}],\"usageMetadata\":{\"promptTokenCount\":10,\"candidatesTokenCount\":3,\"totalTokenCount\":13},\"modelVersion\":\"gemini-2.0-flash\"}\r\n\r\n",
    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"lo\"}],\"role\":\"model\"},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":10,\"candidatesTokenCount\":20,\"totalTokenCount\":30,\"cachedContentTokenCount\":4},\"modelVersion\":\"gemini-2.0-flash\"}\r\n\r\n",
);

#[test]
fn openai_chat_json() {
    let expected = usage("gpt-4o-mini-2024-07-18", 19, 10, 3, 0);
    assert_eq!(metered(BodyKind::Json, &[OPENAI_JSON.as_bytes()]), expected);
}

#[test]
fn openai_chat_stream() {
    check_sse(OPENAI_SSE, &usage("gpt-4o-mini", 12, 5, 2, 0));
}

#[test]
fn openai_stream_without_usage_still_names_the_model() {
    let body: String = OPENAI_SSE
        .split("\n\n")
        .take(3)
        .collect::<Vec<_>>()
        .join("\n\n");
    let got = metered(BodyKind::Sse, &[body.as_bytes()]);
    assert_eq!(got.model.as_deref(), Some("gpt-4o-mini"));
    assert!(!got.seen);
}

#[test]
fn openai_responses_json_and_stream() {
    let body = r#"{"id":"resp_1","object":"response","model":"gpt-4.1","output":[],"usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":4},"output_tokens":87,"total_tokens":123}}"#;
    assert_eq!(
        metered(BodyKind::Json, &[body.as_bytes()]),
        usage("gpt-4.1", 36, 87, 4, 0)
    );
    check_sse(RESPONSES_SSE, &usage("gpt-4.1-2025-04-14", 36, 87, 4, 0));
}

#[test]
fn anthropic_json() {
    let body = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","usage":{"input_tokens":2095,"output_tokens":503,"cache_creation_input_tokens":100,"cache_read_input_tokens":2000}}"#;
    let expected = usage("claude-sonnet-4-20250514", 2095, 503, 2000, 100);
    assert_eq!(metered(BodyKind::Json, &[body.as_bytes()]), expected);
}

#[test]
fn anthropic_stream_takes_the_last_cumulative_count() {
    check_sse(
        ANTHROPIC_SSE,
        &usage("claude-sonnet-4-20250514", 25, 15, 10, 7),
    );
}

#[test]
fn gemini_json_array_and_stream() {
    let expected = usage("gemini-2.0-flash", 10, 20, 4, 0);
    check_sse(GEMINI_SSE, &expected);
    let array = format!(
        "[{},\r\n{}]",
        GEMINI_SSE
            .split("\r\n\r\n")
            .next()
            .unwrap_or_default()
            .trim_start_matches("data: "),
        GEMINI_SSE
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .trim_start_matches("data: "),
    );
    assert_eq!(metered(BodyKind::Json, &[array.as_bytes()]), expected);
    let thinking = r#"{"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":7,"thoughtsTokenCount":30}}"#;
    let got = metered(BodyKind::Json, &[thinking.as_bytes()]);
    assert_eq!(
        (got.input_tokens, got.output_tokens, got.model),
        (5, 37, None)
    );
}

#[test]
fn cut_stream_settles_what_it_saw() {
    let cut = ANTHROPIC_SSE
        .find("\"output_tokens\":15")
        .unwrap_or_default();
    let mut m = Meter::new(BodyKind::Sse);
    m.observe(&ANTHROPIC_SSE.as_bytes()[..cut]);
    assert_eq!(m.usage(), &usage("claude-sonnet-4-20250514", 25, 8, 10, 7));
    assert_eq!(m.finish(), &usage("claude-sonnet-4-20250514", 25, 8, 10, 7));
    // A last line that lost only its newline is still complete JSON.
    let body = OPENAI_SSE.trim_end_matches("data: [DONE]\n\n").trim_end();
    let got = metered(BodyKind::Sse, &[body.as_bytes()]);
    assert_eq!(got, usage("gpt-4o-mini", 12, 5, 2, 0));
}

#[test]
fn cut_json_body_uses_what_parses() {
    let before_usage = OPENAI_JSON.find("\"usage\":{").unwrap_or_default();
    let got = metered(BodyKind::Json, &[&OPENAI_JSON.as_bytes()[..before_usage]]);
    assert_eq!(got.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
    assert!(!got.seen);
    let without_last_brace = &OPENAI_JSON.as_bytes()[..OPENAI_JSON.len() - 1];
    let got = metered(BodyKind::Json, &[without_last_brace]);
    assert_eq!(got, usage("gpt-4o-mini-2024-07-18", 19, 10, 3, 0));
}

#[test]
fn oversized_json_keeps_head_and_tail() {
    let filler = "x".repeat(MAX_JSON_BODY + 10);
    let body = OPENAI_JSON.replace("Hi, ", &filler);
    let mut m = Meter::new(BodyKind::Json);
    for chunk in body.as_bytes().chunks(16 << 10) {
        m.observe(chunk);
    }
    assert!(m.buf.len() <= MAX_JSON_BODY && m.tail.len() <= 2 * EDGE);
    assert_eq!(m.finish(), &usage("gpt-4o-mini-2024-07-18", 19, 10, 3, 0));
}

#[test]
fn overlong_sse_lines_are_skipped_and_the_rest_is_read() {
    let long = format!("data: {{\"x\":\"{}\"}}\n\n", "y".repeat(MAX_SSE_LINE + 1));
    let body = format!("{long}{ANTHROPIC_SSE}");
    let mut m = Meter::new(BodyKind::Sse);
    for chunk in body.as_bytes().chunks(4096) {
        m.observe(chunk);
        assert!(m.buf.len() <= MAX_SSE_LINE);
    }
    assert_eq!(
        m.finish(),
        &usage("claude-sonnet-4-20250514", 25, 15, 10, 7)
    );
}

#[test]
fn event_stream_labelled_json_is_still_read() {
    let got = metered(BodyKind::Json, &[OPENAI_SSE.as_bytes()]);
    assert_eq!(got, usage("gpt-4o-mini", 12, 5, 2, 0));
}

#[test]
fn other_bodies_are_ignored() {
    assert_eq!(
        metered(BodyKind::Other, &[OPENAI_JSON.as_bytes()]),
        Usage::default()
    );
}

#[test]
fn usage_markers() {
    assert!(!carries_usage(br#"{"usage":null}"#));
    assert!(!carries_usage(br#"{"usage" : null,"usage_x":1}"#));
    assert!(carries_usage(br#"{"usage":{"output_tokens":1}}"#));
    assert!(carries_usage(br#"{"usageMetadata":{}}"#));
}

#[test]
fn content_types() {
    use BodyKind::*;
    let cases = [
        (Some("text/event-stream; charset=utf-8"), Sse),
        (Some("Text/Event-Stream"), Sse),
        (Some("application/json"), Json),
        (Some("application/problem+json"), Json),
        (Some("application/json;charset=UTF-8"), Json),
        (Some("text/plain"), Other),
        (None, Other),
    ];
    for (ct, kind) in cases {
        assert_eq!(BodyKind::from_content_type(ct), kind, "{ct:?}");
    }
}

#[test]
fn request_fields() {
    let body = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":256}"#;
    let info = inspect_request(body);
    assert_eq!(info.model.as_deref(), Some("gpt-4o"));
    assert_eq!(info.max_output_tokens, Some(256));
    assert_eq!(info.estimated_input_tokens, (body.len() as u64).div_ceil(4));
    assert_eq!(
        request_model(br#"{"model":"a","model":"b"}"#).as_deref(),
        Some("b")
    );
    assert_eq!(request_model(br#"{"model":7}"#), None);
    assert_eq!(request_model(b"[1]"), None);
    assert_eq!(request_model(b"not json"), None);
    let gemini = br#"{"contents":[],"generationConfig":{"maxOutputTokens":99}}"#;
    assert_eq!(inspect_request(gemini).max_output_tokens, Some(99));
}
