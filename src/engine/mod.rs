//! The engine: the one pipeline that `sync` and `webhook` both run — select and fetch (Plane),
//! resolve members and views, survey and list each target, plan, guard, apply, report — and
//! the memory it keeps between runs (the calendar-location cache, the listing and Plane
//! snapshots, the metrics file). `sync` runs it over every project ([`run::reconcile`]), a project webhook
//! over one project, an issue webhook over one issue (the same function, with [`issue`]'s
//! narrow forms of select, list and the feed write). `commands/` parse their arguments, call
//! it and print.

pub mod cache;
pub mod caldav_target;
pub mod feed_target;
pub mod issue;
pub mod listing;
pub mod metrics;
pub mod options;
pub mod plane_snapshot;
pub mod run;
pub mod snapshot;
pub mod source;
