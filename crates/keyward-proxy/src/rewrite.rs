//! Request-body rewrites of gateway calls to LLM APIs: the `LLM_MODEL` override (seed 003) and
//! `stream_options.include_usage` on streaming OpenAI-style chat calls, so the stream reports
//! its usage. A body is only re-serialised when one of them applies.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;

#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

pub struct Rewritten {
    /// The model the call goes to (after any override).
    pub model: Option<String>,
    /// The new body, if it changed.
    pub body: Option<Bytes>,
}

/// `None` if the body is not a JSON object (it is then forwarded as it is).
pub fn request_body(
    body: &[u8],
    model_override: Option<&str>,
    add_include_usage: bool,
) -> Option<Rewritten> {
    let peek: Peek<'_> = serde_json::from_slice(body).ok()?;
    let override_model = model_override.filter(|m| peek.model.as_deref() != Some(*m));
    let add_usage = add_include_usage
        && peek.stream == Some(true)
        && peek.stream_options.as_ref().and_then(|o| o.include_usage) != Some(true);
    let model = model_override
        .map(str::to_owned)
        .or_else(|| peek.model.map(Cow::into_owned));
    if override_model.is_none() && !add_usage {
        return Some(Rewritten { model, body: None });
    }
    let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object_mut()?;
    if let Some(m) = override_model {
        object.insert("model".into(), serde_json::Value::String(m.to_owned()));
    }
    if add_usage {
        let options = object
            .entry("stream_options")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(options) = options.as_object_mut() {
            options.insert("include_usage".into(), serde_json::Value::Bool(true));
        } else {
            *options = serde_json::json!({"include_usage": true});
        }
    }
    let bytes = serde_json::to_vec(&value).ok()?;
    Some(Rewritten {
        model,
        body: Some(Bytes::from(bytes)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untouched_when_nothing_applies() {
        let r = request_body(br#"{"model":"gpt-4o-mini","messages":[]}"#, None, true).unwrap();
        assert_eq!(r.model.as_deref(), Some("gpt-4o-mini"));
        assert!(r.body.is_none());
    }

    #[test]
    fn model_override_and_usage() {
        let r = request_body(
            br#"{"model":"a","stream":true,"messages":[]}"#,
            Some("deepseek-v4-pro"),
            true,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r.body.unwrap()).unwrap();
        assert_eq!(v["model"], "deepseek-v4-pro");
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(r.model.as_deref(), Some("deepseek-v4-pro"));
    }

    #[test]
    fn keeps_explicit_include_usage() {
        let r = request_body(
            br#"{"model":"a","stream":true,"stream_options":{"include_usage":true}}"#,
            None,
            true,
        )
        .unwrap();
        assert!(r.body.is_none());
        assert!(request_body(b"[1,2]", None, true).is_none());
    }
}
