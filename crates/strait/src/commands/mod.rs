//! Each command's implementation, called by `main` with parsed arguments.

mod check;
mod clients;
mod conflicts;
#[cfg(feature = "sandbox")]
mod demo;
mod drill;
mod failback;
mod failover;
mod run;
#[cfg(feature = "sandbox")]
mod sandbox;
mod status;
mod translate;

use std::process::ExitCode;

use crate::cli::Command;

/// A spinner on stderr while something waits, only when stderr is a terminal (logs and pipes
/// stay clean). Finish it with `finish_and_clear`.
pub(crate) fn spinner(message: &str) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_message(message.to_string());
    pb.enable_steady_tick(std::time::Duration::from_millis(100));
    Some(pb)
}

pub(crate) use strait::text::table;

/// A mistake in how strait was called (exit code 2), as opposed to a failure while working (1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub String);

pub(crate) async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        #[cfg(feature = "sandbox")]
        Command::Sandbox(args) => sandbox::run(args).await,
        #[cfg(feature = "sandbox")]
        Command::Demo(args) => demo::run(args).await,
        #[cfg(not(feature = "sandbox"))]
        Command::Sandbox(_) | Command::Demo(_) => {
            Err(UsageError(strait::drill::NO_SANDBOX.into()).into())
        }
        Command::Run(args) => run::run(args).await,
        Command::Check(args) => check::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Conflicts(args) => conflicts::run(args).await,
        Command::Translate(args) => translate::run(args).await,
        Command::Failover(args) => failover::run(args).await,
        Command::Failback(args) => failback::run(args).await,
        Command::Clients(args) => clients::run(args).await,
        Command::Drill(args) => drill::run(args).await,
    }
}

/// The error and its causes on one line, each cause said once.
pub(crate) fn one_sentence(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

pub(crate) fn exit_code_of(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<UsageError>().is_some() {
        2
    } else {
        1
    }
}
