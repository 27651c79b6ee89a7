//! The validated configuration: parsed once from flags and environment (flags win, as clap
//! applies them), with secrets wrapped so they cannot reach a log line.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{BehaviourArgs, ConnectionArgs};

/// A secret value (API key, password). `Debug` and `Display` print `(redacted)`; only
/// [`Secret::expose`] gives the value, at the one place that puts it into a request.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

/// Everything a run needs to reach Plane and the CalDAV server.
#[derive(Clone, Debug)]
pub struct Config {
    /// Plane API origin without a trailing slash.
    pub plane_base_url: String,
    /// Origin for issue links, without a trailing slash.
    pub plane_web_url: String,
    pub plane_token: Secret,
    pub workspace_slug: String,
    pub webhook_secret: Option<Secret>,
    /// The CalDAV target; `None` in a feeds-only configuration.
    pub caldav: Option<CalDav>,
    /// The feed target (`CALPLANEBOT_FEED_DIR`), when configured.
    pub feeds: Option<Feeds>,
    pub network: Network,
    /// The lock that keeps two runs of this configuration apart.
    pub lock_file: PathBuf,
    pub lock_wait: Duration,
    /// Where the calendar-location cache lives (`None`: no cache, discover every time).
    pub cache_file: Option<PathBuf>,
    /// CalDAV writes in flight at once (1: one after the other).
    pub concurrency: usize,
    /// Where the listing snapshot lives (`None`: no cache directory).
    pub snapshot_file: Option<PathBuf>,
    /// The Plane snapshot (`engine::plane_snapshot`), beside the listing snapshot.
    pub plane_snapshot_file: Option<PathBuf>,
    /// How often every calendar is listed in full; zero: every run, no snapshot.
    pub full_listing_every: Duration,
    /// Which days an issue's event covers (`--span`).
    pub span: Span,
    /// Whose assignee views this configuration writes (`--assignee`); empty: the team view.
    pub assignees: Vec<String>,
    /// The name of the assignee views' calendars (`--calendar-name`).
    pub calendar_name: Option<String>,
}

/// Where and as whom events are written over CalDAV.
#[derive(Clone, Debug)]
pub struct CalDav {
    pub url: String,
    pub username: String,
    pub password: Secret,
    pub calendar_url: Option<String>,
    /// `CALDAV_CA_FILE`: the only certificates trusted for the CalDAV server (DER), or `None`
    /// for the system trust store.
    pub roots: Option<Vec<Vec<u8>>>,
}

/// Where subscription feeds are written, and how their names are made.
#[derive(Clone, Debug)]
pub struct Feeds {
    pub dir: PathBuf,
    pub secret: Secret,
    /// The URL the directory is served at, without a trailing slash.
    pub base_url: Option<String>,
}

/// Which days an issue's event covers (`CALPLANEBOT_SPAN`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Span {
    /// The due date only (the seed rule).
    #[default]
    Due,
    /// From the start date to the due date, inclusive, when the issue has a start date on or
    /// before its due date; else the due date only.
    StartToDue,
}

pub use crate::support::http::Network;

/// A configuration problem, worded for the operator: it names the variable to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{variable} is not set (set it in the environment or pass --{flag})")]
    Missing {
        variable: &'static str,
        flag: &'static str,
    },
    #[error("set either {variable} or {variable}_FILE, not both")]
    Both { variable: &'static str },
    #[error("cannot read {variable}_FILE ({path}): {source}")]
    File {
        variable: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{variable}_FILE ({path}) is empty")]
    EmptyFile {
        variable: &'static str,
        path: String,
    },
    #[error("{variable} must be an http:// or https:// URL, got {value:?}")]
    Url {
        variable: &'static str,
        value: String,
    },
    #[error(
        "PLANE_WORKSPACE_SLUG {0:?} is not a workspace slug (letters, digits, '-' and '_' only)"
    )]
    Slug(String),
    #[error(
        "{variable} is a plain http:// URL of a host that is not loopback: credentials would cross the network unencrypted; use https://, or pass --allow-insecure-http (CALPLANEBOT_ALLOW_INSECURE_HTTP=1) to accept that"
    )]
    Insecure { variable: &'static str },
    #[error("CALDAV_CA_FILE ({path}): {reason}")]
    CaFile { path: String, reason: String },
    #[error("{option} must be a number of seconds (0 or more), got {value}")]
    Seconds { option: &'static str, value: f64 },
    #[error(
        "CALPLANEBOT_FEED_DIR ({path}) is not a directory: create it (owned by the user calplanebot runs as), or unset it"
    )]
    FeedDir { path: String },
    #[error(
        "CALPLANEBOT_FEED_SECRET is {length} characters long: a feed secret needs at least {MIN_FEED_SECRET}, or whoever holds one feed URL can find the secret offline and compute every other feed's URL. Make one with `openssl rand -hex 32`"
    )]
    WeakFeedSecret { length: usize },
}

