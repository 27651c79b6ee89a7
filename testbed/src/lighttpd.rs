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
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Where the Debian package `lighttpd` installs the server.
pub const LIGHTTPD_EXECUTABLE: &str = "/usr/sbin/lighttpd";

/// How long a fresh server may take to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Logged by lighttpd once its listening socket is bound.
const SERVER_STARTED: &str = "server started";

/// The config file lighttpd is started with, in the server's private directory.
pub(crate) const CONFIG_FILE: &str = "lighttpd.conf";

/// The error log the config must name (`server.errorlog`), in the private directory;
/// lighttpd's stdout and stderr go there too (startup errors such as a port already in use are
/// written before the log is opened).
pub(crate) const ERROR_LOG: &str = "error.log";

/// One lighttpd to start: its private directory (the working directory, holding [`CONFIG_FILE`]
/// and [`ERROR_LOG`]), its config and the address the config binds.
pub(crate) struct Lighttpd<'a> {
    pub(crate) dir: &'a Path,
    /// Written to [`CONFIG_FILE`] before lighttpd starts.
    pub(crate) config_text: &'a str,
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
        let config_path = self.dir.join(CONFIG_FILE);
        let log_path = self.dir.join(ERROR_LOG);
        fs::write(&config_path, self.config_text)?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let log_start = log.metadata()?.len();
        let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
        let argv = [
            LIGHTTPD_EXECUTABLE.as_ref(),
            "-D".as_ref(),
            "-f".as_ref(),
            config_path.as_os_str(),
        ];
        let mut server = Watchdog::spawn("lighttpd-watchdog", &argv, &log, |command| {
            command.env_clear().env("PATH", &path).current_dir(self.dir);
        })?;
        let startup = Startup {
            server: "lighttpd",
            addr: self.addr,
            log_path: &log_path,
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
            let started = log_tail(&log_path, log_start).contains(SERVER_STARTED);
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

/// `s` as a lighttpd config string. Quotes, backslashes and control characters are refused
/// rather than escaped: none belongs in a path or a user name here.
pub(crate) fn config_string(s: &str) -> io::Result<String> {
    if s.chars().any(|c| c == '"' || c == '\\' || c.is_control()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{s:?} cannot go into lighttpd.conf (quote, backslash or control character)"),
        ));
    }
    Ok(format!("\"{s}\""))
}

/// The config line that writes the access log to `path` through a pipe, because lighttpd
/// buffers an access log file for up to 4 s. The pipe is a shell command with `path` in single
/// quotes, so a path holding one is refused.
pub(crate) fn access_log_setting(path: &Path) -> io::Result<String> {
    let path = path.to_string_lossy();
    if path.contains('\'') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("temp directory path {path:?} contains a single quote"),
        ));
    }
    Ok(format!(
        "accesslog.filename = {}",
        config_string(&format!("|exec cat >> '{path}'"))?
    ))
}
