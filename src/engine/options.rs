//! What every step of a run shares: how it plans and prints ([`Options`]), which projects it
//! reconciles ([`Selection`]), why it stopped early ([`Abort`]) and how it ended ([`Outcome`]).

use crate::caldav::CalDavError;
use crate::cli::{Format, SyncArgs};
use crate::exit::Status;
use crate::plane::PlaneError;
use crate::reconcile::plan;
use crate::reconcile::render::Report;

/// Why a run stopped before it could plan anything.
#[derive(Debug, thiserror::Error)]
pub enum Abort {
    #[error("{0}")]
    Plane(#[from] PlaneError),
    #[error("{0}")]
    CalDav(#[from] CalDavError),
    #[error("{0}")]
    Usage(String),
    /// Plane answered, but with something calplanebot cannot read (a webhook's one work item):
    /// nothing is changed, and the run failed.
    #[error("{0}")]
    Unreadable(String),
}

impl Abort {
    pub fn status(&self) -> Status {
        match self {
            Abort::Usage(_) => Status::Usage,
            Abort::Unreadable(_) => Status::PartialFailure,
            Abort::Plane(_) | Abort::CalDav(_) => Status::Unavailable,
        }
    }
}

/// How a run plans and prints, shared by `sync` and `webhook`.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub dry_run: bool,
    pub format: Format,
    pub guard: plan::GuardLimits,
}

impl From<&SyncArgs> for Options {
    fn from(args: &SyncArgs) -> Options {
        Options {
            dry_run: args.dry_run,
            format: args.format,
            guard: plan::GuardLimits {
                max_delete: args.guard.max_delete,
                max_percent: args.guard.max_delete_percent,
                force: args.force_delete,
            },
        }
    }
}

/// Which projects (or which one work item) a run reconciles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Every syncable project (a full sync: the cache is rewritten from scratch).
    All,
    /// `--project`: each must match a syncable project, else a usage error.
    Named(Vec<String>),
    /// A project webhook: a project that is not syncable (archived, deleted, not a member)
    /// means nothing to do.
    Hinted(String),
    /// An issue webhook: one work item, read by id, in the project the delivery names (`None`
    /// for a deletion, which names none: the run selects the project that holds its event).
    Issue { id: String, project: Option<String> },
}

/// How a reconcile ended: its status, and its report when it got as far as planning.
pub struct Outcome {
    pub status: Status,
    pub report: Option<Report>,
}

impl Outcome {
    /// A run that ended before it had anything to report.
    pub fn early(status: Status) -> Outcome {
        Outcome {
            status,
            report: None,
        }
    }
}
