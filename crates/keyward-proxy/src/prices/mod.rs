//! What a call cost: a price table (USD per million input / output / cache-read / cache-write
//! tokens per model) and the arithmetic over a response's [`Usage`].
//!
//! The table is [`builtin`]'s unless the operator gives `--prices FILE` (YAML, JSON or TOML; a
//! map from model name to prices, optionally under a top-level `models:`), which replaces it
//! whole. A model the table does not know has cost `None`: its tokens are still counted.
//!
//! Providers report input differently (see [`crate::meter`]): OpenAI's and Gemini's input
//! count includes the cached tokens, Anthropic's does not. [`UsageStyle`] says which, so a
//! cached token is never billed twice.

mod builtin;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Deserialize;

use crate::config_file::{self, FileError};
use crate::meter::Usage;

/// USD per million tokens. A missing cache price bills those tokens at the input price.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    #[serde(default)]
    pub cache_read: Option<f64>,
    #[serde(default)]
    pub cache_write: Option<f64>,
}

/// How a provider counts input tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageStyle {
    /// OpenAI, Gemini and OpenAI-compatible APIs: input includes cache reads.
    CachedInInput,
    /// Anthropic: input excludes cache reads and writes, which are reported on their own.
    CachedApart,
}

impl Price {
    /// USD for `usage`.
    pub fn cost(&self, usage: &Usage, style: UsageStyle) -> f64 {
        let uncached = match style {
            UsageStyle::CachedInInput => usage.input_tokens.saturating_sub(usage.cache_read_tokens),
            UsageStyle::CachedApart => usage.input_tokens,
        };
        let per = |tokens: u64, price: f64| tokens as f64 * price;
        let total = per(uncached, self.input)
            + per(
                usage.cache_read_tokens,
                self.cache_read.unwrap_or(self.input),
            )
            + per(
                usage.cache_write_tokens,
                self.cache_write.unwrap_or(self.input),
            )
            + per(usage.output_tokens, self.output);
        total / 1_000_000.0
    }

    /// USD for `input` and `output` tokens, none cached (a call's estimate before it runs).
    pub fn estimate(&self, input: u64, output: u64) -> f64 {
        (input as f64 * self.input + output as f64 * self.output) / 1_000_000.0
    }

    fn check(&self) -> Result<(), &'static str> {
        let all = [
            Some(self.input),
            Some(self.output),
            self.cache_read,
            self.cache_write,
        ];
        if all.into_iter().flatten().all(|p| p.is_finite() && p >= 0.0) {
            Ok(())
        } else {
            Err("prices must be finite, non-negative numbers of USD per million tokens")
        }
    }
}

/// Model name (lowercase) → price.
#[derive(Clone)]
pub struct PriceTable {
    models: HashMap<String, Price>,
}

impl std::fmt::Debug for PriceTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PriceTable({} models)", self.models.len())
    }
}

impl Default for PriceTable {
    fn default() -> Self {
        Self::builtin()
    }
}

/// Trailing name segments that do not change the price: versions, dates, release channels.
fn is_version_segment(segment: &str) -> bool {
    segment.bytes().all(|b| b.is_ascii_digit()) || matches!(segment, "latest" | "preview" | "exp")
}

impl PriceTable {
    /// The table keyward ships.
    pub fn builtin() -> Self {
        let models = builtin::BUILTIN
            .iter()
            .map(|&(name, input, output, cache_read, cache_write)| {
                let price = Price {
                    input,
                    output,
                    cache_read: Some(cache_read),
                    cache_write: Some(cache_write),
                };
                (name.to_owned(), price)
            })
            .collect();
        Self { models }
    }

    /// A table of exactly these models.
    pub fn from_models(models: impl IntoIterator<Item = (String, Price)>) -> Self {
        let models = models
            .into_iter()
            .map(|(name, price)| (name.to_ascii_lowercase(), price))
            .collect();
        Self { models }
    }

    /// `--prices FILE`.
    pub fn from_path(path: &Path) -> Result<Self, FileError> {
        let raw: serde_json::Value = config_file::read(path)?;
        Self::from_value(raw).map_err(|message| FileError::new(path, message))
    }

    /// A parsed file: `{model: price}` or `{models: {model: price}}`.
    fn from_value(raw: serde_json::Value) -> Result<Self, String> {
        let serde_json::Value::Object(mut top) = raw else {
            return Err("expected a map from model name to prices".into());
        };
        if top.len() == 1 && top.get("models").is_some_and(|m| m.is_object()) {
            if let Some(serde_json::Value::Object(inner)) = top.remove("models") {
                top = inner;
            }
        }
        let mut models = BTreeMap::new();
        for (name, value) in top {
            let price: Price =
                serde_json::from_value(value).map_err(|e| format!("model {name}: {e}"))?;
            price.check().map_err(|e| format!("model {name}: {e}"))?;
            models.insert(name, price);
        }
        Ok(Self::from_models(models))
    }

    pub fn len(&self) -> usize {
        self.models.len()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// The price of `model`: its own entry, else that of the name without a provider prefix
    /// (`openai/…`, `models/…`) or tag (`…@2024…`, `…:0`), else with trailing version, date or
    /// channel segments dropped one by one (`gpt-4o-mini-2024-07-18` → `gpt-4o-mini`).
    pub fn price(&self, model: &str) -> Option<&Price> {
        if let Some(p) = self.models.get(model) {
            return Some(p);
        }
        // Names are usually lowercase already: allocate only when they are not.
        let lower = if model.bytes().any(|b| b.is_ascii_uppercase()) {
            std::borrow::Cow::Owned(model.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(model)
        };
        let mut name: &str = &lower;
        name = name.rsplit('/').next().unwrap_or(name);
        name = name.split(['@', ':']).next().unwrap_or(name);
        loop {
            if let Some(p) = self.models.get(name) {
                return Some(p);
            }
            match name.rsplit_once('-') {
                Some((head, last)) if is_version_segment(last) && !head.is_empty() => name = head,
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests;
