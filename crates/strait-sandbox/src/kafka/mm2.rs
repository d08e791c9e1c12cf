//! MirrorMaker 2 itself, from the jars the brokers run on: the dedicated-mode process
//! (`org.apache.kafka.connect.mirror.MirrorMaker` on a properties file) and MM2's client library
//! (`RemoteClusterUtils`, `MirrorClient`) through a small Java program, for the tests that put
//! strait beside the real thing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::jvm::{Jvm, JvmProfile};
use super::{maven, props, KafkaError};

/// The Java side of the client-library checks: one source file, run by `java` directly.
const CLIENT_SOURCE: &str = include_str!("../../kafka/Mm2Client.java");

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> KafkaError {
    let what = what.into();
    move |source| KafkaError::Io { what, source }
}

/// MM2's translation decisions (offset sync store and checkpoint task), which a test failing on a
/// checkpoint needs to show (TRACE: every sync applied, with the store's state after it).
const MM2_LOG_LEVELS: &[(&str, &str)] = &[
    ("org.apache.kafka.connect.mirror.OffsetSyncStore", "TRACE"),
    (
        "org.apache.kafka.connect.mirror.MirrorCheckpointTask",
        "TRACE",
    ),
];

/// A running MirrorMaker 2 in dedicated mode. Dropping it kills the JVM.
#[derive(Debug)]
pub struct Mm2 {
    jvm: Jvm,
    _dir: tempfile::TempDir,
}

impl Mm2 {
    /// Start MM2 on `config` (an MM2 properties file); its log goes to `log` (and with
    /// [`JvmProfile::Stock`], its GC log beside it, `.gc.log`).
    pub fn start(
        cache_dir: &Path,
        config: &Path,
        log: &Path,
        jvm: JvmProfile,
    ) -> Result<Self, KafkaError> {
        let jdk = maven::Jdk::find()?;
        let cp = maven::classpath(cache_dir)?;
        let dir = tempfile::tempdir().map_err(io("creating a temp dir for MirrorMaker 2"))?;
        let log4j = dir.path().join("log4j2.yaml");
        std::fs::write(&log4j, props::log4j2_yaml(MM2_LOG_LEVELS))
            .map_err(io(format!("writing {}", log4j.display())))?;
        let mut c = Command::new(&jdk.java);
        c.args(jvm.options(512, "-Xms256M -Xmx2G", &log.with_extension("gc.log")))
            .arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
            .arg("-cp")
            .arg(&cp)
            .arg("org.apache.kafka.connect.mirror.MirrorMaker")
            .arg(config);
        let jvm = Jvm::spawn(c, log).map_err(io("starting MirrorMaker 2"))?;
        Ok(Self { jvm, _dir: dir })
    }

    /// The process id of MM2's JVM.
    pub fn pid(&self) -> u32 {
        self.jvm.pid()
    }

    /// The file MM2's standard output and error are appended to.
    pub fn log(&self) -> &Path {
        self.jvm.log()
    }

    /// Whether MM2 exited by itself (a bad file, a lost cluster).
    pub fn exited(&self) -> bool {
        self.jvm.exited().is_some()
    }

    /// Stop MM2 as an operator does, with SIGTERM: Connect stops its tasks and commits their
    /// source offsets. Killed if it has not exited within `grace`. True if it exited in time.
    pub fn terminate(&mut self, grace: Duration) -> bool {
        // SAFETY: kill(2) with a pid this handle owns and keeps alive (it is reaped only by the
        // JVM's thread, after this handle lets it go).
        unsafe {
            libc::kill(self.jvm.pid() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.jvm.exited().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.jvm.kill();
        false
    }

    /// Kill MM2 at once (SIGKILL): nothing is committed on the way out.
    pub fn kill(&mut self) {
        self.jvm.kill();
    }
}

/// Run MM2's client library: `Mm2Client.java <args>` with the Kafka classpath; its stdout.
/// See the Java file for the commands.
pub fn client(cache_dir: &Path, args: &[&str]) -> Result<String, KafkaError> {
    let jdk = maven::Jdk::find()?;
    let cp = maven::classpath(cache_dir)?;
    let dir = cache_dir.join("mm2-client");
    std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
    let source: PathBuf = dir.join("Mm2Client.java");
    if std::fs::read_to_string(&source).ok().as_deref() != Some(CLIENT_SOURCE) {
        std::fs::write(&source, CLIENT_SOURCE)
            .map_err(io(format!("writing {}", source.display())))?;
    }
    let out = Command::new(&jdk.java)
        .args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
        .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
        .arg("-Dlog4j2.level=WARN")
        .arg("-cp")
        .arg(&cp)
        .arg(&source)
        .args(args)
        .output()
        .map_err(io("running Mm2Client.java"))?;
    if !out.status.success() {
        return Err(KafkaError::Io {
            what: format!("Mm2Client.java {}", args.join(" ")),
            source: std::io::Error::other(format!(
                "exit {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .rev()
                    .take(15)
                    .collect::<Vec<_>>()
                    .join(" | ")
            )),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
