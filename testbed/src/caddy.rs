//! Starts Caddy (the Debian package `caddy`, 2.6 in Debian 12) serving a feed directory with
//! the site block README.md gives an operator, so that tests/serving.rs checks what an operator
//! who copies it gets.
//!
//! The Caddyfile is README.md's site block as it is but for one placeholder, the feed directory
//! ([`README_FEED_DIR`], which becomes the caller's; a README without it is an error), after a
//! global options block of ours that stands in for what an operator's machine has:
//! - `http_port`, `https_port` and `default_bind 127.0.0.1`: free loopback ports for 80 and 443;
//! - `local_certs` and `skip_install_trust`: the certificate for [`SITE_NAME`] comes from
//!   Caddy's own local CA instead of Let's Encrypt, through the same automatic HTTPS that gets
//!   an operator theirs and redirects port 80, and the CA's root (which the client trusts, and
//!   nothing else) is not put into the system's trust store;
//! - `admin off`, `servers { protocols h1 h2 }`: no admin endpoint, no HTTP/3 socket.
//!
//! Caddy runs in the foreground (`caddy run`) under the `sh` watchdog with `HOME` and the XDG
//! directories (its storage, certificates, autosaved config) in a private directory, removed on
//! drop unless the start failed or the thread is panicking.

use crate::feed_server::FeedResponse;
use crate::https_site::{README_FEED_DIR, SITE_NAME, SiteClient, config_path, fill_in};
use crate::launch::{
    Launch, LaunchError, Probe, Startup, Watchdog, free_loopback_port, log_tail, remove_server_dir,
    start_on_free_port, unique_temp_dir,
};
use std::fs::{self, OpenOptions};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the Debian package `caddy` installs the server.
pub const CADDY_EXECUTABLE: &str = "/usr/bin/caddy";

/// How long a fresh Caddy may take to answer (its CA and certificate are made at start).
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Logged by Caddy once its configuration runs.
const SERVER_STARTED: &str = "serving initial configuration";

/// Caddy's output (JSON lines) in the private directory.
const LOG: &str = "caddy.log";

/// The root certificate of Caddy's local CA, under `XDG_DATA_HOME`.
const LOCAL_ROOT: &str = "data/caddy/pki/authorities/local/root.crt";

/// A running Caddy serving README.md's site for one feed directory on 127.0.0.1.
pub struct CaddySite {
    site_config: String,
    served: PathBuf,
    dir: PathBuf,
    server: Option<Watchdog>,
    client: Option<SiteClient>,
    keep_dir: bool,
}

impl CaddySite {
    /// Starts Caddy with `site_config` (README.md's site block, placeholder and all) serving
    /// `feed_dir`, on free loopback ports, and returns once it answers over HTTPS. Fails if
    /// `/usr/bin/caddy` is missing (scripts/test installs the Debian package `caddy`), if the
    /// placeholder is missing from `site_config`, or if Caddy does not come up within 20 s (the
    /// error holds the log's tail).
    pub fn start(site_config: &str, feed_dir: &Path) -> io::Result<CaddySite> {
        if !Path::new(CADDY_EXECUTABLE).is_file() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{CADDY_EXECUTABLE} not found: install the Debian package `caddy` \
                     (scripts/test does; by hand: apt-get install caddy)"
                ),
            ));
        }
        let served = fs::canonicalize(feed_dir)?;
        config_path(&served)?;
        let mut site = CaddySite {
            site_config: site_config.to_string(),
            served,
            dir: unique_temp_dir("caddy")?,
            server: None,
            client: None,
            keep_dir: false,
        };
        start_on_free_port(&mut site)?;
        Ok(site)
    }

    /// The client of this site: [`SITE_NAME`] on its HTTPS and plain HTTP ports.
    pub fn client(&self) -> &SiteClient {
        self.client
            .as_ref()
            .expect("CaddySite::start returns once the client is made")
    }

    /// `GET {path}` over HTTPS; see [`SiteClient::get`].
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> io::Result<FeedResponse> {
        self.client().get(path, headers)
    }

    /// The server's own directory: `Caddyfile`, `caddy.log`, the XDG directories.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Caddy's output.
    pub fn log(&self) -> String {
        crate::digest_front::read_lossy(&self.dir.join(LOG))
    }

    /// The Caddyfile: our global options, then README.md's site block, filled in.
    fn config_text(&self, https: SocketAddr, http: SocketAddr) -> io::Result<String> {
        let site = fill_in(
            &self.site_config,
            README_FEED_DIR,
            config_path(&self.served)?,
            "caddy",
        )?;
        Ok(format!(
            "# Written by calplanebot-testbed (caddy.rs): our global options, README.md's site.\n\
             {{\n\
             \tadmin off\n\
             \tlocal_certs\n\
             \tskip_install_trust\n\
             \thttp_port {}\n\
             \thttps_port {}\n\
             \tdefault_bind {}\n\
             \tservers {{\n\
             \t\tprotocols h1 h2\n\
             \t}}\n\
             }}\n\
             \n# README.md, filled in:\n{}\n",
            http.port(),
            https.port(),
            https.ip(),
            site.trim_end(),
        ))
    }

    fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }
}

