//! `calplanebot check`: a checklist of everything a run needs (configuration, Plane, CalDAV),
//! with a hint per failure. Writes nothing: no lock, no cache (it reads the page size the cache
//! remembers for Plane, as a run does), only GET and PROPFIND.
//!
//! An operator runs it after editing the configuration, before the first timer fires, so each
//! failure names the variable to fix. Checks run in order; a check that needs one that failed
//! is shown as skipped (`-`) and counts neither as passed nor as failed, so a single root
//! cause gives a single `✗`. Plane and CalDAV are checked independently of each other.
//!
//! The I/O (`run`) only gathers results; turning errors into outcomes and outcomes into text
//! are pure functions, tested below.

use std::io::Write as _;

use crate::caldav::{self, CalDavError, Calendar, DavClient, Discovery, Target};
use crate::cli::{BehaviourArgs, ConnectionArgs};
use crate::config::{CalDav, Config, ConfigError, ConfigErrors};
use crate::exit::Status;
use crate::plane::{PlaneClient, PlaneError};

/// The checks, in the order they run and are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Every variable is set and valid (`Config::from_args`).
    Configuration,
    /// Plane answers at PLANE_BASE_URL and accepts the API key (`GET users/me/`).
    PlaneToken,
    /// The key's user can list the projects of PLANE_WORKSPACE_SLUG.
    Workspace,
    /// The CalDAV server answers HTTP at CALDAV_URL (or CALDAV_CALENDAR_URL).
    CalDavServer,
    /// The CalDAV server does not refuse the credentials (no 401).
    CalDavCredentials,
    /// CALDAV_URL leads to a calendar home (not used in single-calendar mode).
    Discovery,
    /// The calendar home can be listed.
    CalendarHome,
    /// Single-calendar mode: CALDAV_CALENDAR_URL is a calendar that takes events.
    SingleCalendar,
    /// CALPLANEBOT_FEED_DIR takes files, and CALPLANEBOT_FEED_BASE_URL is an https:// URL.
    Feeds,
    /// Each `--assignee` names one workspace member (only with assignee views).
    Views,
}

impl Check {
    pub fn label(self) -> &'static str {
        match self {
            Check::Configuration => "configuration",
            Check::PlaneToken => "Plane API and token",
            Check::Workspace => "Plane workspace",
            Check::CalDavServer => "CalDAV server",
            Check::CalDavCredentials => "CalDAV credentials",
            Check::Discovery => "discovery",
            Check::CalendarHome => "calendar home",
            Check::SingleCalendar => "single calendar",
            Check::Feeds => "feed directory",
            Check::Views => "assignee views",
        }
    }

    /// The checks of a configuration, in order.
    pub fn all(single_calendar: bool) -> [Check; 7] {
        [
            Check::Configuration,
            Check::PlaneToken,
            Check::Workspace,
            Check::CalDavServer,
            Check::CalDavCredentials,
            Check::Discovery,
            if single_calendar {
                Check::SingleCalendar
            } else {
                Check::CalendarHome
            },
        ]
    }
}

/// What one check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Passed, with what it found (a user, a count, a URL).
    Passed(String),
    /// Failed: what went wrong, and what to do about it.
    Failed { error: String, hint: String },
    /// Not run, and why: it needs a check that failed, or it does not apply.
    Skipped(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    pub check: Check,
    pub outcome: Outcome,
}

impl CheckResult {
    fn passed(check: Check, detail: impl Into<String>) -> CheckResult {
        CheckResult {
            check,
            outcome: Outcome::Passed(detail.into()),
        }
    }

    fn failed(check: Check, error: impl Into<String>, hint: impl Into<String>) -> CheckResult {
        CheckResult {
            check,
            outcome: Outcome::Failed {
                error: error.into(),
                hint: hint.into(),
            },
        }
    }

    fn skipped(check: Check, reason: impl Into<String>) -> CheckResult {
        CheckResult {
            check,
            outcome: Outcome::Skipped(reason.into()),
        }
    }

    /// Skipped because `failed` (an earlier check) failed.
    fn needs(check: Check, failed: Check) -> CheckResult {
        CheckResult::skipped(check, format!("needs the {} check", failed.label()))
    }

    fn is_failed(&self) -> bool {
        matches!(self.outcome, Outcome::Failed { .. })
    }
}

pub fn run(connection: &ConnectionArgs, behaviour: &BehaviourArgs) -> Status {
    let mut results: Vec<CheckResult> = Vec::new();
    let mut stdout = std::io::stdout().lock();
    // Each group is printed as soon as it is known: an unreachable server can take a while
    // (timeouts and retries), and the operator sees how far the checks got.
    let mut record = |group: Vec<CheckResult>| {
        for result in &group {
            let _ = stdout.write_all(result_text(result).as_bytes());
        }
        let _ = stdout.flush();
        results.extend(group);
    };
    match Config::from_args(connection, behaviour) {
        Err(error) => {
            let single = connection
                .caldav_calendar_url
                .as_deref()
                .is_some_and(|url| !url.trim().is_empty());
            record(configuration_failed(&error, single));
        }
        Ok(config) => {
            record(vec![CheckResult::passed(
                Check::Configuration,
                configuration_summary(&config),
            )]);
            let plane = crate::engine::run::plane_client(&config);
            let plane_results = plane_checks(&config, &plane);
            let plane_failed = plane_results.iter().any(CheckResult::is_failed);
            record(plane_results);
            if !config.assignees.is_empty() && config.caldav.is_some() {
                record(vec![if plane_failed {
                    CheckResult::needs(Check::Views, Check::Workspace)
                } else {
                    views_check(&config, &plane)
                }]);
            }
            if let Some(caldav) = &config.caldav {
                let dav = crate::engine::run::dav_client(caldav, &config);
                record(caldav_checks(caldav, &dav));
            }
            if let Some(feeds) = &config.feeds {
                record(vec![feed_check(&config, feeds)]);
            }
        }
    }
    let _ = writeln!(stdout, "{}", summary_line(&results));
    status(&results)
}

