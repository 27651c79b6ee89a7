//! Installs a pinned Radicale into a git-ignored virtual environment and starts private instances
//! of it on loopback, so integration tests talk to a real CalDAV server instead of a mock.
//!
//! Why a real server: Radicale rewrites what is PUT, answers DELETE with a multistatus, encodes
//! `@` as `%40` in hrefs and closes every connection (HTTP/1.0) — behaviour a hand-written fake
//! would not reproduce (see `shared/caldav.md`).
//!
//! Installation happens once per workspace: `<workspace>/.venv` gets `radicale==RADICALE_VERSION`
//! (together with Xandikos, by the one installer in `launch`) from PyPI, guarded by an exclusive
//! lock on `<workspace>/.venv.lock` because many test threads and test binaries ask for it at the
//! same time. `CALPLANEBOT_RADICALE` may name an existing `radicale` executable instead (no
//! installation then).
//!
//! Every [`Radicale`] gets its own temporary directory (config, htpasswd file, collections, log),
//! one user with a per-instance password, and an explicit free port on 127.0.0.1. The server runs
//! under a tiny `sh` watchdog that stops it as soon as this process closes its end of a pipe — so
//! a server is not left behind even if a test binary is killed or an instance is leaked in a
//! `static`.
//!
//! [`RadicaleOptions`] select two variations real deployments have: authentication by a trusted
//! `X-Remote-User` header (Radicale behind an authenticating reverse proxy), and an account that
//! may use its existing calendars but not create new ones (MKCALENDAR answers 403).

use crate::launch::{
    self, Launch, LaunchError, Probe, Startup, Watchdog, random_password, remove_server_dir,
    unique_temp_dir,
};
use std::fs::{self, OpenOptions};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// The Radicale release the tests run against (newest on PyPI when pinned; `shared/caldav.md`
/// describes the behaviour of this line). Bumping it reinstalls into an existing `.venv`.
pub const RADICALE_VERSION: &str = "3.9.0";

/// Environment variable naming a `radicale` executable to use instead of installing one.
pub const RADICALE_ENV: &str = "CALPLANEBOT_RADICALE";

/// The header [`RadicaleAuth::RemoteUserHeader`] trusts (Radicale's `http_x_remote_user`).
pub const REMOTE_USER_HEADER: &str = "X-Remote-User";

/// The only user of every instance.
const USERNAME: &str = "alice";

/// How long a fresh instance may take to answer its first authenticated request.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The path of a `radicale` executable, installing Radicale first if needed.
///
/// Uses `$CALPLANEBOT_RADICALE` when set; otherwise `<workspace>/.venv/bin/radicale`, installed
/// by [`install_into`]. Safe to call from many threads and processes at once.
pub fn ensure_installed() -> io::Result<PathBuf> {
    launch::python_tool(RADICALE_ENV, "radicale")
}

/// What [`install_into`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    /// The `radicale` executable inside the virtual environment.
    pub executable: PathBuf,
    /// `true` if this call ran pip; `false` if the pinned versions were already there.
    pub installed_now: bool,
}

/// Makes sure the virtual environment `venv` holds `radicale==RADICALE_VERSION` — and the other
/// pinned requirements of the testbed (Xandikos), all installed by one `pip install` when any of
/// them is missing.
///
/// Creates the environment with `python3 -m venv` if needed. An exclusive lock on `<venv>.lock`
/// (a sibling file) serialises concurrent callers, threads and processes alike; the check is
/// repeated once the lock is held, so exactly one caller installs. Output of both steps goes to
/// `<venv>/calplanebot-install.log`.
pub fn install_into(venv: &Path) -> io::Result<Installation> {
    let installed_now = launch::install_requirements(venv)?;
    Ok(Installation {
        executable: venv.join("bin").join("radicale"),
        installed_now,
    })
}

/// How an instance authenticates its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RadicaleAuth {
    /// HTTP Basic against an htpasswd file holding [`Radicale::password`] (plain text).
    #[default]
    Htpasswd,
    /// Radicale's `http_x_remote_user`: whoever the `X-Remote-User` header names is logged in,
    /// no password asked. For Radicale behind a reverse proxy that authenticates (e.g. with
    /// Digest) and sets the header; never expose such a server directly.
    RemoteUserHeader,
}

/// How [`Radicale::start_with`] sets up an instance. `RadicaleOptions::default()` is what
/// [`Radicale::start`] uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadicaleOptions {
    pub auth: RadicaleAuth,
    /// `true` (default): alice owns `/alice/` and everything below it (Radicale's `owner_only`).
    /// `false`: a `from_file` rights file lets alice read `/` and `/alice/` and read and write the
    /// calendars below `/alice/` that exist on disk when the server (re)starts — items and the
    /// calendars' properties — but refuses MKCALENDAR of any other `/alice/<name>/` with 403.
    /// Create the calendars with [`Radicale::create_calendar_on_disk`].
    pub allow_calendar_creation: bool,
}

