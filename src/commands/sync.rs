//! `calplanebot sync`: the engine's pipeline over every project (or the `--project` ones), then
//! the exit status (`--exit-code`) and the metrics file.

use crate::cli::SyncArgs;
use crate::config::Config;
use crate::engine::metrics;
use crate::engine::options::{Options, Selection};
use crate::engine::run::reconcile;
use crate::exit::Status;

pub fn run(config: &Config, args: &SyncArgs) -> Status {
    let selection = if args.projects.is_empty() {
        Selection::All
    } else {
        Selection::Named(args.projects.clone())
    };
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let outcome = reconcile(config, &Options::from(args), &selection);
    let status = match (&outcome.report, outcome.status) {
        (Some(report), Status::Success) if args.exit_code && report.planned > 0 => Status::Pending,
        (_, status) => status,
    };
    // A dry run leaves the metrics alone (a preview must not hide the real runs' state), and
    // so does a run that found the lock taken (the run holding it will write them).
    if let Some(path) = &args.metrics_file
        && !args.dry_run
        && status != Status::LockBusy
    {
        let run = metrics::RunMetrics::from_report(start, status.code(), outcome.report.as_ref());
        metrics::write(path, &run);
    }
    status
}
