//! `strait sandbox`: start one local cluster per region and keep them up until Ctrl-C or SIGTERM.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use anyhow::Context;
use strait_sandbox::Sandbox;

use crate::cli::SandboxArgs;

pub(super) async fn run(args: SandboxArgs) -> anyhow::Result<ExitCode> {
    let names: Vec<&str> = args.regions.iter().map(|s| s.trim()).collect();
    let control_port = match args.control_port {
        Some(p) => p,
        None => args.base_port.checked_add(100).ok_or_else(|| {
            super::UsageError(format!(
                "--base-port {} leaves no room for the control port (base + 100); give --control-port",
                args.base_port
            ))
        })?,
    };
    let sandbox = Sandbox::start_on(&names, args.base_port).await?;
    let control = sandbox
        .serve_control(SocketAddr::from((Ipv4Addr::LOCALHOST, control_port)))
        .await?;

    println!("{}", banner(&sandbox, &control.url()));
    wait_for_stop()
        .await
        .context("cannot listen for Ctrl-C or SIGTERM")?;
    eprintln!("strait sandbox: stopping; the sandbox's data is gone");
    drop(control);
    sandbox.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn banner(sandbox: &Sandbox, control_url: &str) -> String {
    let mut out = String::new();
    let n = sandbox.clusters().len();
    out.push_str(&format!(
        "strait sandbox: {n} region{} ready (in-memory storage: everything is lost when this stops)\n\n",
        if n == 1 { "" } else { "s" }
    ));
    let width = sandbox
        .clusters()
        .iter()
        .map(|c| c.name().len())
        .max()
        .unwrap_or(0);
    for c in sandbox.clusters() {
        out.push_str(&format!(
            "  {:width$}  bootstrap.servers={}\n",
            c.name(),
            c.bootstrap_servers()
        ));
    }
    out.push_str("\nMirrorMaker 2 properties (add flows such as `A->B.enabled = true`):\n\n");
    for line in sandbox.mm2_properties().lines() {
        out.push_str(&format!("  {line}\n"));
    }
    let first = sandbox.clusters()[0].name();
    out.push_str(&format!(
        "\nFault control: {control_url}\n\
         \x20 curl -s {control_url}/regions\n\
         \x20 curl -s -X POST {control_url}/regions/{first}/cut          # region down\n\
         \x20 curl -s -X POST {control_url}/regions/{first}/blackhole    # partition: connections hang\n\
         \x20 curl -s -X POST '{control_url}/regions/{first}/delay?ms=50' # WAN latency, each way\n\
         \x20 curl -s -X POST {control_url}/regions/{first}/heal\n\
         \nCtrl-C or SIGTERM stops the sandbox."
    ));
    out
}

async fn wait_for_stop() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}
