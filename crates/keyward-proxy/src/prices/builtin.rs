//! The price table keyward ships: list prices in USD per million tokens (standard tier, short
//! prompts) of the common OpenAI, Anthropic and Gemini models. `--prices FILE` replaces it
//! whole. Dated and suffixed names (`gpt-4o-mini-2024-07-18`, `claude-3-5-sonnet-20241022`,
//! `gemini-2.5-flash-preview-05-20`) find their base entry by [`super::PriceTable::price`].
//!
//! Columns: model, input, output, cache read, cache write. OpenAI and Gemini bill cached input
//! at the cache-read price and have no cache-write charge; Anthropic bills cache writes (5
//! minute TTL) at 1.25× and cache reads at 0.1× the input price.

pub(super) const BUILTIN: &[(&str, f64, f64, f64, f64)] = &[
    // OpenAI
    ("gpt-5", 1.25, 10.0, 0.125, 0.0),
    ("gpt-5-mini", 0.25, 2.0, 0.025, 0.0),
    ("gpt-5-nano", 0.05, 0.40, 0.005, 0.0),
    ("gpt-4.1", 2.0, 8.0, 0.50, 0.0),
    ("gpt-4.1-mini", 0.40, 1.60, 0.10, 0.0),
    ("gpt-4.1-nano", 0.10, 0.40, 0.025, 0.0),
    ("gpt-4o", 2.50, 10.0, 1.25, 0.0),
    ("gpt-4o-mini", 0.15, 0.60, 0.075, 0.0),
    ("chatgpt-4o", 5.0, 15.0, 5.0, 0.0),
    ("gpt-4-turbo", 10.0, 30.0, 10.0, 0.0),
    ("gpt-4", 30.0, 60.0, 30.0, 0.0),
    ("gpt-3.5-turbo", 0.50, 1.50, 0.50, 0.0),
    ("o1", 15.0, 60.0, 7.50, 0.0),
    ("o1-mini", 1.10, 4.40, 0.55, 0.0),
    ("o1-pro", 150.0, 600.0, 150.0, 0.0),
    ("o3", 2.0, 8.0, 0.50, 0.0),
    ("o3-mini", 1.10, 4.40, 0.55, 0.0),
    ("o3-pro", 20.0, 80.0, 20.0, 0.0),
    ("o4-mini", 1.10, 4.40, 0.275, 0.0),
    ("text-embedding-3-small", 0.02, 0.0, 0.02, 0.0),
    ("text-embedding-3-large", 0.13, 0.0, 0.13, 0.0),
    ("text-embedding-ada-002", 0.10, 0.0, 0.10, 0.0),
    // Anthropic
    ("claude-opus-4-5", 5.0, 25.0, 0.50, 6.25),
    ("claude-opus-4-1", 15.0, 75.0, 1.50, 18.75),
    ("claude-opus-4", 15.0, 75.0, 1.50, 18.75),
    ("claude-sonnet-4-5", 3.0, 15.0, 0.30, 3.75),
    ("claude-sonnet-4", 3.0, 15.0, 0.30, 3.75),
    ("claude-haiku-4-5", 1.0, 5.0, 0.10, 1.25),
    ("claude-3-7-sonnet", 3.0, 15.0, 0.30, 3.75),
    ("claude-3-5-sonnet", 3.0, 15.0, 0.30, 3.75),
    ("claude-3-5-haiku", 0.80, 4.0, 0.08, 1.0),
    ("claude-3-opus", 15.0, 75.0, 1.50, 18.75),
    ("claude-3-haiku", 0.25, 1.25, 0.03, 0.30),
    // Gemini (prompts up to 200k tokens)
    ("gemini-2.5-pro", 1.25, 10.0, 0.31, 0.0),
    ("gemini-2.5-flash", 0.30, 2.50, 0.075, 0.0),
    ("gemini-2.5-flash-lite", 0.10, 0.40, 0.025, 0.0),
    ("gemini-2.0-flash", 0.10, 0.40, 0.025, 0.0),
    ("gemini-2.0-flash-lite", 0.075, 0.30, 0.075, 0.0),
    ("gemini-1.5-pro", 1.25, 5.0, 0.3125, 0.0),
    ("gemini-1.5-flash", 0.075, 0.30, 0.01875, 0.0),
];
