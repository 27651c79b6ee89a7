//! What the two lighttpd servers ([`crate::digest_front`], [`crate::feed_server`]) share: the
//! start-up of lighttpd in the foreground, under the `sh` watchdog, from a config file in the
//! server's private directory, and the wait until it is bound and answers as it should.
//!
//! Why one launcher: both run the same binary the same way (`-D -f lighttpd.conf`, an empty
//! environment but `PATH`, the private directory as working directory) and know the same sign
//! that the listening socket is bound ([`SERVER_STARTED`] in the error log); they differ only in
//! the config and in the answer that says the server is ready.

use crate::launch::{LaunchError, Probe, Startup, Watchdog, log_tail};
use std::fs::{self, OpenOptions};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Where the Debian package `lighttpd` installs the server.
pub const LIGHTTPD_EXECUTABLE: &str = "/usr/sbin/lighttpd";

/// How long a fresh server may take to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Logged by lighttpd once its listening socket is bound.
const SERVER_STARTED: &str = "server started";

/// One lighttpd to start: its private directory (the working directory), its files and the
/// address its config binds.
pub(crate) struct Lighttpd<'a> {
    pub(crate) dir: &'a Path,
    /// Written with [`Lighttpd::config_text`] before lighttpd starts.
    pub(crate) config_path: &'a Path,
    pub(crate) config_text: &'a str,
    /// The config's `server.errorlog`; lighttpd's stdout and stderr go there too (startup
    /// errors such as a port already in use are written before the log is opened).
    pub(crate) log_path: &'a Path,
    pub(crate) addr: SocketAddr,
    /// What the server failed to become in time, for the error ("refusing to list its
    /// directory").
    pub(crate) awaited: &'a str,
}

impl Lighttpd<'_> {
    /// Writes the config, starts lighttpd under the watchdog and waits up to 10 s until it has
    /// logged [`SERVER_STARTED`] and `ready` says it answers as it should. On error the server
    /// is stopped; the error holds the log's tail.
    pub(crate) fn start(&self, mut ready: impl FnMut() -> bool) -> Result<Watchdog, LaunchError> {
        fs::write(self.config_path, self.config_text)?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path)?;
        let log_start = log.metadata()?.len();
        let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
        let argv = [
            LIGHTTPD_EXECUTABLE.as_ref(),
            "-D".as_ref(),
            "-f".as_ref(),
            self.config_path.as_os_str(),
        ];
        let mut server = Watchdog::spawn("lighttpd-watchdog", &argv, &log, |command| {
            command.env_clear().env("PATH", &path).current_dir(self.dir);
        })?;
        let startup = Startup {
            server: "lighttpd",
            addr: self.addr,
            log_path: self.log_path,
            log_start,
            timeout: READY_TIMEOUT,
            poll: Duration::from_millis(20),
            awaited: self.awaited,
        };
        let result = startup.wait(|| {
            if let Some(status) = server.exit_status() {
                return Probe::Exited(status);
            }
            // The line is logged once the socket is bound, so whatever answers is ours.
            let started = log_tail(self.log_path, log_start).contains(SERVER_STARTED);
            if started && ready() {
                Probe::Ready
            } else {
                Probe::NotYet
            }
        });
        match result {
            Ok(()) => Ok(server),
            Err(e) => {
                server.stop();
                Err(e)
            }
        }
    }
}
