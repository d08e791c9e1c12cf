//! `sasl.jaas.config` values, read exactly as Kafka's `JaasConfig` reads them: with a
//! `java.io.StreamTokenizer` (its defaults plus `-`, `_` and `$` as word characters, `//` and
//! `/* */` comments). So `"double"` and `'single'` quoted values with `\` escapes work, bare
//! values are words (letters, digits, `.`, `-`, `_`, `$`, Latin-1 letters), a bare value that
//! starts like a number is refused as Kafka refuses it, and a lone `/` starts a comment. A value
//! Azure's Event Hubs tutorial writes (`password='Endpoint=sb://...'`) then reads as in MM2.
//!
//! Errors describe the problem and never contain the text: it holds passwords.

use std::collections::BTreeMap;

/// One login entry: `<LoginModuleClass> <flag> key=value ... ;`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JaasLogin {
    /// The login module's class name as written, usually fully qualified
    /// (`org.apache.kafka.common.security.plain.PlainLoginModule`).
    pub module: String,
    /// `required`, `requisite`, `sufficient` or `optional`, lower-cased.
    pub flag: String,
    /// The `name=value` options, quotes and escapes removed (a repeated name keeps its last
    /// value). They hold passwords: never log them.
    pub options: BTreeMap<String, String>,
}

