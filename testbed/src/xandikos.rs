//! Installs a pinned Xandikos into the testbed's virtual environment and starts private instances
//! of it on loopback with its own self-signed TLS and HTTP Basic authentication, so the tests
//! exercise calplanebot's HTTPS against a private CA and its Basic auth on a second real server.
//!
//! Installation: `<workspace>/.venv` gets `xandikos==XANDIKOS_VERSION` and
//! `cryptography==CRYPTOGRAPHY_VERSION` (what `--autocert` generates certificates with) by the
//! same locked, single `pip install` that installs Radicale (`launch`). `CALPLANEBOT_XANDIKOS` may
//! name an existing `xandikos` executable instead.
//!
//! Every [`Xandikos`] gets its own temporary directory: `data/` (`-d`), `state/` (`--state-dir`,
//! with `certs/selfsigned.crt` and `.key`), `htpasswd`, `xandikos.log`. It runs
//!
//! ```text
//! xandikos serve -d DIR/data --state-dir DIR/state -l 127.0.0.1 -p PORT
//!     --current-user-principal /alice --autocreate --autocert --htpasswd DIR/htpasswd
//! ```
//!
//! under the same `sh` watchdog as Radicale, and is ready when an authenticated `PROPFIND /` over
//! HTTPS, trusting only the instance's certificate, answers 207.
//!
//! - **Certificate and bind address.** `--autocert` names its certificate after the listen
//!   address and puts only a DNS SAN in it: `-l 127.0.0.1` would give a useless
//!   `DNS:127.0.0.1`, while `-l localhost` makes asyncio (Python 3.11) bind *every* address
//!   `localhost` resolves to and fail the whole server if one cannot be bound — on a machine
//!   whose `/etc/hosts` maps `localhost` to `::1` too but has IPv6 disabled on `lo`, Xandikos
//!   would not start. So the certificate is made beforehand by Xandikos's own
//!   `xandikos.autocert.ensure_self_signed(DIR/state/certs, hostname="localhost")`, run with the
//!   interpreter of the `xandikos` script — exactly the file `--autocert` would write, which it
//!   then finds and reuses ("Reusing self-signed certificate") — and the server listens on
//!   `127.0.0.1` only. Clients use `https://localhost:PORT` (TLS name `localhost`); where
//!   `localhost` resolves to `::1` first, the refused IPv6 connect makes ureq try `127.0.0.1`
//!   next. If the script's interpreter cannot be found (a non-Python wrapper named by
//!   `CALPLANEBOT_XANDIKOS`), Xandikos falls back to `-l localhost` and makes the certificate
//!   itself. The certificate is RSA 2048, `CN=localhost`, SAN `DNS:localhost`,
//!   `CA:FALSE`, valid for a year; the key is PKCS#1 (`BEGIN RSA PRIVATE KEY`).
//! - **Authentication.** `--htpasswd` (which requires `--autocert`) checks HTTP Basic against
//!   an Apache htpasswd file. Xandikos 0.4.10 accepts bcrypt (needs the `bcrypt` package) and
//!   `{SHA}` (base64 of the SHA-1 of the password); the per-instance password is random, so the
//!   package-free `{SHA}` form is used. A wrong password gets 401 with
//!   `WWW-Authenticate: Basic realm="Xandikos"`.
//! - **Calendar home.** `--autocreate` creates the principal `/alice/` with its calendar home
//!   `/alice/calendars/` (and `/alice/contacts/`) but no calendar in it, so both servers start
//!   with an empty home; `--defaults` would add a calendar `calendar` and an address book.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use ureq::tls::Certificate;

use crate::caldav_server::{TlsFiles, trusting_only};
use crate::launch::{
    self, Launch, LaunchError, Probe, Startup, Watchdog, random_password, remove_server_dir,
    unique_temp_dir,
};

/// The Xandikos release the tests run against (newest on PyPI when pinned). Bumping it
/// reinstalls into an existing `.venv`.
pub const XANDIKOS_VERSION: &str = "0.4.10";

/// The `cryptography` release installed for `--autocert` (newest on PyPI when pinned).
pub const CRYPTOGRAPHY_VERSION: &str = "50.0.2";

