//! `meshctl`: the admin CLI of Meshgress, in the manner of Easegress's `egctl`.
//!
//! ```text
//! meshctl object create|apply|update [-f FILE]    # YAML/JSON, several `---` documents; stdin without -f
//! meshctl object get [KIND] NAME [-o yaml|json|table]
//! meshctl object list [KIND] [-o table|yaml|json]
//! meshctl object delete [KIND] NAME
//! meshctl member list [-o table|yaml|json]
//! meshctl status [NODE] [-o table|yaml|json]
//! ```
//!
//! Every command talks to `--server` (env `MESHCTL_SERVER`, default `127.0.0.1:2381`). On failure it
//! prints `Error: ...` to standard error and exits with status 1.

mod cli;
mod client;
mod commands;
mod documents;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
