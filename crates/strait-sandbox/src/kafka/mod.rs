//! Apache Kafka as a sandbox engine: real KRaft brokers in JVMs, for the tests that must see what
//! users run (offset commits refused into live groups, partition growth, transactions, ACLs, TLS,
//! SASL, cooperative rebalances), which the embedded Tansu broker does not do.
//!
//! It lives beside Tansu in this crate rather than in a crate of its own because everything else a
//! test uses is shared: the [`Cluster`](crate::Cluster) handle, the fault proxy in front of every
//! node (so fault tests run unchanged on both engines), the control endpoint and the MM2 snippet.
//!
//! A cluster is one node or three, each a combined broker and controller, started from the jars
//! Maven resolves from `kafka/pom.xml` ([`maven`]), with data in a temp dir, a capped heap, and a log
//! file per node that is kept when the test fails. Security profiles ([`Security`]) add SASL_SSL
//! with SCRAM-SHA-512 users created at format time and TLS certificates generated for the run
//! ([`pki`]), and optionally the `StandardAuthorizer`.

pub mod maven;
pub mod mm2;
pub mod pki;

mod jvm;
mod props;

pub use self::jvm::JvmProfile;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tracing::debug;

use self::jvm::Jvm;
use self::pki::{Pki, StoreForm};
use self::props::{BrokerTls, NodePlan, NodePorts};

/// How clients reach a test cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Security {
    /// PLAINTEXT, no authentication, no authorizer (the Tansu sandbox's only mode).
    #[default]
    Plaintext,
    /// SASL_SSL with SCRAM-SHA-512 users; TLS with the run's certificates.
    SaslSsl,
    /// [`Security::SaslSsl`] plus Kafka's `StandardAuthorizer`: [`ADMIN`] is a super user, every
    /// other user needs ACLs (`allow.everyone.if.no.acl.found=false`).
    SaslSslAcl,
}

/// The super user of secure clusters; brokers also use it between themselves.
pub const ADMIN: &str = "admin";
/// SCRAM users created at format time besides [`ADMIN`], with no ACLs of their own.
pub const USERS: [&str; 2] = ["strait", "alice"];

/// What to start.
#[derive(Clone, Debug)]
pub struct KafkaSpec {
    /// 1, or 3 for replication factor 3.
    pub nodes: u8,
    /// How clients connect and log in, and whether the brokers check ACLs.
    pub security: Security,
    /// Where the resolved classpath (and the run's certificates) are cached.
    pub cache_dir: PathBuf,
    /// Where node logs go; a cluster dropped while its thread panics leaves them there. `None`:
    /// in the cluster's temp dir, deleted with it.
    pub log_dir: Option<PathBuf>,
    /// Maximum heap of each JVM, in MiB, with [`JvmProfile::TestBed`].
    pub heap_mib: u32,
    /// How each node's JVM is launched: small and quick, or as Kafka's own scripts do.
    pub jvm: JvmProfile,
}

