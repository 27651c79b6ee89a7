//! calplanebot: mirror every Plane issue that has a due date into CalDAV calendars.
//!
//! One run is a pipeline (see `shared/design.md`), and the folders are its rooms: the source
//! ([`plane`]) fetches the desired state; [`mapping`] turns issues into VEVENTs; the target
//! ([`caldav`]) lists what calplanebot owns and writes; [`reconcile`] places, plans, prints and
//! applies; [`feed`] is the second target; [`engine`] runs the one pipeline that `sync` and
//! `webhook` share; [`commands`] are the glue a person runs; [`support`] is the plumbing. [`cli`] and
//! [`config`] turn the command line into a validated configuration, and [`exit`] owns the exit
//! statuses.

pub mod caldav;
pub mod cli;
pub mod commands;
pub mod config;
pub mod engine;
pub mod exit;
pub mod feed;
pub mod mapping;
pub mod plane;
pub mod reconcile;
pub mod support;
