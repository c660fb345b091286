//! JSON objects whose keys must be unique. serde_json keeps the last of two equal keys, so
//! `{"values": {"K": "a", "K": "b"}}` would silently store `b`; a body that names a key twice
//! is refused instead (`duplicate_key`), and never quotes either value.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, Error, MapAccess, Visitor};

/// The message parse errors start with; `extract::parse_json` maps it to `duplicate_key`.
pub const DUPLICATE_KEY: &str = "duplicate key in one JSON object";

/// `#[serde(deserialize_with = "unique_map::deserialize")]` on a `BTreeMap<String, V>` field.
pub fn deserialize<'de, D, V>(deserializer: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    deserializer.deserialize_map(UniqueMap(PhantomData))
}

struct UniqueMap<V>(PhantomData<V>);

impl<'de, V: Deserialize<'de>> Visitor<'de> for UniqueMap<V> {
    type Value = BTreeMap<String, V>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(A::Error::custom(DUPLICATE_KEY));
            }
            let value = map.next_value()?;
            out.insert(key, value);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Body {
        #[serde(default, deserialize_with = "deserialize")]
        values: BTreeMap<String, String>,
    }

    #[test]
    fn duplicates_are_refused_without_quoting_values() {
        let err = serde_json::from_str::<Body>(r#"{"values": {"K": "sk-one", "K": "sk-two"}}"#)
            .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with(DUPLICATE_KEY), "{text}");
        assert!(!text.contains("sk-"), "{text}");
        let ok: Body = serde_json::from_str(r#"{"values": {"A": "1", "B": "2"}}"#).unwrap();
        assert_eq!(ok.values.len(), 2);
        assert!(serde_json::from_str::<Body>(r#"{"values": [["A", "1"]]}"#).is_err());
        assert!(serde_json::from_str::<Body>("{}")
            .unwrap()
            .values
            .is_empty());
    }
}
