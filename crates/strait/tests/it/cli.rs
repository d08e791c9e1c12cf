//! The `strait` binary as a user runs it: `strait sandbox` prints usable addresses and fault
//! controls, stops cleanly on SIGTERM, and a busy port is one clear line and a non-zero exit.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::producer::FutureRecord;
use strait::kafka::{Admin, Endpoint, TopicSpec};

fn strait() -> Command {
    Command::new(env!("CARGO_BIN_EXE_strait"))
}

/// A port p such that p and p+1 are free right now.
fn two_free_ports() -> u16 {
    for _ in 0..50 {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = a.local_addr().unwrap().port();
        if p < u16::MAX && TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no two adjacent free ports");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One request to the control endpoint: (status, body).
fn http(method: &str, addr: &str, path: &str) -> (u16, String) {
    let a = crate::common::http_request_blocking(method, addr, path, &[]).unwrap();
    (a.status, a.body)
}

struct Running {
    child: Child,
    stdout: String,
}

/// Start `strait sandbox` and read its banner up to the last line.
fn start_sandbox(args: &[&str]) -> Running {
    let mut child = strait()
        .arg("sandbox")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut stdout = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !stdout.contains("Ctrl-C") {
        assert!(Instant::now() < deadline, "no banner: {stdout}");
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("sandbox exited early: {stdout}\nstderr: {err}");
        }
        stdout.push_str(&line);
    }
    Running { child, stdout }
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_command_serves_two_regions_with_fault_control_and_stops_on_sigterm() {
    let base = two_free_ports();
    let control = free_port();
    let mut run = start_sandbox(&[
        "--regions",
        "us-east,us-west",
        "--base-port",
        &base.to_string(),
        "--control-port",
        &control.to_string(),
    ]);
    let east = format!("127.0.0.1:{base}");
    let west = format!("127.0.0.1:{}", base + 1);
    assert!(
        run.stdout.contains("clusters = us-east, us-west"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("us-east.bootstrap.servers = {east}")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("us-west.bootstrap.servers = {west}")),
        "{}",
        run.stdout
    );
    let control_addr = format!("127.0.0.1:{control}");
    assert!(
        run.stdout.contains(&format!("http://{control_addr}")),
        "{}",
        run.stdout
    );

    // A Kafka client can use the printed address.
    let ep = Endpoint::new("us-east", &east);
    let admin = Admin::new(&ep, Duration::from_secs(5)).unwrap();
    admin
        .create_topics(&[TopicSpec::new("orders", 1, 1)])
        .await
        .unwrap();
    let producer: rdkafka::producer::FutureProducer = ep.producer_config().create().unwrap();
    producer
        .send(
            FutureRecord::to("orders").key("k").payload("v"),
            Duration::from_secs(10),
        )
        .await
        .expect("produce through the printed address");

    // Fault control over HTTP.
    let (status, body) = http("POST", &control_addr, "/regions/us-east/cut");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"mode\":\"cut\""), "{body}");
    let fresh = Admin::new(&ep, Duration::from_secs(2)).unwrap();
    assert!(
        fresh.topics(None).await.is_err(),
        "us-east must be unreachable when cut"
    );
    let (status, _) = http("POST", &control_addr, "/regions/us-east/delay?ms=20");
    assert_eq!(status, 200);
    let (status, body) = http("POST", &control_addr, "/regions/us-east/heal");
    assert_eq!(status, 200);
    assert!(
        body.contains("\"mode\":\"open\"") && body.contains("\"delay_ms\":0"),
        "{body}"
    );
    let healed = Admin::new(&ep, Duration::from_secs(10)).unwrap();
    healed.topics(None).await.expect("reachable after heal");
    let (status, body) = http("GET", &control_addr, "/regions");
    assert_eq!(status, 200);
    assert!(body.contains("us-west"), "{body}");
    let (status, body) = http("POST", &control_addr, "/regions/eu-north/cut");
    assert_eq!(status, 404);
    assert!(body.contains("us-east, us-west"), "{body}");

    sigterm(&run.child);
    let status = wait_exit(&mut run.child, Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?} after SIGTERM");
}

#[test]
fn busy_port_is_one_line_naming_the_port_and_a_nonzero_exit() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = strait()
        .args([
            "sandbox",
            "--regions",
            "solo",
            "--base-port",
            &port.to_string(),
            "--control-port",
            &free_port().to_string(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains(&port.to_string()) && err.contains("in use"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn failover_and_failback_with_a_missing_file_are_one_line_and_exit_2() {
    for args in [
        vec!["failover", "x.properties", "--from", "a", "--to", "b"],
        vec!["failback", "x.properties", "--from", "b", "--to", "a"],
    ] {
        let out = strait().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains("x.properties"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

#[test]
fn status_and_translate_with_a_missing_file_are_one_line_and_exit_2() {
    for args in [
        vec!["status", "missing.properties"],
        vec![
            "translate",
            "missing.properties",
            "--group",
            "g",
            "--source",
            "a",
            "--target",
            "b",
        ],
    ] {
        let out = strait().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("missing.properties"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn help_lists_the_whole_command_set() {
    let out = strait().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for cmd in [
        "run",
        "check",
        "status",
        "translate",
        "failover",
        "failback",
        "drill",
        "sandbox",
        "demo",
    ] {
        assert!(help.contains(cmd), "--help lacks {cmd}: {help}");
    }
}
