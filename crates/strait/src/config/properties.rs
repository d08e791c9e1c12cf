//! `java.util.Properties` text format, as MirrorMaker 2 reads its config file, keeping the line
//! each key came from so that every config error can name file, line and key.
//!
//! Semantics follow `Properties.load`: `key=value`, `key:value` and `key value`; `#` and `!`
//! comment lines; a line ending in an odd number of backslashes continues on the next line (leading
//! whitespace of the continuation is dropped); escapes `\t \n \r \f \uXXXX`, and `\c` is `c` for
//! any other character; leading whitespace of a value is dropped, trailing whitespace kept; the
//! last occurrence of a key wins. The bytes are ISO-8859-1 ([`decode_latin1`]), as
//! `Properties.load(InputStream)` reads them: a UTF-8 `é` in a file is two characters to MM2, and
//! so to strait (the loader warns when that happens); `\uXXXX` escapes are the portable spelling.

use std::collections::BTreeMap;

/// The text of a properties file as Java reads it: each byte one character (ISO-8859-1).
pub fn decode_latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// A key's value and the (1-based) line where its logical line starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Unescaped value; leading whitespace dropped, trailing whitespace kept.
    pub value: String,
    /// 1-based line where the key's logical line starts.
    pub line: usize,
}

/// Parsed properties: every key with its last value and line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Properties {
    entries: BTreeMap<String, Entry>,
}

/// A line the parser cannot read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line where the offending logical line starts.
    pub line: usize,
    /// What is wrong, e.g. a malformed `\uXXXX` escape.
    pub message: String,
}

impl Properties {
    /// Parse a whole file's text (already decoded, see [`decode_latin1`]).
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut entries = BTreeMap::new();
        for (line, logical) in logical_lines(text) {
            let (key, value) = split_key_value(&logical, line)?;
            entries.insert(key, Entry { value, line });
        }
        Ok(Self { entries })
    }

    /// The last value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(|e| e.value.as_str())
    }

    /// The last value of `key` with its line, if set.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Every key with its entry, in key order (not file order).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries.iter().map(|(k, e)| (k.as_str(), e))
    }

    /// Number of distinct keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file sets no key at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\x0c'
}

/// Join natural lines into logical lines (comments and blank lines dropped), each with the number
/// of the line it starts on. Escapes are still raw here.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    // Split on \n, \r\n and \r, as Java does.
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    for (i, raw) in normalized.split('\n').enumerate() {
        let n = i + 1;
        let continuing = current.is_some();
        let line = raw.trim_start_matches(is_ws);
        if !continuing && (line.is_empty() || line.starts_with('#') || line.starts_with('!')) {
            continue;
        }
        let trailing = line.chars().rev().take_while(|&c| c == '\\').count();
        let continues = trailing % 2 == 1;
        let body = if continues {
            &line[..line.len() - 1]
        } else {
            line
        };
        match current.as_mut() {
            Some((_, acc)) => acc.push_str(body),
            None => current = Some((n, body.to_string())),
        }
        if !continues {
            out.extend(current.take());
        }
    }
    // A continuation on the last line of the file ends the logical line there.
    out.extend(current.take());
    out
}

/// Split one logical line into unescaped key and value.
fn split_key_value(logical: &str, line: usize) -> Result<(String, String), ParseError> {
    let chars: Vec<char> = logical.chars().collect();
    let mut i = 0;
    let mut key_end = chars.len();
    let mut value_start = chars.len();
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            i += 2;
            continue;
        }
        if c == '=' || c == ':' {
            key_end = i;
            value_start = i + 1;
            break;
        }
        if is_ws(c) {
            key_end = i;
            // Whitespace, then optionally one '=' or ':', then whitespace.
            let mut j = i;
            while j < chars.len() && is_ws(chars[j]) {
                j += 1;
            }
            if j < chars.len() && (chars[j] == '=' || chars[j] == ':') {
                j += 1;
            }
            value_start = j;
            break;
        }
        i += 1;
    }
    let key_end = key_end.min(chars.len());
    let mut v = value_start.min(chars.len());
    while v < chars.len() && is_ws(chars[v]) {
        v += 1;
    }
    let key = unescape(&chars[..key_end], line)?;
    let value = unescape(&chars[v..], line)?;
    Ok((key, value))
}