/// Every problem of a configuration, in the order of the settings: `Config::from_args` checks
/// each setting whatever became of the others, so an operator fixes them in one pass.
#[derive(Debug)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    pub fn problems(&self) -> &[ConfigError] {
        &self.0
    }
}

/// One problem as itself; several as a count, then one `- problem` line each.
impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            all => {
                write!(
                    f,
                    "{} settings are missing or invalid (`calplanebot help config` lists them all):",
                    all.len()
                )?;
                for problem in all {
                    write!(f, "\n- {problem}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigErrors {}

impl From<Vec<ConfigError>> for ConfigErrors {
    fn from(problems: Vec<ConfigError>) -> ConfigErrors {
        ConfigErrors(problems)
    }
}

/// The shortest feed secret accepted (`openssl rand -hex 32` gives 64 characters).
pub const MIN_FEED_SECRET: usize = 32;

impl Config {
    /// The configuration, or every problem with it: each setting is checked whatever became
    /// of the others, so one pass names every variable to fix (issue 21).
    pub fn from_args(
        args: &ConnectionArgs,
        behaviour: &BehaviourArgs,
    ) -> Result<Config, ConfigErrors> {
        let mut problems = Problems::default();
        let allow_insecure = behaviour.allow_insecure_http;
        let plane = plane_settings(args, allow_insecure, &mut problems);
        let (caldav, feeds) = targets(args, allow_insecure, &mut problems);
        let network = network(behaviour, &mut problems);
        let lock_wait = problems.check(seconds(
            "CALPLANEBOT_LOCK_WAIT (--lock-wait)",
            behaviour.lock_wait,
        ));
        let Problems(problems) = problems;
        let (Some(plane), Some(network), Some(lock_wait)) = (plane, network, lock_wait) else {
            debug_assert!(!problems.is_empty(), "a value is missing without a problem");
            return Err(ConfigErrors(problems));
        };
        if !problems.is_empty() {
            return Err(ConfigErrors(problems));
        }
        let (assignees, calendar_name) = views(behaviour);
        let files = StateFiles::of(
            behaviour,
            &plane,
            caldav.as_ref(),
            feeds.as_ref(),
            &assignees,
            calendar_name.as_deref(),
        );
        Ok(Config {
            network,
            lock_file: files.lock,
            lock_wait,
            cache_file: files.cache,
            concurrency: usize::from(behaviour.concurrency.max(1)),
            snapshot_file: files.snapshot,
            plane_snapshot_file: files.plane_snapshot,
            full_listing_every: behaviour.full_listing_every,
            span: match behaviour.span {
                crate::cli::SpanArg::Due => Span::Due,
                crate::cli::SpanArg::StartToDue => Span::StartToDue,
            },
            assignees,
            calendar_name,
            plane_base_url: plane.base_url.trim_end_matches('/').to_string(),
            plane_web_url: plane.web_url.trim_end_matches('/').to_string(),
            plane_token: plane.token,
            workspace_slug: plane.workspace_slug,
            webhook_secret: plane.webhook_secret,
            caldav,
            feeds,
        })
    }
}

/// The Plane settings, once each is valid.
struct PlaneSettings {
    base_url: String,
    web_url: String,
    token: Secret,
    workspace_slug: String,
    webhook_secret: Option<Secret>,
}

/// The Plane settings; `None` when one of them is a recorded problem.
fn plane_settings(
    args: &ConnectionArgs,
    allow_insecure: bool,
    problems: &mut Problems,
) -> Option<PlaneSettings> {
    let base_url = problems.check(
        required("PLANE_BASE_URL", "plane-base-url", &args.plane_base_url)
            .and_then(|value| url("PLANE_BASE_URL", value))
            .and_then(|value| secure("PLANE_BASE_URL", value, allow_insecure)),
    );
    let web_url = match &args.plane_web_url {
        Some(web) if !web.trim().is_empty() => problems.check(url("PLANE_WEB_URL", web)),
        _ => base_url.clone(),
    };
    let token = problems.check(required_secret(
        "PLANE_API_TOKEN",
        "plane-api-token",
        &args.plane_api_token,
        args.plane_api_token_file.as_deref(),
    ));
    let workspace_slug = problems.check(
        required(
            "PLANE_WORKSPACE_SLUG",
            "plane-workspace-slug",
            &args.plane_workspace_slug,
        )
        .and_then(slug),
    );
    let webhook_secret = problems
        .check(secret(
            "PLANE_WEBHOOK_SECRET",
            &args.plane_webhook_secret,
            args.plane_webhook_secret_file.as_deref(),
        ))
        .flatten();
    Some(PlaneSettings {
        base_url: base_url?,
        web_url: web_url?,
        token: token?,
        workspace_slug: workspace_slug?,
        webhook_secret,
    })
}

/// The targets: CalDAV and the feeds, each when wanted (`None` also when a problem was
/// recorded). CalDAV is optional only when feeds are written: a configuration must have a
/// target. What is wanted follows from what is set, valid or not, so a broken feed directory
/// does not also make every CalDAV setting "missing".
fn targets(
    args: &ConnectionArgs,
    allow_insecure: bool,
    problems: &mut Problems,
) -> (Option<CalDav>, Option<Feeds>) {
    let feeds_wanted = args
        .feed_dir
        .as_ref()
        .is_some_and(|dir| !dir.as_os_str().is_empty());
    let caldav_wanted = args
        .caldav_url
        .as_deref()
        .is_some_and(|url| !url.trim().is_empty())
        || !feeds_wanted;
    let caldav = caldav_wanted
        .then(|| caldav(args, allow_insecure, problems))
        .flatten();
    let feeds = feeds_wanted.then(|| feeds(args, problems)).flatten();
    (caldav, feeds)
}

/// Timeouts and retries; `None` when one of them is a recorded problem.
fn network(behaviour: &BehaviourArgs, problems: &mut Problems) -> Option<Network> {
    let timeout = problems.check(seconds(
        "CALPLANEBOT_TIMEOUT (--timeout)",
        behaviour.timeout,
    ));
    let connect_timeout = problems.check(seconds(
        "CALPLANEBOT_CONNECT_TIMEOUT (--connect-timeout)",
        behaviour.connect_timeout,
    ));
    let retry_delay = problems.check(seconds(
        "CALPLANEBOT_RETRY_DELAY (--retry-delay)",
        behaviour.retry_delay,
    ));
    Some(Network {
        timeout: timeout?.max(Duration::from_millis(1)),
        connect_timeout: connect_timeout?.max(Duration::from_millis(1)),
        retries: behaviour.retries,
        retry_delay: retry_delay?,
        allow_insecure_http: behaviour.allow_insecure_http,
    })
}

/// The assignee views' people and calendar name, trimmed, empty ones left out.
fn views(behaviour: &BehaviourArgs) -> (Vec<String>, Option<String>) {
    let assignees = behaviour
        .assignees
        .iter()
        .map(|who| who.trim().to_string())
        .filter(|who| !who.is_empty())
        .collect();
    let calendar_name = behaviour
        .calendar_name
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_string);
    (assignees, calendar_name)
}

/// Where a configuration keeps its run lock, calendar-location cache and the two snapshots:
/// named by a hash of what makes the configuration, so two configurations on one machine
/// never share them.
struct StateFiles {
    lock: PathBuf,
    cache: Option<PathBuf>,
    snapshot: Option<PathBuf>,
    plane_snapshot: Option<PathBuf>,
}

impl StateFiles {
    fn of(
        behaviour: &BehaviourArgs,
        plane: &PlaneSettings,
        caldav: Option<&CalDav>,
        feeds: Option<&Feeds>,
        assignees: &[String],
        calendar_name: Option<&str>,
    ) -> StateFiles {
        let feed_dir = feeds
            .map(|f| f.dir.display().to_string())
            .unwrap_or_default();
        let views = format!(
            "views:{}\n{}",
            assignees.join(","),
            calendar_name.unwrap_or("")
        );
        let mut parts = vec![
            plane.base_url.as_str(),
            &plane.workspace_slug,
            caldav.map_or("", |c| c.url.as_str()),
            caldav.map_or("", |c| c.username.as_str()),
            caldav.and_then(|c| c.calendar_url.as_deref()).unwrap_or(""),
            &feed_dir,
        ];
        // Views are part of what a configuration is: two people's configurations on one
        // machine keep their own lock, cache and snapshot. Only a configuration with views
        // hashes them: a team configuration keeps the files it had before views existed.
        if !assignees.is_empty() {
            parts.push(&views);
        }
        let hash = config_hash(&parts);
        let lock = match &behaviour.lock_file {
            Some(path) => path.clone(),
            None => default_lock_file(hash),
        };
        let cache = match &behaviour.cache_dir {
            Some(dir) if dir.is_empty() => None,
            Some(dir) => Some(PathBuf::from(dir)),
            None => default_cache_dir(),
        }
        .map(|dir| dir.join(format!("calendars-{hash:016x}.json")));
        let snapshot = cache
            .as_ref()
            .map(|file| file.with_file_name(format!("listing-{hash:016x}.json")));
        let plane_snapshot = cache
            .as_ref()
            .map(|file| file.with_file_name(format!("plane-{hash:016x}.json")));
        StateFiles {
            lock,
            cache,
            snapshot,
            plane_snapshot,
        }
    }
}

/// The problems found so far.
#[derive(Default)]
struct Problems(Vec<ConfigError>);

impl Problems {
    /// The value, or `None` with its problem recorded.
    fn check<T>(&mut self, result: Result<T, ConfigError>) -> Option<T> {
        result.map_err(|problem| self.0.push(problem)).ok()
    }
}

/// The CalDAV settings, all required once CalDAV is configured; `None` when one of them has a
/// problem (recorded).
fn caldav(args: &ConnectionArgs, allow_insecure: bool, problems: &mut Problems) -> Option<CalDav> {
    let url_ = problems.check(
        required("CALDAV_URL", "caldav-url", &args.caldav_url)
            .and_then(|value| url("CALDAV_URL", value))
            .and_then(|value| secure("CALDAV_URL", value, allow_insecure)),
    );
    let username = problems.check(
        required("CALDAV_USERNAME", "caldav-username", &args.caldav_username).map(str::to_string),
    );
    let password = problems.check(required_secret(
        "CALDAV_PASSWORD",
        "caldav-password",
        &args.caldav_password,
        args.caldav_password_file.as_deref(),
    ));
    let calendar_url = match &args.caldav_calendar_url {
        Some(calendar) if !calendar.trim().is_empty() => problems
            .check(
                url("CALDAV_CALENDAR_URL", calendar)
                    .and_then(|value| secure("CALDAV_CALENDAR_URL", value, allow_insecure)),
            )
            .map(Some),
        _ => Some(None),
    };
    let roots = match &args.caldav_ca_file {
        Some(path) if !path.is_empty() => {
            problems.check(ca_certificates(Path::new(path))).map(Some)
        }
        _ => Some(None),
    };
    Some(CalDav {
        url: url_?,
        username: username?,
        password: password?,
        calendar_url: calendar_url?,
        roots: roots?,
    })
}

/// The feed settings when `CALPLANEBOT_FEED_DIR` is set (an empty value means unset): the
/// directory must exist, and a strong secret is required. `None` when unset, or when one of
/// them has a problem (recorded).
fn feeds(args: &ConnectionArgs, problems: &mut Problems) -> Option<Feeds> {
    let dir = args
        .feed_dir
        .as_ref()
        .filter(|d| !d.as_os_str().is_empty())?;
    let dir = problems.check(if dir.is_dir() {
        Ok(dir.clone())
    } else {
        Err(ConfigError::FeedDir {
            path: dir.display().to_string(),
        })
    });
    let secret = problems.check(
        required_secret(
            "CALPLANEBOT_FEED_SECRET",
            "feed-secret",
            &args.feed_secret,
            args.feed_secret_file.as_deref(),
        )
        .and_then(|secret| {
            let length = secret.expose().chars().count();
            if length < MIN_FEED_SECRET {
                Err(ConfigError::WeakFeedSecret { length })
            } else {
                Ok(secret)
            }
        }),
    );
    let base_url = match &args.feed_base_url {
        Some(base) if !base.trim().is_empty() => problems
            .check(url("CALPLANEBOT_FEED_BASE_URL", base))
            .map(|base| Some(base.trim_end_matches('/').to_string())),
        _ => Some(None),
    };
    Some(Feeds {
        dir: dir?,
        secret: secret?,
        base_url: base_url?,
    })
}

/// The certificates of a PEM file, as DER. Anything else in the file (keys, text) is ignored;
/// a file without a single certificate is an error, not "trust nothing".
fn ca_certificates(path: &Path) -> Result<Vec<Vec<u8>>, ConfigError> {
    let error = |reason: String| ConfigError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    let mut certificates = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(certificate)) => {
                certificates.push(certificate.der().to_vec());
            }
            Ok(_) => {}
            Err(e) => return Err(error(format!("not a readable PEM file ({e})"))),
        }
    }
    if certificates.is_empty() {
        return Err(error(
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(certificates)
}

/// Plain `http://` to a host other than loopback (127.0.0.0/8, ::1, localhost).
pub fn is_insecure(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host.split(':').next().unwrap_or("")
    };
    let host = host.to_ascii_lowercase();
    let loopback = host == "localhost"
        || host.ends_with(".localhost")
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    !loopback
}

fn seconds(option: &'static str, value: f64) -> Result<Duration, ConfigError> {
    if value.is_finite() && (0.0..1e9).contains(&value) {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(ConfigError::Seconds { option, value })
    }
}

/// A stable hash (FNV-1a) of what makes a configuration (the same Plane workspace into the
/// same CalDAV account), so every version of calplanebot picks the same lock and cache files.
fn config_hash(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts.join("\n").bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// One lock per configuration, in systemd's `RuntimeDirectory=`, else `$XDG_RUNTIME_DIR`,
/// else the cache directory (cron sets neither; a fixed name in a shared /tmp could be taken
/// by another user), else the temp dir.
fn default_lock_file(hash: u64) -> PathBuf {
    let name = format!("calplanebot-{hash:016x}.lock");
    let from_env = |key: &str| {
        std::env::var_os(key)
            .map(PathBuf::from)
            .filter(|p| !p.as_os_str().is_empty())
    };
    // RUNTIME_DIRECTORY may list several directories separated by ':'.
    let runtime = std::env::var("RUNTIME_DIRECTORY")
        .ok()
        .and_then(|dirs| dirs.split(':').next().map(PathBuf::from))
        .filter(|p| !p.as_os_str().is_empty());
    runtime
        .or_else(|| from_env("XDG_RUNTIME_DIR"))
        .or_else(default_cache_dir)
        .unwrap_or_else(std::env::temp_dir)
        .join(name)
}

/// systemd's `CacheDirectory=`, else `$XDG_CACHE_HOME/calplanebot`, else
/// `$HOME/.cache/calplanebot`; none of them set means no cache.
fn default_cache_dir() -> Option<PathBuf> {
    let from_env = |key: &str| {
        std::env::var_os(key)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let systemd = std::env::var("CACHE_DIRECTORY")
        .ok()
        .and_then(|dirs| dirs.split(':').next().map(PathBuf::from))
        .filter(|p| p.is_absolute());
    systemd
        .or_else(|| from_env("XDG_CACHE_HOME").map(|p| p.join("calplanebot")))
        .or_else(|| from_env("HOME").map(|p| p.join(".cache").join("calplanebot")))
}

fn required<'a>(
    variable: &'static str,
    flag: &'static str,
    value: &'a Option<String>,
) -> Result<&'a str, ConfigError> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(ConfigError::Missing { variable, flag }),
    }
}

