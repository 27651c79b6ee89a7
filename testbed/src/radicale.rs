//! Installs a pinned Radicale into a git-ignored virtual environment and starts private instances
//! of it on loopback, so integration tests talk to a real CalDAV server instead of a mock.
//!
//! Why a real server: Radicale rewrites what is PUT, answers DELETE with a multistatus, encodes
//! `@` as `%40` in hrefs and closes every connection (HTTP/1.0) — behaviour a hand-written fake
//! would not reproduce (see `shared/caldav.md`).
//!
//! Installation happens once per workspace: `<workspace>/.venv` gets `radicale==RADICALE_VERSION`
//! from PyPI, guarded by an exclusive lock on `<workspace>/.venv.lock` because many test threads
//! and test binaries ask for it at the same time. `CALPLANEBOT_RADICALE` may name an existing
//! `radicale` executable instead (no installation then).
//!
//! Every [`Radicale`] gets its own temporary directory (config, htpasswd file, collections, log),
//! one user with a per-instance password, and an explicit free port on 127.0.0.1. The server runs
//! under a tiny `sh` watchdog that stops it as soon as this process closes its end of a pipe — so
//! a server is not left behind even if a test binary is killed or an instance is leaked in a
//! `static`.

use crate::launch::{INSTANCE_COUNTER, LaunchError, free_loopback_port, log_tail, unique_temp_dir};
use std::collections::hash_map::RandomState;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The Radicale release the tests run against (newest on PyPI when pinned; `shared/caldav.md`
/// describes the behaviour of this line). Bumping it reinstalls into an existing `.venv`.
pub const RADICALE_VERSION: &str = "3.9.0";

/// Environment variable naming a `radicale` executable to use instead of installing one.
pub const RADICALE_ENV: &str = "CALPLANEBOT_RADICALE";

/// The only user of every instance.
const USERNAME: &str = "alice";

/// How long a fresh instance may take to answer its first authenticated request.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How long `python3 -m venv` or `pip install` may take before the install is declared hung.
const INSTALL_STEP_TIMEOUT: Duration = Duration::from_secs(600);

/// How often a fresh port is tried when another process grabbed the one we picked.
const PORT_ATTEMPTS: usize = 5;

/// The watchdog around the server. `$1` is the radicale executable, `$2` its config file.
/// The server gets `/dev/null` as stdin; a background reader waits for EOF on our pipe (fd 3) and
/// then terminates the server; the script exits with the server's status, so `try_wait` on the
/// script tells whether the server is still running.
const WATCHDOG_SCRIPT: &str = r#"
exec 3<&0
"$1" -C "$2" </dev/null 3<&- &
server=$!
{ read -r _ <&3; kill "$server" 2>/dev/null; } &
watcher=$!
exec 3<&-
wait "$server"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
"#;

/// The workspace root: the parent of the testbed crate, fixed at compile time.
fn workspace_root() -> PathBuf {
    let testbed = Path::new(env!("CARGO_MANIFEST_DIR"));
    testbed.parent().unwrap_or(testbed).to_path_buf()
}

/// The path of a `radicale` executable, installing Radicale first if needed.
///
/// Uses `$CALPLANEBOT_RADICALE` when set; otherwise `<workspace>/.venv/bin/radicale`, installed
/// by [`install_into`]. Safe to call from many threads and processes at once.
pub fn ensure_installed() -> io::Result<PathBuf> {
    if let Some(exe) = std::env::var_os(RADICALE_ENV).filter(|v| !v.is_empty()) {
        let exe = PathBuf::from(exe);
        return if is_executable(&exe) {
            Ok(exe)
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{RADICALE_ENV}={} is not an executable file", exe.display()),
            ))
        };
    }
    let venv = workspace_root().join(".venv");
    install_into(&venv).map(|installation| installation.executable)
}

/// What [`install_into`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    /// The `radicale` executable inside the virtual environment.
    pub executable: PathBuf,
    /// `true` if this call ran pip; `false` if the pinned version was already there.
    pub installed_now: bool,
}

