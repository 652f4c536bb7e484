//! `certquant` command-line interface: argument parsing, progress, human/JSON output and exit
//! codes. No method logic lives here.
//!
//! Exit codes: 0 = success (verified / certified), 1 = ran fine but the property was not
//! proven / not certified, 2 = bad input or internal error (message on stderr).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
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
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