/// A configured URL that may carry credentials: plain `http://` only to loopback, unless
/// `--allow-insecure-http`.
fn secure(
    variable: &'static str,
    url: String,
    allow_insecure: bool,
) -> Result<String, ConfigError> {
    if !allow_insecure && is_insecure(&url) {
        Err(ConfigError::Insecure { variable })
    } else {
        Ok(url)
    }
}

/// A workspace slug: letters, digits, `-` and `_` (it becomes a path segment).
fn slug(value: &str) -> Result<String, ConfigError> {
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(value.to_string())
    } else {
        Err(ConfigError::Slug(value.to_string()))
    }
}

fn url(variable: &'static str, value: &str) -> Result<String, ConfigError> {
    let value = value.trim();
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    match rest {
        Some(rest)
            if !rest.is_empty()
                && !rest.starts_with('/')
                && !value.contains(char::is_whitespace) =>
        {
            Ok(value.to_string())
        }
        _ => Err(ConfigError::Url {
            variable,
            value: value.to_string(),
        }),
    }
}

/// A secret that must be set: [`secret`], or an error naming the variable and the flag.
fn required_secret(
    variable: &'static str,
    flag: &'static str,
    value: &Option<String>,
    file: Option<&Path>,
) -> Result<Secret, ConfigError> {
    secret(variable, value, file)?.ok_or(ConfigError::Missing { variable, flag })
}