/// Makes sure the virtual environment `venv` holds `radicale==RADICALE_VERSION`.
///
/// Creates the environment with `python3 -m venv` if needed and runs pip only when the pinned
/// version is missing. An exclusive lock on `<venv>.lock` (a sibling file) serialises concurrent
/// callers, threads and processes alike; the check is repeated once the lock is held, so exactly
/// one caller installs. Output of both steps goes to `<venv>/calplanebot-install.log`.
pub fn install_into(venv: &Path) -> io::Result<Installation> {
    let executable = venv.join("bin").join("radicale");
    // The marker says which version pip put there, so a changed pin reinstalls.
    let marker = venv.join(format!(".calplanebot-radicale-{RADICALE_VERSION}"));
    let present = || is_executable(&executable) && marker.exists();
    if present() {
        return Ok(Installation {
            executable,
            installed_now: false,
        });
    }

    let lock_path = venv.with_extension("lock");
    if let Some(parent) = lock_path.parent() {
        fs::create_dir_all(parent)?;
    }
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| {
            annotate(
                e,
                format!("cannot open install lock {}", lock_path.display()),
            )
        })?;
    lock.lock()
        .map_err(|e| annotate(e, format!("cannot lock {}", lock_path.display())))?;
    // Another caller may have finished the install while we waited for the lock.
    if present() {
        return Ok(Installation {
            executable,
            installed_now: false,
        });
    }

    fs::create_dir_all(venv)?;
    let log_path = venv.join("calplanebot-install.log");
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let python = venv.join("bin").join("python");
    if !is_executable(&python) {
        let mut create = Command::new("python3");
        create.arg("-m").arg("venv").arg(venv);
        run_logged(create, &log, "python3 -m venv", &log_path)?;
    }
    let mut pip = Command::new(&python);
    pip.args(["-m", "pip", "install", "--no-input"])
        .arg(format!("radicale=={RADICALE_VERSION}"))
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1");
    run_logged(
        pip,
        &log,
        &format!("pip install radicale=={RADICALE_VERSION}"),
        &log_path,
    )?;
    if !is_executable(&executable) {
        return Err(io::Error::other(format!(
            "pip install radicale=={RADICALE_VERSION} succeeded but {} is missing; see {}",
            executable.display(),
            log_path.display()
        )));
    }
    File::create(&marker)?;
    drop(lock); // Closing the file releases the lock.
    Ok(Installation {
        executable,
        installed_now: true,
    })
}

/// Runs one install step with its output appended to `log`, killing it after
/// [`INSTALL_STEP_TIMEOUT`]. The error names the step and the log file.
fn run_logged(mut command: Command, log: &File, step: &str, log_path: &Path) -> io::Result<()> {
    let fail =
        |what: String| io::Error::other(format!("{step} {what}; see {}", log_path.display()));
    let mut header = log.try_clone()?;
    writeln!(header, "==> {step}: {command:?}")?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?)
        .spawn()
        .map_err(|e| fail(format!("could not be started: {e}")))?;
    let deadline = Instant::now() + INSTALL_STEP_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            return if status.success() {
                Ok(())
            } else {
                Err(fail(format!("failed ({status})")))
            };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!("timed out after {INSTALL_STEP_TIMEOUT:?}")));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn annotate(error: io::Error, context: String) -> io::Error {
    io::Error::new(error.kind(), format!("{context}: {error}"))
}

/// A running Radicale with one user, private storage and its own loopback port.
///
/// Dropping it stops the server and removes its directory — unless the thread is panicking or
/// the start failed, in which case the directory (with `radicale.log`) is kept for inspection.
pub struct Radicale {
    executable: PathBuf,
    dir: PathBuf,
    collections: PathBuf,
    addr: SocketAddr,
    password: String,
    server: Option<Server>,
    /// Set when startup failed: the directory holds the log the error points to.
    keep_dir: bool,
}

/// The watchdog process and the pipe whose closing stops the server.
struct Server {
    watchdog: Child,
    stop_pipe: Option<ChildStdin>,
}

impl Radicale {
    /// Installs Radicale if needed and starts a fresh instance, returning once it answers an
    /// authenticated request.
    pub fn start() -> io::Result<Radicale> {
        let executable = ensure_installed()?;
        let dir = unique_temp_dir("radicale")?;
        let mut radicale = Radicale {
            executable,
            collections: dir.join("collections"),
            dir,
            addr: free_loopback_port()?,
            password: random_password(),
            server: None,
            keep_dir: false,
        };
        fs::create_dir_all(&radicale.collections)?;
        fs::write(
            radicale.dir.join("users"),
            format!("{USERNAME}:{}\n", radicale.password),
        )?;
        for attempt in 1..=PORT_ATTEMPTS {
            match radicale.launch() {
                Ok(()) => return Ok(radicale),
                // Someone bound the port between our probe and Radicale's bind: take another.
                Err(LaunchError::PortTaken(_)) if attempt < PORT_ATTEMPTS => {
                    radicale.addr = free_loopback_port()?;
                }
                Err(LaunchError::PortTaken(e) | LaunchError::Other(e)) => {
                    // The error names the log; keep it readable.
                    radicale.keep_dir = true;
                    return Err(e);
                }
            }
        }
        unreachable!("the last attempt returns")
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

    /// The user's password, different for every instance.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Radicale's `filesystem_folder` (the `collection-root` tree lives below it).
    pub fn storage_dir(&self) -> &Path {
        &self.collections
    }

    /// The file the server's stdout and stderr go to.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("radicale.log")
    }

