use super::*;

fn usage(input: u64, output: u64, cache_read: u64, cache_write: u64) -> Usage {
    Usage {
        model: None,
        input_tokens: input,
        output_tokens: output,
        cache_read_tokens: cache_read,
        cache_write_tokens: cache_write,
        seen: true,
    }
}

#[test]
fn dated_and_prefixed_names_find_their_base_entry() {
    let t = PriceTable::builtin();
    let mini = t.price("gpt-4o-mini").copied();
    assert_eq!(mini.map(|p| (p.input, p.output)), Some((0.15, 0.60)));
    for name in [
        "gpt-4o-mini-2024-07-18",
        "GPT-4o-mini",
        "openai/gpt-4o-mini",
        "gpt-4o-mini-latest",
    ] {
        assert_eq!(t.price(name).copied(), mini, "{name}");
    }
    let gpt4o = t.price("gpt-4o-2024-08-06").map(|p| p.input);
    assert_eq!(gpt4o, Some(2.50));
    assert_eq!(
        t.price("gpt-4.1-nano-2025-04-14").map(|p| p.input),
        Some(0.10)
    );
    assert_eq!(t.price("o3-mini-2025-01-31").map(|p| p.output), Some(4.40));
    let sonnet = t.price("claude-3-5-sonnet-20241022").map(|p| p.output);
    assert_eq!(sonnet, Some(15.0));
    let sonnet45 = t
        .price("claude-sonnet-4-5-20250929")
        .and_then(|p| p.cache_write);
    assert_eq!(sonnet45, Some(3.75));
    assert_eq!(t.price("claude-haiku-4-5").map(|p| p.input), Some(1.0));
    assert_eq!(
        t.price("claude-3-5-haiku-latest").map(|p| p.input),
        Some(0.80)
    );
    let flash = t.price("gemini-2.5-flash-preview-05-20").map(|p| p.input);
    assert_eq!(flash, Some(0.30));
    assert_eq!(
        t.price("models/gemini-2.0-flash-001").map(|p| p.input),
        Some(0.10)
    );
    assert_eq!(
        t.price("claude-3-5-sonnet@20240620").map(|p| p.input),
        Some(3.0)
    );
}

#[test]
fn unknown_models_have_no_price() {
    let t = PriceTable::builtin();
    for name in [
        "mock-model",
        "gpt-4o-mini-audio-preview",
        "llama-3-70b",
        "",
        "-",
        "x-1",
    ] {
        assert!(t.price(name).is_none(), "{name}");
    }
}

#[test]
fn cached_tokens_are_billed_once() {
    let p = Price {
        input: 2.0,
        output: 10.0,
        cache_read: Some(1.0),
        cache_write: Some(3.0),
    };
    // OpenAI: 1000 input of which 400 cached → 600 × 2 + 400 × 1 + 100 × 10.
    let openai = p.cost(&usage(1000, 100, 400, 0), UsageStyle::CachedInInput);
    assert!((openai - 2600.0 / 1e6).abs() < 1e-12, "{openai}");
    // Anthropic: 1000 uncached input, plus 400 read and 200 written, reported apart.
    let anthropic = p.cost(&usage(1000, 100, 400, 200), UsageStyle::CachedApart);
    assert!((anthropic - 4000.0 / 1e6).abs() < 1e-12, "{anthropic}");
    let no_cache_price = Price {
        cache_read: None,
        cache_write: None,
        ..p
    };
    let full = no_cache_price.cost(&usage(1000, 0, 400, 0), UsageStyle::CachedInInput);
    assert!((full - 2000.0 / 1e6).abs() < 1e-12, "{full}");
    assert!((p.estimate(100, 10) - 300.0 / 1e6).abs() < 1e-12);
}

#[test]
fn files_in_three_formats_replace_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let json = write(
        "p.json",
        r#"{"gpt-4o-mini": {"input": 0.15, "output": 0.60, "cache_read": 0.075, "cache_write": 0}}"#,
    );
    let yaml = write(
        "p.yaml",
        "models:\n  my-model:\n    input: 1\n    output: 2\n",
    );
    let toml = write("p.toml", "[models.my-model]\ninput = 1\noutput = 2.5\n");
    let t = PriceTable::from_path(&json).unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(
        t.price("gpt-4o-mini").and_then(|p| p.cache_read),
        Some(0.075)
    );
    assert!(
        t.price("gpt-4o").is_none(),
        "the file replaces the built-in table"
    );
    let t = PriceTable::from_path(&yaml).unwrap();
    assert_eq!(t.price("my-model-2025-01-01").map(|p| p.output), Some(2.0));
    let t = PriceTable::from_path(&toml).unwrap();
    assert_eq!(t.price("My-Model").map(|p| p.output), Some(2.5));

    for (name, text) in [
        ("bad.json", r#"{"m": {"input": 1}}"#),
        ("bad2.json", r#"{"m": {"input": -1, "output": 1}}"#),
        (
            "bad3.json",
            r#"{"m": {"input": 1, "output": 1, "extra": 1}}"#,
        ),
        ("bad4.yaml", "- a\n- b\n"),
        ("bad5.toml", "m = ["),
    ] {
        let err = PriceTable::from_path(&write(name, text)).unwrap_err();
        assert!(err.to_string().contains(name), "{err}");
    }
    assert!(PriceTable::from_path(&dir.path().join("missing.json")).is_err());
}