impl Default for RadicaleOptions {
    fn default() -> Self {
        RadicaleOptions {
            auth: RadicaleAuth::default(),
            allow_calendar_creation: true,
        }
    }
}

/// A running Radicale with one user, private storage and its own loopback port.
///
/// Dropping it stops the server and removes its directory — unless the thread is panicking or
/// the start failed, in which case the directory (with `radicale.log`) is kept for inspection.
pub struct Radicale {
    executable: PathBuf,
    options: RadicaleOptions,
    dir: PathBuf,
    collections: PathBuf,
    addr: SocketAddr,
    password: String,
    server: Option<Watchdog>,
    /// Set when startup failed: the directory holds the log the error points to.
    keep_dir: bool,
}

impl Radicale {
    /// Installs Radicale if needed and starts a fresh instance with the default options (htpasswd
    /// authentication, calendar creation allowed), returning once it answers an authenticated
    /// request.
    pub fn start() -> io::Result<Radicale> {
        Radicale::start_with(RadicaleOptions::default())
    }

    /// Like [`Radicale::start`], set up as `options` say.
    pub fn start_with(options: RadicaleOptions) -> io::Result<Radicale> {
        let executable = ensure_installed()?;
        let dir = unique_temp_dir("radicale")?;
        let mut radicale = Radicale {
            executable,
            options,
            collections: dir.join("collections"),
            dir,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            password: random_password(),
            server: None,
            keep_dir: false,
        };
        fs::create_dir_all(&radicale.collections)?;
        if !radicale.options.allow_calendar_creation {
            // The rights give no right to create the principal collection: it exists beforehand.
            fs::create_dir_all(radicale.principal_dir())?;
        }
        fs::write(
            radicale.dir.join("users"),
            format!("{USERNAME}:{}\n", radicale.password),
        )?;
        launch::start_on_free_port(&mut radicale)?;
        Ok(radicale)
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn username(&self) -> &str {
        USERNAME
    }

    /// The user's password, different for every instance (unused with
    /// [`RadicaleAuth::RemoteUserHeader`]).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The options the instance was started with.
    pub fn options(&self) -> &RadicaleOptions {
        &self.options
    }

    /// The instance's private directory (config, users, rights, collections, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Radicale's `filesystem_folder` (the `collection-root` tree lives below it).
    pub fn storage_dir(&self) -> &Path {
        &self.collections
    }

    /// The file the server's stdout and stderr go to.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("radicale.log")
    }

