//! strait against secure Apache Kafka clusters (SASL_SSL with SCRAM-SHA-512, TLS with the run's
//! certificates, the StandardAuthorizer), configured only through the MM2 file, with the stores
//! MM2 users have (JKS, PKCS#12, PEM). Bad credentials are one line naming the cluster, its
//! address and the cause; no secret appears in anything strait prints or serves.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::*;
use strait_sandbox::kafka::pki::StoreForm;
use strait_sandbox::kafka::ADMIN;
use strait_sandbox::{Cluster, Sandbox, Security};

async fn secure_pair() -> Option<Sandbox> {
    let spec = kafka_spec(Security::SaslSslAcl)?;
    Some(
        Sandbox::start_kafka(&["us-east", "us-west"], &spec)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

/// `<alias>.<key> = <value>` lines logging `c` in as `user` with stores in `form`.
fn client_lines(c: &Cluster, user: &str, form: StoreForm, keystore: bool) -> String {
    c.access()
        .mm2(user, form, keystore)
        .into_iter()
        .map(|(k, v)| format!("{}.{k} = {v}\n", c.name()))
        .collect()
}

/// An MM2 file for us-east -> us-west (`orders`), each side with its own client lines, and
/// one-second heartbeat and checkpoint intervals.
fn config(dir: &Path, name: &str, sb: &Sandbox, east: &str, west: &str, extra: &str) -> PathBuf {
    mm2_config_named(
        dir,
        name,
        &sb.cluster("us-east").unwrap().bootstrap_servers(),
        &sb.cluster("us-west").unwrap().bootstrap_servers(),
        &format!(
            "{east}{west}\
             emit.checkpoints.interval.seconds = 1\n\
             emit.heartbeats.interval.seconds = 1\n\
             refresh.topics.interval.seconds = 2\n\
             {extra}"
        ),
    )
}

/// Run a one-shot strait command: (exit code, stdout, stderr).
async fn run(args: Vec<String>) -> (Option<i32>, String, String) {
    let out = tokio::task::spawn_blocking(move || {
        strait()
            .args(&args)
            .env(
                "STRAIT_LOG",
                std::env::var("STRAIT_TEST_CHILD_LOG").unwrap_or_else(|_| "info".into()),
            )
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn args(cmd: &str, cfg: &Path, rest: &[&str]) -> Vec<String> {
    let mut v = vec![cmd.to_string(), cfg.display().to_string()];
    v.extend(rest.iter().map(|s| s.to_string()));
    v
}

fn assert_no_secret(sb: &Sandbox, what: &str, text: &str) {
    for c in sb.clusters() {
        for s in c.access().secrets() {
            assert!(
                !text.contains(&s),
                "{what} shows a secret of {}: {text}",
                c.name()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secure_regions_replicate_and_answer_every_command_with_jks_pkcs12_and_pem_stores() {
    let Some(sb) = secure_pair().await else {
        return;
    };
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    create_topic(east, "orders", 3).await;
    produce_range(east, "orders", 3, 0..300, "orders", None).await;
    let dir = tempfile::tempdir().unwrap();
    // us-east with JKS stores (MM2's default type), us-west with PKCS#12; a PEM copy for the
    // one-shot commands.
    let cfg = config(
        dir.path(),
        "stores.properties",
        &sb,
        &client_lines(east, ADMIN, StoreForm::Jks, true),
        &client_lines(west, ADMIN, StoreForm::Pkcs12, true),
        "",
    );
    let pem = config(
        dir.path(),
        "pem.properties",
        &sb,
        &client_lines(east, ADMIN, StoreForm::Pem, true),
        &client_lines(west, ADMIN, StoreForm::Pem, false),
        "",
    );
    let (code, out, err) = run(args("check", &cfg, &["--json"])).await;
    assert_eq!(code, Some(0), "{err}");
    assert_no_secret(&sb, "check --json", &out);

    let addr = format!("127.0.0.1:{}", free_port());
    let log = dir.path().join("run.log");
    let _run = spawn_run_http(&cfg, &addr, &log);
    let shown = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while record_count(west, "us-east.orders", 3).await < 300 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not replicated within 60 s: {}",
            shown()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    commit_group(east, "billing", &[("orders", 0, 50), ("orders", 1, 60)]).await;

    let (_, api, _) = (0, http_get(&addr, "/api/status").await.unwrap().1, 0);
    let metrics = http_get(&addr, "/metrics").await.unwrap().1;
    assert!(metrics.contains("strait_"), "{metrics}");
    for (cfg, name) in [(&cfg, "stores"), (&pem, "pem")] {
        let (code, out, err) = run(args("status", cfg, &["--json"])).await;
        assert_eq!(code, Some(0), "status ({name}): {out}{err}");
        assert_no_secret(&sb, "status", &format!("{out}{err}"));
    }
    // Checkpoints for `billing` arrive within a few intervals.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let translated = loop {
        let (code, out, err) = run(args(
            "translate",
            &pem,
            &[
                "--group", "billing", "--source", "us-east", "--target", "us-west", "--json",
            ],
        ))
        .await;
        assert_no_secret(&sb, "translate", &format!("{out}{err}"));
        if code == Some(0) && out.contains("\"downstream_offset\": 50") {
            break out;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "translate: {code:?} {out} {err}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert!(translated.contains("orders"), "{translated}");
    let failover = |more: &[&str]| {
        let mut a = vec!["--from", "us-east", "--to", "us-west", "--json"];
        a.extend_from_slice(more);
        run(args("failover", &cfg, &a))
    };
    let (code, out, err) = failover(&["--dry-run"]).await;
    assert_eq!(code, Some(0), "failover --dry-run: {out}{err}");
    assert_no_secret(&sb, "failover --dry-run", &format!("{out}{err}"));
    // The real thing: billing moves to us-west at the translated offsets.
    let (code, out, err) = failover(&["--max-wait", "30s"]).await;
    assert_eq!(code, Some(0), "failover: {out}{err}");
    assert_no_secret(&sb, "failover", &format!("{out}{err}"));
    assert_eq!(
        committed(west, "billing", "us-east.orders", 3).await,
        std::collections::BTreeMap::from([(0, 50), (1, 60)]),
        "{out}"
    );
    assert_no_secret(&sb, "/api/status", &api);
    assert_no_secret(&sb, "/metrics", &metrics);
    assert_no_secret(&sb, "strait run's log", &shown());
}

/// The lines for `c` with `key`'s value replaced.
fn replace_line(lines: &str, key: &str, value: &str) -> String {
    lines
        .lines()
        .map(|l| match l.split_once(" = ") {
            Some((k, _)) if k.ends_with(key) => format!("{k} = {value}\n"),
            _ => format!("{l}\n"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_password_an_unknown_ca_or_a_missing_acl_is_one_line_naming_cluster_and_cause() {
    let Some(sb) = secure_pair().await else {
        return;
    };
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    create_topic(east, "orders", 1).await;
    let dir = tempfile::tempdir().unwrap();
    let other_ca = dir.path().join("other-ca.pem");
    strait_sandbox::kafka::pki::Pki::write_unrelated_ca(&other_ca).unwrap();
    let good_east = client_lines(east, ADMIN, StoreForm::Pem, false);
    let good_west = client_lines(west, ADMIN, StoreForm::Pem, false);
    let pw = west.access().password(ADMIN).unwrap().to_string();
    let cases = [
        (
            "wrong password",
            good_west.replace(&format!("password=\"{pw}\""), "password=\"not-it\""),
            &["authentication", "password"][..],
        ),
        (
            "unknown CA",
            replace_line(
                &good_west,
                "ssl.truststore.location",
                &other_ca.display().to_string(),
            ),
            &["certificate"][..],
        ),
        (
            "missing ACL",
            client_lines(west, "alice", StoreForm::Pem, false),
            &["authoriz", "acl"][..],
        ),
    ];
    // The cases run at once: each waits out its own client timeouts.
    let check = |i: usize,
                 case: &'static str,
                 west_lines: String,
                 causes: &'static [&'static str]| {
        let cfg = config(
            dir.path(),
            &format!("case{i}.properties"),
            &sb,
            &good_east,
            &west_lines,
            "",
        );
        let sb = &sb;
        async move {
            let t = std::time::Instant::now();
            let (code, out, err) = run(args("status", &cfg, &[])).await;
            let all = format!("{out}{err}");
            assert_no_secret(sb, case, &all);
            assert_ne!(code, Some(0), "{case}: status succeeded: {all}");
            let line = all
                .lines()
                .find(|l| l.contains("us-west") && l.contains(&west.bootstrap_servers()))
                .unwrap_or_else(|| panic!("{case}: no line names us-west and its address: {all}"));
            let lower = line.to_lowercase();
            assert!(
                causes.iter().any(|c| lower.contains(c)),
                "{case}: the line does not say why ({causes:?}): {line}\n{all}"
            );
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "{case}: took {:?}",
                t.elapsed()
            );
            let (code, out, err) = run(args(
                "translate",
                &cfg,
                &["--group", "g", "--source", "us-east", "--target", "us-west"],
            ))
            .await;
            assert_no_secret(sb, case, &format!("{out}{err}"));
            assert_ne!(code, Some(0), "{case}: translate succeeded: {out}{err}");
            assert!(
                err.lines().any(|l| l.contains("us-west")
                    && causes.iter().any(|c| l.to_lowercase().contains(c))),
                "{case}: translate does not say why: {err}"
            );
        }
    };
    let run_cfg = config(
        dir.path(),
        "run.properties",
        &sb,
        &good_east,
        &cases[0].1,
        "",
    );
    futures::future::join_all(
        cases
            .into_iter()
            .enumerate()
            .map(|(i, (case, west_lines, causes))| check(i, case, west_lines, causes)),
    )
    .await;

    // `strait run` keeps running, and says why the flow is BROKEN, in /api/status and its log.
    let cfg = run_cfg;
    let addr = format!("127.0.0.1:{}", free_port());
    let log = dir.path().join("run.log");
    let _run = spawn_run_http(&cfg, &addr, &log);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let body = http_get(&addr, "/api/status")
            .await
            .map(|(_, b)| b)
            .unwrap_or_default();
        assert_no_secret(&sb, "/api/status", &body);
        if body.contains("BROKEN") && body.to_lowercase().contains("authentication failed") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/api/status does not say the flow is BROKEN by authentication: {body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert_no_secret(&sb, "strait run's log", &text);
    assert!(
        text.to_lowercase().contains("authentication"),
        "the log says nothing of the failure: {text}"
    );
}

/// An unsigned JWT (`alg: none`) for `sub`, as Kafka's unsecured OAUTHBEARER validator takes.
fn unsigned_jwt(sub: &str) -> String {
    let b64 = |s: &str| {
        openssl::base64::encode_block(s.as_bytes())
            .trim_end_matches('=')
            .replace('+', "-")
            .replace('/', "_")
    };
    let now = now_ms() / 1000;
    format!(
        "{}.{}.",
        b64(r#"{"alg":"none"}"#),
        b64(&format!(
            r#"{{"sub":"{sub}","iat":{now},"exp":{},"scope":"kafka"}}"#,
            now + 3600
        ))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_oidc_token_endpoint_from_an_oauthbearer_login_gets_strait_in() {
    use axum::http::{HeaderMap, StatusCode};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let Some(sb) = secure_pair().await else {
        return;
    };
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    // The identity provider: client credentials in, an access token out.
    let secret = "oidc-client-secret-4711";
    let want = format!(
        "Basic {}",
        openssl::base64::encode_block(format!("strait:{secret}").as_bytes())
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let app = axum::Router::new().route(
        "/token",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let (want, counted) = (want.clone(), counted.clone());
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let json = [(axum::http::header::CONTENT_TYPE, "application/json")];
                if auth != want || !body.contains("grant_type=client_credentials") {
                    return (StatusCode::UNAUTHORIZED, json, String::new());
                }
                counted.fetch_add(1, Ordering::SeqCst);
                (
                    StatusCode::OK,
                    json,
                    format!(
                        r#"{{"access_token":"{}","token_type":"bearer","expires_in":3600}}"#,
                        unsigned_jwt(ADMIN)
                    ),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let idp = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let pki = west.access().pki().unwrap();
    let west_lines = format!(
        "us-west.security.protocol = SASL_SSL\n\
         us-west.sasl.mechanism = OAUTHBEARER\n\
         us-west.sasl.oauthbearer.token.endpoint.url = http://{idp}/token\n\
         us-west.sasl.jaas.config = org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId=\"strait\" clientSecret=\"{secret}\" scope=\"kafka\";\n\
         us-west.ssl.truststore.type = PEM\n\
         us-west.ssl.truststore.location = {}\n",
        pki.ca_pem().display()
    );
    create_topic(east, "orders", 2).await;
    produce_range(east, "orders", 2, 0..200, "orders", None).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "oidc.properties",
        &sb,
        &client_lines(east, ADMIN, StoreForm::Pem, false),
        &west_lines,
        "",
    );
    let (code, out, err) = run(args("check", &cfg, &["--json"])).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(
        !out.contains(secret),
        "check --json shows the client secret: {out}"
    );
    let log = dir.path().join("run.log");
    let _run = spawn_run_http(&cfg, &format!("127.0.0.1:{}", free_port()), &log);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while record_count(west, "us-east.orders", 2).await < 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing replicated through the OIDC login in 60 s: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        calls.load(Ordering::SeqCst) > 0,
        "the token endpoint was never asked"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(secret), "the log shows the client secret");
}

/// Topic ACL sync against the StandardAuthorizer, end to end: `strait run` copies alice's READ on
/// `orders` to `us-east.orders` on us-west, where the authorizer then lets her read it; her WRITE
/// is not copied (only strait writes remote topics), so she still may not write there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acl_sync_lets_readers_read_the_remote_topic_under_a_real_authorizer() {
    use strait::kafka::AclBinding;
    use strait::kafka::{Operation, Permission};
    let Some(sb) = secure_pair().await else {
        return;
    };
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    create_topic(east, "orders", 1).await;
    produce_range(east, "orders", 1, 0..10, "orders", None).await;
    admin(east)
        .create_acls(&[
            AclBinding::topic("orders", "User:alice", Operation::Read, Permission::Allow),
            AclBinding::topic(
                "orders",
                "User:alice",
                Operation::Describe,
                Permission::Allow,
            ),
            AclBinding::topic("orders", "User:alice", Operation::Write, Permission::Allow),
        ])
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "acls.properties",
        &sb,
        &client_lines(east, ADMIN, StoreForm::Pem, false),
        &client_lines(west, ADMIN, StoreForm::Pem, false),
        "sync.topic.acls.enabled = true\nsync.topic.acls.interval.seconds = 1\n",
    );
    let _run = spawn_run(&cfg);
    let want = [
        AclBinding::topic(
            "us-east.orders",
            "User:alice",
            Operation::Describe,
            Permission::Allow,
        ),
        AclBinding::topic(
            "us-east.orders",
            "User:alice",
            Operation::Read,
            Permission::Allow,
        ),
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let have = admin(west).describe_topic_acls().await.unwrap();
        if want.iter().all(|w| have.contains(w)) {
            assert!(
                !have.iter().any(|b| b.operation == Operation::Write),
                "WRITE copied: {have:?}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ACLs on us-west: {have:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    wait_for_count(west, "us-east.orders", 1, 10, Duration::from_secs(60)).await;
    // alice reads the remote topic on us-west with her own login (her group is hers to use)...
    admin(west)
        .create_acls(&[AclBinding {
            resource_type: strait::kafka::ResourceType::Group,
            ..AclBinding::topic(
                "alice-reader",
                "User:alice",
                Operation::Read,
                Permission::Allow,
            )
        }])
        .await
        .unwrap();
    let alice = endpoint_as(west, "alice");
    let seen = tokio::task::spawn_blocking(move || {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let c: BaseConsumer = alice.consumer_config("alice-reader").create().unwrap();
        let mut tpl = rdkafka::TopicPartitionList::new();
        tpl.add_partition_offset("us-east.orders", 0, rdkafka::Offset::Beginning)
            .unwrap();
        c.assign(&tpl).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut n = 0;
        while n < 10 && std::time::Instant::now() < deadline {
            match c.poll(Duration::from_millis(200)) {
                Some(Ok(_)) => n += 1,
                Some(Err(e)) => panic!("alice cannot read us-east.orders: {e}"),
                None => {}
            }
        }
        n
    })
    .await
    .unwrap();
    assert_eq!(seen, 10, "alice read the remote topic");
    // ...but may not write it.
    let p: rdkafka::producer::FutureProducer = endpoint_as(west, "alice")
        .producer_config()
        .create()
        .unwrap();
    let denied = p
        .send(
            rdkafka::producer::FutureRecord::to("us-east.orders")
                .key("k")
                .payload("from alice"),
            Duration::from_secs(10),
        )
        .await;
    assert!(denied.is_err(), "alice wrote to a remote topic");
}
