//! Test and demo support for calplanebot: the real components a run needs, started for real.
//!
//! - [`plane_sim`]: an in-process Plane API simulator, faithful to `shared/plane-api.md`.
//! - [`caldav_server`]: one API over both real CalDAV servers, so tests run against each.
//! - [`radicale`]: installs Radicale into a git-ignored virtual environment and starts it.
//! - [`xandikos`]: installs Xandikos there too and starts it with its own TLS and Basic auth.
//! - [`proxy`]: a counting HTTP(S) proxy placed in front of a CalDAV server.
//! - [`calendar_user`]: the calendar app's view, to look at what calplanebot left behind.
//! - [`demo`]: the demo's guided tour, run by `examples/demo.rs` and checked by `tests/demo.rs`.
//! - [`webhook_shim`]: starts the real `webhook` server with the repository's hooks file.
//! - [`digest_front`]: lighttpd demanding HTTP Digest (MD5, SHA-256) in front of a CalDAV server.
//! - [`feed_server`]: lighttpd serving a feed directory as static files, as a deployment would.
//! - [`nginx`], [`caddy`]: the real nginx and Caddy serving a feed directory over HTTPS with the
//!   configuration README.md gives (its placeholders filled in), reached by the site's name
//!   through [`https_site`]'s client.
//! - [`feed_readers`]: two real iCalendar parsers calendar apps use (ical.js, Python
//!   `icalendar`), each fetching a feed over HTTP and reporting what it read as JSON.
//! - [`downgrade`]: an HTTPS listener that points its clients to plain HTTP on the same host,
//!   like Nextcloud behind a TLS proxy without `overwriteprotocol`, and the listener it points to.

pub mod caddy;
pub mod caldav_server;
pub mod calendar_user;
pub mod demo;
pub mod digest_front;
pub mod downgrade;
pub mod feed_readers;
pub mod feed_server;
pub mod https_site;
mod launch;
mod lighttpd;
pub mod nginx;
pub mod plane_sim;
pub mod proxy;
pub mod radicale;
pub mod webhook_shim;
pub mod xandikos;
