//! `rcluster`: parse the command line, run the verb, map errors to one line on stderr and a
//! non-zero exit code (causes on one line; a full report with -v). Hidden modes are picked
//! before parsing: `__daemon` (the background daemon, started by the CLI), `__exec` (the
//! trampoline between the daemon's fork and an instance's program), `__handoff-check` (a new
//! binary's dry run before `update`) and `__serve` (the static file server of `serve`).

use clap::Parser;

use rcluster::cli::{self, Cli};

fn main() {
    // `std::env::args` would panic on an argument that is not UTF-8: clap reports those.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let hidden_args = || -> Vec<String> {
        // The daemon writes these command lines itself, in UTF-8.
        args[2..]
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    };
    let code = match args.get(1).and_then(|a| a.to_str()) {
        Some("__exec") => rcluster::daemon::process::exec::main(&hidden_args()),
        Some(rcluster::daemon::handoff::CHECK_ARG) => rcluster::daemon::handoff::check_main(),
        Some(rcluster::serve::SERVE_ARG) => rcluster::serve::main(&hidden_args()),
        Some("__daemon") => report(
            rcluster::paths::Home::from_env().and_then(rcluster::daemon::main),
            false,
        ),
        _ => {
            // At a TAB, the completion scripts run `RCLUSTER_COMPLETE=<shell> rcluster -- <words>`:
            // answered here, and the process exits.
            clap_complete::CompleteEnv::with_factory(rcluster::cli::args::command)
                .var(rcluster::cli::complete::VAR)
                .shells(rcluster::cli::complete::shells())
                .complete();
            let cli = Cli::parse_from(args);
            let verbose = cli.verbose;
            match cli::run(cli) {
                Ok(cli::Outcome::Exit(code)) => code,
                Ok(cli::Outcome::Foreground(apps)) => report(rcluster::run::main(apps), verbose),
                Err(e) => report(Err(e), verbose),
            }
        }
    };
    std::process::exit(code);
}

fn report(result: anyhow::Result<i32>, verbose: bool) -> i32 {
    match result {
        Ok(code) => code,
        Err(e) => {
            if verbose {
                eprintln!("rcluster: error: {e:?}");
            } else {
                eprintln!("rcluster: error: {e:#}");
            }
            1
        }
    }
}