/// Environment variable naming a `xandikos` executable to use instead of installing one.
pub const XANDIKOS_ENV: &str = "CALPLANEBOT_XANDIKOS";

/// The DNS name in every instance's certificate, and the host of its URL.
pub const TLS_SERVER_NAME: &str = "localhost";

/// The only user of every instance.
const USERNAME: &str = "alice";

/// How long a fresh instance may take to answer its first authenticated request (about 1 s
/// when the machine is idle).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long making the certificate may take (about 0.3 s).
const CERTIFICATE_TIMEOUT: Duration = Duration::from_secs(60);

/// Makes the certificate `--autocert` would make for `-l localhost`, with Xandikos's own code.
/// `argv[1]` is the certificate directory, `argv[2]` the host name.
const MAKE_CERTIFICATE: &str = "import sys
from xandikos.autocert import ensure_self_signed
ensure_self_signed(sys.argv[1], hostname=sys.argv[2])
";

/// The path of a `xandikos` executable, installing Xandikos first if needed.
///
/// Uses `$CALPLANEBOT_XANDIKOS` when set; otherwise `<workspace>/.venv/bin/xandikos`, installed
/// together with Radicale. Safe to call from many threads and processes at once.
pub fn ensure_installed() -> io::Result<PathBuf> {
    launch::python_tool(XANDIKOS_ENV, "xandikos")
}

/// A running Xandikos with one user, private storage, its own certificate and loopback port.
///
/// Dropping it stops the server and removes its directory — unless the thread is panicking or
/// the start failed, in which case the directory (with `xandikos.log`) is kept for inspection.
pub struct Xandikos {
    executable: PathBuf,
    dir: PathBuf,
    addr: SocketAddr,
    /// `-l`: `127.0.0.1` when the certificate was made beforehand, else `localhost`.
    listen: &'static str,
    password: String,
    tls: TlsFiles,
    /// Read once the first start succeeded; the file stays the same across restarts.
    certificate: Option<Certificate<'static>>,
    server: Option<Watchdog>,
    /// Set when startup failed: the directory holds the log the error points to.
    keep_dir: bool,
}

impl Xandikos {
    /// Installs Xandikos if needed and starts a fresh instance, returning once it answers an
    /// authenticated PROPFIND over HTTPS.
    pub fn start() -> io::Result<Xandikos> {
        let executable = ensure_installed()?;
        let dir = unique_temp_dir("xandikos")?;
        let certs = dir.join("state").join("certs");
        let mut xandikos = Xandikos {
            executable,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            listen: "localhost",
            password: random_password(),
            tls: TlsFiles {
                cert_pem: certs.join("selfsigned.crt"),
                key_pem: certs.join("selfsigned.key"),
                server_name: TLS_SERVER_NAME.to_string(),
            },
            certificate: None,
            server: None,
            keep_dir: false,
            dir,
        };
        let prepared = xandikos.prepare();
        if prepared.is_err() {
            xandikos.keep_dir = true;
        }
        prepared?;
        launch::start_on_free_port(&mut xandikos)?;
        let certificate = read_certificate(&xandikos.tls.cert_pem);
        if certificate.is_err() {
            xandikos.keep_dir = true;
        }
        xandikos.certificate = Some(certificate?);
        Ok(xandikos)
    }

