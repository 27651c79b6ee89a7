//! calplanebot: mirror every Plane issue that has a due date into CalDAV calendars.
//!
//! One run is a pipeline (see `shared/design.md`): [`plane`] fetches the desired state,
//! [`event`] maps issues to VEVENTs, [`placement`] says which calendar each project's events
//! belong in, [`caldav`] lists what calplanebot owns, [`plan`] decides create/update/delete,
//! [`render`] prints the plan, [`apply`] carries it out. [`sync`] and [`webhook`] are the glue,
//! [`cli`] and [`config`] turn the command line into a validated configuration, and [`exit`]
//! owns the exit statuses.

pub mod apply;
pub mod atomic_file;
pub mod cache;
pub mod caldav;
pub mod check;
pub mod cli;
pub mod config;
pub mod event;
pub mod exit;
pub mod html;
pub mod http;
pub mod ics;
pub mod lock;
pub mod metrics;
pub mod placement;
pub mod plan;
pub mod plane;
pub mod progress;
pub mod render;
pub mod sync;
pub mod webhook;
