//! Plumbing that every room may use: HTTP retries and timeouts ([`http`]), the run lock
//! ([`lock`]), the calendar-location cache ([`cache`]), whole-or-nothing file writes
//! ([`atomic_file`]), the metrics file ([`metrics`]), progress bars ([`progress`]) and the listing snapshot
//! ([`snapshot`]).

pub mod atomic_file;
pub mod cache;
pub mod http;
pub mod lock;
pub mod metrics;
pub mod progress;
pub mod snapshot;
