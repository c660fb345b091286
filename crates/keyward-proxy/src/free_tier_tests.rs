use super::*;

fn parse(name: &str, text: &str) -> Result<FreeTierFile, FileError> {
    config_file::parse(Path::new(name), text)
}

fn env(name: &str) -> Option<String> {
    (name == "FREE_KEY").then(|| "sk-free-0123".to_owned())
}

#[test]
fn loads_a_key_from_the_environment_or_a_file() {
    let yaml = "provider: openai\nkey: \"$FREE_KEY\"\nallowed_models: [gpt-4o-mini, \"gpt-4.1-*\"]\nrequests_per_minute: 3\n";
    let tier = FreeTier::build(parse("f.yaml", yaml).unwrap(), &env).unwrap();
    assert_eq!(tier.provider, Provider::OpenAi);
    assert_eq!(tier.credential.value.as_bytes(), b"Bearer sk-free-0123");
    assert!(tier.credential.value.is_sensitive());
    assert_eq!(tier.credential.name, FREE_TIER_CREDENTIAL);
    assert_eq!(tier.requests_per_minute, 3);
    assert!(tier.allows(Some("gpt-4o-mini")));
    assert!(tier.allows(Some("gpt-4.1-nano")));
    assert!(!tier.allows(Some("gpt-4o")));
    assert!(!tier.allows(None));
    assert!(!format!("{tier:?}").contains("sk-free"));
    assert!(tier.is(&tier.credential.clone()));

    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "sk-ant-file\n").unwrap();
    let json = format!(
        r#"{{"provider": "anthropic", "key": {{"file": "{}"}}, "allowed_models": ["claude-haiku-4-5"], "requests_per_minute": 1}}"#,
        key_file.display()
    );
    let tier = FreeTier::build(parse("f.json", &json).unwrap(), &env).unwrap();
    assert_eq!(tier.credential.header.as_str(), "x-api-key");
    assert_eq!(tier.credential.value.as_bytes(), b"sk-ant-file");

    let toml = "provider = \"gemini\"\nkey = \"${FREE_KEY}\"\nallowed_models = [\"gemini-2.0-flash\"]\nrequests_per_minute = 5\n";
    let tier = FreeTier::build(parse("f.toml", toml).unwrap(), &env).unwrap();
    assert_eq!(tier.credential.header.as_str(), "x-goog-api-key");
}

#[test]
fn refuses_bad_files_without_showing_the_key() {
    let cases = [
        "provider: nope\nkey: \"$FREE_KEY\"\nallowed_models: [m]\nrequests_per_minute: 1\n",
        "provider: openai\nkey: \"$MISSING\"\nallowed_models: [m]\nrequests_per_minute: 1\n",
        "provider: openai\nkey: \"$FREE_KEY\"\nallowed_models: []\nrequests_per_minute: 1\n",
        "provider: openai\nkey: \"$FREE_KEY\"\nallowed_models: [m]\nrequests_per_minute: 0\n",
        "provider: openai\nkey: \"$1bad\"\nallowed_models: [m]\nrequests_per_minute: 1\n",
        "provider: openai\nkey: {file: /nonexistent/key}\nallowed_models: [m]\nrequests_per_minute: 1\n",
    ];
    for yaml in cases {
        let file = parse("f.yaml", yaml).unwrap();
        let err = FreeTier::build(file, &env).err().unwrap();
        assert!(!err.is_empty(), "{yaml}");
    }
    let unknown = parse("f.yaml", "provider: openai\nkey: sk-inline-secret\nallowed_models: [m]\nrequests_per_minute: 1\nextra: sk-inline-secret\n");
    let err = unknown.err().unwrap().to_string();
    assert!(!err.contains("sk-inline-secret"), "{err}");
}