impl Launch for CaddySite {
    /// Starts Caddy with HTTPS on `addr` and plain HTTP on another free port, and waits until
    /// its local CA's root exists and the site answers over HTTPS with a certificate from it.
    fn launch_on(&mut self, addr: SocketAddr) -> Result<(), LaunchError> {
        let http = free_loopback_port()?;
        let caddyfile = self.dir.join("Caddyfile");
        fs::write(&caddyfile, self.config_text(addr, http)?)?;
        let log_path = self.dir.join(LOG);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let log_start = log.metadata()?.len();
        let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
        let argv = [
            CADDY_EXECUTABLE.as_ref(),
            "run".as_ref(),
            "--config".as_ref(),
            caddyfile.as_os_str(),
            "--adapter".as_ref(),
            "caddyfile".as_ref(),
        ];
        let dir = self.dir.clone();
        let mut server = Watchdog::spawn("caddy-watchdog", &argv, &log, |command| {
            command
                .env_clear()
                .env("PATH", &path)
                .env("HOME", dir.join("home"))
                .env("XDG_DATA_HOME", dir.join("data"))
                .env("XDG_CONFIG_HOME", dir.join("config"))
                .current_dir(&dir);
        })?;
        let startup = Startup {
            server: "caddy",
            addr,
            log_path: &log_path,
            log_start,
            timeout: READY_TIMEOUT,
            poll: Duration::from_millis(20),
            awaited: "answering over HTTPS",
        };
        let root = self.dir.join(LOCAL_ROOT);
        let mut client = None;
        let result = startup.wait(|| {
            if let Some(status) = server.exit_status() {
                return Probe::Exited(status);
            }
            if !log_tail(&log_path, log_start).contains(SERVER_STARTED) || !root.is_file() {
                return Probe::NotYet;
            }
            if client.is_none() {
                client = SiteClient::new(addr, http, &root).ok();
            }
            // The site's certificate is issued a moment after the start: until then the
            // handshake fails.
            match &client {
                Some(client) if client.get("/", &[]).is_ok() => Probe::Ready,
                _ => Probe::NotYet,
            }
        });
        match result {
            Ok(()) => {
                self.server = Some(server);
                self.client = client;
                Ok(())
            }
            Err(e) => {
                server.stop();
                Err(e)
            }
        }
    }

    fn keep_dir(&mut self) {
        self.keep_dir = true;
    }
}

impl Drop for CaddySite {
    fn drop(&mut self) {
        self.stop();
        remove_server_dir(&self.dir, "caddy", self.keep_dir);
    }
}

impl std::fmt::Debug for CaddySite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaddySite")
            .field("site", &SITE_NAME)
            .field("client", &self.client)
            .field("served", &self.served)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}