fn unescape(chars: &[char], line: usize) -> Result<String, ParseError> {
    let mut out = String::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '\\' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let Some(&e) = chars.get(i) else { break };
        i += 1;
        match e {
            't' => out.push('\t'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            'f' => out.push('\x0c'),
            'u' => {
                let hex: String = chars.iter().skip(i).take(4).collect();
                // Four hex digits exactly (`from_str_radix` would also take a sign: `\u+041`).
                let code = (hex.len() == 4 && hex.chars().all(|c| c.is_ascii_hexdigit()))
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .ok_or_else(|| ParseError {
                        line,
                        // The characters are not quoted: this reader also reads secrets files
                        // (FileConfigProvider), and an error must never show part of a value.
                        message:
                            "malformed \\uXXXX escape (\\u must be followed by four hex digits)"
                                .into(),
                    })?;
                i += 4;
                // A surrogate pair written as two escapes, as Java writes non-BMP characters.
                if (0xD800..0xDC00).contains(&code)
                    && chars.get(i) == Some(&'\\')
                    && chars.get(i + 1) == Some(&'u')
                {
                    let low: String = chars.iter().skip(i + 2).take(4).collect();
                    if let Ok(lo) = u32::from_str_radix(&low, 16) {
                        if (0xDC00..0xE000).contains(&lo) {
                            let cp = 0x10000 + ((code - 0xD800) << 10) + (lo - 0xDC00);
                            if let Some(ch) = char::from_u32(cp) {
                                out.push(ch);
                                i += 6;
                                continue;
                            }
                        }
                    }
                }
                out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(text: &str) -> Properties {
        Properties::parse(text).unwrap()
    }

    #[test]
    fn separators_comments_and_whitespace() {
        let props = p("# comment\n! also\n\n  a=1\nb : 2\nc 3\nd\t=\t4  \ne\nf=\n");
        assert_eq!(props.get("a"), Some("1"));
        assert_eq!(props.get("b"), Some("2"));
        assert_eq!(props.get("c"), Some("3"));
        assert_eq!(props.get("d"), Some("4  "), "trailing whitespace kept");
        assert_eq!(props.get("e"), Some(""));
        assert_eq!(props.get("f"), Some(""));
        assert_eq!(props.entry("a").unwrap().line, 4);
        assert_eq!(props.len(), 6);
    }

    #[test]
    fn flow_keys_with_arrows() {
        let props =
            p("us-east->us-west.enabled = true\nus-east->us-west.topics=orders, payments\n");
        assert_eq!(props.get("us-east->us-west.enabled"), Some("true"));
        assert_eq!(
            props.get("us-east->us-west.topics"),
            Some("orders, payments")
        );
    }

    #[test]
    fn continuation_lines() {
        let props = p("topics = a, \\\n    b, \\\n    c\nnext=1\n");
        assert_eq!(props.get("topics"), Some("a, b, c"));
        assert_eq!(props.entry("topics").unwrap().line, 1);
        assert_eq!(props.entry("next").unwrap().line, 4);
        // An even number of backslashes does not continue.
        let props = p("path=C:\\\\\nx=1\n");
        assert_eq!(props.get("path"), Some("C:\\"));
        assert_eq!(props.get("x"), Some("1"));
    }

    #[test]
    fn comment_lines_do_not_continue() {
        let props = p("# a comment \\\nkey=v\n");
        assert_eq!(props.get("key"), Some("v"));
    }

    #[test]
    fn escapes() {
        let props = p("k\\=ey=v\\u00e9\\t\\x\nsp\\ ace=1\nemoji=\\uD83D\\uDE00\n");
        assert_eq!(props.get("k=ey"), Some("v\u{e9}\tx"));
        assert_eq!(props.get("sp ace"), Some("1"));
        assert_eq!(props.get("emoji"), Some("\u{1F600}"));
        assert!(
            Properties::parse("a=\\u+041\n").is_err(),
            "Java refuses a sign"
        );
        let err = Properties::parse("a=1\nb=\\u12G4\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("\\u"), "{}", err.message);
        assert!(
            !err.message.contains("12G4"),
            "no part of a value: {}",
            err.message
        );
    }

    #[test]
    fn crlf_and_last_key_wins() {
        let props = p("a=1\r\nb=2\ra=3\r\n");
        assert_eq!(props.get("a"), Some("3"));
        assert_eq!(props.get("b"), Some("2"));
        assert_eq!(props.entry("a").unwrap().line, 3);
    }

    proptest! {
        /// Any key and value written with Java's escaping reads back unchanged.
        #[test]
        fn escaped_round_trip(key in "[a-zA-Z0-9_.>= :#!-]{1,20}", value in "[a-zA-Z0-9_.>= :#!\\\\-]{0,30}") {
            let esc = |s: &str, is_key: bool| -> String {
                let mut o = String::new();
                for (i, c) in s.chars().enumerate() {
                    match c {
                        '\\' => o.push_str("\\\\"),
                        '=' | ':' | '#' | '!' => { o.push('\\'); o.push(c) }
                        ' ' if is_key || i == 0 => o.push_str("\\ "),
                        _ => o.push(c),
                    }
                }
                o
            };
            let text = format!("{}={}\n", esc(&key, true), esc(&value, false));
            let props = Properties::parse(&text).unwrap();
            prop_assert_eq!(props.get(&key), Some(value.as_str()));
        }
    }
}
