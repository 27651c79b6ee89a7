//! The commands a person or a scheduler runs: `sync` (the whole pipeline), `webhook` (one Plane
//! delivery → one targeted reconcile), `check` (configuration and reachability, writes
//! nothing) and `feeds` (the subscription URLs to hand out). Each is glue over the rooms below;
//! `main` dispatches to them. `config`, `completions` and `man` print what `cli` defines.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::FromArgMatches as _;

use crate::cli::{self, Cli, Command};
use crate::config::Config;
use crate::exit::Status;

pub mod check;
pub mod feeds;
pub mod sync;
pub mod webhook;

/// The whole program: parse, configure logging, run, map the outcome to an exit status.
pub fn main<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match cli::command()
        .try_get_matches_from(args)
        .and_then(|matches| Cli::from_arg_matches(&matches))
    {
        Ok(cli) => cli,
        Err(err) => {
            // --help and --version are "errors" to clap that exit 0.
            let _ = err.print();
            return if err.use_stderr() {
                Status::Usage.into()
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    cli::init_logging(cli.verbose, cli.quiet);
    match &cli.command {
        Command::Completions { shell } => {
            let mut command = cli::command();
            clap_complete::generate(*shell, &mut command, "calplanebot", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Command::Man => {
            return match cli::man_page(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    log::error!("cannot write the man page: {error}");
                    Status::Usage.into()
                }
            };
        }
        Command::Config => {
            print!("{}", cli::settings_table(&cli::command()));
            return ExitCode::SUCCESS;
        }
        Command::Check => return check::run(&cli.connection, &cli.behaviour).into(),
        Command::Sync(_) | Command::Webhook(_) | Command::Feeds { .. } => {}
    }
    let config = match Config::from_args(&cli.connection, &cli.behaviour) {
        Ok(config) => config,
        Err(errors) => {
            // One log line per problem: the logger escapes line breaks.
            for line in errors.to_string().lines() {
                log::error!("{line}");
            }
            return Status::Usage.into();
        }
    };
    let status = match &cli.command {
        Command::Sync(args) => sync::run(&config, args),
        Command::Webhook(args) => webhook::run(&config, args),
        Command::Feeds {
            format,
            revoke,
            rotate_secret,
            take_over,
        } => feeds::run(
            &config,
            *format,
            &feeds::Changes {
                revoke: revoke.clone(),
                rotate_secret: *rotate_secret,
                take_over: *take_over,
            },
        ),
        Command::Check | Command::Config | Command::Completions { .. } | Command::Man => {
            unreachable!("handled before the configuration is built")
        }
    };
    status.into()
}
