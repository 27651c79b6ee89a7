//! Starts nginx (the Debian package `nginx`, 1.22 in Debian 12) serving a feed directory with
//! the site configuration README.md gives an operator, so that tests/serving.rs checks what an
//! operator who copies it gets.
//!
//! The configuration is README.md's `server` blocks as they are, but for their placeholders
//! ([`LISTEN_HTTP`], [`LISTEN_HTTPS`], [`CERTIFICATE`], [`CERTIFICATE_KEY`],
//! [`README_FEED_DIR`]): the two ports become free loopback ports, the certificate one made for
//! [`SITE_NAME`] with openssl, the directory the caller's. A placeholder the README no longer
//! has is an error, so the README and the test cannot drift apart.
//!
//! The blocks go into the `http` context of a main configuration of our own, as Debian's
//! nginx.conf includes `sites-enabled/*`: with Debian's `http` settings that matter to a static
//! file (`sendfile`, `tcp_nopush`, `mime.types`, `default_type`) but not its `gzip on`, so that
//! the README's block has to turn compression on itself. nginx runs in the foreground
//! (`daemon off;`) under the `sh` watchdog, with its prefix, pid file, logs and temporary paths
//! in a private directory, removed on drop unless the start failed or the thread is panicking.
//! Started by root, nginx runs its worker as `nobody` (its built-in default; Debian's nginx.conf
//! says www-data): the worker then reads the feed directory as a web server does, as "others".

use crate::feed_server::FeedResponse;
use crate::https_site::{self, README_FEED_DIR, SITE_NAME, SiteClient, config_path, fill_in};
use crate::launch::{
    Launch, LaunchError, Probe, Startup, Watchdog, free_loopback_port, log_tail, remove_server_dir,
    start_on_free_port, unique_temp_dir,
};
use std::fs::{self, OpenOptions};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the Debian package `nginx` installs the server.
pub const NGINX_EXECUTABLE: &str = "/usr/sbin/nginx";

/// README.md's plain-HTTP listener (the redirect to HTTPS); becomes `listen 127.0.0.1:PORT;`.
pub const LISTEN_HTTP: &str = "listen 80;";
/// README.md's HTTPS listener; becomes `listen 127.0.0.1:PORT ssl;`.
pub const LISTEN_HTTPS: &str = "listen 443 ssl;";
/// README.md's certificate chain (certbot's path); becomes the test's certificate.
pub const CERTIFICATE: &str = "/etc/letsencrypt/live/cal.example.com/fullchain.pem";
/// README.md's certificate key; becomes the test's key.
pub const CERTIFICATE_KEY: &str = "/etc/letsencrypt/live/cal.example.com/privkey.pem";

/// How long a fresh nginx may take to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Logged by nginx once its sockets are bound and its worker is being started.
const SERVER_STARTED: &str = "start worker process";

/// The error log in the private directory; nginx's stdout and stderr go there too.
const ERROR_LOG: &str = "error.log";

/// A running nginx serving README.md's site for one feed directory on 127.0.0.1.
pub struct NginxSite {
    site_config: String,
    served: PathBuf,
    dir: PathBuf,
    certificate: PathBuf,
    key: PathBuf,
    server: Option<Watchdog>,
    client: Option<SiteClient>,
    keep_dir: bool,
}

