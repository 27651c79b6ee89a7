//! Plumbing that every room may use and that knows nothing of Plane, CalDAV or feeds: HTTP
//! retries and timeouts ([`http`]), the run lock ([`lock`]), whole-or-nothing file writes
//! ([`atomic_file`]), progress bars ([`progress`]) and the small text rules ([`text`]).

pub mod atomic_file;
pub mod http;
pub mod lock;
pub mod progress;
pub mod text;
