//! A JVM child process that cannot outlive its handle, nor the test process.
//!
//! Dropping the handle kills the JVM (also while a panicking test unwinds). For the cases where
//! nothing is dropped (the process exits with clusters in statics, or is killed), the JVM is
//! started with `PR_SET_PDEATHSIG = SIGKILL`. Linux sends that signal when the *thread* that
//! started the child ends, so each JVM is started by a thread of its own that lives exactly as long
//! as the handle; that thread also notices when the JVM exits by itself.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a JVM of the test bed is launched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum JvmProfile {
    /// Serial GC, the C1 compiler only and a capped heap: quick to start and small, for tests that
    /// start many short-lived JVMs on two cores.
    #[default]
    TestBed,
    /// What Kafka's own scripts launch (`kafka-run-class.sh`: G1 with a 20 ms pause target and the
    /// full JIT; the heap of `kafka-server-start.sh` or `connect-mirror-maker.sh`), with a GC log
    /// as `kafka-server-start.sh` keeps one. For benchmarks: neither the brokers nor MirrorMaker 2
    /// are handicapped against strait, and their pauses can be read afterwards.
    Stock,
}

impl JvmProfile {
    /// The JVM options: `test_heap_mib` caps the heap of [`JvmProfile::TestBed`], `stock_heap` is
    /// the script's `KAFKA_HEAP_OPTS`, `gc_log` where [`JvmProfile::Stock`] logs collections.
    pub(crate) fn options(
        self,
        test_heap_mib: u32,
        stock_heap: &str,
        gc_log: &Path,
    ) -> Vec<String> {
        let mut o: Vec<String> = match self {
            JvmProfile::TestBed => vec![
                format!("-Xmx{test_heap_mib}m"),
                "-Xms64m".into(),
                "-XX:+UseSerialGC".into(),
                "-XX:TieredStopAtLevel=1".into(),
                "-XX:-UsePerfData".into(),
            ],
            JvmProfile::Stock => {
                let mut o: Vec<String> = stock_heap.split(' ').map(String::from).collect();
                o.extend(
                    [
                        "-server",
                        "-XX:+UseG1GC",
                        "-XX:MaxGCPauseMillis=20",
                        "-XX:InitiatingHeapOccupancyPercent=35",
                        "-XX:+ExplicitGCInvokesConcurrent",
                        "-XX:MaxInlineLevel=15",
                    ]
                    .map(String::from),
                );
                o.push(format!(
                    "-Xlog:gc*:file={}:utctime,tags:filecount=2,filesize=100M",
                    gc_log.display()
                ));
                o
            }
        };
        o.push("-Djava.awt.headless=true".into());
        o
    }
}

#[derive(Debug)]
pub(crate) struct Jvm {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    exited: Arc<Mutex<Option<ExitStatus>>>,
    pid: u32,
    log: PathBuf,
}

impl Jvm {
    /// Start `cmd` with stdout and stderr appended to `log`.
    pub(crate) fn spawn(mut cmd: Command, log: &Path) -> std::io::Result<Self> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: prctl is async-signal-safe and touches only the calling (child) process.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let (started, pid) = mpsc::channel::<std::io::Result<u32>>();
        let exited = Arc::new(Mutex::new(None));
        let exited_w = exited.clone();
        let thread = std::thread::Builder::new()
            .name("kafka-jvm".into())
            .spawn(move || {
                let mut child = match cmd.spawn() {
                    Ok(c) => {
                        let _ = started.send(Ok(c.id()));
                        c
                    }
                    Err(e) => {
                        let _ = started.send(Err(e));
                        return;
                    }
                };
                loop {
                    match stopped.recv_timeout(Duration::from_millis(100)) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            if let Ok(Some(status)) = child.try_wait() {
                                *exited_w.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
                                // Stay alive until told: the handle decides when this thread ends.
                                let _ = stopped.recv();
                                return;
                            }
                        }
                        _ => {
                            let _ = child.kill();
                            let _ = child.wait();
                            return;
                        }
                    }
                }
            })?;
        let pid = pid
            .recv()
            .map_err(|_| std::io::Error::other("the JVM starter thread ended"))??;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
            exited,
            pid,
            log: log.to_path_buf(),
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    pub(crate) fn log(&self) -> &Path {
        &self.log
    }

    /// The exit status, once the JVM ended by itself.
    pub(crate) fn exited(&self) -> Option<ExitStatus> {
        *self.exited.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Kill the JVM (SIGKILL) and wait until it is gone.
    pub(crate) fn kill(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Jvm {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What went wrong, from a node's log: the first exception line, else the last `n` lines.
pub(crate) fn tail(log: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    if let Some(l) = text
        .lines()
        .find(|l| l.contains("Exception: ") || l.starts_with("Error: "))
    {
        return l.trim().to_string();
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
