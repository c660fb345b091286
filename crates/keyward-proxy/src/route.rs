//! Gateway-mode routing: the first path segment picks the provider, the rest is appended to its
//! base URL. `/h/{host}/…` reaches a host a custom rule of the session names.

use keyward_core::providers::{self, BuiltinRule};

#[derive(Debug, Clone, Copy)]
pub enum Route<'a> {
    /// `/anthropic/…`, `/openai/…`, `/openrouter/…`, `/venice/…`, `/gemini/…`
    Builtin(&'static BuiltinRule),
    /// `/llm/…`: the session's `LLM_BASE_URL`.
    Llm,
    /// `/h/{host}/…`
    Host(&'a str),
}

/// Split a request path into its route and the rest (which starts with `/` or is empty).
pub fn route(path: &str) -> Option<(Route<'_>, &str)> {
    let trimmed = path.strip_prefix('/')?;
    let (first, rest) = match trimmed.find('/') {
        Some(i) => (&trimmed[..i], &trimmed[i..]),
        None => (trimmed, ""),
    };
    if first == "h" {
        let after = rest.strip_prefix('/')?;
        let (host, rest) = match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, ""),
        };
        if host.is_empty() {
            return None;
        }
        return Some((Route::Host(host), rest));
    }
    if first == providers::LLM_ROUTE {
        return Some((Route::Llm, rest));
    }
    providers::rule_for_route(first).map(|rule| (Route::Builtin(rule), rest))
}

/// `base` + `rest` + `?query`, as an absolute URI string.
pub fn upstream_uri(base: &str, rest: &str, query: Option<&str>) -> String {
    let mut uri = String::with_capacity(base.len() + rest.len() + query.map_or(0, |q| q.len() + 1));
    uri.push_str(base.trim_end_matches('/'));
    uri.push_str(rest);
    if let Some(q) = query {
        uri.push('?');
        uri.push_str(q);
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let (r, rest) = route("/openai/v1/chat/completions").unwrap();
        assert!(matches!(r, Route::Builtin(rule) if rule.route == "openai"));
        assert_eq!(rest, "/v1/chat/completions");
        assert!(matches!(
            route("/llm/chat/completions"),
            Some((Route::Llm, "/chat/completions"))
        ));
        assert!(matches!(
            route("/h/api.example.com/v1/x"),
            Some((Route::Host("api.example.com"), "/v1/x"))
        ));
        assert!(route("/h/").is_none());
        assert!(route("/nope/x").is_none());
        assert_eq!(
            upstream_uri("https://openrouter.ai/api", "/v1/chat", Some("a=1")),
            "https://openrouter.ai/api/v1/chat?a=1"
        );
    }
}
