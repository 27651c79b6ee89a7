//! Two independent, real iCalendar parsers that calendar apps use, each fetching a feed over
//! HTTP itself and reporting what it read as one normalised JSON object ([`FeedJson`]), so
//! end-to-end tests check calplanebot's feeds the way subscribers read them rather than against
//! our own reading of RFC 5545:
//!
//! - [`read_with_icaljs`]: Mozilla's `ical.js` (Thunderbird's parser), npm package pinned at
//!   [`ICALJS_VERSION`], run by Node.js (18 or later: its own `fetch` does the GET) with
//!   `testbed/feed_readers/read_feed.mjs`;
//! - [`read_with_python_icalendar`]: Python `icalendar` pinned at [`ICALENDAR_VERSION`], in the
//!   testbed's `<workspace>/.venv` beside Radicale and Xandikos (one installer, `launch`), with
//!   `testbed/feed_readers/read_feed.py` (`urllib.request` does the GET).
//!
//! What each tolerates, found by the tests in `testbed/tests/feed_readers.rs`:
//! - both take LF line ends for CRLF and refuse a missing `END:VCALENDAR` or `END:VEVENT`, a line
//!   without `:` and a body that is not iCalendar (an HTML error page);
//! - ical.js reads an impossible date (`20261345`) by rolling it over (2027-02-14), silently;
//!   icalendar notes it in the component's `errors`, and so does a line it cannot split, which
//!   it drops; the Python reader fails on any such note (icalendar itself would go on);
//! - neither knows RFC 7986's `NAME` or `COLOR`, nor `X-WR-CALNAME` and the `X-` properties: both
//!   give their values as written, backslash escapes included (`Plane: Web\, app`), while TEXT
//!   properties (SUMMARY, DESCRIPTION, CATEGORIES, …) come back unescaped.
//!
//! Installation happens once per machine: ical.js into the git-ignored `<workspace>/.node`, its
//! pinned tarball fetched from the npm registry and checked against the registry's SHA-512
//! integrity ([`ICALJS_INTEGRITY`]) before `tar` unpacks it (ical.js has no dependencies, so no
//! npm is needed: Debian's `npm` package brings some 400 packages), under an exclusive lock on
//! `<workspace>/.node.lock`; `icalendar` by the venv installer under `<workspace>/.venv.lock`. A
//! marker file per pinned version makes later calls skip the download and pip entirely, so the
//! readers work offline after the first install.

use crate::launch::{self, install_lock, run_logged, workspace_root};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

/// The npm package `ical.js`, pinned exactly (2.2.1 has no `engines` field; it is an ES module
/// using class fields, which Node.js 18 runs). Bumping it reinstalls into an existing `.node`.
pub const ICALJS_VERSION: &str = "2.2.1";

/// The npm registry's `dist.integrity` of [`ICALJS_VERSION`]'s tarball
/// (`https://registry.npmjs.org/ical.js/2.2.1`): a download that does not match is refused.
pub const ICALJS_INTEGRITY: &str = "sha512-yK/UlPbEs316igb/tjRgbFA8ZV75rCsBJp/hWOatpyaPNlgw0dGDmU+FoicOcwX4xXkeXOkYiOmCqNPFpNPkQg==";

/// Where the tarball is fetched from (`$CALPLANEBOT_NPM_REGISTRY` overrides the registry, for a
/// mirror).
fn icaljs_tarball_url() -> String {
    let registry = std::env::var("CALPLANEBOT_NPM_REGISTRY")
        .ok()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "https://registry.npmjs.org".into());
    format!(
        "{}/ical.js/-/ical.js-{ICALJS_VERSION}.tgz",
        registry.trim_end_matches('/')
    )
}

/// The PyPI package `icalendar`, pinned exactly; within Xandikos's `icalendar>=6.1.0,<8`.
pub const ICALENDAR_VERSION: &str = "7.3.2";

/// Environment variable naming a Python executable that has `icalendar` (nothing is installed
/// into `.venv` then).
pub const PYTHON_ENV: &str = "CALPLANEBOT_FEED_PYTHON";

/// Environment variable naming the `node` executable (default: `node` on `PATH`).
pub const NODE_ENV: &str = "CALPLANEBOT_NODE";

/// The oldest Node.js with a global `fetch` (Debian 12 ships 18).
const NODE_MIN_MAJOR: u32 = 18;

/// How long one read (start, GET, parse) may take.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// What a reader read from one feed. Text values are as the library gave them (see the module
/// doc for which ones it unescapes). Fields are `None` when the property is absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedJson {
    /// `"ical.js"` or `"icalendar"`.
    pub reader: String,
    /// The status of the GET (always 200: any other fails the read).
    pub http_status: u16,
    /// The `Content-Type` the server sent.
    pub content_type: Option<String>,
    pub calendar: CalendarJson,
    /// In feed order.
    pub events: Vec<EventJson>,
}

