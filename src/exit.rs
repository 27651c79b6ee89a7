//! Exit statuses: chosen in one place, documented in the README and `--help`.
//!
//! A scheduler (systemd, cron) only sees this number, so every outcome an operator must tell
//! apart gets its own value. Usage errors share clap's own status 2.

use std::process::ExitCode;

/// The outcome of one run, as the process exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Everything was fetched, planned and applied (or, with `--dry-run`, planned).
    Success,
    /// The run went on past failures (a project that could not be fetched, a calendar that
    /// could not be listed, a write that failed); the rest was synced. Details are on stderr
    /// and in the summary.
    PartialFailure,
    /// Bad command line or configuration (a missing variable, an unreadable `_FILE`, a bad URL).
    Usage,
    /// The deletion guard refused this run's deletions (creates and updates still happened).
    /// Check Plane, then re-run with `--force-delete` if the deletions are right.
    Refused,
    /// Another run with the same configuration holds the lock.
    LockBusy,
    /// A server could not be reached or refused the credentials before anything was changed.
    Unavailable,
    /// `webhook`: the delivery's signature is missing or wrong, no secret is configured to check
    /// it, or the delivery is not one calplanebot can read; nothing was fetched, nothing written.
    Rejected,
    /// `sync --dry-run --exit-code`: the plan has changes (nothing was written).
    Pending,
}

impl Status {
    pub const fn code(self) -> u8 {
        match self {
            Status::Success => 0,
            Status::PartialFailure => 1,
            Status::Usage => 2,
            Status::Refused => 3,
            Status::LockBusy => 4,
            Status::Unavailable => 5,
            Status::Rejected => 6,
            Status::Pending => 7,
        }
    }
}

impl Status {
    /// The status of a run from its targets' (CalDAV, feeds): one target's is the run's; when
    /// both ran, a failure of either while the other went on is a partial failure, and a
    /// refused deletion on one side with success on the other is a refusal.
    pub fn combine(targets: &[Status]) -> Status {
        match targets {
            [] => Status::Success,
            [one] => *one,
            [first, rest @ ..] if rest.iter().all(|s| s == first) => *first,
            _ if targets
                .iter()
                .all(|s| matches!(s, Status::Success | Status::Refused)) =>
            {
                Status::Refused
            }
            _ => Status::PartialFailure,
        }
    }
}

impl From<Status> for ExitCode {
    fn from(status: Status) -> ExitCode {
        ExitCode::from(status.code())
    }
}

/// The exit-status table shown at the end of `--help`.
pub const HELP_TABLE: &str = "\
Exit status:
  0  success (with --dry-run: the plan was computed)
  1  partial failure: some projects, calendars or writes failed, the rest was synced
  2  usage or configuration error (also: CALPLANEBOT_FEED_DIR is written by
     another configuration or with another secret; nothing was changed)
  3  the deletion guard refused this run's deletions (the rest was synced);
     check Plane, then re-run with --force-delete if the deletions are right
  4  another calplanebot run with this configuration holds the lock, or another
     run is writing the feed directory
  5  a server could not be reached or refused the credentials; nothing was changed
  6  webhook: the delivery was rejected (missing or wrong signature, no
     PLANE_WEBHOOK_SECRET to check it, or not a Plane delivery); nothing was
     fetched or written
  7  sync --dry-run --exit-code: the plan has changes (nothing was written)
When both 1 and 3 apply, the status is 1.";

#[cfg(test)]
mod tests {
    use super::Status::{self, *};

    #[test]
    fn the_targets_statuses_combine_into_the_runs() {
        assert_eq!(Status::combine(&[]), Success);
        for one in [Success, PartialFailure, Refused, Unavailable] {
            assert_eq!(Status::combine(&[one]), one, "feeds or CalDAV alone");
            assert_eq!(Status::combine(&[one, one]), one);
        }
        assert_eq!(Status::combine(&[Success, Refused]), Refused);
        assert_eq!(Status::combine(&[Refused, Success]), Refused);
        assert_eq!(Status::combine(&[Unavailable, Success]), PartialFailure);
        assert_eq!(Status::combine(&[Success, PartialFailure]), PartialFailure);
        assert_eq!(Status::combine(&[Refused, PartialFailure]), PartialFailure);
    }
}
