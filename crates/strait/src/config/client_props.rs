//! Java Kafka client properties (as written in an MM2 file) -> librdkafka properties.
//!
//! One table, one function. Only faithful mappings are made: a property is renamed when
//! librdkafka has the same setting under another name, its value converted when the meaning is
//! the same and the spelling differs, and otherwise it is passed through if librdkafka knows the
//! name (asked of librdkafka itself, see [`check_property`]) or dropped with a warning if not.
//! Keystores and JAAS logins that have no faithful librdkafka form are errors that say what to
//! write instead, since connecting without them would fail later and less clearly. A librdkafka
//! property written directly in the file always wins over one mapped from a Java property, so a
//! file can serve MM2 and strait at once.

use std::collections::BTreeMap;

use crate::kafka::config::{check_property, is_secret, PropertyCheck, Props};

use super::error::{KeyRef, Problem};
use super::model::Sourced;

/// Java name -> librdkafka name, for properties whose meaning is the same.
pub const RENAMED: &[(&str, &str)] = &[
    ("sasl.mechanism", "sasl.mechanisms"),
    ("fetch.max.wait.ms", "fetch.wait.max.ms"),
    ("receive.buffer.bytes", "socket.receive.buffer.bytes"),
    ("send.buffer.bytes", "socket.send.buffer.bytes"),
    ("max.request.size", "message.max.bytes"),
    ("ssl.truststore.certificates", "ssl.ca.pem"),
    ("ssl.keystore.certificate.chain", "ssl.certificate.pem"),
    ("ssl.keystore.key", "ssl.key.pem"),
];

/// Java properties librdkafka also accepts by name but with values that mean something else
/// (Java cipher suite names are not OpenSSL's): dropped with a warning, never passed on.
pub const SAME_NAME_OTHER_MEANING: &[&str] = &["ssl.cipher.suites"];

/// Java properties that only describe other properties handled here; consumed silently.
const CONSUMED: &[&str] = &[
    "ssl.truststore.location",
    "ssl.truststore.type",
    "ssl.keystore.location",
    "ssl.keystore.type",
    "ssl.keystore.password",
    "sasl.jaas.config",
];

/// A client's librdkafka properties, and what could not be carried over.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapped {
    pub props: Props,
    /// Java-only keys, dropped (each becomes part of one warning).
    pub dropped: Vec<KeyRef>,
    /// Java settings ignored because a librdkafka setting for the same thing is also given.
    pub superseded: Vec<(KeyRef, String)>,
}

/// A mapping failure: the key it is about and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapError {
    pub at: KeyRef,
    pub problem: Problem,
}

fn client_err(at: &KeyRef, msg: String) -> MapError {
    MapError {
        at: at.clone(),
        problem: Problem::Client(msg),
    }
}

/// Map one client's Java properties (role layers already merged) to librdkafka properties.
pub fn to_librdkafka(java: &BTreeMap<String, Sourced>) -> Result<Mapped, MapError> {
    let mut out = Mapped::default();
    let native = |k: &str| java.contains_key(k);
    let renamed: BTreeMap<&str, &str> = RENAMED.iter().copied().collect();

    // Directly written librdkafka names first, then renamed Java ones where not already set.
    let mut later: Vec<(String, String, &Sourced)> = Vec::new();
    for (key, src) in java {
        if CONSUMED.contains(&key.as_str()) {
            continue;
        }
        if SAME_NAME_OTHER_MEANING.contains(&key.as_str()) || key == "ssl.truststore.password" {
            out.dropped.push(src.at.clone());
            continue;
        }
        if let Some(&to) = renamed.get(key.as_str()) {
            later.push((to.to_string(), src.value.clone(), src));
            continue;
        }
        let value = match key.as_str() {
            "partition.assignment.strategy" => match assignors(&src.value) {
                Some(v) => v,
                None => {
                    out.dropped.push(src.at.clone());
                    continue;
                }
            },
            "ssl.endpoint.identification.algorithm" if src.value.trim().is_empty() => {
                "none".to_string()
            }
            "auto.offset.reset" if src.value.trim().eq_ignore_ascii_case("none") => {
                "error".to_string()
            }
            _ => src.value.clone(),
        };
        put(&mut out, key, value, src)?;
    }
    for (key, value, src) in later {
        if out.props.contains_key(&key) {
            out.superseded.push((src.at.clone(), key));
        } else {
            put(&mut out, &key, value, src)?;
        }
    }

    truststore(java, &native, &mut out)?;
    keystore(java, &native, &mut out)?;
    jaas(java, &native, &mut out)?;
    Ok(out)
}

