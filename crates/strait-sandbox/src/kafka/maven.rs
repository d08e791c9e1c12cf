//! Finding Java and the Apache Kafka jars.
//!
//! The jars are what Maven resolves from the repository's `kafka/pom.xml` (embedded here, so the
//! library needs no source tree): `mvn dependency:build-classpath` downloads them into the local
//! Maven repository on the first run on a machine and reads them from there afterwards. The
//! resulting classpath is cached in a file named after the pom's hash, so later runs do not start
//! Maven at all.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use super::KafkaError;

/// The pom that pins the Apache Kafka version of the test bed.
pub const POM: &str = include_str!("../../kafka/pom.xml");

/// The Apache Kafka version in [`POM`].
pub fn kafka_version() -> &'static str {
    POM.split("<kafka.version>")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap_or("unknown")
}

/// `java` and `keytool` of the JDK that runs the brokers: `$JAVA_HOME/bin` when set, else `PATH`.
#[derive(Clone, Debug)]
pub(crate) struct Jdk {
    pub(crate) java: PathBuf,
    pub(crate) keytool: PathBuf,
}

impl Jdk {
    pub(crate) fn find() -> Result<Self, KafkaError> {
        Self::find_in(std::env::var_os("JAVA_HOME"), std::env::var_os("PATH"))
    }

    fn find_in(
        java_home: Option<std::ffi::OsString>,
        path: Option<std::ffi::OsString>,
    ) -> Result<Self, KafkaError> {
        let from_home = java_home.map(|h| PathBuf::from(h).join("bin"));
        let tool = |name: &str| -> Option<PathBuf> {
            match &from_home {
                Some(bin) => Some(bin.join(name)).filter(|p| p.is_file()),
                None => which_in(path.as_deref(), name),
            }
        };
        let java = tool("java").ok_or(KafkaError::NoJava)?;
        let keytool = tool("keytool").unwrap_or_else(|| PathBuf::from("keytool"));
        let out = Command::new(&java)
            .arg("-version")
            .output()
            .map_err(|_| KafkaError::NoJava)?;
        let text = String::from_utf8_lossy(&out.stderr);
        let major = java_major(&text).ok_or(KafkaError::NoJava)?;
        if major < 17 {
            return Err(KafkaError::OldJava {
                java: java.display().to_string(),
                major,
            });
        }
        Ok(Self { java, keytool })
    }
}

/// The major version in `java -version`'s first line: `openjdk version "17.0.15"` -> 17,
/// `java version "1.8.0_392"` -> 8.
pub(crate) fn java_major(version_output: &str) -> Option<u32> {
    let quoted = version_output.lines().next()?.split('"').nth(1)?;
    let mut parts = quoted.split(['.', '-', '+', '_']);
    let first: u32 = parts.next()?.parse().ok()?;
    if first == 1 {
        parts.next()?.parse().ok()
    } else {
        Some(first)
    }
}

fn which(name: &str) -> Option<PathBuf> {
    which_in(std::env::var_os("PATH").as_deref(), name)
}

fn which_in(path: Option<&std::ffi::OsStr>, name: &str) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// One resolution at a time in this process; files are replaced atomically for other processes.
static RESOLVE: Mutex<()> = Mutex::new(());

/// The classpath of the pinned Apache Kafka, resolved once per pom and cached under `cache_dir`.
pub(crate) fn classpath(cache_dir: &Path) -> Result<String, KafkaError> {
    let _one = RESOLVE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = cache_dir.join(format!("kafka-{}-{:016x}", kafka_version(), fnv(POM)));
    let cached = dir.join("classpath.txt");
    if let Ok(cp) = std::fs::read_to_string(&cached) {
        // The local Maven repository may have been cleaned since.
        if !cp.is_empty() && std::env::split_paths(&cp).all(|j| j.is_file()) {
            return Ok(cp);
        }
    }
    std::fs::create_dir_all(&dir).map_err(|e| KafkaError::Io {
        what: format!("creating {}", dir.display()),
        source: e,
    })?;
    let pom = dir.join("pom.xml");
    std::fs::write(&pom, POM).map_err(|e| KafkaError::Io {
        what: format!("writing {}", pom.display()),
        source: e,
    })?;
    let mvn = which("mvn").ok_or(KafkaError::NoMaven)?;
    let partial = dir.join(format!("classpath.{}.tmp", std::process::id()));
    let out = Command::new(&mvn)
        .args(["-B", "-q", "-f"])
        .arg(&pom)
        .arg("dependency:build-classpath")
        .arg(format!("-Dmdep.outputFile={}", partial.display()))
        .output()
        .map_err(|e| KafkaError::Io {
            what: format!("running {}", mvn.display()),
            source: e,
        })?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        let why = text
            .lines()
            .find(|l| l.contains("[ERROR]"))
            .unwrap_or("no [ERROR] line in Maven's output")
            .replace("[ERROR] ", "");
        return Err(KafkaError::Maven {
            version: kafka_version(),
            reason: why.trim().to_string(),
        });
    }
    let cp = std::fs::read_to_string(&partial).map_err(|e| KafkaError::Io {
        what: format!("reading {}", partial.display()),
        source: e,
    })?;
    std::fs::rename(&partial, &cached).map_err(|e| KafkaError::Io {
        what: format!("writing {}", cached.display()),
        source: e,
    })?;
    Ok(cp.trim().to_string())
}

/// FNV-1a: a stable name for the pom's cache directory (std's hasher is not stable across builds).
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_versions_old_and_new() {
        assert_eq!(
            java_major("openjdk version \"17.0.15\" 2025-04-15\n"),
            Some(17)
        );
        assert_eq!(java_major("openjdk version \"25\" 2025-09-16\n"), Some(25));
        assert_eq!(java_major("java version \"1.8.0_392\"\n"), Some(8));
        assert_eq!(java_major("openjdk version \"21-ea\" 2023\n"), Some(21));
        assert_eq!(java_major("garbage"), None);
    }

    #[test]
    fn no_java_or_an_old_one_is_one_line_saying_what_to_install() {
        let empty = tempfile::tempdir().unwrap();
        let e = Jdk::find_in(Some(empty.path().into()), None).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, KafkaError::NoJava), "{msg}");
        assert!(
            msg.contains("Java 17")
                && msg.contains("apt install")
                && msg.contains("STRAIT_TEST_KAFKA=0"),
            "{msg}"
        );
        assert!(!msg.contains('\n'));
        let e = Jdk::find_in(None, Some(empty.path().into())).unwrap_err();
        assert!(matches!(e, KafkaError::NoJava), "{e}");

        // A `java` that is Java 8.
        let bin = empty.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let java = bin.join("java");
        std::fs::write(&java, "#!/bin/sh\necho 'java version \"1.8.0_392\"' >&2\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&java, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = Jdk::find_in(Some(empty.path().into()), None).unwrap_err();
        assert!(matches!(e, KafkaError::OldJava { major: 8, .. }), "{e}");
        assert!(e.to_string().contains("JAVA_HOME"), "{e}");
        assert!(KafkaError::NoMaven
            .to_string()
            .contains("apt install maven"));
    }

    #[test]
    fn the_pom_pins_one_version() {
        let v = kafka_version();
        assert!(v.starts_with("4."), "{v}");
        assert!(POM.contains("<artifactId>kafka_2.13</artifactId>"));
        assert!(POM.contains("<artifactId>connect-mirror</artifactId>"));
    }
}
