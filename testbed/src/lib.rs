//! Test and demo support for calplanebot: the real components a run needs, started for real.
//!
//! - [`plane_sim`]: an in-process Plane API simulator, faithful to `shared/plane-api.md`.
//! - [`radicale`]: installs Radicale into a git-ignored virtual environment and starts it.
//! - [`proxy`]: a counting HTTP proxy placed in front of a CalDAV server.
//! - [`webhook_shim`]: starts the real `webhook` server with the repository's hooks file.

pub mod calendar_user;
mod launch;
pub mod plane_sim;
pub mod proxy;
pub mod radicale;
pub mod webhook_shim;
