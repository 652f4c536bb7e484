//! `certquant` command-line interface: argument parsing, progress, human/JSON output and exit
//! codes. No method logic lives here.
//!
//! Exit codes: 0 = success (verified / certified), 1 = ran fine but the property was not
//! proven / not certified, 2 = bad input or internal error (message on stderr).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    restore_sigpipe();
    let args = cli::Cli::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("CERTQUANT_LOG").unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(if args.verbose { "info" } else { "warn" })
        });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match cli::run(args) {
        Ok(cli::Outcome::Proven) => ExitCode::from(0),
        Ok(cli::Outcome::NotProven) => ExitCode::from(1),
        Err(e) => {
            eprintln!("{}", cli::error_text(&e));
            ExitCode::from(2)
        }
    }
}

/// Piping into `head` must end the program quietly, as with any Unix tool, instead of making
/// `println!` panic on a closed pipe: restore the default SIGPIPE action that Rust's runtime
/// sets to "ignore".
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called once at start-up before any thread exists; SIG_DFL is always valid.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