impl KafkaSpec {
    /// One node with `security`; cache in `$STRAIT_KAFKA_CACHE` (default: the temp dir), logs in
    /// `$STRAIT_KAFKA_LOGS` when set.
    pub fn new(security: Security) -> Self {
        Self {
            nodes: 1,
            security,
            cache_dir: std::env::var_os("STRAIT_KAFKA_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| std::env::temp_dir().join("strait-kafka")),
            log_dir: std::env::var_os("STRAIT_KAFKA_LOGS").map(PathBuf::from),
            heap_mib: 512,
            jvm: JvmProfile::TestBed,
        }
    }

    /// With `n` nodes (1, or 3 for replication factor 3).
    pub fn nodes(mut self, n: u8) -> Self {
        self.nodes = n;
        self
    }
}

/// Why an Apache Kafka cluster could not start. One sentence, saying what to install or fix.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// No `java` in `$JAVA_HOME/bin` or on `PATH`, or one whose version cannot be read.
    #[error("Apache Kafka test clusters need Java 17 or newer and none was found ($JAVA_HOME/bin/java or `java` on PATH): install a JDK (Debian: apt install openjdk-17-jdk-headless), or set STRAIT_TEST_KAFKA=0 to leave out the Apache Kafka tests")]
    NoJava,
    /// The `java` found is older than Java 17.
    #[error("Apache Kafka test clusters need Java 17 or newer, and {java} is Java {major}: set JAVA_HOME to a newer JDK, or set STRAIT_TEST_KAFKA=0 to leave out the Apache Kafka tests")]
    OldJava {
        /// The `java` binary found.
        java: String,
        /// Its major version (below 17).
        major: u32,
    },
    /// No `mvn` on `PATH`, so the Kafka jars cannot be fetched.
    #[error("Apache Kafka test clusters need Maven (`mvn` on PATH) to fetch the Kafka jars: install it (Debian: apt install maven), or set STRAIT_TEST_KAFKA=0 to leave out the Apache Kafka tests")]
    NoMaven,
    /// Maven ran and failed to resolve the Kafka jars.
    #[error("Maven could not resolve Apache Kafka {version} from crates/strait-sandbox/kafka/pom.xml: {reason}")]
    Maven {
        /// The Apache Kafka version the pom asks for.
        version: &'static str,
        /// Maven's first `[ERROR]` line.
        reason: String,
    },
    /// A file or process operation failed (a temp dir, a config file, running `java` or `mvn`).
    #[error("{what}: {source}")]
    Io {
        /// What was being done ("creating a temp dir", "writing /path/to/file").
        what: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Generating the run's certificates failed (also used when a node's format thread
    /// panicked); the message says what happened.
    #[error("{0}")]
    Pki(String),
    /// Formatting a node's storage (Kafka's `StorageTool format`) failed.
    #[error("formatting node {node} failed (exit {status}): {tail}")]
    Format {
        /// The node's id (1-based).
        node: u32,
        /// The tool's exit status.
        status: String,
        /// The last lines of the tool's output, joined with ` | `.
        tail: String,
    },
    /// A node's JVM exited before it was ready (a port taken, a bad config).
    #[error("node {node} exited during start (exit {status}); log {log}: {tail}")]
    Exited {
        /// The node's id (1-based).
        node: u32,
        /// The JVM's exit status.
        status: String,
        /// Path of the node's log.
        log: String,
        /// From the log: the first exception line, else the last lines.
        tail: String,
    },
    /// A node did not log that it had started within the deadline (90 s).
    #[error("node {node} was not ready within {secs} s; log {log}: {tail}")]
    NotReady {
        /// The node's id (1-based).
        node: u32,
        /// How long it was given, in seconds.
        secs: u64,
        /// Path of the node's log.
        log: String,
        /// From the log: the first exception line, else the last lines.
        tail: String,
    },
}

impl KafkaError {
    /// A node could not bind one of its ports (taken between choosing it and the JVM binding it).
    pub(crate) fn port_taken(&self) -> bool {
        matches!(self, Self::Exited { tail, .. } if tail.contains("Address already in use"))
    }
}

/// Who may connect to a cluster, and with which secrets.
#[derive(Clone, Debug)]
pub struct Access {
    security: Security,
    /// (user, password), [`ADMIN`] first.
    users: Vec<(String, String)>,
    pki: Option<Arc<Pki>>,
}

impl Access {
    pub(crate) fn plaintext() -> Self {
        Self {
            security: Security::Plaintext,
            users: Vec::new(),
            pki: None,
        }
    }

    /// The cluster's security profile.
    pub fn security(&self) -> Security {
        self.security
    }