/// The VCALENDAR's own properties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarJson {
    /// RFC 7986 `NAME`.
    pub name: Option<String>,
    pub x_wr_calname: Option<String>,
    pub method: Option<String>,
    pub prodid: Option<String>,
    pub version: Option<String>,
    pub calscale: Option<String>,
    /// RFC 7986 `REFRESH-INTERVAL`, as an ISO 8601 duration (`PT15M`).
    pub refresh_interval: Option<String>,
    pub x_published_ttl: Option<String>,
    pub x_calplanebot_workspace: Option<String>,
}

/// One VEVENT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventJson {
    pub uid: Option<String>,
    pub summary: Option<String>,
    pub description: Option<String>,
    /// `YYYY-MM-DD` for a DATE; RFC 3339 for a DATE-TIME (`…Z` when UTC).
    pub dtstart: Option<String>,
    pub dtstart_is_date: bool,
    /// Like `dtstart`; for an all-day event the day after the last day (RFC 5545 3.6.1).
    pub dtend: Option<String>,
    pub dtend_is_date: bool,
    pub status: Option<String>,
    /// RFC 7986 `COLOR`.
    pub color: Option<String>,
    /// Every value of every `CATEGORIES` line, in order.
    pub categories: Vec<String>,
    pub url: Option<String>,
    /// RFC 3339, `…Z`.
    pub dtstamp: Option<String>,
    /// `X-CALPLANEBOT-WORKSPACE`.
    pub workspace: Option<String>,
    /// `X-CALPLANEBOT-PROJECT`.
    pub project: Option<String>,
}

/// Fetches `url` and parses it with ical.js, installing ical.js first if needed.
///
/// Errors: [`io::ErrorKind::InvalidData`] when ical.js could not parse the body (the message is
/// ical.js's own), [`io::ErrorKind::Other`] when the GET failed or did not answer 200, and
/// whatever installing or starting Node.js met.
pub fn read_with_icaljs(url: &str) -> io::Result<FeedJson> {
    let module = ensure_icaljs()?;
    let node = node_executable()?;
    let mut command = Command::new(node);
    command
        .arg(script("read_feed.mjs"))
        .arg(url)
        // Node 18 warns that fetch is experimental; the warning is no error.
        .env("NODE_NO_WARNINGS", "1")
        .env("CALPLANEBOT_ICALJS", file_url(&module)?);
    run_reader("ical.js", command, url)
}

/// Fetches `url` and parses it with Python `icalendar`, installing it into `.venv` first if
/// needed (or using `$CALPLANEBOT_FEED_PYTHON`).
///
/// Errors: [`io::ErrorKind::InvalidData`] when icalendar raised or noted an error while parsing
/// (its own message), [`io::ErrorKind::Other`] when the GET failed or did not answer 200, and
/// whatever installing or starting Python met.
pub fn read_with_python_icalendar(url: &str) -> io::Result<FeedJson> {
    let python = launch::python_tool(PYTHON_ENV, "python")?;
    let mut command = Command::new(python);
    command
        .arg(script("read_feed.py"))
        .arg(url)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    run_reader("icalendar", command, url)
}

/// Both readers on `url`, ical.js first.
pub fn read_with_both(url: &str) -> io::Result<[FeedJson; 2]> {
    Ok([read_with_icaljs(url)?, read_with_python_icalendar(url)?])
}

/// `<workspace>/.node`, git-ignored: where ical.js is installed.
pub fn node_prefix() -> PathBuf {
    workspace_root().join(".node")
}

/// The file of ical.js's ES module, installing ical.js into [`node_prefix`] first if needed.
/// Safe to call from many threads and processes at once.
pub fn ensure_icaljs() -> io::Result<PathBuf> {
    install_icaljs_into(&node_prefix())
}

/// Makes sure `prefix` holds `ical.js@ICALJS_VERSION` and returns its ES module's path.
///
/// When the marker `PREFIX/.calplanebot-ical.js-VERSION` is missing, fetches the pinned tarball,
/// checks its SHA-512 against [`ICALJS_INTEGRITY`], and unpacks it with `tar` into
/// `PREFIX/node_modules/ical.js`, under an exclusive lock on `PREFIX.lock` (the check is
/// repeated once the lock is held, so one caller installs). `tar`'s output goes to
/// `PREFIX/calplanebot-install.log`.
pub fn install_icaljs_into(prefix: &Path) -> io::Result<PathBuf> {
    let marker = prefix.join(format!(".calplanebot-ical.js-{ICALJS_VERSION}"));
    let package = prefix.join("node_modules").join("ical.js");
    let module = package.join("dist").join("ical.js");
    let present = || marker.is_file() && module.is_file();
    if present() {
        return Ok(module);
    }
    let lock = install_lock(&prefix.with_extension("lock"))?;
    if present() {
        return Ok(module);
    }
    fs::create_dir_all(prefix)?;
    let url = icaljs_tarball_url();
    let tarball = download(&url)?;
    let integrity = sha512_integrity(&tarball);
    if integrity != ICALJS_INTEGRITY {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{url}: integrity {integrity}, expected {ICALJS_INTEGRITY}: not unpacked"),
        ));
    }
    let archive = prefix.join(format!("ical.js-{ICALJS_VERSION}.tgz"));
    fs::write(&archive, &tarball)?;
    let _ = fs::remove_dir_all(&package);
    fs::create_dir_all(&package)?;
    let log_path = prefix.join("calplanebot-install.log");
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let step = format!("unpacking ical.js {ICALJS_VERSION}");
    // npm tarballs hold everything under `package/`.
    let mut tar = Command::new("tar");
    tar.arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&package)
        .args(["--strip-components=1", "--no-same-owner"]);
    run_logged(tar, &log, &step, &log_path)?;
    let _ = fs::remove_file(&archive);
    if !module.is_file() {
        return Err(io::Error::other(format!(
            "{step} succeeded but {} is missing; see {}",
            module.display(),
            log_path.display()
        )));
    }
    File::create(&marker)?;
    drop(lock); // Closing the file releases the lock.
    Ok(module)
}