    /// Creates the calendar `/alice/<name>/` with this displayname directly in the storage, as
    /// an administrator would, and returns its href. `name` is one path segment of ASCII
    /// letters, digits, `-`, `_`, `.` and `@`, not starting with `.`.
    ///
    /// With `allow_calendar_creation: false` the rights file names the calendars alice may
    /// write, and Radicale reads it only at startup: a running server is therefore restarted
    /// (same port, same storage) so the new calendar becomes writable.
    pub fn create_calendar_on_disk(&mut self, name: &str, displayname: &str) -> io::Result<String> {
        if !is_plain_calendar_name(name) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("calendar name {name:?}: use ASCII letters, digits, '-', '_', '.', '@'"),
            ));
        }
        let calendar = self.principal_dir().join(name);
        if calendar.exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists", calendar.display()),
            ));
        }
        fs::create_dir_all(&calendar)?;
        // Radicale's collection properties: `tag` makes the collection a calendar.
        let props = serde_json::json!({ "D:displayname": displayname, "tag": "VCALENDAR" });
        fs::write(calendar.join(".Radicale.props"), props.to_string())?;
        if !self.options.allow_calendar_creation && self.server.is_some() {
            self.restart()?;
        }
        Ok(format!("/{USERNAME}/{name}/"))
    }

    /// Whether the server process is running (it may have died on its own).
    pub fn is_running(&mut self) -> bool {
        self.server.as_mut().is_some_and(Watchdog::is_running)
    }

    /// Stops the server; the port then refuses connections. Storage is kept for [`restart`].
    ///
    /// [`restart`]: Radicale::restart
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }

    /// Stops the server if it runs and starts it again on the same port with the same storage
    /// and credentials, returning once it answers.
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

    /// `collection-root/alice` in the storage.
    fn principal_dir(&self) -> PathBuf {
        self.collections.join("collection-root").join(USERNAME)
    }

    /// `PROPFIND /` as our user answers 207 — proof that *our* server owns the port.
    fn answers_authenticated(&self) -> bool {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .allow_non_standard_methods(true)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        let (name, value) = match self.options.auth {
            RadicaleAuth::Htpasswd => (
                "Authorization",
                crate::calendar_user::basic_auth(USERNAME, &self.password),
            ),
            RadicaleAuth::RemoteUserHeader => (REMOTE_USER_HEADER, USERNAME.to_string()),
        };
        let request = ureq::http::Request::builder()
            .method("PROPFIND")
            .uri(format!("{}/", self.url()))
            .header("Depth", "0")
            .header(name, value)
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

    fn config_text(&self) -> String {
        let auth = match self.options.auth {
            RadicaleAuth::Htpasswd => format!(
                "type = htpasswd\n\
                 htpasswd_filename = {users}\n\
                 htpasswd_encryption = plain\n",
                users = self.dir.join("users").display(),
            ),
            RadicaleAuth::RemoteUserHeader => "type = http_x_remote_user\n".to_string(),
        };
        let rights = if self.options.allow_calendar_creation {
            String::new()
        } else {
            format!(
                "\n[rights]\n\
                 type = from_file\n\
                 file = {}\n",
                self.rights_path().display()
            )
        };
        format!(
            "# Written by calplanebot-testbed for one test instance.\n\
             [server]\n\
             hosts = {addr}\n\
             # No sleep before answering a 5xx (outage tests provoke them).\n\
             delay_on_error = 0\n\
             \n\
             [auth]\n\
             {auth}\
             # No 1 s sleep per failed login (tests check 401 on purpose).\n\
             delay = 0\n\
             {rights}\
             \n\
             [storage]\n\
             filesystem_folder = {collections}\n\
             \n\
             [logging]\n\
             level = warning\n",
            addr = self.addr,
            collections = self.storage_dir().display(),
        )
    }

    fn rights_path(&self) -> PathBuf {
        self.dir.join("rights")
    }

    /// The `from_file` rights for `allow_calendar_creation: false`. Radicale's MKCALENDAR needs
    /// `w` on the new collection's own path, a PUT needs `w` on the calendar holding the item: so
    /// `w` goes to the calendars on disk by name, and any other name has no rights at all.
    fn rights_text(&self) -> io::Result<String> {
        let mut calendars = Vec::new();
        for entry in fs::read_dir(self.principal_dir())? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if is_plain_calendar_name(&name) {
                // Only `.` is special in a regex among the characters allowed.
                calendars.push(name.replace('.', "\\."));
            }
        }
        calendars.sort();
        let mut text = String::from(
            "# Written by calplanebot-testbed: alice may use the calendars that existed when\n\
             # the server started, and may not create new ones (MKCALENDAR answers 403).\n\
             [root]\n\
             user: .+\n\
             collection:\n\
             permissions: R\n\
             \n\
             # R: PROPFIND of the principal itself; r: see the calendars below it.\n\
             [principal]\n\
             user: .+\n\
             collection: {user}\n\
             permissions: Rr\n",
        );
        if !calendars.is_empty() {
            text.push_str(&format!(
                "\n[existing-calendars]\n\
                 user: .+\n\
                 collection: {{user}}/(?:{})\n\
                 permissions: rw\n",
                calendars.join("|")
            ));
        }
        Ok(text)
    }
}

impl Launch for Radicale {
    /// Writes the config (and rights) for `addr`, starts the server and waits until it is ready.
    fn launch_on(&mut self, addr: SocketAddr) -> Result<(), LaunchError> {
        self.addr = addr;
        if !self.options.allow_calendar_creation {
            fs::write(self.rights_path(), self.rights_text()?)?;
        }
        let config_path = self.dir.join("config");
        fs::write(&config_path, self.config_text())?;
        let log_path = self.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let log_start = log.metadata()?.len();
        let argv = [
            self.executable.as_os_str(),
            "-C".as_ref(),
            config_path.as_os_str(),
        ];
        self.server = Some(Watchdog::spawn("radicale-watchdog", &argv, &log, |c| {
            c.env_remove("RADICALE_CONFIG").env("PYTHONUNBUFFERED", "1");
        })?);
        let startup = Startup {
            server: "radicale",
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

/// A calendar name [`Radicale::create_calendar_on_disk`] accepts: safe as a path segment, in a
/// rights regex and in the rights file's INI syntax.
fn is_plain_calendar_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
}

impl Drop for Radicale {
    fn drop(&mut self) {
        self.stop();
        remove_server_dir(&self.dir, "Radicale", self.keep_dir);
    }
}

impl std::fmt::Debug for Radicale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Radicale")
            .field("addr", &self.addr)
            .field("dir", &self.dir)
            .field("options", &self.options)
            .field("password", &"(redacted)")
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_names_are_plain_segments() {
        assert!(is_plain_calendar_name("plane-web_1.x@y"));
        for bad in ["", ".hidden", "a/b", "a b", "%2F", "{user}", "ü"] {
            assert!(!is_plain_calendar_name(bad), "{bad:?}");
        }
    }
}
