//! `strait check` as a user runs it: every config mistake is one line on stderr naming the file,
//! the line and the key, with exit code 2 and no panic; the shipped examples are valid; `--json`
//! has the documented fields. No cluster is contacted, so no sandbox is needed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::typed;
use serde_json::Value;
use strait::config::report::{CheckReport, FlowEntry, OriginFrom};

fn strait(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(args)
        .output()
        .expect("run strait")
}

fn temp_config(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(".properties")
        .tempfile()
        .expect("temp file");
    f.write_all(text.as_bytes()).expect("write");
    f
}

/// The flow called `name` in a `check --json` document.
fn flow<'a>(doc: &'a CheckReport, name: &str) -> &'a FlowEntry {
    doc.flow(name).unwrap_or_else(|| panic!("no flow {name}"))
}

/// The warning keys of a `check --json` document.
fn warning_keys(doc: &CheckReport) -> Vec<&str> {
    doc.warnings
        .iter()
        .flat_map(|w| &w.keys)
        .map(|k| k.key.as_str())
        .collect()
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// Run `check` on `text` and assert a one-line error naming file, line and key, exit 2.
fn assert_config_error(text: &str, line: Option<usize>, key: &str, also: &str) {
    let file = temp_config(text);
    let path = file.path().to_str().unwrap().to_string();
    let out = strait(&["check", &path]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{key}: {err}");
    assert!(out.stdout.is_empty(), "nothing on stdout for a bad file");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(&path), "names the file: {err}");
    if let Some(line) = line {
        assert!(
            err.contains(&format!("line {line}")),
            "names line {line}: {err}"
        );
    }
    assert!(err.contains(&format!("`{key}`")), "names key {key}: {err}");
    assert!(err.contains(also), "mentions {also}: {err}");
}

const BASE: &str = "\
# two regions
clusters = us-east, us-west
us-east.bootstrap.servers = 127.0.0.1:19092
us-west.bootstrap.servers = 127.0.0.1:19093
";

#[test]
fn missing_clusters() {
    assert_config_error(
        "us-east.bootstrap.servers = h:1\n",
        None,
        "clusters",
        "missing",
    );
}

/// Run `check` (text and JSON) on a valid file: both exit 0; returns (text, JSON as printed, the
/// JSON document, stderrs).
fn check_ok(path: &str) -> (String, String, CheckReport, String) {
    let text = strait(&["check", path]);
    let json = strait(&["check", path, "--json"]);
    let errs = format!(
        "{}{}",
        String::from_utf8_lossy(&text.stderr),
        String::from_utf8_lossy(&json.stderr)
    );
    assert_eq!(text.status.code(), Some(0), "{errs}");
    assert_eq!(json.status.code(), Some(0), "{errs}");
    let printed = String::from_utf8(json.stdout).unwrap();
    let doc = typed("check --json", &printed);
    (String::from_utf8(text.stdout).unwrap(), printed, doc, errs)
}

#[test]
fn flow_keys_naming_other_clusters_are_ignored_with_a_warning() {
    // MirrorMaker 2 ignores keys of pairs it does not run; so does strait, and says so.
    let file = temp_config(&format!(
        "{BASE}us-east->us-west.enabled = true\nus-east->eu.enabled = true\nus-east->us-east.topics = x\n"
    ));
    let (text, _, doc, _) = check_ok(file.path().to_str().unwrap());
    assert!(text.contains("us-east->eu.enabled"), "{text}");
    let keys = warning_keys(&doc);
    assert!(
        keys.contains(&"us-east->eu.enabled") && keys.contains(&"us-east->us-east.topics"),
        "{keys:?}"
    );
}

#[test]
fn cluster_without_bootstrap_servers() {
    assert_config_error(
        "clusters = us-east, eu\nus-east.bootstrap.servers = h:1\n",
        Some(1),
        "clusters",
        "eu.bootstrap.servers",
    );
}

#[test]
fn malformed_line() {
    assert_config_error(
        &format!("{BASE}us-east.sasl.username = \\u00zz\n"),
        Some(5),
        "us-east.sasl.username",
        "malformed",
    );
}

#[test]
fn invalid_regex() {
    assert_config_error(
        &format!("{BASE}\nus-east->us-west.topics = orders, pay(ments\n"),
        Some(6),
        "us-east->us-west.topics",
        "pay(ments",
    );
}

#[test]
fn non_numeric_interval_and_factor() {
    assert_config_error(
        &format!("{BASE}emit.checkpoints.interval.seconds = 1m\n"),
        Some(5),
        "emit.checkpoints.interval.seconds",
        "1m",
    );
    assert_config_error(
        &format!("{BASE}us-east->us-west.replication.factor = three\n"),
        Some(5),
        "us-east->us-west.replication.factor",
        "three",
    );
}

#[test]
fn bootstrap_without_port_and_no_running_pair_are_refused_as_mm2_refuses_them() {
    assert_config_error(
        "clusters = a, b\na.bootstrap.servers = h1\nb.bootstrap.servers = h2:9092\n",
        Some(2),
        "a.bootstrap.servers",
        "no port",
    );
    assert_config_error(
        &format!("{BASE}us-east->us-west.enabled = true \nemit.heartbeats.enabled = true \n"),
        Some(6),
        "emit.heartbeats.enabled",
        "No source->target replication flows",
    );
}

#[test]
fn unknown_replication_policy() {
    assert_config_error(
        &format!("{BASE}replication.policy.class = com.example.PrefixlessPolicy\n"),
        Some(5),
        "replication.policy.class",
        "PrefixlessPolicy",
    );
}

#[test]
fn offset_syncs_location_not_source_or_target() {
    assert_config_error(
        &format!("{BASE}offset-syncs.topic.location = both\n"),
        Some(5),
        "offset-syncs.topic.location",
        "`source` or `target`",
    );
}

fn keytool(dir: &Path, args: &str) {
    let out = Command::new("keytool")
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .expect("keytool (a JDK) is needed for the store tests");
    assert!(
        out.status.success(),
        "keytool {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Java key and trust stores and config providers, as an MM2 user has them: `check` reads the
/// stores, says where every TLS and SASL setting came from, and no output of it, text, JSON or
/// error, holds a secret of the fixture.
#[test]
fn stores_and_providers_are_read_and_no_secret_is_ever_shown() {
    const STORE_PW: &str = "St0rePassw0rd";
    const KEY_PW: &str = "K3yPassw0rd";
    const SASL_PW: &str = "SaslS3cret";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keytool(d, &format!("-genkeypair -alias client -keyalg EC -groupname secp256r1 -validity 20 -keystore client.jks -storetype JKS -storepass {STORE_PW} -keypass {KEY_PW} -dname CN=strait-client,O=Test"));
    keytool(d, &format!("-exportcert -rfc -alias client -keystore client.jks -storepass {STORE_PW} -file client.pem"));
    keytool(d, &format!("-importcert -noprompt -alias ca -file client.pem -keystore trust.p12 -storetype PKCS12 -storepass {STORE_PW}"));
    std::fs::write(
        d.join("secrets.properties"),
        format!("store = {STORE_PW}\nkey = {KEY_PW}\n"),
    )
    .unwrap();
    std::fs::create_dir(d.join("sasl")).unwrap();
    std::fs::write(d.join("sasl/password"), SASL_PW).unwrap();
    let text = format!(
        "{BASE}us-east->us-west.enabled = true\n\
         config.providers = file,dir\n\
         config.providers.file.class = org.apache.kafka.common.config.provider.FileConfigProvider\n\
         config.providers.dir.class = org.apache.kafka.common.config.provider.DirectoryConfigProvider\n\
         us-east.security.protocol = SASL_SSL\nus-east.sasl.mechanism = SCRAM-SHA-512\n\
         us-east.sasl.jaas.config = org.apache.kafka.common.security.scram.ScramLoginModule required username=\"mm2\" password=\"${{dir:{d}/sasl:password}}\";\n\
         us-east.ssl.truststore.location = {d}/trust.p12\nus-east.ssl.truststore.password = ${{file:{d}/secrets.properties:store}}\n\
         us-east.ssl.keystore.location = {d}/client.jks\nus-east.ssl.keystore.password = ${{file:{d}/secrets.properties:store}}\n\
         us-east.ssl.key.password = ${{file:{d}/secrets.properties:key}}\n",
        d = d.display()
    );
    let file = temp_config(&text);
    let path = file.path().to_str().unwrap();
    let (out, json, doc, errs) = check_ok(path);
    let all = format!("{out}{json}{errs}");
    for secret in [STORE_PW, KEY_PW, SASL_PW, "BEGIN PRIVATE KEY"] {
        assert!(!all.contains(secret), "{secret} shown");
    }
    let f = flow(&doc, "us-east->us-west");
    let sc = &f.clients["source_consumer"];
    assert_eq!(sc.properties["ssl.key.pem"], "[redacted]");
    assert_eq!(sc.properties["sasl.password"], "[redacted]");
    assert_eq!(sc.properties["ssl.ca.pem"], "[PEM: 1 certificate]");
    let key_pem = &sc.origins["ssl.key.pem"];
    assert_eq!(key_pem.from, OriginFrom::Store);
    assert_eq!(key_pem.key, "us-east.ssl.keystore.location");
    assert_eq!(
        sc.origins["ssl.ca.pem"].store,
        Some(format!("{}/trust.p12", d.display()))
    );
    let password = &sc.origins["sasl.password"];
    assert_eq!(password.from, OriginFrom::Provider);
    assert_eq!(password.providers.first().map(String::as_str), Some("dir"));
    let protocol = &sc.origins["security.protocol"];
    assert_eq!((protocol.from, protocol.line), (OriginFrom::File, 9));
    let stores = &doc.stores;
    assert_eq!(stores.len(), 2, "{stores:?}");
    assert!(stores.iter().all(|s| s.read));
    assert!(stores
        .iter()
        .any(|s| s.certificates[0].subject.contains("CN=strait-client")));
    // The certificate expires within 30 days: a warning.
    assert!(out.contains("expires on"), "{out}");
    assert!(out.contains("stores:"), "{out}");

    // A wrong key password: one line naming the key and the store, exit 2, no password.
    std::fs::write(
        d.join("secrets.properties"),
        format!("store = {STORE_PW}\nkey = Wr0ngK3y\n"),
    )
    .unwrap();
    assert_config_error(
        &text,
        Some(14),
        "us-east.ssl.keystore.location",
        "client.jks",
    );
    let bad = strait(&["check", path]);
    let err = String::from_utf8_lossy(&bad.stderr);
    for secret in [STORE_PW, "Wr0ngK3y", SASL_PW] {
        assert!(!err.contains(secret), "{err}");
    }
    // Stores that are not on this machine: `check` warns, as it runs away from the deployment.
    let away = temp_config(&format!(
        "{BASE}us-east->us-west.enabled = true\nus-east.ssl.truststore.location = /nonexistent/ts.jks\nus-east.ssl.truststore.password = {STORE_PW}\n"
    ));
    let (out, _, _, _) = check_ok(away.path().to_str().unwrap());
    assert!(
        out.contains("not on this machine") && !out.contains(STORE_PW),
        "{out}"
    );
}

#[test]
fn missing_and_unreadable_files_are_one_sentence() {
    let out = strait(&["check", "/nonexistent/mm2.properties"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("/nonexistent/mm2.properties") && err.contains("no such file"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = strait(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn examples_are_valid() {
    for name in ["active-passive", "active-active", "three-region"] {
        let path = examples().join(format!("{name}.properties"));
        let out = strait(&["check", path.to_str().unwrap()]);
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("enabled"), "{name}: {stdout}");
        assert!(
            stdout.contains("no warnings"),
            "{name} has warnings: {stdout}"
        );
    }
}

/// The one test of `check --json` that reads the document untyped, on purpose: it checks the field
/// names and JSON types a user's script depends on, as the README documents them (the other tests
/// read it as `CheckReport`; the exact bytes are `src/config/testdata/check.json`).
#[test]
fn json_has_the_documented_fields() {
    let path = examples().join("active-passive.properties");
    let out = strait(&["check", path.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let _: CheckReport = typed("check --json", &text);
    let doc: Value = serde_json::from_str(&text).expect("valid JSON");
    let flow = |name: &str| -> Value {
        doc["flows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no flow {name}"))
            .clone()
    };
    assert_eq!(doc["valid"], true);
    assert!(doc["config"]
        .as_str()
        .unwrap()
        .ends_with("active-passive.properties"));
    assert_eq!(doc["clusters"][0]["alias"], "us-east");
    assert_eq!(doc["clusters"][0]["bootstrap_servers"], "127.0.0.1:19092");
    assert_eq!(doc["warnings"].as_array().unwrap().len(), 0);
    let flows = doc["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 2);
    let f = flow("us-east->us-west");
    assert_eq!(f["source"], "us-east");
    assert_eq!(f["target"], "us-west");
    assert_eq!(f["enabled"], true);
    assert_eq!(f["runs"], true);
    assert_eq!(f["topics"]["include"][0], ".*");
    assert!(f["topics"]["exclude"].is_array());
    assert_eq!(f["groups"]["include"][0], ".*");
    assert!(f["groups"]["exclude"].is_array());
    assert_eq!(
        f["policy"]["class"],
        "org.apache.kafka.connect.mirror.DefaultReplicationPolicy"
    );
    assert_eq!(f["policy"]["separator"], ".");
    assert_eq!(f["policy"]["internal_topic_separator_enabled"], true);
    assert_eq!(f["policy"]["example_remote_topic"], "us-east.orders");
    assert_eq!(f["replication_factor"], 1);
    assert_eq!(f["offset_syncs_topic_location"], "source");
    for k in ["offset_syncs", "checkpoints", "heartbeats"] {
        assert_eq!(f["internal_topic_replication_factors"][k], 1, "{k}");
        assert!(f["internal_topics"][k]["name"].is_string(), "{k}");
        assert!(f["internal_topics"][k]["cluster"].is_string(), "{k}");
    }
    assert_eq!(
        f["internal_topics"]["offset_syncs"]["name"],
        "mm2-offset-syncs.us-west.internal"
    );
    assert_eq!(f["internal_topics"]["offset_syncs"]["cluster"], "us-east");
    let positions = &f["internal_topics"]["mm2_source_positions"];
    assert_eq!(positions["name"], "mm2-offsets.us-east.internal");
    assert_eq!(positions["cluster"], "us-west");
    assert_eq!(positions["partitions"], 25);
    assert_eq!(f["first_run"]["group"], "strait.us-east->us-west");
    assert_eq!(f["first_run"]["otherwise"], "earliest");
    assert_eq!(
        f["internal_topics"]["checkpoints"]["name"],
        "us-east.checkpoints.internal"
    );
    assert_eq!(f["offset_lag_max"], 100);
    let iv = &f["intervals_seconds"];
    assert_eq!(iv["refresh_topics"], 10, "the examples refresh every 10 s");
    assert_eq!(iv["sync_topic_configs"], 600);
    assert_eq!(iv["sync_topic_acls"], 600);
    assert_eq!(iv["refresh_groups"], 10);
    assert_eq!(iv["emit_checkpoints"], 10);
    assert_eq!(iv["sync_group_offsets"], 10);
    assert_eq!(iv["emit_heartbeats"], 1);
    assert_eq!(f["emit_offset_syncs"], true);
    assert_eq!(f["heartbeats_replication"], true);
    assert!(f["config_properties_exclude"].is_array());
    assert_eq!(f["use_defaults_from"], "target");
    assert_eq!(f["tasks_max"], 1);
    assert_eq!(f["offset_flush_interval_ms"], 60000);
    assert_eq!(f["consumer_poll_timeout_ms"], 1000);
    assert_eq!(f["admin_timeout_ms"], 60000);
    for role in [
        "source_consumer",
        "source_admin",
        "offset_syncs_producer",
        "target_producer",
        "target_admin",
        "target_consumer",
    ] {
        let c = &f["clients"][role];
        assert!(c["cluster"].is_string(), "{role}");
        assert!(c["properties"]["bootstrap.servers"].is_string(), "{role}");
    }
    assert_eq!(
        f["clients"]["target_producer"]["properties"]["compression.type"],
        "zstd"
    );
    let disabled = flow("us-west->us-east");
    assert_eq!(disabled["enabled"], false);
    assert_eq!(
        disabled["intervals_seconds"]["sync_group_offsets"],
        Value::Null
    );
}

#[test]
fn json_redacts_secrets_and_lists_warnings() {
    let file = temp_config(&format!(
        "{BASE}us-east.security.protocol = SASL_SSL\nus-east.sasl.mechanism = PLAIN\n\
         us-east.sasl.jaas.config = org.apache.kafka.common.security.plain.PlainLoginModule required username=\"mm2\" password=\"hunter2\";\n\
         key.converter = org.apache.kafka.connect.converters.ByteArrayConverter\n\
         us-east->us-west.enabled = true\nus-east.consumer.max.poll.records = 5\n"
    ));
    for json in [false, true] {
        let mut args = vec!["check", file.path().to_str().unwrap()];
        if json {
            args.push("--json");
        }
        let out = strait(&args);
        assert_eq!(out.status.code(), Some(0));
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(!stdout.contains("hunter2"), "{stdout}");
        assert!(stdout.contains("[redacted]"), "{stdout}");
        if json {
            let doc: CheckReport = typed("check --json", &stdout);
            assert!(doc.warnings.len() >= 2, "{:?}", doc.warnings);
            let keys = warning_keys(&doc);
            assert!(keys.contains(&"key.converter"), "{keys:?}");
            assert!(
                keys.contains(&"us-east.consumer.max.poll.records"),
                "{keys:?}"
            );
            let props = &flow(&doc, "us-east->us-west").clients["source_consumer"].properties;
            assert_eq!(props["sasl.username"], "mm2");
            assert_eq!(props["sasl.password"], "[redacted]");
            assert_eq!(props["sasl.mechanisms"], "PLAIN");
        }
    }
}

/// Conflict rules (`strait.conflicts.`) are shown as read, in text and JSON, an authority rule
/// with the quarantine topic of each flow into an owner; a mistake in them is one line naming
/// line and key.
#[test]
fn conflict_rules_are_checked_and_shown() {
    let base =
        "clusters = east, west\neast.bootstrap.servers = e:9092\nwest.bootstrap.servers = w:9092\n\
                east->west.enabled = true\nwest->east.enabled = true\n\
                strait.conflicts.rules = orders\nstrait.conflicts.orders.topics = orders\n";
    let good = temp_config(&format!(
        "{base}strait.conflicts.orders.strategy = authority\n\
         strait.conflicts.orders.authority.east = US-.*\nstrait.conflicts.orders.violations = quarantine\n"
    ));
    let (text, _, doc, _) = check_ok(good.path().to_str().unwrap());
    assert!(
        text.contains(
            "orders: topics orders, regional authority (east owns US-.*; violations quarantined)"
        ),
        "{text}"
    );
    let cf = doc
        .conflicts
        .as_ref()
        .expect("conflicts in the JSON document");
    assert_eq!(cf.regions, ["east", "west"]);
    assert_eq!(cf.rules[0].strategy, "authority");
    assert_eq!(cf.rules[0].violations.as_deref(), Some("quarantine"));
    assert!(
        text.contains("a key no pattern matches is free: any region may write it"),
        "{text}"
    );
    // east owns keys: violations copied into east are quarantined beside its remote topic.
    assert!(
        text.contains("west->east: quarantine west.orders.quarantine on east"),
        "{text}"
    );
    assert!(
        !text.contains("quarantine east.orders.quarantine"),
        "west owns no key: {text}"
    );
    assert_eq!(
        cf.rules[0].quarantine_topics,
        Some(vec![strait::config::report::QuarantineEntry {
            flow: "west->east".into(),
            topic: "west.orders.quarantine".into(),
            target: "east".into(),
        }]),
        "the same in --json"
    );
    assert!(!doc
        .warnings
        .iter()
        .any(|w| w.message.contains("does not act on them yet")));

    assert_config_error(
        &format!("{base}strait.conflicts.orders.strategy = newest\n"),
        Some(8),
        "strait.conflicts.orders.strategy",
        "`newest` must be `authority`, `last-writer-wins` or `events`",
    );
}

/// An events rule is acted on: `check` names the merged topic each region keeps, and no
/// warning says it is only read.
#[test]
fn an_events_rule_names_its_merged_topic() {
    let cfg = temp_config(
        "clusters = east, west\neast.bootstrap.servers = e:9092\nwest.bootstrap.servers = w:9092\n\
         east->west.enabled = true\nwest->east.enabled = true\n\
         strait.conflicts.rules = log\nstrait.conflicts.log.topics = order-events\n\
         strait.conflicts.log.strategy = events\nstrait.conflicts.log.event.id.header = event-id\n",
    );
    let (text, _, doc, _) = check_ok(cfg.path().to_str().unwrap());
    assert!(
        text.contains(
            "log: topics order-events, one event order in `<topic>.merged` in each region (ids from header event-id, lateness 5000 ms)"
        ),
        "{text}"
    );
    assert!(
        !doc.warnings
            .iter()
            .any(|w| w.message.contains("does not act")),
        "{:?}",
        doc.warnings
    );
}
