//! What of a request may enter an audit record: the query with sensitive values masked, and the
//! headers without credentials. Both err on the side of hiding: a dropped harmless header
//! costs nothing, a recorded key is a leak.

use std::collections::BTreeMap;

/// Longest header value kept, in bytes (cut at a character boundary).
pub const MAX_HEADER_VALUE_BYTES: usize = 512;

/// Query parameter names whose values are always masked, compared case-insensitively.
const SENSITIVE_PARAMS: [&str; 10] = [
    "key",
    "api_key",
    "apikey",
    "token",
    "access_token",
    "signature",
    "sig",
    "secret",
    "password",
    "auth",
];

/// A name containing any of these (case-insensitively) is sensitive too, as a parameter or a
/// header: `X-Amz-Signature`, `client_secret`, `X-Custom-Auth`, `refresh_token`…
const SENSITIVE_PARTS: [&str; 7] = [
    "key",
    "token",
    "secret",
    "passw",
    "signature",
    "credential",
    "auth",
];

/// Headers that carry credentials or session state, dropped whatever their value.
const CREDENTIAL_HEADERS: [&str; 7] = [
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "cookie",
    "set-cookie",
];

/// Replace the value of every sensitive query parameter with `***`. Sensitive: the names in
/// `SENSITIVE_PARAMS` and any name containing `key`, `token`, `secret`, `passw`,
/// `signature`, `credential` or `auth` (compared after percent-decoding, case-insensitively).
/// Everything else, and the path itself, is kept byte for byte.
pub fn mask_query(path_and_query: &str) -> String {
    let Some((path, query)) = path_and_query.split_once('?') else {
        return path_and_query.to_owned();
    };
    let mut out = String::with_capacity(path_and_query.len());
    out.push_str(path);
    out.push('?');
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((name, _)) if is_sensitive_param(name) => {
                out.push_str(name);
                out.push_str("=***");
            }
            _ => out.push_str(pair),
        }
    }
    out
}

fn is_sensitive_param(raw_name: &str) -> bool {
    let name = percent_decode(raw_name).to_ascii_lowercase();
    SENSITIVE_PARAMS.contains(&name.as_str()) || SENSITIVE_PARTS.iter().any(|p| name.contains(p))
}

/// `%XX` and `+` decoded, for comparing names only (invalid escapes are kept as they are).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let hex = |b: u8| (b as char).to_digit(16);
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The request headers an audit record may keep: every header except credentials
/// (`CREDENTIAL_HEADERS`, any value marked sensitive, any name containing `key`, `token`,
/// `secret`, `passw`, `signature`, `credential` or `auth`). Repeated headers are joined with
/// `, `; values are cut to [`MAX_HEADER_VALUE_BYTES`].
pub fn safe_headers(headers: &http::HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let name = name.as_str();
        if value.is_sensitive() || is_credential_header(name) {
            continue;
        }
        let text = String::from_utf8_lossy(value.as_bytes());
        match out.get_mut(name) {
            Some(joined) if joined.len() <= MAX_HEADER_VALUE_BYTES => {
                joined.push_str(", ");
                joined.push_str(&text);
            }
            Some(_) => {}
            None => {
                out.insert(name.to_owned(), text.into_owned());
            }
        }
    }
    for value in out.values_mut() {
        truncate_utf8(value, MAX_HEADER_VALUE_BYTES);
    }
    out
}

/// `name` is lowercase (an `http::HeaderName`).
fn is_credential_header(name: &str) -> bool {
    CREDENTIAL_HEADERS.contains(&name) || SENSITIVE_PARTS.iter().any(|p| name.contains(p))
}

fn truncate_utf8(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    #[test]
    fn masks_sensitive_query_values_only() {
        assert_eq!(mask_query("/v1/models"), "/v1/models");
        assert_eq!(
            mask_query("/v1beta/models/g:generate?key=AIzaSECRET&alt=sse"),
            "/v1beta/models/g:generate?key=***&alt=sse"
        );
        assert_eq!(
            mask_query("/x?API_KEY=a&apikey=b&Token=c&access_token=d&sig=e&signature=f"),
            "/x?API_KEY=***&apikey=***&Token=***&access_token=***&sig=***&signature=***"
        );
        assert_eq!(
            mask_query("/x?secret=a&password=b&auth=c&client_secret=d&X-Amz-Credential=e"),
            "/x?secret=***&password=***&auth=***&client_secret=***&X-Amz-Credential=***"
        );
        assert_eq!(
            mask_query("/x?refresh_token=a&mykey=b&author=c&page=2&flag"),
            "/x?refresh_token=***&mykey=***&author=***&page=2&flag"
        );
        // Percent-encoded names are decoded before the comparison.
        assert_eq!(
            mask_query("/x?api%5Fkey=s&%6Bey=t"),
            "/x?api%5Fkey=***&%6Bey=***"
        );
        assert_eq!(mask_query("/x?q=1&&key="), "/x?q=1&&key=***");
        assert_eq!(mask_query("/x?%"), "/x?%");
        assert_eq!(mask_query("/x?a=%2"), "/x?a=%2");
    }

    #[test]
    fn drops_credential_headers() {
        let mut h = HeaderMap::new();
        for (name, value) in [
            ("authorization", "Bearer kw_s_SECRET"),
            ("proxy-authorization", "Basic SECRET"),
            ("x-api-key", "SECRET"),
            ("api-key", "SECRET"),
            ("x-goog-api-key", "SECRET"),
            ("cookie", "sid=SECRET"),
            ("set-cookie", "sid=SECRET"),
            ("x-custom-auth", "SECRET"),
            ("x-refresh-token", "SECRET"),
            ("content-type", "application/json"),
            ("anthropic-version", "2023-06-01"),
            ("accept", "text/event-stream"),
        ] {
            h.append(name, HeaderValue::from_static(value));
        }
        let mut marked = HeaderValue::from_static("SECRET");
        marked.set_sensitive(true);
        h.append("x-harmless-name", marked);
        h.append("accept", HeaderValue::from_static("application/json"));

        let safe = safe_headers(&h);
        assert!(safe.values().all(|v| !v.contains("SECRET")), "{safe:?}");
        assert_eq!(
            safe.keys().map(String::as_str).collect::<Vec<_>>(),
            ["accept", "anthropic-version", "content-type"]
        );
        assert_eq!(safe["accept"], "text/event-stream, application/json");
    }

    #[test]
    fn truncates_long_values_at_a_char_boundary() {
        let mut h = HeaderMap::new();
        let long = "é".repeat(400);
        h.insert(
            "user-agent",
            HeaderValue::from_bytes(long.as_bytes()).unwrap(),
        );
        let safe = safe_headers(&h);
        assert_eq!(safe["user-agent"].len(), MAX_HEADER_VALUE_BYTES);
        assert!(long.starts_with(&safe["user-agent"]));
    }
}
