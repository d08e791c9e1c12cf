//! The `strait` command line: parse, call into the library, print. Errors reach the user as one
//! sentence on stderr and a non-zero exit, never as a panic.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = cli::Cli::parse();
    // librdkafka logs every failed connection at ERROR level, and the replication tasks log
    // their progress. A long-running replicator's operator wants both; a one-shot command
    // (status, failover, drill, ...) reports an unreachable cluster and its progress in its own
    // words, and those lines would only bury them (-v brings them back).
    let long_running = matches!(cli.command, cli::Command::Run(_) | cli::Command::Demo(_));
    // A drill and a failback replicate in-process, and a drill cuts a region on purpose: the
    // replication tasks' retry warnings are expected there, and the command narrates instead.
    let replicates_quietly = matches!(
        cli.command,
        cli::Command::Drill(_) | cli::Command::Failback(_)
    );
    init_logging(cli.verbose, long_running, replicates_quietly);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("strait: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = runtime.block_on(commands::dispatch(cli.command));
    // Commands bound their own shutdown. What is left on the blocking pool are librdkafka clients
    // being closed (`kafka::dispose`, a tenth of a second, all at once), which this waits for, and
    // librdkafka calls whose callers gave up (a stop cancelled them): nothing waits for their
    // answers, so they do not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("strait: {}", commands::one_sentence(&e));
            ExitCode::from(commands::exit_code_of(&e))
        }
    }
}

/// glibc gives threads that allocate at once arenas of their own (up to 8 a core) and keeps
/// what is freed in each: with librdkafka's many threads, `strait run`'s RSS was about twice its
/// heap. Two arenas took 10-20 % off its RSS and nothing off its speed (BENCHMARKS.md). A
/// `MALLOC_ARENA_MAX` in the environment is the operator's choice, and glibc reads it instead.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: `mallopt` sets a tunable of the allocator and touches nothing else; it runs
        // first in `main`, before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

/// Logs go to stderr. `STRAIT_LOG` (or `RUST_LOG`) takes an env-filter expression; `-v` raises
/// strait's own level. The embedded broker is quiet unless asked for by name.
fn init_logging(verbose: u8, long_running: bool, replicates_quietly: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (verbose, long_running, replicates_quietly) {
        (0, true, _) => "warn,strait=info,tansu_broker=off,tansu_storage=off",
        (0, false, true) => {
            "warn,librdkafka=off,rdkafka=off,tansu_broker=off,tansu_storage=off,\
             strait::replicate=error,strait::checkpoint=error,strait::heartbeat=error,\
             strait::service=error,strait::monitor=error"
        }
        (0, false, false) => "warn,librdkafka=off,rdkafka=off,tansu_broker=off,tansu_storage=off",
        (1, _, _) => "warn,strait=debug,strait_sandbox=debug,tansu_broker=off,tansu_storage=off",
        _ => "debug",
    };
    let filter = std::env::var("STRAIT_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|s| EnvFilter::try_new(s).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