/// A secret from its variable or its `_FILE` variant (one trailing newline stripped, as
/// `echo` and editors leave one).
fn secret(
    variable: &'static str,
    value: &Option<String>,
    file: Option<&Path>,
) -> Result<Option<Secret>, ConfigError> {
    let value = value.as_deref().filter(|v| !v.is_empty());
    match (value, file) {
        (Some(_), Some(_)) => Err(ConfigError::Both { variable }),
        (Some(v), None) => Ok(Some(Secret::new(v))),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::File {
                variable,
                path: path.display().to_string(),
                source,
            })?;
            let text = text.strip_suffix('\n').unwrap_or(&text);
            let text = text.strip_suffix('\r').unwrap_or(text);
            if text.is_empty() {
                return Err(ConfigError::EmptyFile {
                    variable,
                    path: path.display().to_string(),
                });
            }
            Ok(Some(Secret::new(text)))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ConnectionArgs {
        ConnectionArgs {
            plane_base_url: Some("https://plane.example.com/".into()),
            plane_web_url: None,
            plane_api_token: Some("plane_api_secret123".into()),
            plane_api_token_file: None,
            plane_workspace_slug: Some("acme".into()),
            plane_webhook_secret: None,
            plane_webhook_secret_file: None,
            caldav_url: Some("https://dav.example.com/".into()),
            caldav_username: Some("alice".into()),
            caldav_password: Some("hunter2".into()),
            caldav_password_file: None,
            caldav_calendar_url: None,
            caldav_ca_file: None,
            feed_dir: None,
            feed_secret: None,
            feed_secret_file: None,
            feed_base_url: None,
        }
    }

    fn behaviour() -> BehaviourArgs {
        BehaviourArgs {
            timeout: 30.0,
            connect_timeout: 10.0,
            retries: 3,
            retry_delay: 0.5,
            lock_file: None,
            lock_wait: 60.0,
            cache_dir: None,
            concurrency: 4,
            full_listing_every: std::time::Duration::from_secs(3600),
            span: crate::cli::SpanArg::Due,
            assignees: Vec::new(),
            calendar_name: None,
            allow_insecure_http: false,
        }
    }

    impl Config {
        fn from_test_args(args: &ConnectionArgs) -> Result<Config, ConfigErrors> {
            Config::from_args(args, &behaviour())
        }
    }

    /// The variables a configuration misses, when that is all that is wrong with it.
    fn missing(result: Result<Config, ConfigErrors>) -> Vec<&'static str> {
        match result {
            Ok(_) => panic!("the configuration was accepted"),
            Err(errors) => errors
                .problems()
                .iter()
                .map(|problem| match problem {
                    ConfigError::Missing { variable, .. } => *variable,
                    other => panic!("not a missing setting: {other}"),
                })
                .collect(),
        }
    }

    /// The one problem of a configuration that has exactly one.
    fn only_problem(result: Result<Config, ConfigErrors>) -> ConfigError {
        match result {
            Ok(_) => panic!("the configuration was accepted"),
            Err(ConfigErrors(mut problems)) => {
                assert_eq!(problems.len(), 1, "{problems:?}");
                problems.remove(0)
            }
        }
    }

    #[test]
    fn plain_http_is_refused_except_to_loopback_or_when_allowed() {
        for url in [
            "http://127.0.0.1:5232/",
            "http://127.1.2.3/",
            "http://localhost/",
            "http://[::1]:8080/",
            "https://dav.example.com/",
        ] {
            assert!(!is_insecure(url), "{url}");
        }
        for url in [
            "http://dav.example.com/",
            "http://10.0.0.5:5232/",
            "http://[fe80::1]/",
            "http://user@example.com@evil/",
        ] {
            assert!(is_insecure(url), "{url}");
        }
        let mut a = args();
        a.caldav_url = Some("http://dav.example.com/".into());
        let err = Config::from_test_args(&a).unwrap_err().to_string();
        assert!(
            err.starts_with("CALDAV_URL is a plain http:// URL"),
            "{err}"
        );
        assert!(err.contains("--allow-insecure-http"), "{err}");
        let mut allowed = behaviour();
        allowed.allow_insecure_http = true;
        let config = Config::from_args(&a, &allowed).expect("allowed");
        // The CalDAV client applies the same rule to every request (issue 12).
        assert!(config.network.allow_insecure_http);
        assert!(
            !Config::from_test_args(&args())
                .unwrap()
                .network
                .allow_insecure_http
        );
    }

    #[test]
    fn a_ca_file_must_hold_at_least_one_certificate() {
        let dir = std::env::temp_dir().join(format!("calplanebot-ca-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/tls/private-ca.pem"
        );
        let mut a = args();
        a.caldav_ca_file = Some(fixture.into());
        let roots = Config::from_test_args(&a)
            .unwrap()
            .caldav
            .unwrap()
            .roots
            .unwrap();
        assert_eq!(roots.len(), 1);
        // DER of a certificate: a SEQUENCE with a two-byte length.
        assert_eq!(&roots[0][..2], &[0x30, 0x82]);
        let pem = std::fs::read_to_string(fixture).unwrap();
        for (name, text, expected) in [
            ("empty.pem", String::new(), "holds no PEM certificate"),
            ("notes.txt", "just some text\n".to_string(), "holds no PEM certificate"),
            (
                "key.pem",
                "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n".to_string(),
                "holds no PEM certificate",
            ),
            (
                "broken.pem",
                pem.replace("-----END CERTIFICATE-----", ""),
                "not a readable PEM file",
            ),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            a.caldav_ca_file = Some(path.display().to_string());
            let err = Config::from_test_args(&a).unwrap_err().to_string();
            assert!(err.starts_with("CALDAV_CA_FILE ("), "{name}: {err}");
            assert!(err.contains(expected), "{name}: {err}");
        }
        a.caldav_ca_file = Some(dir.join("missing.pem").display().to_string());
        let err = Config::from_test_args(&a).unwrap_err().to_string();
        assert!(err.contains("No such file"), "{err}");
        // Two certificates in one bundle are both trusted.
        let bundle = dir.join("bundle.pem");
        std::fs::write(&bundle, format!("{pem}{pem}")).unwrap();
        a.caldav_ca_file = Some(bundle.display().to_string());
        assert_eq!(
            Config::from_test_args(&a)
                .unwrap()
                .caldav
                .unwrap()
                .roots
                .unwrap()
                .len(),
            2
        );
        a.caldav_ca_file = Some(String::new());
        assert_eq!(
            Config::from_test_args(&a).unwrap().caldav.unwrap().roots,
            None
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn lock_file_is_stable_per_configuration() {
        let one = Config::from_test_args(&args()).unwrap().lock_file;
        assert_eq!(one, Config::from_test_args(&args()).unwrap().lock_file);
        let mut other = args();
        other.caldav_username = Some("bob".into());
        assert_ne!(one, Config::from_test_args(&other).unwrap().lock_file);
        assert!(
            one.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("calplanebot-")
        );
    }

    #[test]
    fn negative_or_absurd_durations_are_rejected() {
        let mut b = behaviour();
        b.timeout = -1.0;
        assert!(matches!(
            only_problem(Config::from_args(&args(), &b)),
            ConfigError::Seconds {
                option: "CALPLANEBOT_TIMEOUT (--timeout)",
                ..
            }
        ));
        let mut b = behaviour();
        b.retry_delay = f64::NAN;
        assert!(Config::from_args(&args(), &b).is_err());
    }

    #[test]
    fn complete_configuration_is_accepted_and_normalised() {
        let config = Config::from_test_args(&args()).unwrap();
        assert_eq!(config.plane_base_url, "https://plane.example.com");
        assert_eq!(config.plane_web_url, "https://plane.example.com");
        assert_eq!(config.plane_token.expose(), "plane_api_secret123");
        assert_eq!(config.caldav.unwrap().calendar_url, None);
        assert!(config.feeds.is_none());
    }

    /// Issue 13: with a feed directory, CalDAV is optional; without one, it is required; the
    /// feed secret is required with the directory, and the directory must exist.
    #[test]
    fn feeds_make_caldav_optional_and_need_a_secret_and_a_directory() {
        let dir = std::env::temp_dir();
        let mut feeds_only = args();
        feeds_only.caldav_url = None;
        feeds_only.caldav_username = None;
        feeds_only.caldav_password = None;
        assert_eq!(
            missing(Config::from_test_args(&feeds_only)),
            ["CALDAV_URL", "CALDAV_USERNAME", "CALDAV_PASSWORD"]
        );
        feeds_only.feed_dir = Some(dir.clone());
        assert!(matches!(
            only_problem(Config::from_test_args(&feeds_only)),
            ConfigError::Missing {
                variable: "CALPLANEBOT_FEED_SECRET",
                ..
            }
        ));
        // Issue 20, point 5: shorter than 32 characters is refused; 32 is enough.
        for weak in ["x", "s3cret-feed", &"y".repeat(31)] {
            feeds_only.feed_secret = Some(weak.to_string());
            let error = only_problem(Config::from_test_args(&feeds_only));
            assert!(
                matches!(error, ConfigError::WeakFeedSecret { length } if length == weak.len()),
                "{error}"
            );
            let text = error.to_string();
            assert!(
                text.contains("CALPLANEBOT_FEED_SECRET") && text.contains("openssl rand -hex 32")
            );
            assert!(!text.contains(weak) || weak == "x", "{text}");
        }
        feeds_only.feed_secret = Some("s3cret-feed-0123456789abcdef0123".into());
        assert_eq!(feeds_only.feed_secret.as_ref().unwrap().len(), 32);
        feeds_only.feed_base_url = Some("https://cal.example.com/feeds/".into());
        let config = Config::from_test_args(&feeds_only).unwrap();
        assert!(config.caldav.is_none());
        let feeds = config.feeds.as_ref().unwrap();
        assert_eq!(
            feeds.base_url.as_deref(),
            Some("https://cal.example.com/feeds")
        );
        assert!(!format!("{config:?}").contains("s3cret-feed"));
        // Both targets.
        let mut both = args();
        both.feed_dir = feeds_only.feed_dir.clone();
        both.feed_secret = feeds_only.feed_secret.clone();
        both.caldav_username = None;
        both.caldav_password = None;
        assert_eq!(
            missing(Config::from_test_args(&both)),
            ["CALDAV_USERNAME", "CALDAV_PASSWORD"]
        );
        both.caldav_username = args().caldav_username;
        both.caldav_password = args().caldav_password;
        let config = Config::from_test_args(&both).unwrap();
        assert!(config.caldav.is_some() && config.feeds.is_some());
        // A directory that does not exist.
        feeds_only.feed_dir = Some(dir.join("calplanebot-no-such-dir-for-feeds"));
        assert!(matches!(
            only_problem(Config::from_test_args(&feeds_only)),
            ConfigError::FeedDir { .. }
        ));
        feeds_only.feed_base_url = Some("ftp://x".into());
        feeds_only.feed_dir = Some(dir);
        assert!(Config::from_test_args(&feeds_only).is_err());
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let config = Config::from_test_args(&args()).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("plane_api_secret123"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("(redacted)"));
    }

    #[test]
    fn each_missing_variable_is_named() {
        type Unset = fn(&mut ConnectionArgs);
        let cases: [(&str, Unset); 5] = [
            ("PLANE_BASE_URL", |a| a.plane_base_url = None),
            ("PLANE_API_TOKEN", |a| a.plane_api_token = None),
            ("PLANE_WORKSPACE_SLUG", |a| {
                a.plane_workspace_slug = Some(" ".into())
            }),
            ("CALDAV_URL", |a| a.caldav_url = None),
            ("CALDAV_PASSWORD", |a| a.caldav_password = None),
        ];
        for (variable, unset) in cases {
            let mut a = args();
            unset(&mut a);
            let err = Config::from_test_args(&a).unwrap_err().to_string();
            assert!(err.starts_with(&format!("{variable} is not set")), "{err}");
        }
    }

    #[test]
    fn secret_from_file_strips_one_newline_and_rejects_both_forms() {
        let dir = std::env::temp_dir().join(format!("calplanebot-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "from-file\n").unwrap();
        let mut a = args();
        a.plane_api_token = None;
        a.plane_api_token_file = Some(path.clone());
        assert_eq!(
            Config::from_test_args(&a).unwrap().plane_token.expose(),
            "from-file"
        );

        a.plane_api_token = Some("also-set".into());
        let err = Config::from_test_args(&a).unwrap_err().to_string();
        assert!(err.contains("not both"), "{err}");

        a.plane_api_token = None;
        a.plane_api_token_file = Some(dir.join("missing"));
        let err = Config::from_test_args(&a).unwrap_err().to_string();
        assert!(err.starts_with("cannot read PLANE_API_TOKEN_FILE"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_urls_and_slugs_are_rejected() {
        let mut a = args();
        a.caldav_url = Some("dav.example.com".into());
        assert!(matches!(
            only_problem(Config::from_test_args(&a)),
            ConfigError::Url {
                variable: "CALDAV_URL",
                ..
            }
        ));
        let mut a = args();
        a.plane_workspace_slug = Some("acme/../x".into());
        assert!(matches!(
            only_problem(Config::from_test_args(&a)),
            ConfigError::Slug(_)
        ));
    }

    /// Issue 21, point 5: an empty configuration names every required variable at once, in
    /// the order of the settings; with a feed directory, the CalDAV ones are not required but
    /// the feed secret is.
    #[test]
    fn every_missing_setting_is_reported_at_once() {
        let empty = ConnectionArgs {
            plane_base_url: None,
            plane_api_token: None,
            plane_workspace_slug: None,
            caldav_url: None,
            caldav_username: None,
            caldav_password: None,
            ..args()
        };
        let required = [
            "PLANE_BASE_URL",
            "PLANE_API_TOKEN",
            "PLANE_WORKSPACE_SLUG",
            "CALDAV_URL",
            "CALDAV_USERNAME",
            "CALDAV_PASSWORD",
        ];
        assert_eq!(missing(Config::from_test_args(&empty)), required);
        let text = Config::from_test_args(&empty).unwrap_err().to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "6 settings are missing or invalid (`calplanebot help config` lists them all):"
        );
        for (line, variable) in lines[1..].iter().zip(required) {
            assert!(
                line.starts_with(&format!("- {variable} is not set")),
                "{text}"
            );
        }
        assert_eq!(lines.len(), 7, "{text}");

        let feeds_only = ConnectionArgs {
            feed_dir: Some(std::env::temp_dir()),
            ..empty
        };
        assert_eq!(
            missing(Config::from_test_args(&feeds_only)),
            [
                "PLANE_BASE_URL",
                "PLANE_API_TOKEN",
                "PLANE_WORKSPACE_SLUG",
                "CALPLANEBOT_FEED_SECRET"
            ]
        );
    }

    /// Invalid settings are collected with the missing ones, each naming its variable: a
    /// setting's problem never hides another's.
    #[test]
    fn invalid_and_missing_settings_are_reported_together() {
        let mut a = args();
        a.plane_base_url = Some("http://plane.example.com".into());
        a.plane_workspace_slug = Some("acme/x".into());
        a.plane_webhook_secret = Some("s".into());
        a.plane_webhook_secret_file = Some("/nonexistent".into());
        a.caldav_url = Some("dav.example.com".into());
        a.caldav_password = None;
        a.caldav_calendar_url = Some("http://dav.example.com/cal/".into());
        a.feed_dir = Some(std::env::temp_dir().join("calplanebot-no-such-dir-for-feeds"));
        a.feed_secret = Some("short".into());
        let mut b = behaviour();
        b.timeout = -1.0;
        b.lock_wait = f64::INFINITY;
        let errors = Config::from_args(&a, &b).unwrap_err();
        let problems: Vec<String> = errors.problems().iter().map(|p| p.to_string()).collect();
        let starts = [
            "PLANE_BASE_URL is a plain http:// URL",
            "PLANE_WORKSPACE_SLUG \"acme/x\" is not a workspace slug",
            "set either PLANE_WEBHOOK_SECRET or PLANE_WEBHOOK_SECRET_FILE, not both",
            "CALDAV_URL must be an http:// or https:// URL",
            "CALDAV_PASSWORD is not set",
            "CALDAV_CALENDAR_URL is a plain http:// URL",
            "CALPLANEBOT_FEED_DIR (",
            "CALPLANEBOT_FEED_SECRET is 5 characters long",
            "CALPLANEBOT_TIMEOUT (--timeout) must be a number of seconds",
            "CALPLANEBOT_LOCK_WAIT (--lock-wait) must be a number of seconds",
        ];
        assert_eq!(problems.len(), starts.len(), "{problems:#?}");
        for (problem, start) in problems.iter().zip(starts) {
            assert!(
                problem.starts_with(start),
                "{problem:?} does not start with {start:?}"
            );
        }
        // No secret in any of them.
        assert!(!errors.to_string().contains("short"), "{errors}");
    }
}
