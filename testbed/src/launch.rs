//! What the server launchers (`radicale`, `xandikos`, `webhook_shim`, `digest_front`,
//! `feed_server`, `nginx`, `caddy`) share: the one virtual environment both Python servers (and
//! the `icalendar` feed reader) are installed into, the exclusive install lock, a free loopback
//! port and the retry when another process grabs it, the wait until a fresh server is ready, the
//! `sh` watchdog that stops a server when this process goes away, a private temp directory
//! (removed on drop unless kept), the tail of a server's log, and the bounded wait for a
//! short-lived helper process (pip, a feed reader, a certificate maker).
//!
//! Why one installer for both Python servers: Radicale and Xandikos live in the same git-ignored
//! `<workspace>/.venv`, so installing them separately would mean two pip runs fighting over one
//! environment. Instead every pinned requirement ([`PYTHON_REQUIREMENTS`]) is installed by a
//! single `pip install` whenever any of them is missing, under one exclusive lock on
//! `<workspace>/.venv.lock` that serialises test threads and test binaries alike.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub(crate) enum LaunchError {
    /// The server could not bind its port: worth retrying with another one.
    PortTaken(io::Error),
    Other(io::Error),
}

impl From<io::Error> for LaunchError {
    fn from(error: io::Error) -> Self {
        LaunchError::Other(error)
    }
}

/// A port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, release it).
pub(crate) fn free_loopback_port() -> io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// How often a fresh port is tried when another process grabbed the one we picked.
const PORT_ATTEMPTS: usize = 5;

/// A server that [`start_on_free_port`] can launch.
pub(crate) trait Launch {
    /// Starts the server listening on `addr` and returns once it is ready.
    fn launch_on(&mut self, addr: SocketAddr) -> Result<(), LaunchError>;

    /// Called when the start is given up: keep the directory holding the log the error names.
    fn keep_dir(&mut self);
}

/// Launches `server` on a free loopback port. When the launch reports [`LaunchError::PortTaken`]
/// (another process bound the port between our probe and the server's bind) it tries another
/// port, up to [`PORT_ATTEMPTS`] in all; on the final failure the server's directory is kept.
pub(crate) fn start_on_free_port(server: &mut impl Launch) -> io::Result<()> {
    for attempt in 1..=PORT_ATTEMPTS {
        let result = free_loopback_port()
            .map_err(LaunchError::Other)
            .and_then(|addr| server.launch_on(addr));
        match result {
            Ok(()) => return Ok(()),
            Err(LaunchError::PortTaken(_)) if attempt < PORT_ATTEMPTS => {}
            Err(LaunchError::PortTaken(e) | LaunchError::Other(e)) => {
                // The error names the log; keep it readable.
                server.keep_dir();
                return Err(e);
            }
        }
    }
    unreachable!("the last attempt returns")
}

/// What a probe of a starting server found.
pub(crate) enum Probe {
    /// The server process ended with this status.
    Exited(ExitStatus),
    /// The server answers as it should: it is ours and ready.
    Ready,
    /// Not yet.
    NotYet,
}

/// A server that was just spawned, for [`Startup::wait`].
pub(crate) struct Startup<'a> {
    /// The server's name in error messages (`"radicale"`).
    pub(crate) server: &'a str,
    pub(crate) addr: SocketAddr,
    /// Where the server's output goes, and where this start began writing to it.
    pub(crate) log_path: &'a Path,
    pub(crate) log_start: u64,
    pub(crate) timeout: Duration,
    /// How long to sleep between probes.
    pub(crate) poll: Duration,
    /// What the server failed to become in time: "ready" or "listening".
    pub(crate) awaited: &'a str,
}

impl Startup<'_> {
    /// Probes until the server is ready, has exited or [`Startup::timeout`] passed. An exit whose
    /// log says "address already in use" (any case) is [`LaunchError::PortTaken`]; every error
    /// carries the log's tail. The caller stops the server on error.
    pub(crate) fn wait(&self, mut probe: impl FnMut() -> Probe) -> Result<(), LaunchError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match probe() {
                Probe::Ready => return Ok(()),
                Probe::Exited(status) => {
                    let tail = log_tail(self.log_path, self.log_start);
                    let message = format!(
                        "{} exited during startup ({status}) on {}; log {}:\n{tail}",
                        self.server,
                        self.addr,
                        self.log_path.display()
                    );
                    return Err(
                        if tail.to_ascii_lowercase().contains("address already in use") {
                            LaunchError::PortTaken(io::Error::new(
                                io::ErrorKind::AddrInUse,
                                message,
                            ))
                        } else {
                            LaunchError::Other(io::Error::other(message))
                        },
                    );
                }
                Probe::NotYet => {}
            }
            if Instant::now() > deadline {
                let tail = log_tail(self.log_path, self.log_start);
                return Err(LaunchError::Other(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{} on {} not {} after {:?}; log {}:\n{tail}",
                        self.server,
                        self.addr,
                        self.awaited,
                        self.timeout,
                        self.log_path.display()
                    ),
                )));
            }
            thread::sleep(self.poll);
        }
    }
}