impl JaasLogin {
    /// The module's simple class name (`PlainLoginModule`).
    pub fn short_module(&self) -> &str {
        self.module.rsplit('.').next().unwrap_or(&self.module)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Number,
    Char(char),
    Eof,
}

impl Token {
    /// `StreamTokenizer.sval`: set for words and quoted strings only.
    fn sval(&self) -> Option<&str> {
        match self {
            Self::Word(s) | Self::Quoted(s) => Some(s),
            _ => None,
        }
    }
}

/// A port of the parts of `java.io.StreamTokenizer` that `JaasConfig` uses.
struct Tokenizer {
    chars: Vec<char>,
    pos: usize,
}

impl Tokenizer {
    fn is_ws(c: char) -> bool {
        (c as u32) <= 0x20
    }
    fn is_digit(c: char) -> bool {
        c.is_ascii_digit() || c == '.' || c == '-'
    }
    fn is_alpha(c: char) -> bool {
        c.is_ascii_alphabetic()
            || matches!(c, '-' | '_' | '$')
            || ((0xA0..=0xFF).contains(&(c as u32)))
            || (c as u32) > 0xFF
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' || c == '\r' {
                break;
            }
            self.pos += 1;
        }
    }

    fn next(&mut self) -> Token {
        loop {
            while self.peek().is_some_and(Self::is_ws) {
                self.pos += 1;
            }
            let Some(c) = self.bump() else {
                return Token::Eof;
            };
            if Self::is_digit(c) {
                // Numbers have no `sval`; Kafka then reports a missing value.
                if c == '-' && !self.peek().is_some_and(|d| d == '.' || d.is_ascii_digit()) {
                    return Token::Char('-');
                }
                let mut seen_dot = c == '.';
                while let Some(d) = self.peek() {
                    if d.is_ascii_digit() || (d == '.' && !seen_dot) {
                        seen_dot |= d == '.';
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                return Token::Number;
            }
            if Self::is_alpha(c) {
                let mut w = String::from(c);
                while let Some(d) = self.peek() {
                    if Self::is_alpha(d) || Self::is_digit(d) {
                        w.push(d);
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                return Token::Word(w);
            }
            if c == '"' || c == '\'' {
                return Token::Quoted(self.quoted(c));
            }
            if c == '/' {
                match self.peek() {
                    Some('*') => {
                        self.pos += 1;
                        // To the closing `*/`, or the end.
                        let mut prev = '\0';
                        while let Some(d) = self.bump() {
                            if prev == '*' && d == '/' {
                                break;
                            }
                            prev = d;
                        }
                        continue;
                    }
                    // `//` and a lone `/` (the default comment character) both run to the line's end.
                    _ => {
                        self.skip_line();
                        continue;
                    }
                }
            }
            return Token::Char(c);
        }
    }

    /// A quoted string: ends at the matching quote or at a line end; C-style escapes.
    fn quoted(&mut self, quote: char) -> String {
        let mut out = String::new();
        while let Some(d) = self.peek() {
            if d == quote {
                self.pos += 1;
                break;
            }
            if d == '\n' || d == '\r' {
                break;
            }
            self.pos += 1;
            if d != '\\' {
                out.push(d);
                continue;
            }
            let Some(e) = self.bump() else {
                // Java appends (char) -1 here.
                out.push('\u{FFFF}');
                break;
            };
            if ('0'..='7').contains(&e) {
                let first = e;
                let mut v = e as u32 - '0' as u32;
                if let Some(d2) = self.peek().filter(|d| ('0'..='7').contains(d)) {
                    self.pos += 1;
                    v = (v << 3) + (d2 as u32 - '0' as u32);
                    if let Some(d3) = self.peek().filter(|d| ('0'..='7').contains(d)) {
                        if first <= '3' {
                            self.pos += 1;
                            v = (v << 3) + (d3 as u32 - '0' as u32);
                        }
                    }
                }
                out.push(char::from_u32(v).unwrap_or('\u{FFFD}'));
                continue;
            }
            out.push(match e {
                'a' => '\u{7}',
                'b' => '\u{8}',
                'f' => '\u{c}',
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                'v' => '\u{b}',
                other => other,
            });
        }
        out
    }
}

/// Parse a `sasl.jaas.config` value. A client login has exactly one entry (Kafka's
/// `JaasContext` refuses more). Errors never contain the value.
pub fn parse_jaas(text: &str) -> Result<JaasLogin, String> {
    let mut t = Tokenizer {
        chars: text.chars().collect(),
        pos: 0,
    };
    let mut entries = Vec::new();
    loop {
        let first = t.next();
        if first == Token::Eof {
            break;
        }
        let Some(module) = first.sval().map(str::to_string) else {
            return Err("expected a login module class name".into());
        };
        let flag_tok = t.next();
        if flag_tok == Token::Eof {
            return Err("the login module control flag (`required`) is missing".into());
        }
        let flag = flag_tok.sval().unwrap_or("").to_ascii_lowercase();
        if !["required", "requisite", "sufficient", "optional"].contains(&flag.as_str()) {
            return Err("expected a control flag (`required`) after the login module class".into());
        }
        let mut options = BTreeMap::new();
        loop {
            let tok = t.next();
            match tok {
                Token::Eof => {
                    return Err("the login entry is not terminated by `;`".into());
                }
                Token::Char(';') => break,
                _ => {}
            }
            let Some(key) = tok.sval().map(str::to_string) else {
                return Err("expected an option name (`name=value`)".into());
            };
            if t.next() != Token::Char('=') {
                return Err(format!("no value given for option `{key}`"));
            }
            let value = t.next();
            let Some(value) = value.sval() else {
                return Err(format!(
                    "no value given for option `{key}` (a value that starts with a digit, `.`, `-` or contains `/`, `:`, `@`, `=` must be quoted)"
                ));
            };
            options.insert(key, value.to_string());
        }
        entries.push(JaasLogin {
            module,
            flag,
            options,
        });
    }
    match entries.len() {
        0 => Err("no login module is given".into()),
        1 => Ok(entries.remove(0)),
        n => Err(format!(
            "it holds {n} login modules; a Kafka client takes exactly one"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PLAIN: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";

    #[test]
    fn double_single_and_bare_values() {
        let l = parse_jaas(&format!(
            r#"{PLAIN} required username="alice" password='Endpoint=sb://ns.servicebus.windows.net/;Key=a/b+c=' extra=bare.word-1_$x;"#
        ))
        .unwrap();
        assert_eq!(l.short_module(), "PlainLoginModule");
        assert_eq!(l.flag, "required");
        assert_eq!(l.options["username"], "alice");
        assert_eq!(
            l.options["password"],
            "Endpoint=sb://ns.servicebus.windows.net/;Key=a/b+c="
        );
        assert_eq!(l.options["extra"], "bare.word-1_$x");
        // Azure's tutorial: `username='$ConnectionString'`; the flag is case-insensitive.
        let l = parse_jaas(&format!(
            "{PLAIN} REQUIRED username='$ConnectionString' password=\"k\";"
        ))
        .unwrap();
        assert_eq!(l.options["username"], "$ConnectionString");
        assert_eq!(l.flag, "required");
    }

    #[test]
    fn escapes_comments_and_line_breaks() {
        let l = parse_jaas(&format!(
            "{PLAIN} required /* note */ username=\"a\\\"b\\\\c\\101\"\n // comment\n password=\"p\";"
        ))
        .unwrap();
        assert_eq!(l.options["username"], "a\"b\\cA");
        assert_eq!(l.options["password"], "p");
    }

    #[test]
    fn what_kafka_refuses_is_refused() {
        for (text, needle) in [
            (
                format!("{PLAIN} required username=alice password=123;"),
                "password",
            ),
            (
                format!("{PLAIN} required username=alice password=a/b;"),
                ";",
            ),
            (
                format!("{PLAIN} required username=\"a\" password=\"b\""),
                ";",
            ),
            (format!("{PLAIN} username=\"a\";"), "control flag"),
            (PLAIN.to_string(), "control flag"),
            (String::new(), "no login module"),
            (format!("{PLAIN} required username;"), "username"),
            (
                format!("{PLAIN} required a=\"1\"; {PLAIN} required b=\"2\";"),
                "2 login modules",
            ),
        ] {
            let e = parse_jaas(&text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn errors_never_contain_the_text() {
        let e = parse_jaas(&format!("{PLAIN} required password=\"hunter2\"")).unwrap_err();
        assert!(!e.contains("hunter2"));
        let e = parse_jaas(&format!("{PLAIN} required password=9hunter2;")).unwrap_err();
        assert!(!e.contains("hunter2"));
    }

    proptest! {
        /// Whatever the credentials, quoted values come back exactly.
        #[test]
        fn quoted_round_trip(user in "[a-zA-Z0-9@._-]{1,16}", pass in "[ -~]{0,24}", single in any::<bool>()) {
            let q = if single { '\'' } else { '"' };
            let esc: String = pass.chars().flat_map(|c| if c == q || c == '\\' { vec!['\\', c] } else { vec![c] }).collect();
            let text = format!("org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{user}\" password={q}{esc}{q};");
            let login = parse_jaas(&text).unwrap();
            prop_assert_eq!(&login.options["username"], &user);
            prop_assert_eq!(&login.options["password"], &pass);
        }

        #[test]
        fn never_panics(text in "\\PC{0,80}") {
            let _ = parse_jaas(&text);
        }
    }
}