    /// `https://localhost:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("https://{TLS_SERVER_NAME}:{}", self.addr.port())
    }

    /// `127.0.0.1:PORT`, where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn username(&self) -> &str {
        USERNAME
    }

    /// The user's password, different for every instance.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// `/alice/`.
    pub fn principal_href(&self) -> String {
        format!("/{USERNAME}/")
    }

    /// `/alice/calendars/`: exists, holds no calendar at first.
    pub fn home_href(&self) -> String {
        format!("/{USERNAME}/calendars/")
    }

    /// The certificate, its key and the name in it.
    pub fn tls(&self) -> &TlsFiles {
        &self.tls
    }

    /// The server's self-signed certificate: the one root a client must trust.
    pub fn certificate(&self) -> &Certificate<'static> {
        self.certificate
            .as_ref()
            .expect("Xandikos::start reads the certificate before returning")
    }

    /// The instance's private directory (data, state, htpasswd, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory Xandikos stores collections in (`-d`): `alice/calendars/<name>/` are git
    /// repositories.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The file the server's stdout and stderr go to.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("xandikos.log")
    }

    /// Whether the server process is running (it may have died on its own).
    pub fn is_running(&mut self) -> bool {
        self.server.as_mut().is_some_and(Watchdog::is_running)
    }

    /// Stops the server; the port then refuses connections. Data and certificate are kept for
    /// [`restart`].
    ///
    /// [`restart`]: Xandikos::restart
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }

    /// Stops the server if it runs and starts it again on the same port with the same data,
    /// credentials and certificate, returning once it answers.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        // The port was ours a moment ago; retrying briefly covers a slow release of the socket.
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            match self.launch_on(self.addr) {
                Ok(()) => return Ok(()),
                Err(LaunchError::PortTaken(e)) if Instant::now() > deadline => return Err(e),
                Err(LaunchError::PortTaken(_)) => thread::sleep(Duration::from_millis(200)),
                Err(LaunchError::Other(e)) => return Err(e),
            }
        }
    }

    /// Writes the htpasswd file and, when the interpreter is known, the certificate.
    fn prepare(&mut self) -> io::Result<()> {
        fs::write(
            self.dir.join("htpasswd"),
            htpasswd_line(USERNAME, &self.password),
        )?;
        let Some(python) = python_of(&self.executable) else {
            return Ok(());
        };
        let certs = self.dir.join("state").join("certs");
        let log_path = self.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let mut child = Command::new(&python)
            .arg("-c")
            .arg(MAKE_CERTIFICATE)
            .arg(&certs)
            .arg(TLS_SERVER_NAME)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot run {} for the certificate: {e}", python.display()),
                )
            })?;
        let Some(status) =
            launch::wait_or_kill(&mut child, CERTIFICATE_TIMEOUT, Duration::from_millis(20))?
        else {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("making the certificate took over {CERTIFICATE_TIMEOUT:?}"),
            ));
        };
        if !status.success() || !self.tls.cert_pem.is_file() {
            return Err(io::Error::other(format!(
                "making the certificate with {} failed ({status}); log {}:\n{}",
                python.display(),
                log_path.display(),
                launch::log_tail(&log_path, 0)
            )));
        }
        self.listen = "127.0.0.1";
        Ok(())
    }

    /// `PROPFIND /` over HTTPS with our credentials, trusting only our certificate, answers 207
    /// — proof that *our* server owns the port and serves the certificate we expect.
    fn answers_authenticated(&self) -> bool {
        // Until Xandikos has made it (fallback), there is nothing to trust yet.
        let Ok(certificate) = read_certificate(&self.tls.cert_pem) else {
            return false;
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .allow_non_standard_methods(true)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(2)))
            .tls_config(trusting_only(&certificate))
            .build()
            .into();
        let request = ureq::http::Request::builder()
            .method("PROPFIND")
            .uri(format!("{}/", self.url()))
            .header("Depth", "0")
            .header(
                "Authorization",
                crate::calendar_user::basic_auth(USERNAME, &self.password),
            )
            .body(());
        let Ok(request) = request else { return false };
        match agent.run(request) {
            Ok(mut response) => {
                let _ = response.body_mut().read_to_vec();
                response.status().as_u16() == 207
            }
            Err(_) => false,
        }
    }
}