/// Runs the server (`$@`) with `/dev/null` as stdin; a background reader waits for EOF on our
/// pipe (fd 3) and then terminates the server (SIGTERM); the script exits with the server's
/// status, so `try_wait` on the script tells whether the server is still running.
const WATCHDOG_SCRIPT: &str = r#"
exec 3<&0
"$@" </dev/null 3<&- &
server=$!
{ read -r _ <&3; kill "$server" 2>/dev/null; } &
watcher=$!
exec 3<&-
wait "$server"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
"#;

/// A server running under the `sh` watchdog: it stops as soon as this process closes its end of
/// a pipe — on [`Watchdog::stop`], or when the process ends for any reason, so a server is not
/// left behind even if a test binary is killed or an instance is leaked in a `static`.
pub(crate) struct Watchdog {
    script: Child,
    stop_pipe: Option<ChildStdin>,
}

impl Watchdog {
    /// Spawns `argv` under the watchdog (named `name` in `ps`) with stdout and stderr going to
    /// `log`; `configure` adjusts the command (environment, working directory).
    pub(crate) fn spawn(
        name: &str,
        argv: &[&OsStr],
        log: &File,
        configure: impl FnOnce(&mut Command),
    ) -> io::Result<Watchdog> {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg(name)
            .args(argv)
            .stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log.try_clone()?);
        configure(&mut command);
        let mut script = command.spawn()?;
        let stop_pipe = script.stdin.take();
        Ok(Watchdog { script, stop_pipe })
    }

    /// The server's exit status once it has ended.
    pub(crate) fn exit_status(&mut self) -> Option<ExitStatus> {
        self.script.try_wait().ok()?
    }

    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.script.try_wait(), Ok(None))
    }

    /// Stops the server (SIGTERM) and waits up to 10 s for it to end, then kills the watchdog.
    pub(crate) fn stop(mut self) {
        // Closing the pipe makes the watchdog terminate the server and exit.
        drop(self.stop_pipe.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.script.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    let _ = self.script.kill();
                    let _ = self.script.wait();
                    break;
                }
                Ok(None) => thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

pub(crate) static INSTANCE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A new, empty directory under the system temp dir, `calplanebot-{what}-…`: pid, a counter
/// and the time make the name unique across threads, test binaries and runs.
pub(crate) fn unique_temp_dir(what: &str) -> io::Result<PathBuf> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = INSTANCE_COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "calplanebot-{what}-{}-{n}-{nanos}",
        std::process::id()
    ));
    fs::create_dir(&dir)?;
    Ok(dir)
}

/// What a server does with its private directory `dir` when it is dropped (after stopping):
/// removes it, unless `keep` (the start failed and the error names a file in it) or the thread
/// is panicking (a test failed and the logs tell why); a kept directory is named on stderr as
/// the `{what} directory` ("Radicale", "feed server").
pub(crate) fn remove_server_dir(dir: &Path, what: &str, keep: bool) {
    if keep || thread::panicking() {
        eprintln!(
            "calplanebot-testbed: keeping {what} directory {}",
            dir.display()
        );
    } else {
        let _ = fs::remove_dir_all(dir);
    }
}

/// The last lines the server wrote to its log since `from` (byte offset).
pub(crate) fn log_tail(path: &Path, from: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(path) {
        let _ = file.seek(SeekFrom::Start(from));
        let mut bytes = Vec::new();
        let _ = file.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Everything the testbed's virtual environment holds, `(package, version)`, installed together.
/// `cryptography` is what Xandikos's `--autocert` generates its certificate with; `icalendar`
/// (which Xandikos needs too) is one of the feed readers. Bumping a version reinstalls into an
/// existing `.venv`.
pub(crate) const PYTHON_REQUIREMENTS: [(&str, &str); 4] = [
    ("radicale", crate::radicale::RADICALE_VERSION),
    ("xandikos", crate::xandikos::XANDIKOS_VERSION),
    ("cryptography", crate::xandikos::CRYPTOGRAPHY_VERSION),
    ("icalendar", crate::feed_readers::ICALENDAR_VERSION),
];

/// The console scripts the requirements put into `<venv>/bin`.
const PYTHON_EXECUTABLES: [&str; 3] = ["python", "radicale", "xandikos"];

/// How long `python3 -m venv` or `pip install` may take before the install is declared hung.
const INSTALL_STEP_TIMEOUT: Duration = Duration::from_secs(600);

/// The workspace root: the parent of the testbed crate, fixed at compile time.
pub(crate) fn workspace_root() -> PathBuf {
    let testbed = Path::new(env!("CARGO_MANIFEST_DIR"));
    testbed.parent().unwrap_or(testbed).to_path_buf()
}

/// `<workspace>/.venv`, git-ignored.
pub(crate) fn workspace_venv() -> PathBuf {
    workspace_root().join(".venv")
}

/// The executable named by the environment variable `env` when it is set (nothing is installed
/// then), otherwise `<workspace>/.venv/bin/<name>`, installing the requirements first if needed.
pub(crate) fn python_tool(env: &str, name: &str) -> io::Result<PathBuf> {
    if let Some(exe) = std::env::var_os(env).filter(|v| !v.is_empty()) {
        let exe = PathBuf::from(exe);
        return if is_executable(&exe) {
            Ok(exe)
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{env}={} is not an executable file", exe.display()),
            ))
        };
    }
    let venv = workspace_venv();
    install_requirements(&venv)?;
    Ok(venv.join("bin").join(name))
}

