//! A small `.env` parser.
//!
//! We write our own instead of using `dotenvy` and friends because they perform `$VAR` / `${VAR}`
//! substitution (and differ on escapes), while keyward must store every value byte for byte as
//! the user wrote it: `$HOME` in a secret stays `$HOME`.
//!
//! Grammar, one entry per line (quoted values may span lines):
//! - a leading UTF-8 BOM is stripped; lines end at LF or CRLF (a lone CR is ordinary text);
//! - blank lines and lines whose first non-blank character is `#` are skipped;
//! - `[export ]KEY = value`, with `KEY` matching `^[A-Za-z_][A-Za-z0-9_]*$`;
//! - unquoted values run to the end of the line; a `#` preceded by a space or tab (including
//!   the blanks right after `=`) starts a comment; surrounding spaces and tabs are trimmed;
//! - `'...'` is literal, no escapes; `"..."` understands `\n \r \t \" \\` and keeps any other
//!   backslash sequence as-is. After the closing quote only blanks and a `# comment` may follow.
//!
//! The one change made to a value: a CRLF inside a multi-line quoted value becomes `\n`, so a
//! file means the same thing whether it was saved on Windows or on Unix.
//!
//! Errors carry line numbers and fixed reasons, never text from the file: a line may hold a secret.

use std::collections::HashMap;
use std::fmt;

/// One `KEY=value` pair, in file order.
#[derive(Clone, PartialEq, Eq)]
pub struct DotenvEntry {
    pub key: String,
    pub value: String,
}

impl fmt::Debug for DotenvEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DotenvEntry")
            .field("key", &self.key)
            .field("value", &format_args!("[REDACTED]"))
            .finish()
    }
}

/// Why a `.env` file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DotenvError {
    /// The line could not be parsed. `line` is 1-based. The message never includes any text of
    /// the line (it could hold a secret).
    #[error("line {line}: {reason}")]
    InvalidLine { line: usize, reason: &'static str },
    /// A quoted value opened on `line` is never closed.
    #[error("line {line}: unterminated quoted value")]
    Unterminated { line: usize },
    /// The same key appears twice (first at `first`, again at `line`).
    #[error("line {line}: duplicate key (first defined on line {first})")]
    DuplicateKey { line: usize, first: usize },
    /// The input is not valid UTF-8.
    #[error("the file is not valid UTF-8")]
    NotUtf8,
}

const BLANKS: [char; 2] = [' ', '\t'];

/// Parse a whole .env file. One bad line rejects the whole file.
pub fn parse(input: &[u8]) -> Result<Vec<DotenvEntry>, DotenvError> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let text = std::str::from_utf8(input).map_err(|_| DotenvError::NotUtf8)?;
    // CRLF only ever appears at a line end or inside a multi-line quoted value.
    let text = text.replace("\r\n", "\n");
    let lines: Vec<&str> = text.split('\n').collect();

    let mut entries = Vec::new();
    let mut first_seen: HashMap<String, usize> = HashMap::new();
    let mut next = 0;
    while let Some(&line) = lines.get(next) {
        let number = next + 1;
        next += 1;
        let trimmed = line.trim_start_matches(BLANKS);
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let invalid = |reason| DotenvError::InvalidLine {
            line: number,
            reason,
        };

        let (key, raw_value) = strip_export(trimmed)
            .split_once('=')
            .ok_or(invalid("expected KEY=value"))?;
        let key = key.trim_matches(BLANKS);
        if !is_valid_key(key) {
            return Err(invalid("invalid key name"));
        }

        let value_start = raw_value.trim_start_matches(BLANKS);
        let value = match value_start.chars().next() {
            Some(quote @ ('\'' | '"')) => {
                let (value, extra_lines) =
                    parse_quoted(&value_start[1..], quote, &lines[next..], number)?;
                next += extra_lines;
                value
            }
            _ => unquoted(raw_value).to_owned(),
        };
        if value.contains('\0') {
            return Err(invalid("value contains a NUL byte"));
        }
        if let Some(&first) = first_seen.get(key) {
            return Err(DotenvError::DuplicateKey {
                line: number,
                first,
            });
        }
        first_seen.insert(key.to_owned(), number);
        entries.push(DotenvEntry {
            key: key.to_owned(),
            value,
        });
    }
    Ok(entries)
}

/// Drop an `export` prefix followed by blanks, unless `export` itself is the key (`export = 1`).
fn strip_export(line: &str) -> &str {
    match line.strip_prefix("export") {
        Some(rest) if rest.starts_with(BLANKS) => {
            let rest = rest.trim_start_matches(BLANKS);
            if rest.starts_with('=') {
                line
            } else {
                rest
            }
        }
        _ => line,
    }
}

