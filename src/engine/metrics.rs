//! Metrics of the last run for the Prometheus node-exporter textfile collector
//! (`--metrics-file`): Prometheus text format, written atomically (temp file, then rename) so
//! the collector never reads half a file. The consecutive-failure counter and the time of the
//! last success are carried over from the previous file.

use std::fmt::Write as _;
use std::path::Path;

use crate::reconcile::render::Report;

/// What the metrics file says about one run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunMetrics {
    /// Unix time the run started.
    pub start: f64,
    pub duration: f64,
    pub exit_status: u8,
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub issues_seen: usize,
    pub plane_requests: u64,
    pub caldav_requests: u64,
}

impl RunMetrics {
    pub fn from_report(start: f64, exit_status: u8, report: Option<&Report>) -> RunMetrics {
        let report = report.cloned().unwrap_or_default();
        RunMetrics {
            start,
            duration: report.seconds,
            exit_status,
            created: report.created,
            updated: report.updated,
            deleted: report.deleted,
            unchanged: report.unchanged,
            failed: report.failed() + report.errors.len(),
            issues_seen: report.issues_seen,
            plane_requests: report.plane_requests,
            caldav_requests: report.caldav_requests,
        }
    }

    fn success(&self) -> bool {
        self.exit_status == 0
    }
}

/// What is carried over from the previous file.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Carried {
    consecutive_failures: u64,
    last_success: Option<f64>,
}

/// The value of an unlabelled sample `name` in a Prometheus text file.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn carried(previous: Option<&str>) -> Carried {
    let Some(text) = previous else {
        return Carried::default();
    };
    Carried {
        consecutive_failures: sample(text, "calplanebot_consecutive_failed_runs")
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map_or(0, |v| v as u64),
        last_success: sample(text, "calplanebot_last_success_timestamp_seconds")
            .filter(|v| v.is_finite() && *v > 0.0),
    }
}

/// The file's text for `run`, given the previous file's text.
pub fn render(run: &RunMetrics, previous: Option<&str>) -> String {
    let before = carried(previous);
    let (failures, last_success) = if run.success() {
        (0, Some(run.start))
    } else {
        (before.consecutive_failures + 1, before.last_success)
    };
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, samples: &[(&str, String)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    gauge(
        "calplanebot_last_run_start_timestamp_seconds",
        "When the last calplanebot sync started (Unix time).",
        &[("", format!("{:.3}", run.start))],
    );
    gauge(
        "calplanebot_last_run_duration_seconds",
        "How long the last sync took.",
        &[("", format!("{:.3}", run.duration))],
    );
    gauge(
        "calplanebot_last_run_success",
        "1 if the last sync exited 0, else 0.",
        &[("", u8::from(run.success()).to_string())],
    );
    gauge(
        "calplanebot_last_run_exit_status",
        "Exit status of the last sync (see calplanebot --help).",
        &[("", run.exit_status.to_string())],
    );
    gauge(
        "calplanebot_last_run_events",
        "Events of the last sync by what happened to them (failed: writes and calendars or projects that failed).",
        &[
            ("{action=\"created\"}", run.created.to_string()),
            ("{action=\"updated\"}", run.updated.to_string()),
            ("{action=\"deleted\"}", run.deleted.to_string()),
            ("{action=\"unchanged\"}", run.unchanged.to_string()),
            ("{action=\"failed\"}", run.failed.to_string()),
        ],
    );
    gauge(
        "calplanebot_last_run_issues_seen",
        "Work items Plane listed in the last sync (dated or not).",
        &[("", run.issues_seen.to_string())],
    );
    gauge(
        "calplanebot_last_run_requests",
        "HTTP requests the last sync made, by server.",
        &[
            ("{server=\"plane\"}", run.plane_requests.to_string()),
            ("{server=\"caldav\"}", run.caldav_requests.to_string()),
        ],
    );
    gauge(
        "calplanebot_consecutive_failed_runs",
        "Syncs in a row that exited non-zero (0 after a successful one).",
        &[("", failures.to_string())],
    );
    if let Some(at) = last_success {
        gauge(
            "calplanebot_last_success_timestamp_seconds",
            "When the last successful sync started (Unix time).",
            &[("", format!("{at:.3}"))],
        );
    }
    out
}

/// Writes the metrics of `run` to `path`, atomically, readable by the collector (0644 whatever
/// the umask). A failure is logged, never fatal: metrics must not break a sync.
pub fn write(path: &Path, run: &RunMetrics) {
    let previous = std::fs::read_to_string(path).ok();
    let text = render(run, previous.as_deref());
    if let Err(error) = crate::support::atomic_file::write(path, text.as_bytes(), 0o644) {
        log::warn!("cannot write the metrics file {}: {error}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(exit_status: u8) -> RunMetrics {
        RunMetrics {
            start: 1_795_000_000.25,
            duration: 0.5,
            exit_status,
            created: 3,
            updated: 1,
            deleted: 2,
            unchanged: 20,
            failed: 0,
            issues_seen: 30,
            plane_requests: 4,
            caldav_requests: 9,
        }
    }

    #[test]
    fn the_counter_counts_failures_in_a_row_and_a_success_resets_it() {
        let first = render(&run(1), None);
        assert_eq!(
            sample(&first, "calplanebot_consecutive_failed_runs"),
            Some(1.0)
        );
        assert_eq!(
            sample(&first, "calplanebot_last_success_timestamp_seconds"),
            None
        );
        let second = render(&run(5), Some(&first));
        assert_eq!(
            sample(&second, "calplanebot_consecutive_failed_runs"),
            Some(2.0)
        );
        let good = render(&run(0), Some(&second));
        assert_eq!(
            sample(&good, "calplanebot_consecutive_failed_runs"),
            Some(0.0)
        );
        assert_eq!(
            sample(&good, "calplanebot_last_success_timestamp_seconds"),
            Some(1_795_000_000.25)
        );
        // The last success is kept through later failures.
        let later = RunMetrics {
            start: 1_795_000_300.0,
            ..run(1)
        };
        let after = render(&later, Some(&good));
        assert_eq!(
            sample(&after, "calplanebot_last_success_timestamp_seconds"),
            Some(1_795_000_000.25)
        );
    }

    #[test]
    fn a_garbled_previous_file_starts_the_counter_afresh() {
        for garbage in [
            "",
            "calplanebot_consecutive_failed_runs -3",
            "calplanebot_consecutive_failed_runs NaN",
            "\u{0}\u{1}",
        ] {
            let text = render(&run(1), Some(garbage));
            assert_eq!(
                sample(&text, "calplanebot_consecutive_failed_runs"),
                Some(1.0),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn the_file_is_replaced_whole_and_readable_by_the_collector() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("calplanebot-metrics-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("calplanebot.prom");
        write(&path, &run(1));
        write(&path, &run(1));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            sample(&text, "calplanebot_consecutive_failed_runs"),
            Some(2.0)
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temp file left"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