/// The exit status of a checklist: 2 for a configuration error (nothing else ran), 5 when a
/// server check failed, 0 when nothing failed.
pub fn status(results: &[CheckResult]) -> Status {
    let failed = |check: Check| results.iter().any(|r| r.check == check && r.is_failed());
    if failed(Check::Configuration) {
        Status::Usage
    } else if results.iter().any(CheckResult::is_failed) {
        Status::Unavailable
    } else {
        Status::Success
    }
}

/// The whole checklist as printed: one line per check, a `hint:` line under each failure,
/// then the count.
pub fn render(results: &[CheckResult]) -> String {
    let mut text: String = results.iter().map(result_text).collect();
    text.push_str(&summary_line(results));
    text.push('\n');
    text
}

/// One check's line(s), newline-terminated: the outcome, then (for a failure) its problems
/// and its `hint:` lines.
pub fn result_text(result: &CheckResult) -> String {
    let label = result.check.label();
    match &result.outcome {
        Outcome::Passed(detail) if detail.is_empty() => format!("✓ {label}\n"),
        Outcome::Passed(detail) => format!("✓ {label}: {detail}\n"),
        Outcome::Failed { error, hint } => {
            // Further lines of an error (a list of problems) are indented under it; each line
            // of a hint is a hint of its own.
            let error = error.replace('\n', "\n  ");
            let hints: String = hint.lines().map(|h| format!("  hint: {h}\n")).collect();
            format!("✗ {label}: {error}\n{hints}")
        }
        Outcome::Skipped(reason) => format!("- {label}: skipped ({reason})\n"),
    }
}