impl Launch for Xandikos {
    /// Starts the server on `addr` and waits until it is ready.
    fn launch_on(&mut self, addr: SocketAddr) -> Result<(), LaunchError> {
        self.addr = addr;
        let log_path = self.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let log_start = log.metadata()?.len();
        let data = self.data_dir();
        let state = self.dir.join("state");
        let htpasswd = self.dir.join("htpasswd");
        let port = addr.port().to_string();
        let argv: [&OsStr; 17] = [
            self.executable.as_os_str(),
            "serve".as_ref(),
            "-d".as_ref(),
            data.as_os_str(),
            "--state-dir".as_ref(),
            state.as_os_str(),
            "-l".as_ref(),
            self.listen.as_ref(),
            "-p".as_ref(),
            port.as_ref(),
            "--current-user-principal".as_ref(),
            "/alice".as_ref(),
            // The principal and its calendar home, without a default calendar.
            "--autocreate".as_ref(),
            "--autocert".as_ref(),
            "--htpasswd".as_ref(),
            htpasswd.as_os_str(),
            // Socket activation would ignore -l/-p (and refuse --autocert).
            "--no-detect-systemd".as_ref(),
        ];
        self.server = Some(Watchdog::spawn("xandikos-watchdog", &argv, &log, |c| {
            c.env("PYTHONUNBUFFERED", "1");
        })?);
        let startup = Startup {
            server: "xandikos",
            addr,
            log_path: &log_path,
            log_start,
            timeout: READY_TIMEOUT,
            poll: Duration::from_millis(50),
            awaited: "ready",
        };
        let result = startup.wait(|| {
            if let Some(status) = self.server.as_mut().and_then(Watchdog::exit_status) {
                Probe::Exited(status)
            } else if self.answers_authenticated() {
                Probe::Ready
            } else {
                Probe::NotYet
            }
        });
        if result.is_err() {
            self.stop();
        }
        result
    }

    fn keep_dir(&mut self) {
        self.keep_dir = true;
    }
}

impl Drop for Xandikos {
    fn drop(&mut self) {
        self.stop();
        remove_server_dir(&self.dir, "Xandikos", self.keep_dir);
    }
}

impl std::fmt::Debug for Xandikos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Xandikos")
            .field("addr", &self.addr)
            .field("dir", &self.dir)
            .field("password", &"(redacted)")
            .finish_non_exhaustive()
    }
}

/// The first certificate in a PEM file.
fn read_certificate(path: &Path) -> io::Result<Certificate<'static>> {
    let pem = fs::read(path)?;
    Certificate::from_pem(&pem).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("certificate {}: {e}", path.display()),
        )
    })
}

/// An htpasswd line in the `{SHA}` scheme Xandikos accepts without extra packages:
/// `user:{SHA}` + base64 of the password's SHA-1.
fn htpasswd_line(username: &str, password: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, password.as_bytes());
    let encoded = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
    format!("{username}:{{SHA}}{encoded}\n")
}

/// The Python interpreter a console script runs with, from its `#!` line (`#!/venv/bin/python`
/// or `#!/usr/bin/env python3`); `None` if the file does not start with a Python `#!`.
pub(crate) fn python_of(script: &Path) -> Option<PathBuf> {
    let mut first = String::new();
    BufReader::new(File::open(script).ok()?.take(1024))
        .read_line(&mut first)
        .ok()?;
    let mut words = first.strip_prefix("#!")?.split_whitespace();
    let mut program = words.next()?;
    if Path::new(program).file_name() == Some(OsStr::new("env")) {
        program = words.next()?;
    }
    let name = Path::new(program).file_name()?.to_str()?;
    name.starts_with("python").then(|| PathBuf::from(program))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htpasswd_sha_matches_apache() {
        // `htpasswd -nbs alice secret`
        assert_eq!(
            htpasswd_line("alice", "secret"),
            "alice:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n"
        );
    }

    #[test]
    fn finds_the_interpreter_of_console_scripts() {
        let dir = unique_temp_dir("xandikos-shebang").unwrap();
        let cases = [
            ("#!/venv/bin/python\nimport x\n", Some("/venv/bin/python")),
            ("#!/usr/bin/env python3\n", Some("python3")),
            ("#! /usr/bin/python3.11 -I\n", Some("/usr/bin/python3.11")),
            ("#!/bin/sh\nexec x\n", None),
            ("\u{7f}ELF", None),
        ];
        for (i, (text, expected)) in cases.into_iter().enumerate() {
            let path = dir.join(format!("script{i}"));
            fs::write(&path, text).unwrap();
            assert_eq!(python_of(&path), expected.map(PathBuf::from), "{text:?}");
        }
        fs::remove_dir_all(dir).unwrap();
    }
}
