//! Java Kafka client properties (as written in an MM2 file) -> librdkafka properties.
//!
//! One table, one function. Only faithful mappings are made: a property is renamed when
//! librdkafka has the same setting under another name, its value converted when the meaning is
//! the same and the spelling differs, and otherwise it is passed through if librdkafka knows the
//! name (asked of librdkafka itself, see `check_property`) or dropped with a warning if not.
//! Keystores and JAAS logins that have no faithful librdkafka form are errors that say what to
//! write instead, since connecting without them would fail later and less clearly. A librdkafka
//! property written directly in the file always wins over one mapped from a Java property, so a
//! file can serve MM2 and strait at once.

use std::collections::BTreeMap;

use crate::kafka::config::{check_property, is_secret, PropertyCheck, Props};

pub use super::jaas::{parse_jaas, JaasLogin};

use super::error::{KeyRef, Problem};
use super::model::{Origin, Sourced};
use super::stores::StoreType;
use super::stores_io::StoreSource;

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
    "ssl.truststore.password",
    "sasl.jaas.config",
];

/// A client's librdkafka properties, and what could not be carried over.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapped {
    /// The librdkafka properties, ready for a client (store contents inlined as PEM).
    pub props: Props,
    /// Java-only keys, dropped (each becomes part of one warning).
    pub dropped: Vec<KeyRef>,
    /// Java settings ignored because a librdkafka setting for the same thing is also given.
    pub superseded: Vec<(KeyRef, String)>,
    /// Where each of `props` came from.
    pub origins: BTreeMap<String, Origin>,
}

/// A mapping failure: the key it is about and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapError {
    /// The key (and line) whose value could not be mapped.
    pub at: KeyRef,
    /// What is wrong and what to write instead.
    pub problem: Problem,
}

fn client_err(at: &KeyRef, msg: String) -> MapError {
    MapError {
        at: at.clone(),
        problem: Problem::Client(msg),
    }
}