/// `all 7 checks passed`, `all 6 checks passed, 1 skipped`, `1 of 7 checks failed, 2 skipped`.
pub fn summary_line(results: &[CheckResult]) -> String {
    let failed = results.iter().filter(|r| r.is_failed()).count();
    let skipped = results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Skipped(_)))
        .count();
    let passed = results.len() - failed - skipped;
    let skipped_part = if skipped > 0 {
        format!(", {skipped} skipped")
    } else {
        String::new()
    };
    let plural = |n: usize| if n == 1 { "check" } else { "checks" };
    if failed == 0 {
        format!("all {passed} {} passed{skipped_part}", plural(passed))
    } else {
        format!(
            "{failed} of {} {} failed{skipped_part}",
            results.len(),
            plural(results.len())
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// The configuration check failed: nothing else can run. Every problem is listed, each naming
/// its variable, with the hints for them below (each hint once).
pub fn configuration_failed(errors: &ConfigErrors, single_calendar: bool) -> Vec<CheckResult> {
    let problems = errors.problems();
    let error = match problems {
        [one] => one.to_string(),
        all => std::iter::once(format!("{} settings are missing or invalid:", all.len()))
            .chain(all.iter().map(|problem| format!("- {problem}")))
            .collect::<Vec<_>>()
            .join("\n"),
    };
    let mut hints: Vec<String> = Vec::new();
    for hint in problems.iter().map(configuration_hint) {
        if !hints.contains(&hint) {
            hints.push(hint);
        }
    }
    let mut results = vec![CheckResult::failed(
        Check::Configuration,
        error,
        hints.join("\n"),
    )];
    for check in &Check::all(single_calendar)[1..] {
        results.push(CheckResult::needs(*check, Check::Configuration));
    }
    results
}

fn configuration_hint(error: &ConfigError) -> String {
    match error {
        ConfigError::Missing { variable, .. }
            if matches!(*variable, "PLANE_API_TOKEN" | "CALDAV_PASSWORD") =>
        {
            format!(
                "set {variable}, or put the secret in a file and set {variable}_FILE (e.g. a systemd credential)"
            )
        }
        ConfigError::Missing {
            variable: "CALDAV_URL",
            ..
        } => "any URL of the CalDAV service will do (README, \"Finding your CALDAV_URL\"); for subscription feeds only, set CALPLANEBOT_FEED_DIR instead of the CALDAV_* settings".into(),
        ConfigError::Missing { .. } => "`calplanebot help config` lists every setting; under systemd, check the unit's Environment= and EnvironmentFile= lines".into(),
        ConfigError::Both { variable } => {
            format!("unset {variable} or {variable}_FILE: calplanebot will not guess which one is meant")
        }
        ConfigError::File { .. } | ConfigError::EmptyFile { .. } => {
            "the file must be readable by the user calplanebot runs as and hold the secret (one trailing newline is ignored)".into()
        }
        ConfigError::Url { .. } => {
            "give the whole URL with its scheme, e.g. https://plane.example.com or https://dav.example.com/".into()
        }
        ConfigError::Slug(_) => {
            "the slug is the first path segment of the workspace's URLs: acme in https://plane.example.com/acme/projects/".into()
        }
        ConfigError::Insecure { .. } => {
            "use https://; only on a network you trust, pass --allow-insecure-http".into()
        }
        ConfigError::Seconds { .. } => "give a number of seconds, e.g. 30 or 0.5".into(),
        ConfigError::FeedDir { .. } => {
            "create the feed directory, writable by the user calplanebot runs as and readable by the web server (e.g. install -d -m 0755 -o calplanebot /var/www/calplanebot)".into()
        }
        ConfigError::WeakFeedSecret { .. } => {
            "make a strong secret with `openssl rand -hex 32`; a new secret gives every feed a new URL, so run `calplanebot feeds --rotate-secret` with it, then `calplanebot sync`".into()
        }
        ConfigError::CaFile { .. } => {
            "CALDAV_CA_FILE must name a readable PEM file with the CA certificate(s) that signed the CalDAV server's certificate (or the self-signed certificate itself)".into()
        }
    }
}

fn configuration_summary(config: &Config) -> String {
    let caldav = match &config.caldav {
        Some(caldav) if caldav.calendar_url.is_some() => "CalDAV: single-calendar mode",
        Some(_) => "CalDAV: one calendar per project",
        None => "no CalDAV",
    };
    let feeds = if config.feeds.is_some() {
        "; feeds"
    } else {
        ""
    };
    let span = match config.span {
        crate::config::Span::Due => "events on the due date",
        crate::config::Span::StartToDue => {
            "events from the start date to the due date (--span start-to-due)"
        }
    };
    let views = if config.assignees.is_empty() || config.caldav.is_none() {
        String::new()
    } else {
        format!("; assignee views of {}", config.assignees.join(", "))
    };
    let mode = format!("{caldav}{views}{feeds}; {span}");
    let webhook = if config.webhook_secret.is_some() {
        "webhook signatures checked"
    } else {
        "PLANE_WEBHOOK_SECRET not set: `webhook` rejects every delivery"
    };
    format!("complete ({mode}; {webhook})")
}

// ---------------------------------------------------------------------------------------------
// Plane
// ---------------------------------------------------------------------------------------------

fn plane_checks(config: &Config, plane: &PlaneClient) -> Vec<CheckResult> {
    let user = match plane.me() {
        Ok(user) => user,
        Err(error) => {
            return vec![
                plane_token_failed(&error),
                CheckResult::needs(Check::Workspace, Check::PlaneToken),
            ];
        }
    };
    let who = match (user.display_name.as_str(), user.email.as_str()) {
        ("", "") => "a user without a name".to_string(),
        (name, "") => name.to_string(),
        ("", email) => email.to_string(),
        (name, email) => format!("{name} <{email}>"),
    };
    let token = CheckResult::passed(
        Check::PlaneToken,
        format!("the key of {who} is accepted at {}", config.plane_base_url),
    );
    let workspace = match plane.projects() {
        Ok(list) => CheckResult::passed(
            Check::Workspace,
            format!(
                "{:?} has {} projects, {} synced (members, not archived){}",
                config.workspace_slug,
                list.projects.len() + list.skipped.len(),
                list.projects.len(),
                page_size_note(plane.per_page())
            ),
        ),
        Err(error) => workspace_failed(&error, &config.workspace_slug),
    };
    vec![token, workspace]
}

/// The assignee views: whom each `--assignee` names and how many dated issues each view
/// holds now (the workspace's issues, read as a sync reads them).
fn views_check(config: &Config, plane: &PlaneClient) -> CheckResult {
    use crate::engine::{self, options::Selection};
    let mut report = crate::reconcile::render::Report::default();
    // The Plane snapshot saves the full reads of unchanged projects; `check` never writes it.
    let fetched = match engine::source::fetch(
        &Selection::All,
        plane,
        engine::run::load_plane_snapshot(config),
        false,
        config.concurrency,
        &mut report,
    ) {
        Ok(fetched) => fetched,
        Err(abort) => {
            return CheckResult::failed(
                Check::Views,
                abort.to_string(),
                "the work items must be readable to count each view's",
            );
        }
    };
    let members = match engine::source::resolve_members(config, plane, &fetched.projects) {
        Ok(members) => members,
        Err(abort) => {
            return CheckResult::failed(
                Check::Views,
                abort.to_string(),
                "give `me`, a member's e-mail address, display name or UUID (see the workspace's members in Plane)",
            );
        }
    };
    let single = config
        .caldav
        .as_ref()
        .is_some_and(|c| c.calendar_url.is_some());
    let described: Vec<String> = crate::reconcile::views::views(members, single)
        .iter()
        .map(|view| {
            let dated = fetched
                .projects
                .iter()
                .flat_map(|(_, issues)| &issues.issues)
                .filter(|issue| view.wants(issue))
                .count();
            let who: Vec<String> = view
                .members
                .iter()
                .map(|m| match m.email.as_str() {
                    "" => format!("{} (member {})", m.display_name, m.id),
                    email => format!("{} <{email}> (member {})", m.display_name, m.id),
                })
                .collect();
            let calendar = if single {
                "the single calendar".to_string()
            } else {
                format!(
                    "{} at plane-member-{}/",
                    view.calendar_name(config.calendar_name.as_deref()),
                    view.cache_key()
                )
            };
            format!(
                "{}: {} into {calendar}",
                who.join(", "),
                crate::reconcile::views::dated_issues(dated)
            )
        })
        .collect();
    let unread = if report.errors.is_empty() {
        ""
    } else {
        " (some projects could not be read completely: the counts are low)"
    };
    CheckResult::passed(Check::Views, format!("{}{unread}", described.join("; ")))
}

/// What the workspace check says of the page size: nothing for Plane CE's 1000.
fn page_size_note(per_page: u32) -> String {
    if per_page == crate::plane::PER_PAGE {
        String::new()
    } else {
        format!(
            "; asked for {per_page} items a page (Plane refused {})",
            crate::plane::PER_PAGE
        )
    }
}

/// `GET users/me/` failed.
pub fn plane_token_failed(error: &PlaneError) -> CheckResult {
    let hint = match error {
        PlaneError::NoKey { .. } => {
            "Plane saw no API key: check that PLANE_API_TOKEN (or the file PLANE_API_TOKEN_FILE names) holds it, and that no reverse proxy in front of Plane drops the X-Api-Key header"
        }
        PlaneError::BadKey { .. } | PlaneError::Forbidden { .. } => {
            "PLANE_API_TOKEN is wrong, expired or deactivated: create a token in Plane (Profile settings → Personal access tokens) and set PLANE_API_TOKEN or PLANE_API_TOKEN_FILE to it"
        }
        PlaneError::NotFound { .. } => {
            "PLANE_BASE_URL must be Plane's API origin (https://api.plane.so for Plane Cloud, the instance's URL for a self-hosted Plane), without /api/v1"
        }
        PlaneError::Invalid { .. } => {
            "this is not Plane's API answering: check that PLANE_BASE_URL is Plane's API origin, not another site"
        }
        PlaneError::RateLimited { .. } => {
            "the key's rate limit (60 requests a minute by default) is used up, perhaps by another client with the same key: wait a minute and run check again"
        }
        PlaneError::Transport { .. } | PlaneError::GaveUp { .. } => {
            "check PLANE_BASE_URL (scheme, host, port) and that this machine can reach it (DNS, firewall, proxy); --connect-timeout and --retries set how long calplanebot tries"
        }
        PlaneError::Status { status, .. } if *status >= 500 => {
            "Plane answered with a server error: check Plane's logs, or run check again later"
        }
        PlaneError::Status { .. } => {
            "an unexpected answer: check that PLANE_BASE_URL is Plane's API origin"
        }
        PlaneError::PageSize { .. } => {
            "the server refused 100 items per page, which every known Plane accepts: check that PLANE_BASE_URL is Plane's API origin, not a proxy that rewrites queries"
        }
    };
    CheckResult::failed(Check::PlaneToken, error.to_string(), hint)
}

/// The project list of the workspace failed (after `users/me/` worked, so the origin and the
/// key are right).
pub fn workspace_failed(error: &PlaneError, slug: &str) -> CheckResult {
    let membership = "check PLANE_WORKSPACE_SLUG (the first path segment of the workspace's URLs: acme in https://plane.example.com/acme/projects/) and that the key's user is a member of the workspace";
    match error {
        PlaneError::Forbidden { .. } => {
            CheckResult::failed(Check::Workspace, error.to_string(), membership)
        }
        // `PlaneError::NotFound` blames PLANE_BASE_URL, but users/me/ just worked there.
        PlaneError::NotFound { .. } => CheckResult::failed(
            Check::Workspace,
            format!("Plane answered 404 for the projects of workspace {slug:?}"),
            membership,
        ),
        other => {
            let mut result = plane_token_failed(other);
            result.check = Check::Workspace;
            result
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Feeds
// ---------------------------------------------------------------------------------------------

/// The feed directory takes a file (one temporary file is created with `O_EXCL` and removed
/// again: the only thing `check` writes), and the base URL is https:// (a feed URL is a bearer
/// secret; plain http is accepted only to loopback).
fn feed_check(config: &Config, feeds: &crate::config::Feeds) -> CheckResult {
    let probe = feeds
        .dir
        .join(format!(".calplanebot-check-{}", std::process::id()));
    let writable = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|_| std::fs::remove_file(&probe));
    if let Err(error) = writable {
        return CheckResult::failed(
            Check::Feeds,
            format!("cannot create a file in {}: {error}", feeds.dir.display()),
            "make CALPLANEBOT_FEED_DIR writable by the user calplanebot runs as (and readable by the web server)",
        );
    }
    // The directory's record: is this configuration its writer, with its secret? (Read only:
    // no lock, nothing recorded.)
    if let Err(error) = crate::feed::FeedDirectory::open(
        &feeds.dir,
        &crate::feed::Identity::of(config),
        &feeds.secret,
        crate::feed::Access::default(),
        std::time::Duration::ZERO,
    ) {
        return CheckResult::failed(
            Check::Feeds,
            error.to_string(),
            "see README, \"Subscription feeds\": one configuration writes a feed directory, with one secret",
        );
    }
    match &feeds.base_url {
        None => CheckResult::passed(
            Check::Feeds,
            format!(
                "{} is writable; CALPLANEBOT_FEED_BASE_URL is not set, so `calplanebot feeds` shows file names, not URLs",
                feeds.dir.display()
            ),
        ),
        Some(base) if base.starts_with("https://") || !crate::config::is_insecure(base) => {
            CheckResult::passed(
                Check::Feeds,
                format!("{} is writable, served at {base}/", feeds.dir.display()),
            )
        }
        Some(base) => CheckResult::failed(
            Check::Feeds,
            format!("CALPLANEBOT_FEED_BASE_URL {base} is plain http://"),
            "serve the feeds over https://: a feed URL is a secret that anyone who sees it on the network can use",
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// CalDAV
// ---------------------------------------------------------------------------------------------

fn caldav_checks(config: &CalDav, dav: &DavClient) -> Vec<CheckResult> {
    let user = &config.username;
    match &config.calendar_url {
        Some(url) => {
            let url = caldav::with_slash(url.clone());
            let probe = dav.calendar_at(&url);
            let mut results =
                server_checks("CALDAV_CALENDAR_URL", &url, user, probe.as_ref().err());
            results.push(CheckResult::skipped(
                Check::Discovery,
                "single-calendar mode: CALDAV_CALENDAR_URL is set",
            ));
            results.push(match probe.as_ref().err().and_then(earlier_failure) {
                Some(failed) => CheckResult::needs(Check::SingleCalendar, failed),
                None => single_calendar_result(&url, probe),
            });
            results
        }
        None => {
            let discovered = dav.discover(&config.url);
            let mut results =
                server_checks("CALDAV_URL", &config.url, user, discovered.as_ref().err());
            match discovered {
                Ok(discovery) => {
                    results.push(CheckResult::passed(
                        Check::Discovery,
                        discovery_summary(&discovery),
                    ));
                    results.push(match discovery.target {
                        Target::Home(home) => calendar_home_result(dav.calendars(&home)),
                        Target::Calendar(calendar) => {
                            let url = calendar.url.clone();
                            single_calendar_result(&url, Ok(Some(calendar)))
                        }
                    });
                }
                Err(error) => match earlier_failure(&error) {
                    Some(failed) => {
                        results.push(CheckResult::needs(Check::Discovery, failed));
                        results.push(CheckResult::needs(Check::CalendarHome, failed));
                    }
                    None => {
                        results.push(discovery_failed(&error));
                        results.push(CheckResult::needs(Check::CalendarHome, Check::Discovery));
                    }
                },
            }
            results
        }
    }
}

/// The earlier check a CalDAV error fails: the server (it never answered, or its gateway says
/// it is down) or the credentials (401). `None`: the server answered and took the credentials,
/// so the error belongs to the check that made the request (404, a non-CalDAV answer, …).
fn earlier_failure(error: &CalDavError) -> Option<Check> {
    match error {
        CalDavError::Transport { .. } | CalDavError::Broken { .. } | CalDavError::GaveUp { .. } => {
            Some(Check::CalDavServer)
        }
        CalDavError::Status { status, .. }
            if crate::support::http::is_unavailable_status(*status) =>
        {
            Some(Check::CalDavServer)
        }
        CalDavError::Certificate { .. } => Some(Check::CalDavServer),
        CalDavError::Unauthorized { .. } | CalDavError::AuthScheme { .. } => {
            Some(Check::CalDavCredentials)
        }
        CalDavError::Status { .. }
        | CalDavError::PreconditionFailed { .. }
        | CalDavError::Invalid { .. }
        | CalDavError::Discovery { .. }
        | CalDavError::Incomplete { .. }
        | CalDavError::CannotCreateCalendar { .. }
        | CalDavError::UidConflict { .. }
        | CalDavError::Insecure { .. }
        | CalDavError::Downgrade { .. }
        | CalDavError::OtherHost { .. } => None,
    }
}

/// The server and credentials checks, from the first CalDAV request's outcome (`None`: it
/// succeeded). Both come from one request: a server that answers 401 is reachable.
pub fn server_checks(
    variable: &str,
    url: &str,
    user: &str,
    error: Option<&CalDavError>,
) -> Vec<CheckResult> {
    let answers = CheckResult::passed(Check::CalDavServer, format!("answers at {url}"));
    let Some(error) = error else {
        return vec![
            answers,
            CheckResult::passed(Check::CalDavCredentials, format!("accepted for {user}")),
        ];
    };
    match earlier_failure(error) {
        Some(Check::CalDavServer) => {
            let hint = match error {
                CalDavError::Status { .. } => "a gateway in front of the CalDAV server answered instead of it: the server behind it is down or unreachable from the gateway".to_string(),
                CalDavError::Broken { .. } => "the server answered but the answer broke off: check a reverse proxy or TLS terminator in front of it".to_string(),
                CalDavError::Certificate { .. } => "for a private CA or a self-signed certificate, set CALDAV_CA_FILE to the CA certificate (PEM), or add it to the system trust store (update-ca-certificates); for a public server, check the server's certificate chain and the machine's clock".to_string(),
                _ => format!("check {variable} (scheme, host, port) and that this machine can reach it (DNS, firewall, proxy); --connect-timeout and --retries set how long calplanebot tries"),
            };
            vec![
                CheckResult::failed(Check::CalDavServer, error.to_string(), hint),
                CheckResult::needs(Check::CalDavCredentials, Check::CalDavServer),
            ]
        }
        // Check::CalDavCredentials, the only other earlier failure.
        Some(_) => vec![
            answers,
            CheckResult::failed(
                Check::CalDavCredentials,
                error.to_string(),
                match error {
                    CalDavError::AuthScheme { .. } => {
                        "calplanebot authenticates with a user name and password (Basic or Digest): use an app password or a server (or reverse proxy) that accepts one; OAuth-only services such as Google need a CalDAV bridge"
                    }
                    _ => {
                        "check CALDAV_USERNAME and CALDAV_PASSWORD (or CALDAV_PASSWORD_FILE); servers with two-factor authentication (Nextcloud, iCloud, Google) need an app password"
                    }
                },
            ),
        ],
        // The server answered something other than 401: it did not refuse the credentials,
        // though it may not have looked at them either.
        None => vec![
            answers,
            CheckResult::passed(
                Check::CalDavCredentials,
                format!("not refused for {user} (no HTTP 401)"),
            ),
        ],
    }
}

/// What discovery found, in one line: the way there and where events will go.
pub fn discovery_summary(discovery: &Discovery) -> String {
    let mut parts = Vec::new();
    for redirect in &discovery.redirects {
        parts.push(format!("redirected to {redirect}"));
    }
    if let Some(principal) = &discovery.principal {
        parts.push(format!("principal {principal}"));
    }
    match &discovery.target {
        Target::Home(home) => {
            parts.push(format!("calendar home {home} (one calendar per project)"));
        }
        Target::Calendar(calendar) => parts.push(format!(
            "CALDAV_URL is the calendar {} itself: single-calendar mode, every project in it (give the calendar home or the server's URL for one calendar per project)",
            calendar
                .displayname
                .as_deref()
                .map_or_else(|| calendar.url.clone(), |name| format!("{name:?}"))
        )),
    }
    parts.join("; ")
}

fn discovery_failed(error: &CalDavError) -> CheckResult {
    let hint = match error {
        CalDavError::Status { status: 403, .. } => {
            "the server refuses CALDAV_USERNAME access to CALDAV_URL: give this user's principal or calendar home URL, or the server's root"
        }
        CalDavError::Status { .. } => {
            "CALDAV_URL does not lead to a CalDAV service: give the server's CalDAV root, the user's principal or calendar home (e.g. https://cloud.example.com/remote.php/dav/ for Nextcloud)"
        }
        CalDavError::Discovery { .. } => {
            "set CALDAV_URL to the user's calendar home or principal URL, as the server's documentation names it"
        }
        CalDavError::Downgrade { .. } => {
            "the server believes it speaks plain http:// (a TLS proxy in front of it): make it name https:// URLs (Nextcloud: 'overwriteprotocol' => 'https' in config.php), or set CALDAV_URL to the https:// URL of the calendar home"
        }
        CalDavError::OtherHost { .. } => {
            "if that host belongs to your CalDAV service, set CALDAV_URL to the URL on it (the calendar home or principal)"
        }
        _ => {
            "the server at CALDAV_URL does not answer like a CalDAV server: check CALDAV_URL, and the server's log"
        }
    };
    CheckResult::failed(Check::Discovery, error.to_string(), hint)
}

/// The calendar home was listed (or not).
pub fn calendar_home_result(listed: Result<Vec<Calendar>, CalDavError>) -> CheckResult {
    match listed {
        Ok(calendars) => {
            let ours = calendars
                .iter()
                .filter(|c| {
                    c.displayname
                        .as_deref()
                        .is_some_and(|name| name.starts_with("Plane: "))
                })
                .count();
            let noun = if calendars.len() == 1 {
                "calendar"
            } else {
                "calendars"
            };
            CheckResult::passed(
                Check::CalendarHome,
                format!("{} {noun}, {ours} named \"Plane: …\"", calendars.len()),
            )
        }
        Err(error) => CheckResult::failed(
            Check::CalendarHome,
            error.to_string(),
            "the calendar home was found but cannot be listed: check that CALDAV_USERNAME may read it, and the server's log; servers that cannot list or create calendars need single-calendar mode (CALDAV_CALENDAR_URL)",
        ),
    }
}

/// Single-calendar mode: what is at CALDAV_CALENDAR_URL.
pub fn single_calendar_result(
    url: &str,
    probe: Result<Option<Calendar>, CalDavError>,
) -> CheckResult {
    let check = Check::SingleCalendar;
    match probe {
        Ok(Some(calendar))
            if calendar
                .components
                .as_ref()
                .is_some_and(|c| !c.iter().any(|c| c.eq_ignore_ascii_case("VEVENT"))) =>
        {
            CheckResult::failed(
                check,
                format!(
                    "the calendar at {url} does not take events (it takes {})",
                    calendar.components.unwrap_or_default().join(", ")
                ),
                "this is a task list or journal, not an event calendar: give the URL of a calendar that takes events",
            )
        }
        Ok(Some(calendar)) => {
            let name = match calendar.displayname.as_deref() {
                Some(name) if !name.is_empty() => format!("{name:?} at "),
                _ => String::new(),
            };
            CheckResult::passed(check, format!("{name}{url}, takes events"))
        }
        Ok(None) => CheckResult::failed(
            check,
            format!("{url} is not a calendar collection"),
            "CALDAV_CALENDAR_URL must be the URL of one calendar, not of a calendar home, principal or address book",
        ),
        Err(error @ CalDavError::Status { status: 404, .. }) => CheckResult::failed(
            check,
            error.to_string(),
            "there is no calendar at CALDAV_CALENDAR_URL: create it in a calendar app and copy its CalDAV URL, or unset CALDAV_CALENDAR_URL to get one calendar per project",
        ),
        Err(error @ CalDavError::Status { status: 403, .. }) => CheckResult::failed(
            check,
            error.to_string(),
            "CALDAV_USERNAME may not read this calendar: check how it is shared",
        ),
        Err(error) => CheckResult::failed(
            check,
            error.to_string(),
            "check CALDAV_CALENDAR_URL, and the server's log",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_error(status: u16) -> CalDavError {
        CalDavError::Status {
            method: "PROPFIND",
            url: "https://dav.example.com/".into(),
            status,
            detail: String::new(),
        }
    }

    fn all_passed() -> Vec<CheckResult> {
        Check::all(false)
            .into_iter()
            .map(|check| CheckResult::passed(check, "ok"))
            .collect()
    }

    #[test]
    fn a_passing_checklist_is_one_tick_per_check_and_exits_0() {
        let results = all_passed();
        let text = render(&results);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8, "{text}");
        assert!(lines[..7].iter().all(|l| l.starts_with("✓ ")), "{text}");
        assert_eq!(lines[0], "✓ configuration: ok");
        assert_eq!(lines[7], "all 7 checks passed");
        assert_eq!(status(&results), Status::Success);
    }

    #[test]
    fn a_failure_has_its_hint_below_and_dependents_are_skipped() {
        let mut results = all_passed();
        results[4] = CheckResult::failed(Check::CalDavCredentials, "HTTP 401", "check X");
        results[5] = CheckResult::needs(Check::Discovery, Check::CalDavCredentials);
        results[6] = CheckResult::needs(Check::CalendarHome, Check::CalDavCredentials);
        let text = render(&results);
        assert!(
            text.contains("✗ CalDAV credentials: HTTP 401\n  hint: check X\n- discovery: skipped (needs the CalDAV credentials check)\n"),
            "{text}"
        );
        assert!(
            text.ends_with("1 of 7 checks failed, 2 skipped\n"),
            "{text}"
        );
        assert_eq!(status(&results), Status::Unavailable);
    }

    #[test]
    fn a_skip_that_is_not_a_failure_still_passes() {
        let mut results = all_passed();
        results[5] = CheckResult::skipped(Check::Discovery, "single-calendar mode");
        assert_eq!(summary_line(&results), "all 6 checks passed, 1 skipped");
        assert_eq!(status(&results), Status::Success);
    }

    #[test]
    fn a_configuration_error_names_the_variable_skips_the_rest_and_exits_2() {
        let error = ConfigError::Missing {
            variable: "CALDAV_PASSWORD",
            flag: "caldav-password",
        };
        let results = configuration_failed(&vec![error].into(), true);
        assert_eq!(results.len(), 7);
        assert_eq!(results[6].check, Check::SingleCalendar);
        let text = render(&results);
        assert!(
            text.starts_with("✗ configuration: CALDAV_PASSWORD is not set"),
            "{text}"
        );
        assert!(text.contains("hint: set CALDAV_PASSWORD, or put the secret in a file and set CALDAV_PASSWORD_FILE"), "{text}");
        assert!(
            text.ends_with("1 of 7 checks failed, 6 skipped\n"),
            "{text}"
        );
        assert_eq!(status(&results), Status::Usage);
    }

    /// Issue 21, point 5: every problem is listed under the one failed line, each naming its
    /// variable, and each hint is given once.
    #[test]
    fn several_configuration_errors_are_listed_under_one_line_with_their_hints_once() {
        let missing = |variable, flag| ConfigError::Missing { variable, flag };
        let errors = vec![
            missing("PLANE_BASE_URL", "plane-base-url"),
            missing("PLANE_WORKSPACE_SLUG", "plane-workspace-slug"),
            missing("CALDAV_PASSWORD", "caldav-password"),
        ]
        .into();
        let results = configuration_failed(&errors, false);
        let text = render(&results);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[..6],
            [
                "✗ configuration: 3 settings are missing or invalid:",
                "  - PLANE_BASE_URL is not set (set it in the environment or pass --plane-base-url)",
                "  - PLANE_WORKSPACE_SLUG is not set (set it in the environment or pass --plane-workspace-slug)",
                "  - CALDAV_PASSWORD is not set (set it in the environment or pass --caldav-password)",
                "  hint: `calplanebot help config` lists every setting; under systemd, check the unit's Environment= and EnvironmentFile= lines",
                "  hint: set CALDAV_PASSWORD, or put the secret in a file and set CALDAV_PASSWORD_FILE (e.g. a systemd credential)",
            ],
            "{text}"
        );
        assert!(
            lines[6].starts_with("- Plane API and token: skipped"),
            "{text}"
        );
        assert!(
            text.ends_with("1 of 7 checks failed, 6 skipped\n"),
            "{text}"
        );
        assert_eq!(status(&results), Status::Usage);
    }

    #[test]
    fn plane_errors_get_the_hint_of_their_cause() {
        let what = || "x".to_string();
        let hint = |result: CheckResult| match result.outcome {
            Outcome::Failed { hint, .. } => hint,
            other => panic!("{other:?}"),
        };
        assert!(
            hint(plane_token_failed(&PlaneError::BadKey { what: what() }))
                .contains("PLANE_API_TOKEN")
        );
        assert!(
            hint(plane_token_failed(&PlaneError::NotFound { what: what() }))
                .contains("PLANE_BASE_URL")
        );
        let unreachable = PlaneError::Transport {
            origin: "https://plane.example.com".into(),
            what: what(),
            source: ureq::Error::ConnectionFailed,
        };
        assert!(hint(plane_token_failed(&unreachable)).contains("PLANE_BASE_URL"));

        let forbidden = workspace_failed(&PlaneError::Forbidden { what: what() }, "acme");
        assert_eq!(forbidden.check, Check::Workspace);
        assert!(hint(forbidden).contains("PLANE_WORKSPACE_SLUG"));
        // users/me/ worked at this origin: a 404 is about the slug, not PLANE_BASE_URL.
        let missing = workspace_failed(&PlaneError::NotFound { what: what() }, "acme");
        let Outcome::Failed { error, hint } = &missing.outcome else {
            panic!("{missing:?}")
        };
        assert!(!error.contains("PLANE_BASE_URL"), "{error}");
        assert!(hint.contains("PLANE_WORKSPACE_SLUG"), "{hint}");
    }

    #[test]
    fn one_caldav_request_tells_the_server_check_from_the_credentials_check() {
        let url = "https://dav.example.com/";
        let outcomes = |error: Option<&CalDavError>| -> Vec<(Check, bool, bool)> {
            server_checks("CALDAV_URL", url, "alice", error)
                .into_iter()
                .map(|r| {
                    let skipped = matches!(r.outcome, Outcome::Skipped(_));
                    (r.check, r.is_failed(), skipped)
                })
                .collect()
        };
        use Check::{CalDavCredentials as Creds, CalDavServer as Server};
        assert_eq!(
            outcomes(None),
            [(Server, false, false), (Creds, false, false)]
        );
        let unreachable = CalDavError::Transport {
            url: url.into(),
            source: ureq::Error::ConnectionFailed,
        };
        assert_eq!(
            outcomes(Some(&unreachable)),
            [(Server, true, false), (Creds, false, true)]
        );
        assert_eq!(
            outcomes(Some(&status_error(503))),
            [(Server, true, false), (Creds, false, true)]
        );
        let refused = CalDavError::Unauthorized { url: url.into() };
        assert_eq!(
            outcomes(Some(&refused)),
            [(Server, false, false), (Creds, true, false)]
        );
        // A 404 is the next check's failure; the credentials were not refused.
        assert_eq!(
            outcomes(Some(&status_error(404))),
            [(Server, false, false), (Creds, false, false)]
        );
        let text = render(&server_checks("CALDAV_URL", url, "alice", Some(&refused)));
        assert!(
            text.contains("hint: check CALDAV_USERNAME and CALDAV_PASSWORD"),
            "{text}"
        );
    }

    fn calendar(name: &str, components: Option<&[&str]>) -> Calendar {
        Calendar {
            url: "https://dav.example.com/alice/cal/".into(),
            displayname: Some(name.into()),
            components: components.map(|c| c.iter().map(|s| s.to_string()).collect()),
            ctag: None,
            sync_token: None,
        }
    }

    #[test]
    fn the_calendar_home_counts_plane_calendars() {
        let listed = vec![
            calendar("Plane: Website", None),
            calendar("Personal", None),
            calendar("Plane: Ops", Some(&["VEVENT"])),
        ];
        assert_eq!(
            calendar_home_result(Ok(listed)).outcome,
            Outcome::Passed("3 calendars, 2 named \"Plane: …\"".into())
        );
        assert!(calendar_home_result(Err(status_error(500))).is_failed());
    }

    #[test]
    fn the_single_calendar_must_exist_be_a_calendar_and_take_events() {
        let url = "https://dav.example.com/alice/cal/";
        let ok =
            single_calendar_result(url, Ok(Some(calendar("Team", Some(&["VEVENT", "VTODO"])))));
        assert_eq!(
            ok.outcome,
            Outcome::Passed(format!("\"Team\" at {url}, takes events"))
        );
        let any = single_calendar_result(url, Ok(Some(calendar("", None))));
        assert!(!any.is_failed());
        for failing in [
            single_calendar_result(url, Ok(Some(calendar("Tasks", Some(&["VTODO"]))))),
            single_calendar_result(url, Ok(None)),
            single_calendar_result(url, Err(status_error(404))),
        ] {
            assert!(failing.is_failed(), "{failing:?}");
            assert!(render(&[failing]).contains("hint: "));
        }
    }
}