/// Insert after asking librdkafka: unknown names are dropped, invalid values are errors.
fn put(out: &mut Mapped, key: &str, value: String, src: &Sourced) -> Result<(), MapError> {
    match check_property(key, &value) {
        PropertyCheck::Ok => {
            out.props.insert(key.to_string(), value);
            Ok(())
        }
        PropertyCheck::Unknown => {
            out.dropped.push(src.at.clone());
            Ok(())
        }
        PropertyCheck::Invalid(reason) => {
            let shown = if is_secret(key) || is_secret(&src.at.key) {
                "the value".to_string()
            } else {
                format!("`{value}`")
            };
            Err(client_err(
                &src.at,
                format!("librdkafka rejects {shown} for `{key}`: {reason}"),
            ))
        }
    }
}

/// Java assignor class names -> librdkafka assignor names; None if one has no equivalent.
fn assignors(value: &str) -> Option<String> {
    let mut names = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let short = item.rsplit('.').next().unwrap_or(item);
        let name = match short {
            "RangeAssignor" | "range" => "range",
            "RoundRobinAssignor" | "roundrobin" => "roundrobin",
            "CooperativeStickyAssignor" | "cooperative-sticky" => "cooperative-sticky",
            _ => return None,
        };
        names.push(name);
    }
    (!names.is_empty()).then(|| names.join(","))
}

fn store_type(java: &BTreeMap<String, Sourced>, key: &str) -> String {
    java.get(key)
        .map(|s| s.value.trim().to_ascii_uppercase())
        .unwrap_or_else(|| "JKS".to_string())
}

fn truststore(
    java: &BTreeMap<String, Sourced>,
    native: &dyn Fn(&str) -> bool,
    out: &mut Mapped,
) -> Result<(), MapError> {
    let Some(loc) = java.get("ssl.truststore.location") else {
        return Ok(());
    };
    if native("ssl.ca.location") || native("ssl.ca.pem") {
        out.superseded
            .push((loc.at.clone(), "ssl.ca.location".to_string()));
        return Ok(());
    }
    match store_type(java, "ssl.truststore.type").as_str() {
        "PEM" => put(out, "ssl.ca.location", loc.value.clone(), loc),
        other => Err(client_err(
            &loc.at,
            format!(
                "librdkafka cannot read a {other} truststore; export the CA certificates to a PEM \
                 file and set `ssl.ca.location` to it (or set `ssl.truststore.type = PEM` if the \
                 file already is PEM)"
            ),
        )),
    }
}

fn keystore(
    java: &BTreeMap<String, Sourced>,
    native: &dyn Fn(&str) -> bool,
    out: &mut Mapped,
) -> Result<(), MapError> {
    let Some(loc) = java.get("ssl.keystore.location") else {
        if let Some(pw) = java.get("ssl.keystore.password") {
            out.dropped.push(pw.at.clone());
        }
        return Ok(());
    };
    if native("ssl.certificate.location") || native("ssl.certificate.pem") {
        out.superseded
            .push((loc.at.clone(), "ssl.certificate.location".to_string()));
        return Ok(());
    }
    match store_type(java, "ssl.keystore.type").as_str() {
        // librdkafka reads PKCS#12 keystores under the same names.
        "PKCS12" => {
            put(out, "ssl.keystore.location", loc.value.clone(), loc)?;
            if let Some(pw) = java.get("ssl.keystore.password") {
                put(out, "ssl.keystore.password", pw.value.clone(), pw)?;
            }
            Ok(())
        }
        other => Err(client_err(
            &loc.at,
            format!(
                "librdkafka cannot read a {other} keystore; use PEM files instead: set \
                 `ssl.certificate.location` and `ssl.key.location` (and `ssl.key.password` if \
                 the key is encrypted, `ssl.ca.location` for the CA certificates)"
            ),
        )),
    }
}

fn jaas(
    java: &BTreeMap<String, Sourced>,
    native: &dyn Fn(&str) -> bool,
    out: &mut Mapped,
) -> Result<(), MapError> {
    let Some(src) = java.get("sasl.jaas.config") else {
        return Ok(());
    };
    if native("sasl.username") || native("sasl.password") {
        out.superseded
            .push((src.at.clone(), "sasl.username".to_string()));
        return Ok(());
    }
    let login = parse_jaas(&src.value).map_err(|reason| {
        client_err(
            &src.at,
            format!("cannot read the JAAS login (value not shown): {reason}"),
        )
    })?;
    let short = login.module.rsplit('.').next().unwrap_or(&login.module);
    if short != "PlainLoginModule" && short != "ScramLoginModule" {
        return Err(client_err(
            &src.at,
            format!(
                "strait reads credentials only from PlainLoginModule and ScramLoginModule \
                 logins, not `{short}`; set the librdkafka `sasl.*` properties for it instead"
            ),
        ));
    }
    for (opt, key) in [("username", "sasl.username"), ("password", "sasl.password")] {
        let Some(v) = login.options.get(opt) else {
            return Err(client_err(
                &src.at,
                format!("the {short} login has no `{opt}` option"),
            ));
        };
        put(out, key, v.clone(), src)?;
    }
    Ok(())
}