/// Makes sure the virtual environment `venv` holds every pinned requirement; returns `true` if
/// this call ran pip, `false` if all of them were already there.
///
/// Creates the environment with `python3 -m venv` if needed and runs one `pip install` of all
/// pins when any of them is missing. An exclusive lock on `<venv>.lock` (a sibling file)
/// serialises concurrent callers, threads and processes alike; the check is repeated once the
/// lock is held, so exactly one caller installs. Output of both steps goes to
/// `<venv>/calplanebot-install.log`.
pub(crate) fn install_requirements(venv: &Path) -> io::Result<bool> {
    // A marker per pin says which version pip put there, so a changed pin reinstalls.
    let markers: Vec<PathBuf> = PYTHON_REQUIREMENTS
        .iter()
        .map(|(package, version)| venv.join(format!(".calplanebot-{package}-{version}")))
        .collect();
    let present = || {
        markers.iter().all(|m| m.exists())
            && PYTHON_EXECUTABLES
                .iter()
                .all(|name| is_executable(&venv.join("bin").join(name)))
    };
    if present() {
        return Ok(false);
    }

    let lock = install_lock(&venv.with_extension("lock"))?;
    // Another caller may have finished the install while we waited for the lock.
    if present() {
        return Ok(false);
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
    let pins: Vec<String> = PYTHON_REQUIREMENTS
        .iter()
        .map(|(package, version)| format!("{package}=={version}"))
        .collect();
    let step = format!("pip install {}", pins.join(" "));
    let mut pip = Command::new(&python);
    pip.args(["-m", "pip", "install", "--no-input"])
        .args(&pins)
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1");
    run_logged(pip, &log, &step, &log_path)?;
    for name in PYTHON_EXECUTABLES {
        let executable = venv.join("bin").join(name);
        if !is_executable(&executable) {
            return Err(io::Error::other(format!(
                "{step} succeeded but {} is missing; see {}",
                executable.display(),
                log_path.display()
            )));
        }
    }
    for marker in &markers {
        File::create(marker)?;
    }
    drop(lock); // Closing the file releases the lock.
    Ok(true)
}

/// Opens `lock_path` (creating it and its parent) and waits for an exclusive lock on it, which
/// the returned file holds until it is closed. Serialises installers across threads and
/// processes: test binaries run in parallel and each may be the first to need an install.
pub(crate) fn install_lock(lock_path: &Path) -> io::Result<File> {
    if let Some(parent) = lock_path.parent() {
        fs::create_dir_all(parent)?;
    }
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path)
        .map_err(|e| {
            annotate(
                e,
                format!("cannot open install lock {}", lock_path.display()),
            )
        })?;
    lock.lock()
        .map_err(|e| annotate(e, format!("cannot lock {}", lock_path.display())))?;
    Ok(lock)
}

/// Runs one install step with its output appended to `log`, killing it after
/// [`INSTALL_STEP_TIMEOUT`]. The error names the step and the log file.
pub(crate) fn run_logged(
    mut command: Command,
    log: &File,
    step: &str,
    log_path: &Path,
) -> io::Result<()> {
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
    match wait_or_kill(&mut child, INSTALL_STEP_TIMEOUT, Duration::from_millis(100))? {
        Some(status) if status.success() => Ok(()),
        Some(status) => Err(fail(format!("failed ({status})"))),
        None => Err(fail(format!("timed out after {INSTALL_STEP_TIMEOUT:?}"))),
    }
}

/// Waits for `child` to end, looking every `poll`, and returns its status; once `timeout` has
/// passed it kills and reaps the child and returns `None` instead. An error from `try_wait` is
/// returned as it is. For the short-lived helpers the testbed runs (pip, a feed reader, the
/// certificate script), not for servers: those run under a [`Watchdog`].
pub(crate) fn wait_or_kill(
    child: &mut Child,
    timeout: Duration,
    poll: Duration,
) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        thread::sleep(poll);
    }
}

pub(crate) fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn annotate(error: io::Error, context: String) -> io::Error {
    io::Error::new(error.kind(), format!("{context}: {error}"))
}

/// Sixteen hex digits from std's randomly seeded hasher, the pid, a counter and the time: a
/// per-instance password.
pub(crate) fn random_password() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u64(INSTANCE_COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}", hasher.finish())
}