impl NginxSite {
    /// Starts nginx with `site_config` (README.md's `server` blocks, placeholders and all)
    /// serving `feed_dir`, on free loopback ports, and returns once it answers over HTTPS.
    /// Fails if `/usr/sbin/nginx` is missing (scripts/test installs the Debian package `nginx`),
    /// if a placeholder is missing from `site_config`, or if nginx does not come up within 10 s
    /// (the error holds the log's tail).
    pub fn start(site_config: &str, feed_dir: &Path) -> io::Result<NginxSite> {
        if !Path::new(NGINX_EXECUTABLE).is_file() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{NGINX_EXECUTABLE} not found: install the Debian package `nginx` \
                     (scripts/test does; by hand: apt-get install nginx)"
                ),
            ));
        }
        let served = fs::canonicalize(feed_dir)?;
        config_path(&served)?;
        let dir = unique_temp_dir("nginx")?;
        let mut site = NginxSite {
            site_config: site_config.to_string(),
            served,
            certificate: PathBuf::new(),
            key: PathBuf::new(),
            server: None,
            client: None,
            keep_dir: false,
            dir,
        };
        config_path(&site.dir)?;
        (site.certificate, site.key) = https_site::make_certificate(&site.dir)?;
        start_on_free_port(&mut site)?;
        Ok(site)
    }

    /// The client of this site: [`SITE_NAME`] on its HTTPS and plain HTTP ports.
    pub fn client(&self) -> &SiteClient {
        self.client
            .as_ref()
            .expect("NginxSite::start returns once the client is made")
    }

    /// `GET {path}` over HTTPS; see [`SiteClient::get`].
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> io::Result<FeedResponse> {
        self.client().get(path, headers)
    }

    /// The server's own directory: `nginx.conf`, the certificate, `error.log`, `access.log`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The error log, with nginx's own output.
    pub fn log(&self) -> String {
        crate::digest_front::read_lossy(&self.dir.join(ERROR_LOG))
    }

    /// The main configuration nginx runs with: ours around README.md's blocks, filled in.
    fn config_text(&self, https: SocketAddr, http: SocketAddr) -> io::Result<String> {
        let path = |p: &Path| config_path(p).map(str::to_string);
        let mut site = self.site_config.clone();
        for (placeholder, value) in [
            (LISTEN_HTTP, format!("listen {http};")),
            (LISTEN_HTTPS, format!("listen {https} ssl;")),
            (CERTIFICATE, path(&self.certificate)?),
            (CERTIFICATE_KEY, path(&self.key)?),
            (README_FEED_DIR, path(&self.served)?),
        ] {
            site = fill_in(&site, placeholder, &value, "nginx")?;
        }
        let dir = path(&self.dir)?;
        Ok(format!(
            "# Written by calplanebot-testbed (nginx.rs): README.md's site in the http context.\n\
             daemon off;\n\
             worker_processes 1;\n\
             pid {dir}/nginx.pid;\n\
             error_log {dir}/{ERROR_LOG} notice;\n\
             events {{\n    worker_connections 64;\n}}\n\
             http {{\n\
             \x20   # Debian's nginx.conf, but for gzip (the README's block turns it on).\n\
             \x20   sendfile on;\n\
             \x20   tcp_nopush on;\n\
             \x20   types_hash_max_size 2048;\n\
             \x20   include /etc/nginx/mime.types;\n\
             \x20   default_type application/octet-stream;\n\
             \x20   access_log {dir}/access.log;\n\
             \x20   client_body_temp_path {dir}/temp/body;\n\
             \x20   proxy_temp_path {dir}/temp/proxy;\n\
             \x20   fastcgi_temp_path {dir}/temp/fastcgi;\n\
             \x20   uwsgi_temp_path {dir}/temp/uwsgi;\n\
             \x20   scgi_temp_path {dir}/temp/scgi;\n\
             \n# README.md, filled in:\n{site}\n}}\n"
        ))
    }

    fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }
}

impl Launch for NginxSite {
    /// Starts nginx with HTTPS on `addr` and plain HTTP on another free port, and waits until it
    /// has started its worker and answers over HTTPS with the test's certificate.
    fn launch_on(&mut self, addr: SocketAddr) -> Result<(), LaunchError> {
        let http = free_loopback_port()?;
        let config = self.dir.join("nginx.conf");
        fs::write(&config, self.config_text(addr, http)?)?;
        fs::create_dir_all(self.dir.join("temp"))?;
        let log_path = self.dir.join(ERROR_LOG);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let log_start = log.metadata()?.len();
        let client = SiteClient::new(addr, http, &self.certificate)?;
        let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
        // -e: the error log before the configuration is read (else /var/log/nginx/error.log).
        let argv = [
            NGINX_EXECUTABLE.as_ref(),
            "-p".as_ref(),
            self.dir.as_os_str(),
            "-c".as_ref(),
            config.as_os_str(),
            "-e".as_ref(),
            log_path.as_os_str(),
        ];
        let mut server = Watchdog::spawn("nginx-watchdog", &argv, &log, |command| {
            command
                .env_clear()
                .env("PATH", &path)
                .current_dir(&self.dir);
        })?;
        let startup = Startup {
            server: "nginx",
            addr,
            log_path: &log_path,
            log_start,
            timeout: READY_TIMEOUT,
            poll: Duration::from_millis(20),
            awaited: "answering over HTTPS",
        };
        let result = startup.wait(|| {
            if let Some(status) = server.exit_status() {
                return Probe::Exited(status);
            }
            // Logged once the sockets are bound, so whatever answers is ours.
            let started = log_tail(&log_path, log_start).contains(SERVER_STARTED);
            if started && client.get("/", &[]).is_ok() {
                Probe::Ready
            } else {
                Probe::NotYet
            }
        });
        match result {
            Ok(()) => {
                self.server = Some(server);
                self.client = Some(client);
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

impl Drop for NginxSite {
    fn drop(&mut self) {
        self.stop();
        remove_server_dir(&self.dir, "nginx", self.keep_dir);
    }
}

impl std::fmt::Debug for NginxSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NginxSite")
            .field("site", &SITE_NAME)
            .field("client", &self.client)
            .field("served", &self.served)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}