/// The body of a GET of `url` (200 only), at most 16 MiB.
fn download(url: &str) -> io::Result<Vec<u8>> {
    // The system's trust store: the registry may be reached through a TLS proxy whose CA is
    // installed there (and not among the roots ureq carries).
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder().tls_config(tls).build().into();
    let mut response = agent
        .get(url)
        .call()
        .map_err(|e| io::Error::other(format!("GET {url}: {e}")))?;
    response
        .body_mut()
        .with_config()
        .limit(16 * 1024 * 1024)
        .read_to_vec()
        .map_err(|e| io::Error::other(format!("GET {url}: {e}")))
}

/// npm's `integrity` of `bytes`: `sha512-` and the base64 of their SHA-512 (Subresource
/// Integrity).
fn sha512_integrity(bytes: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::{Digest as _, Sha512};
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha512::digest(bytes))
    )
}

/// `$CALPLANEBOT_NODE` or `node`, checked to be Node.js 18 or later.
fn node_executable() -> io::Result<PathBuf> {
    let node = std::env::var_os(NODE_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("node"), PathBuf::from);
    let output = Command::new(&node)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot run {}: {e}; install Node.js {NODE_MIN_MAJOR} or later (the Debian \
                     package `nodejs`; scripts/test does)",
                    node.display()
                ),
            )
        })?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let major = version
        .strip_prefix('v')
        .and_then(|v| v.split('.').next())
        .and_then(|v| v.parse::<u32>().ok());
    match major {
        Some(major) if major >= NODE_MIN_MAJOR => Ok(node),
        _ => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "{} --version says {version:?}: the ical.js reader needs Node.js \
                 {NODE_MIN_MAJOR} or later (its global fetch)",
                node.display()
            ),
        )),
    }
}

/// `testbed/feed_readers/{name}`, in the source tree.
fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("feed_readers")
        .join(name)
}

/// `file://` + the absolute path, percent-encoding what a URL path cannot hold as it is.
fn file_url(path: &Path) -> io::Result<String> {
    let path = path.to_str().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not UTF-8", path.display()),
        )
    })?;
    let mut url = String::from("file://");
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            url.push(char::from(byte));
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    Ok(url)
}

/// Runs one reader script to its end (killing it after [`READ_TIMEOUT`]) and parses its JSON.
/// Exit 3 is a parse error ([`io::ErrorKind::InvalidData`]), anything else non-zero an
/// [`io::ErrorKind::Other`]; both carry the script's stderr.
fn run_reader(reader: &str, mut command: Command, url: &str) -> io::Result<FeedJson> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            io::Error::new(e.kind(), format!("{reader}: cannot start {command:?}: {e}"))
        })?;
    // Read both pipes on threads so a chatty reader cannot block on a full pipe.
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    let Some(status) = launch::wait_or_kill(&mut child, READ_TIMEOUT, Duration::from_millis(20))?
    else {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{reader} did not read {url} within {READ_TIMEOUT:?}"),
        ));
    };
    let collect = |pipe: Option<thread::JoinHandle<Vec<u8>>>| {
        pipe.and_then(|handle| handle.join().ok())
            .unwrap_or_default()
    };
    let stdout = collect(stdout);
    let stderr = String::from_utf8_lossy(&collect(stderr)).trim().to_string();
    match status.code() {
        Some(0) => serde_json::from_slice(&stdout).map_err(|e| {
            io::Error::other(format!(
                "{reader}: its JSON for {url} does not fit FeedJson: {e}\n{}",
                String::from_utf8_lossy(&stdout)
            ))
        }),
        Some(3) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{reader} cannot parse {url}: {stderr}"),
        )),
        _ => Err(io::Error::other(format!(
            "{reader} could not read {url} ({status}): {stderr}"
        ))),
    }
}

fn drain(mut pipe: impl io::Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_escape_what_a_url_path_cannot_hold() {
        assert_eq!(
            file_url(Path::new("/opt/a b/ical.js")).expect("UTF-8"),
            "file:///opt/a%20b/ical.js"
        );
        assert_eq!(
            file_url(Path::new("/x/%#?/é")).expect("UTF-8"),
            "file:///x/%25%23%3F/%C3%A9"
        );
    }

    #[test]
    fn the_reader_scripts_are_in_the_source_tree() {
        for name in ["read_feed.mjs", "read_feed.py"] {
            assert!(script(name).is_file(), "{}", script(name).display());
        }
    }
}