    /// The SCRAM password of `user`; `None` for an unknown user or on a plaintext cluster.
    pub fn password(&self, user: &str) -> Option<&str> {
        self.users
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, p)| p.as_str())
    }

    /// The run's certificates and stores; `None` on a plaintext cluster.
    pub fn pki(&self) -> Option<&Pki> {
        self.pki.as_deref()
    }

    /// Every secret of this cluster (passwords, the store password), for tests that make sure
    /// none of them is printed.
    pub fn secrets(&self) -> Vec<String> {
        let mut s: Vec<String> = self.users.iter().map(|(_, p)| p.clone()).collect();
        s.extend(self.pki.iter().map(|p| p.password().to_string()));
        s
    }

    /// librdkafka settings for a client logged in as `user` (none for a plaintext cluster).
    pub fn librdkafka(&self, user: &str) -> Vec<(String, String)> {
        let (Some(pki), Some(pw)) = (&self.pki, self.password(user)) else {
            return Vec::new();
        };
        [
            ("security.protocol", "SASL_SSL".to_string()),
            ("sasl.mechanisms", "SCRAM-SHA-512".to_string()),
            ("sasl.username", user.to_string()),
            ("sasl.password", pw.to_string()),
            ("ssl.ca.location", pki.ca_pem().display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The same, as an MM2 file writes it (Java client properties), with the truststore in
    /// `form`; with `keystore`, the client also presents its certificate from a keystore in
    /// that form.
    pub fn mm2(&self, user: &str, form: StoreForm, keystore: bool) -> Vec<(String, String)> {
        let (Some(pki), Some(pw)) = (&self.pki, self.password(user)) else {
            return Vec::new();
        };
        let kind = match form {
            StoreForm::Pem => "PEM",
            StoreForm::Jks => "JKS",
            StoreForm::Pkcs12 => "PKCS12",
        };
        let mut out = vec![
            ("security.protocol", "SASL_SSL".to_string()),
            ("sasl.mechanism", "SCRAM-SHA-512".to_string()),
            (
                "sasl.jaas.config",
                format!(
                    "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{user}\" password=\"{pw}\";"
                ),
            ),
            ("ssl.truststore.type", kind.to_string()),
            (
                "ssl.truststore.location",
                pki.truststore(form).display().to_string(),
            ),
        ];
        if form != StoreForm::Pem {
            out.push(("ssl.truststore.password", pki.password().to_string()));
        }
        if keystore {
            out.push(("ssl.keystore.type", kind.to_string()));
            out.push((
                "ssl.keystore.location",
                pki.keystore(form).display().to_string(),
            ));
            if form != StoreForm::Pem {
                out.push(("ssl.keystore.password", pki.password().to_string()));
                out.push(("ssl.key.password", pki.password().to_string()));
            }
        }
        out.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

/// The nodes of one running cluster. Dropping it kills every JVM; when that happens while the
/// thread panics (a failing test), the node logs are kept and their place is printed.
#[derive(Debug)]
pub(crate) struct Nodes {
    jvms: Vec<Jvm>,
    pub(crate) external: Vec<SocketAddr>,
    pub(crate) access: Access,
    logs: PathBuf,
    keep_logs: bool,
    /// With [`JvmProfile::Stock`], each node's GC log.
    pub(crate) gc_logs: Vec<PathBuf>,
    /// How each node was started, to start it again on its data.
    launches: Vec<Launch>,
    _data: tempfile::TempDir,
}

/// A node's command line and log: what [`Nodes::respawn`] runs again.
#[derive(Debug)]
struct Launch {
    java: PathBuf,
    args: Vec<std::ffi::OsString>,
    log: PathBuf,
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for j in &mut self.jvms {
            j.kill();
        }
        if std::thread::panicking() && self.keep_logs {
            eprintln!("Apache Kafka node logs kept in {}", self.logs.display());
        } else if self.keep_logs {
            let _ = std::fs::remove_dir_all(&self.logs);
        }
    }
}

impl Nodes {
    /// Node `i`'s JVM: to kill it (a broker crash) in fault tests.
    pub(crate) fn kill_node(&mut self, i: usize) {
        if let Some(j) = self.jvms.get_mut(i) {
            j.kill();
        }
    }

    /// Start node `i` again, as it was started, on its data (after [`Nodes::kill_node`]). Returns
    /// its log and the log's length before the start: the node is ready once
    /// [`logged_ready_since`] that point.
    pub(crate) fn respawn(&mut self, i: usize) -> Result<(PathBuf, u64), KafkaError> {
        let Some(l) = self.launches.get(i) else {
            return Err(KafkaError::Pki(format!("no node {i} to start again")));
        };
        let io = |what: String| move |e| KafkaError::Io { what, source: e };
        let from = std::fs::metadata(&l.log).map(|m| m.len()).unwrap_or(0);
        let mut c = Command::new(&l.java);
        c.args(&l.args);
        let jvm = Jvm::spawn(c, &l.log).map_err(io(format!("starting {}", l.java.display())))?;
        self.jvms[i] = jvm;
        Ok((l.log.clone(), from))
    }

    /// Why node `i` is gone, if its JVM exited by itself.
    pub(crate) fn exited(&self, i: usize) -> Option<KafkaError> {
        let j = self.jvms.get(i)?;
        j.exited().map(|status| KafkaError::Exited {
            node: i as u32 + 1,
            status: status.to_string(),
            tail: jvm::tail(j.log(), 5),
            log: j.log().display().to_string(),
        })
    }

    /// Node `i` did not become ready within `secs`.
    pub(crate) fn not_ready(&self, i: usize, secs: u64) -> KafkaError {
        let log = self
            .launches
            .get(i)
            .map(|l| l.log.clone())
            .unwrap_or_default();
        KafkaError::NotReady {
            node: i as u32 + 1,
            secs,
            tail: jvm::tail(&log, 5),
            log: log.display().to_string(),
        }
    }
}

/// Whether `log` says the node started, past its first `from` bytes.
pub(crate) fn logged_ready_since(log: &Path, from: u64) -> bool {
    std::fs::read(log)
        .ok()
        .and_then(|b| {
            b.get(from as usize..)
                .map(|t| String::from_utf8_lossy(t).contains(props::READY_LINE))
        })
        .unwrap_or(false)
}

/// The run's PKI, generated once per process on first use.
static PKI: OnceLock<Result<Arc<Pki>, String>> = OnceLock::new();

/// Start `spec.nodes` nodes for cluster `name`, node `i` advertising `advertised[i]` (its proxy).
/// Blocking (JVM starts, Maven): call it on a blocking thread.
pub(crate) fn start_nodes(
    name: &str,
    spec: &KafkaSpec,
    advertised: &[SocketAddr],
) -> Result<Nodes, KafkaError> {
    let t0 = Instant::now();
    let jdk = maven::Jdk::find()?;
    let cp = maven::classpath(&spec.cache_dir)?;
    let data = tempfile::Builder::new()
        .prefix(&format!("strait-kafka-{name}-"))
        .tempdir()
        .map_err(|e| KafkaError::Io {
            what: "creating a temp dir".into(),
            source: e,
        })?;
    let (logs, keep_logs) = match &spec.log_dir {
        Some(d) => (
            d.join(format!(
                "{name}-{}",
                data.path()
                    .file_name()
                    .and_then(|f| f.to_str())
                    .unwrap_or("run")
            )),
            true,
        ),
        None => (data.path().join("logs"), false),
    };
    let io = |what: String| move |e| KafkaError::Io { what, source: e };
    std::fs::create_dir_all(&logs).map_err(io(format!("creating {}", logs.display())))?;

    let secure = spec.security != Security::Plaintext;
    let pki = if secure {
        let dir = spec.cache_dir.join(format!("pki-{}", std::process::id()));
        let got = PKI.get_or_init(|| Pki::generate(&dir, &jdk.keytool).map(Arc::new));
        Some(got.clone().map_err(KafkaError::Pki)?)
    } else {
        None
    };
    let users = if secure {
        std::iter::once(&ADMIN)
            .chain(&USERS)
            .map(|u| (u.to_string(), random_token(20)))
            .collect()
    } else {
        Vec::new()
    };
    let access = Access {
        security: spec.security,
        users,
        pki: pki.clone(),
    };
    let admin_pw = access
        .password(ADMIN)
        .map(str::to_string)
        .unwrap_or_default();

    // Every port is held until all are chosen: a port let go at once can be handed out again by
    // the next bind, and two listeners of one node on the same port stop Kafka at its start
    // ("Each listener must have a different port", seen once in the suite).
    let mut held = Vec::new();
    let ports: Vec<NodePorts> = advertised
        .iter()
        .enumerate()
        .map(|(i, adv)| {
            Ok(NodePorts {
                id: i as u32 + 1,
                external: free_port(&mut held)?,
                advertised: *adv,
                internal: free_port(&mut held)?,
                controller: free_port(&mut held)?,
            })
        })
        .collect::<std::io::Result<_>>()
        .map_err(io("choosing free loopback ports".into()))?;
    drop(held);
    let log4j = data.path().join("log4j2.yaml");
    std::fs::write(&log4j, props::log4j2_yaml(props::BROKER_LOG_LEVELS))
        .map_err(io(format!("writing {}", log4j.display())))?;
    let cluster_id = random_cluster_id();
    let java_args = |main: &str, options: Vec<String>| -> Vec<std::ffi::OsString> {
        let mut a: Vec<std::ffi::OsString> = options.into_iter().map(Into::into).collect();
        a.push(format!("-Dlog4j2.configurationFile={}", log4j.display()).into());
        a.push("-cp".into());
        a.push(cp.clone().into());
        a.push(main.into());
        a
    };
    let java = |main: &str, options: Vec<String>| {
        let mut c = Command::new(&jdk.java);
        c.args(java_args(main, options));
        c
    };

    // Format every node (in parallel), then start them all.
    let tls_files = pki
        .as_deref()
        .map(|p| (p.broker_p12(), p.ca_pem(), p.password()));
    let mut configs = Vec::new();
    for node in &ports {
        let dir = data.path().join(format!("node-{}", node.id));
        let text = props::server_properties(&NodePlan {
            node,
            all: &ports,
            data_dir: &dir.join("data"),
            security: spec.security,
            admin: (ADMIN, &admin_pw),
            tls: tls_files.as_ref().map(|(ks, ca, pw)| BrokerTls {
                keystore_p12: ks,
                password: pw,
                ca_pem: ca,
            }),
        });
        std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
        let file = dir.join("server.properties");
        std::fs::write(&file, text).map_err(io(format!("writing {}", file.display())))?;
        configs.push(file);
    }
    let formats: Vec<_> = ports
        .iter()
        .zip(&configs)
        .map(|(node, file)| {
            let tool = JvmProfile::TestBed.options(256, "", Path::new(""));
            let mut c = java("kafka.tools.StorageTool", tool);
            c.args(["format", &format!("--cluster-id={cluster_id}"), "--config"])
                .arg(file);
            if secure {
                for (u, p) in &access.users {
                    c.arg("--add-scram")
                        .arg(format!("SCRAM-SHA-512=[name={u},password={p}]"));
                }
            }
            (node.id, c)
        })
        .map(|(id, mut c)| (id, std::thread::spawn(move || c.output())))
        .collect();
    for (id, f) in formats {
        let out = f
            .join()
            .map_err(|_| KafkaError::Pki(format!("formatting node {id}: the thread panicked")))?
            .map_err(io(format!("running {}", jdk.java.display())))?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + String::from_utf8_lossy(&out.stderr).as_ref();
            let lines: Vec<&str> = text.lines().collect();
            return Err(KafkaError::Format {
                node: id,
                status: out.status.to_string(),
                tail: lines[lines.len().saturating_sub(5)..].join(" | "),
            });
        }
    }
    let t_format = t0.elapsed();

    let mut jvms = Vec::new();
    let mut gc_logs = Vec::new();
    let mut launches = Vec::new();
    for (node, file) in ports.iter().zip(&configs) {
        let gc_log = logs.join(format!("node-{}-gc.log", node.id));
        if spec.jvm == JvmProfile::Stock {
            gc_logs.push(gc_log.clone());
        }
        let options = spec.jvm.options(spec.heap_mib, "-Xmx1G -Xms1G", &gc_log);
        let mut args = java_args("kafka.Kafka", options);
        args.push(file.into());
        let log = logs.join(format!("node-{}.log", node.id));
        let mut c = Command::new(&jdk.java);
        c.args(&args);
        jvms.push(Jvm::spawn(c, &log).map_err(io(format!("starting {}", jdk.java.display())))?);
        launches.push(Launch {
            java: jdk.java.clone(),
            args,
            log,
        });
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut ready = vec![false; jvms.len()];
    while ready.iter().any(|r| !r) {
        for (i, j) in jvms.iter().enumerate() {
            if ready[i] {
                continue;
            }
            let log = j.log().display().to_string();
            if let Some(status) = j.exited() {
                return Err(KafkaError::Exited {
                    node: ports[i].id,
                    status: status.to_string(),
                    tail: jvm::tail(j.log(), 5),
                    log,
                });
            }
            ready[i] = std::fs::read_to_string(j.log())
                .map(|t| t.contains(props::READY_LINE))
                .unwrap_or(false);
            if !ready[i] && Instant::now() > deadline {
                return Err(KafkaError::NotReady {
                    node: ports[i].id,
                    secs: 90,
                    tail: jvm::tail(j.log(), 5),
                    log,
                });
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    debug!(
        cluster = name,
        nodes = jvms.len(),
        format_ms = t_format.as_millis() as u64,
        ready_ms = t0.elapsed().as_millis() as u64,
        pids = ?jvms.iter().map(Jvm::pid).collect::<Vec<_>>(),
        "Apache Kafka cluster up"
    );
    Ok(Nodes {
        jvms,
        external: ports.iter().map(|p| p.external).collect(),
        access,
        logs,
        keep_logs,
        gc_logs,
        launches,
        _data: data,
    })
}

/// A free loopback port, kept bound in `held` so that no later call returns it too.
fn free_port(held: &mut Vec<std::net::TcpListener>) -> std::io::Result<SocketAddr> {
    let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let addr = l.local_addr()?;
    held.push(l);
    Ok(addr)
}

/// Letters and digits from a v4 UUID: passwords and such, fresh for every cluster.
pub(crate) fn random_token(len: usize) -> String {
    let mut s = String::new();
    while s.len() < len {
        s.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    s.truncate(len);
    s
}

/// A KRaft cluster id: 16 random bytes in URL-safe base64 without padding, as
/// `kafka-storage random-uuid` prints.
fn random_cluster_id() -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut bits: u32 = 0;
    let mut n = 0;
    let mut out = String::new();
    for b in bytes {
        bits = (bits << 8) | u32::from(b);
        n += 8;
        while n >= 6 {
            n -= 6;
            out.push(A[((bits >> n) & 63) as usize] as char);
        }
    }
    if n > 0 {
        out.push(A[((bits << (6 - n)) & 63) as usize] as char);
    }
    out
}

/// The path of the JDK's `keytool` next to the `java` that runs the brokers (tests use it to make
/// stores of their own).
pub fn keytool() -> Result<PathBuf, KafkaError> {
    maven::Jdk::find().map(|j| j.keytool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_are_22_url_safe_characters() {
        for _ in 0..100 {
            let id = random_cluster_id();
            assert_eq!(id.len(), 22, "{id}");
            assert!(id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        }
    }

    #[test]
    fn plaintext_access_has_no_client_settings() {
        let a = Access::plaintext();
        assert!(a.librdkafka(ADMIN).is_empty());
        assert!(a.mm2(ADMIN, StoreForm::Jks, true).is_empty());
        assert!(a.secrets().is_empty());
    }
}