/// One JAAS login entry: `<LoginModuleClass> <flag> key="value" ... ;`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JaasLogin {
    pub module: String,
    pub options: BTreeMap<String, String>,
}

/// Parse the single login entry of a `sasl.jaas.config` value. Errors never contain the value.
pub fn parse_jaas(text: &str) -> Result<JaasLogin, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    let word = |i: &mut usize| -> String {
        let start = *i;
        while *i < chars.len() && !chars[*i].is_whitespace() && chars[*i] != '=' && chars[*i] != ';'
        {
            *i += 1;
        }
        chars[start..*i].iter().collect()
    };
    skip_ws(&mut i);
    let module = word(&mut i);
    if module.is_empty() {
        return Err("no login module class".into());
    }
    skip_ws(&mut i);
    let flag = word(&mut i);
    if !["required", "requisite", "sufficient", "optional"].contains(&flag.as_str()) {
        return Err("expected a control flag (`required`) after the login module class".into());
    }
    let mut options = BTreeMap::new();
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            return Err("the login entry does not end with `;`".into());
        }
        if chars[i] == ';' {
            break;
        }
        let name = word(&mut i);
        skip_ws(&mut i);
        if name.is_empty() || chars.get(i) != Some(&'=') {
            return Err("expected `option=\"value\"`".into());
        }
        i += 1;
        skip_ws(&mut i);
        let value = if chars.get(i) == Some(&'"') {
            i += 1;
            let mut v = String::new();
            loop {
                match chars.get(i) {
                    None => return Err(format!("unterminated quoted value of option `{name}`")),
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some('\\') if i + 1 < chars.len() => {
                        v.push(chars[i + 1]);
                        i += 2;
                    }
                    Some(&c) => {
                        v.push(c);
                        i += 1;
                    }
                }
            }
            v
        } else {
            word(&mut i)
        };
        options.insert(name, value);
    }
    Ok(JaasLogin { module, options })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn java(pairs: &[(&str, &str)]) -> BTreeMap<String, Sourced> {
        pairs
            .iter()
            .enumerate()
            .map(|(i, (k, v))| {
                (
                    k.to_string(),
                    Sourced {
                        value: v.to_string(),
                        at: KeyRef {
                            key: format!("us-east.{k}"),
                            line: i + 1,
                        },
                    },
                )
            })
            .collect()
    }

    fn map(pairs: &[(&str, &str)]) -> Mapped {
        to_librdkafka(&java(pairs)).unwrap()
    }

    fn problem(pairs: &[(&str, &str)]) -> MapError {
        to_librdkafka(&java(pairs)).unwrap_err()
    }

    #[test]
    fn renamed_and_passed_through() {
        let m = map(&[
            ("bootstrap.servers", "h:1"),
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("fetch.max.wait.ms", "100"),
            ("linger.ms", "10"),
            ("compression.type", "zstd"),
        ]);
        assert_eq!(m.props["bootstrap.servers"], "h:1");
        assert_eq!(m.props["sasl.mechanisms"], "SCRAM-SHA-512");
        assert_eq!(m.props["fetch.wait.max.ms"], "100");
        assert_eq!(m.props["linger.ms"], "10");
        assert!(!m.props.contains_key("sasl.mechanism"));
        assert!(m.dropped.is_empty());
    }

    #[test]
    fn every_renamed_target_is_a_librdkafka_property() {
        for (_, to) in RENAMED {
            assert_ne!(check_property(to, "x"), PropertyCheck::Unknown, "{to}");
        }
    }

    #[test]
    fn java_only_keys_are_dropped_not_passed() {
        let m = map(&[
            ("max.poll.records", "10"),
            ("key.deserializer", "x"),
            ("ssl.cipher.suites", "TLS_AES_128_GCM_SHA256"),
            ("partition.assignment.strategy", "org.example.MyAssignor"),
        ]);
        assert!(m.props.is_empty(), "{:?}", m.props);
        let keys: Vec<&str> = m.dropped.iter().map(|k| k.key.as_str()).collect();
        assert!(keys.contains(&"us-east.max.poll.records"), "{keys:?}");
        assert!(keys.contains(&"us-east.ssl.cipher.suites"), "{keys:?}");
        assert_eq!(keys.len(), 4);
    }

    #[test]
    fn value_conversions() {
        let m = map(&[
            (
                "partition.assignment.strategy",
                "org.apache.kafka.clients.consumer.RangeAssignor, org.apache.kafka.clients.consumer.RoundRobinAssignor",
            ),
            ("ssl.endpoint.identification.algorithm", ""),
            ("auto.offset.reset", "none"),
        ]);
        assert_eq!(m.props["partition.assignment.strategy"], "range,roundrobin");
        assert_eq!(m.props["ssl.endpoint.identification.algorithm"], "none");
        assert_eq!(m.props["auto.offset.reset"], "error");
    }

    #[test]
    fn explicit_librdkafka_names_win() {
        let m = map(&[
            ("sasl.mechanism", "PLAIN"),
            ("sasl.mechanisms", "SCRAM-SHA-256"),
        ]);
        assert_eq!(m.props["sasl.mechanisms"], "SCRAM-SHA-256");
        assert_eq!(m.superseded.len(), 1);
    }

    #[test]
    fn pem_truststore_maps_jks_is_an_error() {
        let m = map(&[
            ("ssl.truststore.location", "/etc/ca.pem"),
            ("ssl.truststore.type", "PEM"),
        ]);
        assert_eq!(m.props["ssl.ca.location"], "/etc/ca.pem");
        let e = problem(&[("ssl.truststore.location", "/etc/ts.jks")]);
        assert_eq!(e.at.key, "us-east.ssl.truststore.location");
        assert!(
            e.problem.to_string().contains("ssl.ca.location"),
            "{}",
            e.problem
        );
        // A file written for both MM2 and strait: the PEM setting wins, the JKS is ignored.
        let m = map(&[
            ("ssl.truststore.location", "/etc/ts.jks"),
            ("ssl.ca.location", "/etc/ca.pem"),
        ]);
        assert_eq!(m.props["ssl.ca.location"], "/etc/ca.pem");
        assert_eq!(m.superseded.len(), 1);
    }

    #[test]
    fn jks_keystore_is_an_error_naming_pem_settings() {
        let e = problem(&[
            ("ssl.keystore.location", "/etc/ks.jks"),
            ("ssl.keystore.password", "hunter2"),
        ]);
        let msg = e.problem.to_string();
        for k in ["ssl.certificate.location", "ssl.key.location", "PEM", "JKS"] {
            assert!(msg.contains(k), "{msg}");
        }
        assert!(!msg.contains("hunter2"));
        let m = map(&[
            ("ssl.keystore.location", "/etc/ks.p12"),
            ("ssl.keystore.type", "PKCS12"),
            ("ssl.keystore.password", "hunter2"),
        ]);
        assert_eq!(m.props["ssl.keystore.location"], "/etc/ks.p12");
        assert_eq!(m.props["ssl.keystore.password"], "hunter2");
    }

    #[test]
    fn jaas_plain_and_scram_become_username_password() {
        for module in [
            "org.apache.kafka.common.security.plain.PlainLoginModule",
            "org.apache.kafka.common.security.scram.ScramLoginModule",
        ] {
            let jaas = format!(r#"{module} required username="alice" password="s3cr\"et";"#);
            let m = map(&[("sasl.jaas.config", &jaas)]);
            assert_eq!(m.props["sasl.username"], "alice");
            assert_eq!(m.props["sasl.password"], "s3cr\"et");
            assert!(!m.props.contains_key("sasl.jaas.config"));
        }
        let e = problem(&[(
            "sasl.jaas.config",
            "com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true password=\"x\";",
        )]);
        assert!(e.problem.to_string().contains("Krb5LoginModule"));
        let e = problem(&[(
            "sasl.jaas.config",
            "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"a\" password=\"topsecret\"",
        )]);
        let msg = e.problem.to_string();
        assert!(msg.contains(';') && !msg.contains("topsecret"), "{msg}");
    }

    #[test]
    fn invalid_values_are_errors_without_secrets() {
        let e = problem(&[("compression.type", "brotli")]);
        assert!(e.problem.to_string().contains("brotli"));
        assert_eq!(e.at.key, "us-east.compression.type");
    }

    proptest! {
        /// Whatever the credentials, JAAS parsing returns them exactly.
        #[test]
        fn jaas_round_trip(user in "[a-zA-Z0-9@._-]{1,16}", pass in "[ -~]{0,24}") {
            let esc: String = pass.chars().flat_map(|c| match c {
                '"' | '\\' => vec!['\\', c],
                _ => vec![c],
            }).collect();
            let text = format!("org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{user}\" password=\"{esc}\";");
            let login = parse_jaas(&text).unwrap();
            prop_assert_eq!(&login.options["username"], &user);
            prop_assert_eq!(&login.options["password"], &pass);
        }
    }
}