    /// Whether the server process is running (it may have died on its own).
    pub fn is_running(&mut self) -> bool {
        match &mut self.server {
            Some(server) => matches!(server.watchdog.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops the server; the port then refuses connections. Storage is kept for [`restart`].
    ///
    /// [`restart`]: Radicale::restart
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            // Closing the pipe makes the watchdog terminate the server and exit.
            drop(server.stop_pipe.take());
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match server.watchdog.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        let _ = server.watchdog.kill();
                        let _ = server.watchdog.wait();
                        break;
                    }
                    Ok(None) => thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }

    /// Stops the server if it runs and starts it again on the same port with the same storage
    /// and credentials, returning once it answers.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        // The port was ours a moment ago; retrying briefly covers a slow release of the socket.
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            match self.launch() {
                Ok(()) => return Ok(()),
                Err(LaunchError::PortTaken(e)) if Instant::now() > deadline => return Err(e),
                Err(LaunchError::PortTaken(_)) => thread::sleep(Duration::from_millis(200)),
                Err(LaunchError::Other(e)) => return Err(e),
            }
        }
    }

    /// Writes the config for the current port, starts the server and waits until it is ready.
    fn launch(&mut self) -> Result<(), LaunchError> {
        let config_path = self.dir.join("config");
        fs::write(&config_path, self.config_text())?;
        let log_path = self.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let log_start = log.metadata()?.len();
        let mut watchdog = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("radicale-watchdog")
            .arg(&self.executable)
            .arg(&config_path)
            .env_remove("RADICALE_CONFIG")
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let stop_pipe = watchdog.stdin.take();
        self.server = Some(Server {
            watchdog,
            stop_pipe,
        });

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self
                .server
                .as_mut()
                .and_then(|s| s.watchdog.try_wait().ok()?)
            {
                self.server = None;
                let tail = log_tail(&log_path, log_start);
                let message = format!(
                    "radicale exited during startup ({status}) on {}; log {}:\n{tail}",
                    self.addr,
                    log_path.display()
                );
                return Err(if tail.contains("Address already in use") {
                    LaunchError::PortTaken(io::Error::new(io::ErrorKind::AddrInUse, message))
                } else {
                    LaunchError::Other(io::Error::other(message))
                });
            }
            if self.answers_authenticated() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                let tail = log_tail(&log_path, log_start);
                return Err(LaunchError::Other(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "radicale on {} not ready after {READY_TIMEOUT:?}; log {}:\n{tail}",
                        self.addr,
                        log_path.display()
                    ),
                )));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// `PROPFIND /` with our credentials answers 207 — proof that *our* server owns the port.
    fn answers_authenticated(&self) -> bool {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .allow_non_standard_methods(true)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(2)))
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

    fn config_text(&self) -> String {
        format!(
            "# Written by calplanebot-testbed for one test instance.\n\
             [server]\n\
             hosts = {addr}\n\
             # No sleep before answering a 5xx (outage tests provoke them).\n\
             delay_on_error = 0\n\
             \n\
             [auth]\n\
             type = htpasswd\n\
             htpasswd_filename = {users}\n\
             htpasswd_encryption = plain\n\
             # No 1 s sleep per failed login (tests check 401 on purpose).\n\
             delay = 0\n\
             \n\
             [storage]\n\
             filesystem_folder = {collections}\n\
             \n\
             [logging]\n\
             level = warning\n",
            addr = self.addr,
            users = self.dir.join("users").display(),
            collections = self.storage_dir().display(),
        )
    }
}

impl Drop for Radicale {
    fn drop(&mut self) {
        self.stop();
        if self.keep_dir || thread::panicking() {
            eprintln!(
                "calplanebot-testbed: keeping Radicale directory {}",
                self.dir.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

impl std::fmt::Debug for Radicale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Radicale")
            .field("addr", &self.addr)
            .field("dir", &self.dir)
            .field("password", &"(redacted)")
            .finish_non_exhaustive()
    }
}

/// Sixteen hex digits from std's randomly seeded hasher, the pid, a counter and the time.
fn random_password() -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u64(INSTANCE_COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}", hasher.finish())
}
