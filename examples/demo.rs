//! The demo: a whole calplanebot sync on a machine with no Plane or CalDAV server of your own,
//! told as a guided tour in one or two screens.
//!
//! It starts the project's Plane simulator (seeded from `examples/demo-workspace.json`), a real
//! Radicale (installed into `./.venv` on first use) and a real lighttpd serving a temporary feed
//! directory, then runs calplanebot's real `sync` with both targets, CalDAV and subscription
//! feeds: the first sync, the feeds to hand out, a sync with nothing changed, three edits in
//! "Plane" previewed with `--dry-run`, and the sync that applies them. The tour itself lives in
//! `calplanebot_testbed::demo`, where `tests/demo.rs` runs it too.
//!
//! Each calplanebot run is a child process running the real binary's code: this program started
//! again with `calplanebot` as its first argument, which hands the rest to
//! `calplanebot::commands::main`.
//!
//! Run: `scripts/demo` (installs what is missing first), or `cargo run --example demo`.
//! `--serve` keeps the servers running so you can point a calendar app at Radicale or subscribe
//! to a feed; `--verbose` prints each calplanebot run's full output. Without lighttpd (the Debian
//! package `lighttpd`) the feeds are written but not served.

use std::process::{Command, ExitCode};

use calplanebot_testbed::demo::{self, Options};

const USAGE: &str = "usage: scripts/demo [--serve] [--verbose]
  --serve    keep the servers running after the tour, until Ctrl-C
  --verbose  print each calplanebot run's full output (plan with field diffs, feed diffs, log)";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1).peekable();
    if args.peek().is_some_and(|first| first == "calplanebot") {
        // One of the tour's calplanebot runs.
        return calplanebot::commands::main(args);
    }
    let mut options = Options {
        seed: concat!(env!("CARGO_MANIFEST_DIR"), "/examples/demo-workspace.json").into(),
        verbose: false,
        serve: false,
    };
    for arg in args {
        match arg.to_str() {
            Some("--serve") => options.serve = true,
            Some("--verbose") => options.verbose = true,
            Some("-h" | "--help") => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("demo: unknown argument {arg:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(error) => {
            eprintln!("demo: cannot find this program to run it as calplanebot: {error}");
            return ExitCode::FAILURE;
        }
    };
    let calplanebot = || {
        let mut command = Command::new(&exe);
        command.arg("calplanebot");
        command
    };
    match demo::run(&options, &calplanebot, &mut std::io::stdout()) {
        Ok(servers) => {
            if options.serve {
                let _running = servers;
                loop {
                    std::thread::park();
                }
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("demo: {error}");
            ExitCode::FAILURE
        }
    }
}