fn is_valid_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `raw` is everything after `=`. Cut at the first `#` that follows a blank, then trim.
fn unquoted(raw: &str) -> &str {
    let mut previous_blank = false;
    for (index, c) in raw.char_indices() {
        if c == '#' && previous_blank {
            return raw[..index].trim_matches(BLANKS);
        }
        previous_blank = BLANKS.contains(&c);
    }
    raw.trim_matches(BLANKS)
}

/// Read a quoted value starting just after the opening quote, on the rest of the opening line
/// and then on `more` lines if needed. Returns the value and how many of `more` were consumed.
fn parse_quoted(
    first: &str,
    quote: char,
    more: &[&str],
    line: usize,
) -> Result<(String, usize), DotenvError> {
    let mut value = String::new();
    let mut current = first;
    let mut consumed = 0;
    loop {
        let mut chars = current.char_indices();
        while let Some((index, c)) = chars.next() {
            if c == quote {
                let tail = current[index + 1..].trim_start_matches(BLANKS);
                if !tail.is_empty() && !tail.starts_with('#') {
                    let reason = "unexpected text after closing quote";
                    return Err(DotenvError::InvalidLine { line, reason });
                }
                return Ok((value, consumed));
            }
            if c == '\\' && quote == '"' {
                match chars.next().map(|(_, escaped)| escaped) {
                    Some('n') => value.push('\n'),
                    Some('r') => value.push('\r'),
                    Some('t') => value.push('\t'),
                    Some('"') => value.push('"'),
                    Some('\\') => value.push('\\'),
                    Some(other) => {
                        value.push('\\');
                        value.push(other);
                    }
                    // A backslash ending the line is kept; the line break follows below.
                    None => value.push('\\'),
                }
                continue;
            }
            value.push(c);
        }
        let Some(&next) = more.get(consumed) else {
            return Err(DotenvError::Unterminated { line });
        };
        value.push('\n');
        current = next;
        consumed += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> Vec<(String, String)> {
        match parse(input.as_bytes()) {
            Ok(entries) => entries.into_iter().map(|e| (e.key, e.value)).collect(),
            Err(err) => panic!("unexpected error: {err}"),
        }
    }

    fn one(input: &str) -> String {
        match ok(input).as_slice() {
            [(_, value)] => value.clone(),
            other => panic!("expected one entry, got {}", other.len()),
        }
    }

    fn err(input: &str) -> DotenvError {
        err_of(input.as_bytes())
    }

    fn err_of(input: &[u8]) -> DotenvError {
        match parse(input) {
            Ok(entries) => panic!("expected an error, got {} entries", entries.len()),
            Err(err) => err,
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn simple_entries_in_file_order() {
        let got = ok("B=2\nA=1\n_x9=three\n");
        assert_eq!(got, pairs(&[("B", "2"), ("A", "1"), ("_x9", "three")]));
        assert_eq!(ok(""), pairs(&[]));
    }

    #[test]
    fn export_prefix() {
        assert_eq!(
            ok("export A=1\nexport \t B=2"),
            pairs(&[("A", "1"), ("B", "2")])
        );
        assert_eq!(ok("export=1"), pairs(&[("export", "1")]));
        assert_eq!(ok("export = 2"), pairs(&[("export", "2")]));
        assert_eq!(ok("exportA=1"), pairs(&[("exportA", "1")]));
        assert_eq!(
            err("export A"),
            DotenvError::InvalidLine {
                line: 1,
                reason: "expected KEY=value"
            }
        );
    }

    #[test]
    fn comments_and_blank_lines() {
        let input = "# full line\n\n   \t\n  # indented comment\nA=1 # inline\nB=2\t#tab comment\nC=a#b\nD= # only a comment\n";
        assert_eq!(
            ok(input),
            pairs(&[("A", "1"), ("B", "2"), ("C", "a#b"), ("D", "")])
        );
        assert_eq!(one("A=#not-a-comment"), "#not-a-comment");
    }

    #[test]
    fn whitespace_around_key_and_equals() {
        assert_eq!(
            ok("  A  =  1  \n\tB\t=\tx y\t"),
            pairs(&[("A", "1"), ("B", "x y")])
        );
    }

    #[test]
    fn empty_values() {
        assert_eq!(
            ok("A=\nB=''\nC=\"\"\nD=   "),
            pairs(&[("A", ""), ("B", ""), ("C", ""), ("D", "")])
        );
    }

    #[test]
    fn variables_are_never_substituted() {
        assert_eq!(one("A=$HOME/${USER}/$(id)"), "$HOME/${USER}/$(id)");
        assert_eq!(one("A=\"$HOME ${PATH}\""), "$HOME ${PATH}");
        assert_eq!(one("A='$HOME ${PATH}'"), "$HOME ${PATH}");
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(
            one(r"A='$HOME # not a comment \n \'"),
            r"$HOME # not a comment \n \"
        );
        assert_eq!(one("A='  padded  '  # comment"), "  padded  ");
        assert_eq!(one("A='say \"hi\"'"), "say \"hi\"");
    }

    #[test]
    fn double_quote_escapes() {
        assert_eq!(one(r#"A="a\nb\rc\td\"e\\f""#), "a\nb\rc\td\"e\\f");
        assert_eq!(one(r#"A="keep \x \$ \' \u00e9""#), r"keep \x \$ \' \u00e9");
        assert_eq!(
            one(r#"A="it's # not a comment" # comment"#),
            "it's # not a comment"
        );
        assert_eq!(one(r##"A="x"#comment"##), "x");
    }

    #[test]
    fn multi_line_values() {
        let input = "A='line1\n  line2 $X\n'\nB=\"one\n\\ttwo\"\nC=after";
        assert_eq!(
            ok(input),
            pairs(&[
                ("A", "line1\n  line2 $X\n"),
                ("B", "one\n\ttwo"),
                ("C", "after")
            ])
        );
        let pem = "KEY=\"-----BEGIN KEY-----\nabc\n-----END KEY-----\"\n";
        assert_eq!(one(pem), "-----BEGIN KEY-----\nabc\n-----END KEY-----");
    }

    #[test]
    fn crlf_file_and_bom() {
        let input = "\u{feff}# c\r\nA=1\r\nB='x\r\ny'\r\nC=\"p\r\nq\" \r\n\r\n";
        assert_eq!(
            ok(input),
            pairs(&[("A", "1"), ("B", "x\ny"), ("C", "p\nq")])
        );
        // A lone CR is not a line end and is kept.
        assert_eq!(one("A='x\ry'"), "x\ry");
        // A BOM anywhere but the start is not stripped, and is not a valid key character.
        assert!(matches!(
            err("A=1\n\u{feff}B=2"),
            DotenvError::InvalidLine { line: 2, .. }
        ));
    }

    #[test]
    fn bad_line_rejects_whole_file_without_echoing_it() {
        let canary = "sk-CANARY-7f3a";
        let cases = [
            (format!("A=1\nB=2\n{canary}\nC=3"), 3, "expected KEY=value"),
            (format!("A=1\n\n9{canary}=x\n"), 3, "invalid key name"),
            (format!("A=1\nMY KEY=x\nX={canary}"), 2, "invalid key name"),
            (
                format!("A=1\nB='{canary}' {canary}\n"),
                2,
                "unexpected text after closing quote",
            ),
            (
                format!("A='x\ny'\nB=\"{canary}\n\"{canary}"),
                3,
                "unexpected text after closing quote",
            ),
            (
                format!("A=1\nB={canary}\0\n"),
                2,
                "value contains a NUL byte",
            ),
        ];
        for (input, line, reason) in cases {
            let err = err(&input);
            assert_eq!(err, DotenvError::InvalidLine { line, reason });
            assert!(err.to_string().starts_with(&format!("line {line}: ")));
            assert!(!err.to_string().contains("CANARY"));
            assert!(!format!("{err:?}").contains("CANARY"));
        }
    }

    #[test]
    fn unterminated_quote_names_the_opening_line() {
        assert_eq!(
            err("A=1\nB='abc\nC=2\n"),
            DotenvError::Unterminated { line: 2 }
        );
        assert_eq!(
            err("A=1\n\nB=\"abc\\\""),
            DotenvError::Unterminated { line: 3 }
        );
        let err = err("A=\"sk-CANARY\nmore");
        assert_eq!(err.to_string(), "line 1: unterminated quoted value");
        assert!(!format!("{err:?}").contains("CANARY"));
    }

    #[test]
    fn duplicate_key() {
        let err = err("A=1\nB=2\n# c\nA=3\n");
        assert_eq!(err, DotenvError::DuplicateKey { line: 4, first: 1 });
        assert_eq!(
            err.to_string(),
            "line 4: duplicate key (first defined on line 1)"
        );
        // Keys are case-sensitive, and `export` does not make a different key.
        assert!(matches!(parse(b"a=1\nA=2"), Ok(entries) if entries.len() == 2));
        assert_eq!(
            err_of(b"A=1\nexport A=2"),
            DotenvError::DuplicateKey { line: 2, first: 1 }
        );
    }

    #[test]
    fn invalid_utf8() {
        assert_eq!(err_of(b"A=1\nB=\xff\xfe\n"), DotenvError::NotUtf8);
        assert_eq!(
            DotenvError::NotUtf8.to_string(),
            "the file is not valid UTF-8"
        );
    }

    #[test]
    fn debug_of_entry_hides_the_value() {
        let entry = DotenvEntry {
            key: "API_KEY".into(),
            value: "sk-CANARY-secret".into(),
        };
        let debug = format!("{entry:?}");
        assert_eq!(debug, "DotenvEntry { key: \"API_KEY\", value: [REDACTED] }");
        assert!(!format!("{entry:#?}").contains("CANARY"));
    }
}