/// Map one client's Java properties (role layers already merged) to librdkafka properties;
/// `stores` opens the key and trust stores they name.
pub fn to_librdkafka(
    java: &BTreeMap<String, Sourced>,
    stores: &mut dyn StoreSource,
) -> Result<Mapped, MapError> {
    let mut out = Mapped::default();
    let native = |k: &str| java.contains_key(k);
    let renamed: BTreeMap<&str, &str> = RENAMED.iter().copied().collect();

    // Directly written librdkafka names first, then renamed Java ones where not already set.
    let mut later: Vec<(String, String, &Sourced)> = Vec::new();
    for (key, src) in java {
        if CONSUMED.contains(&key.as_str()) {
            continue;
        }
        if SAME_NAME_OTHER_MEANING.contains(&key.as_str()) {
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

    truststore(java, &native, &mut out, stores)?;
    keystore(java, &native, &mut out, stores)?;
    jaas(java, &native, &mut out)?;
    for pw in ["ssl.truststore.password", "ssl.keystore.password"] {
        let location = pw.replace(".password", ".location");
        if let (Some(src), false) = (java.get(pw), java.contains_key(&location)) {
            out.dropped.push(src.at.clone());
        }
    }
    Ok(out)
}

/// Insert after asking librdkafka: unknown names are dropped, invalid values are errors.
fn put(out: &mut Mapped, key: &str, value: String, src: &Sourced) -> Result<(), MapError> {
    match check_property(key, &value) {
        PropertyCheck::Ok => {
            out.props.insert(key.to_string(), value);
            out.origins.insert(
                key.to_string(),
                Origin {
                    at: src.at.clone(),
                    providers: src.providers.clone(),
                    store: None,
                },
            );
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

/// `ssl.<kind>store.type`: JKS unless set, as in Java.
fn store_type(java: &BTreeMap<String, Sourced>, key: &str) -> Result<StoreType, MapError> {
    match java.get(key) {
        None => Ok(StoreType::Jks),
        Some(src) => StoreType::parse(&src.value).map_err(|e| client_err(&src.at, e.to_string())),
    }
}

/// Put PEM read out of a store, with the store as its origin.
fn put_from_store(out: &mut Mapped, key: &str, pem: String, loc: &Sourced) {
    out.props.insert(key.to_string(), pem);
    out.origins.insert(
        key.to_string(),
        Origin {
            at: loc.at.clone(),
            providers: loc.providers.clone(),
            store: Some(loc.value.trim().to_string()),
        },
    );
}

/// `ssl.truststore.*` -> `ssl.ca.pem`, read out of the store (JKS, PKCS#12 or PEM).
fn truststore(
    java: &BTreeMap<String, Sourced>,
    native: &dyn Fn(&str) -> bool,
    out: &mut Mapped,
    stores: &mut dyn StoreSource,
) -> Result<(), MapError> {
    let Some(loc) = java.get("ssl.truststore.location") else {
        return Ok(());
    };
    if native("ssl.ca.location") || native("ssl.ca.pem") {
        out.superseded
            .push((loc.at.clone(), "ssl.ca.location".to_string()));
        return Ok(());
    }
    let ty = store_type(java, "ssl.truststore.type")?;
    let password = java
        .get("ssl.truststore.password")
        .map(|s| s.value.as_str());
    match stores.truststore(loc, ty, password) {
        Ok(Some(ts)) => put_from_store(out, "ssl.ca.pem", ts.certs_pem, loc),
        Ok(None) => {}
        Err(cause) => {
            return Err(client_err(
                &loc.at,
                format!("cannot use the truststore {cause}"),
            ))
        }
    }
    Ok(())
}

/// `ssl.keystore.*` -> `ssl.certificate.pem` and `ssl.key.pem` (decrypted, in memory only).
fn keystore(
    java: &BTreeMap<String, Sourced>,
    native: &dyn Fn(&str) -> bool,
    out: &mut Mapped,
    stores: &mut dyn StoreSource,
) -> Result<(), MapError> {
    let Some(loc) = java.get("ssl.keystore.location") else {
        return Ok(());
    };
    if native("ssl.certificate.location") || native("ssl.certificate.pem") {
        out.superseded
            .push((loc.at.clone(), "ssl.certificate.location".to_string()));
        return Ok(());
    }
    let ty = store_type(java, "ssl.keystore.type")?;
    let store_pw = java.get("ssl.keystore.password").map(|s| s.value.as_str());
    let key_pw = java.get("ssl.key.password").map(|s| s.value.as_str());
    match stores.keystore(loc, ty, store_pw, key_pw) {
        Ok(Some(ks)) => {
            put_from_store(out, "ssl.certificate.pem", ks.chain_pem, loc);
            put_from_store(out, "ssl.key.pem", ks.key_pem, loc);
            // The key is handed over decrypted: its password is not librdkafka's business.
            out.props.remove("ssl.key.password");
            out.origins.remove("ssl.key.password");
        }
        Ok(None) => {}
        Err(cause) => {
            return Err(client_err(
                &loc.at,
                format!("cannot use the keystore {cause}"),
            ))
        }
    }
    Ok(())
}

fn jaas(
    java: &BTreeMap<String, Sourced>,
    native: &dyn Fn(&str) -> bool,
    out: &mut Mapped,
) -> Result<(), MapError> {
    let Some(src) = java.get("sasl.jaas.config") else {
        return Ok(());
    };
    if native("sasl.username") || native("sasl.password") || native("sasl.oauthbearer.method") {
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
    match login.short_module() {
        "PlainLoginModule" | "ScramLoginModule" => {
            for (opt, key) in [("username", "sasl.username"), ("password", "sasl.password")] {
                let Some(v) = login.options.get(opt) else {
                    return Err(client_err(
                        &src.at,
                        format!("the {} login has no `{opt}` option", login.short_module()),
                    ));
                };
                put(out, key, v.clone(), src)?;
            }
            Ok(())
        }
        "OAuthBearerLoginModule" => oauthbearer(java, &login, src, out),
        "IAMLoginModule" => Err(client_err(
            &src.at,
            "AWS MSK IAM logins (IAMLoginModule, `AWS_MSK_IAM`) need AWS's Java signing library, \
             which librdkafka cannot run; on MSK use SASL/SCRAM-SHA-512 (port 9096, a user in \
             Secrets Manager) or mutual TLS (port 9094) for strait"
                .to_string(),
        )),
        "Krb5LoginModule" => Err(client_err(
            &src.at,
            "Kerberos (GSSAPI, Krb5LoginModule) is not built into strait's librdkafka; use \
             SASL/SCRAM, OAUTHBEARER or mutual TLS for strait"
                .to_string(),
        )),
        other => Err(client_err(
            &src.at,
            format!(
                "strait reads PlainLoginModule, ScramLoginModule and OAuthBearerLoginModule \
                 logins, not `{other}`; set the librdkafka `sasl.*` properties for it instead"
            ),
        )),
    }
}

/// `OAuthBearerLoginModule` -> librdkafka's OIDC client-credentials settings (KIP-768's
/// `sasl.oauthbearer.token.endpoint.url` with `clientId`/`clientSecret`/`scope` options), or its
/// unsecured-JWT builder for `unsecuredLoginStringClaim_sub` logins (test clusters).
fn oauthbearer(
    java: &BTreeMap<String, Sourced>,
    login: &JaasLogin,
    src: &Sourced,
    out: &mut Mapped,
) -> Result<(), MapError> {
    let extensions: Vec<String> = login
        .options
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("extension_").map(|n| format!("{n}={v}")))
        .collect();
    if !extensions.is_empty() {
        put(
            out,
            "sasl.oauthbearer.extensions",
            extensions.join(","),
            src,
        )?;
    }
    if let Some(url) = java.get("sasl.oauthbearer.token.endpoint.url") {
        put(out, "sasl.oauthbearer.method", "oidc".into(), src)?;
        put(
            out,
            "sasl.oauthbearer.token.endpoint.url",
            url.value.clone(),
            url,
        )?;
        for (opt, key) in [
            ("clientId", "sasl.oauthbearer.client.id"),
            ("clientSecret", "sasl.oauthbearer.client.secret"),
        ] {
            let Some(v) = login.options.get(opt) else {
                return Err(client_err(
                    &src.at,
                    format!("the OAuthBearerLoginModule login has no `{opt}` option, which the client-credentials flow of `sasl.oauthbearer.token.endpoint.url` needs"),
                ));
            };
            put(out, key, v.clone(), src)?;
        }
        if let Some(scope) = login.options.get("scope") {
            put(out, "sasl.oauthbearer.scope", scope.clone(), src)?;
        }
        return Ok(());
    }
    if let Some(sub) = login.options.get("unsecuredLoginStringClaim_sub") {
        put(
            out,
            "enable.sasl.oauthbearer.unsecure.jwt",
            "true".into(),
            src,
        )?;
        put(
            out,
            "sasl.oauthbearer.config",
            format!("principal={sub}"),
            src,
        )?;
        return Ok(());
    }
    Err(client_err(
        &src.at,
        "an OAuthBearerLoginModule login needs `sasl.oauthbearer.token.endpoint.url` (OIDC \
         client credentials) for strait; a custom `sasl.login.callback.handler.class` cannot run \
         in librdkafka"
            .to_string(),
    ))
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
                        providers: Vec::new(),
                    },
                )
            })
            .collect()
    }

    /// Stores as the mapping sees them: what it asked for, and a canned answer.
    #[derive(Default)]
    struct FakeStores {
        asked: Vec<String>,
        fail: bool,
    }

    impl StoreSource for FakeStores {
        fn truststore(
            &mut self,
            location: &Sourced,
            ty: StoreType,
            password: Option<&str>,
        ) -> Result<Option<super::super::stores::TrustStore>, String> {
            self.asked
                .push(format!("trust {} {ty:?} {password:?}", location.value));
            if self.fail {
                return Err(format!("{}: wrong password", location.value));
            }
            Ok(Some(super::super::stores::TrustStore {
                certs_pem: "CA PEM".into(),
                certs: Vec::new(),
            }))
        }

        fn keystore(
            &mut self,
            location: &Sourced,
            ty: StoreType,
            store_password: Option<&str>,
            key_password: Option<&str>,
        ) -> Result<Option<super::super::stores::KeyStore>, String> {
            self.asked.push(format!(
                "key {} {ty:?} {store_password:?} {key_password:?}",
                location.value
            ));
            Ok(Some(super::super::stores::KeyStore {
                key_pem: "KEY PEM".into(),
                chain_pem: "CHAIN PEM".into(),
                chain: Vec::new(),
                alias: None,
                skipped_key_aliases: Vec::new(),
            }))
        }
    }

    fn map(pairs: &[(&str, &str)]) -> Mapped {
        to_librdkafka(&java(pairs), &mut FakeStores::default()).unwrap()
    }

    fn problem(pairs: &[(&str, &str)]) -> MapError {
        to_librdkafka(&java(pairs), &mut FakeStores::default()).unwrap_err()
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
    fn stores_become_pem_in_memory_with_their_origin() {
        let mut stores = FakeStores::default();
        let m = to_librdkafka(
            &java(&[
                ("ssl.truststore.location", "/etc/ts.jks"),
                ("ssl.truststore.password", "tpw"),
                ("ssl.keystore.location", "/etc/ks.p12"),
                ("ssl.keystore.type", "pkcs12"),
                ("ssl.keystore.password", "kpw"),
                ("ssl.key.password", "keypw"),
            ]),
            &mut stores,
        )
        .unwrap();
        assert_eq!(
            stores.asked,
            vec![
                "trust /etc/ts.jks Jks Some(\"tpw\")",
                "key /etc/ks.p12 Pkcs12 Some(\"kpw\") Some(\"keypw\")"
            ]
        );
        assert_eq!(m.props["ssl.ca.pem"], "CA PEM");
        assert_eq!(m.props["ssl.certificate.pem"], "CHAIN PEM");
        assert_eq!(m.props["ssl.key.pem"], "KEY PEM");
        assert!(
            !m.props.contains_key("ssl.key.password"),
            "the key is already decrypted"
        );
        assert!(!m.props.keys().any(|k| k.contains("location")));
        assert_eq!(
            m.origins["ssl.ca.pem"].store.as_deref(),
            Some("/etc/ts.jks")
        );
        assert_eq!(
            m.origins["ssl.key.pem"].at.key,
            "us-east.ssl.keystore.location"
        );
        assert!(m.dropped.is_empty(), "{:?}", m.dropped);
        // A file written for both MM2 and strait: the librdkafka setting wins.
        let m = map(&[
            ("ssl.truststore.location", "/etc/ts.jks"),
            ("ssl.ca.location", "/etc/ca.pem"),
        ]);
        assert_eq!(m.props["ssl.ca.location"], "/etc/ca.pem");
        assert_eq!(m.superseded.len(), 1);
        // A store that cannot be used is an error naming the key; the cause comes from the store.
        let e = to_librdkafka(
            &java(&[("ssl.truststore.location", "/etc/ts.jks")]),
            &mut FakeStores {
                fail: true,
                ..FakeStores::default()
            },
        )
        .unwrap_err();
        assert_eq!(e.at.key, "us-east.ssl.truststore.location");
        assert!(e
            .problem
            .to_string()
            .contains("/etc/ts.jks: wrong password"));
        let e = problem(&[
            ("ssl.keystore.location", "/etc/ks"),
            ("ssl.keystore.type", "JCEKS"),
        ]);
        assert_eq!(e.at.key, "us-east.ssl.keystore.type");
        assert!(e.problem.to_string().contains("JCEKS"), "{}", e.problem);
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
