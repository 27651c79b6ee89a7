//! `calplanebot sync`: the glue of one run — fetch (Plane), list (CalDAV), plan, render, apply,
//! report — and the choice of exit status. What to change is decided in `plan` and where
//! events live in `placement`; this module gathers their inputs (including the Plane requests
//! that confirm each deletion) and hands the plan on.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;
use std::time::Instant;

use crate::caldav::{self, CalDavError, DavClient, StoredEvent};
use crate::cli::{Format, SyncArgs};
use crate::config::{CalDav, Config};
use crate::exit::Status;
use crate::feed::{self, FeedDirectory};
use crate::mapping::event::{self, MappingContext};
use crate::plane::{self, Issue, IssueItem, PlaneClient, PlaneError, Project, ProjectIssues};
use crate::reconcile::placement::{self, Layout, Wanted};
use crate::reconcile::plan::{self, ActualEvent, CalendarJob, CalendarTarget, Change};
use crate::reconcile::render::{self, Action, Report};
use crate::reconcile::views::{self, View, ViewMember};
use crate::support::cache::CalendarCache;
use crate::support::snapshot::{self, Snapshot};

use super::listing::{self, How};

/// Why a run stopped before it could plan anything.
#[derive(Debug, thiserror::Error)]
pub enum Abort {
    #[error("{0}")]
    Plane(#[from] PlaneError),
    #[error("{0}")]
    CalDav(#[from] CalDavError),
    #[error("{0}")]
    Usage(String),
    /// Plane answered, but with something calplanebot cannot read (a webhook's one work item):
    /// nothing is changed, and the run failed.
    #[error("{0}")]
    Unreadable(String),
}

impl Abort {
    pub fn status(&self) -> Status {
        match self {
            Abort::Usage(_) => Status::Usage,
            Abort::Unreadable(_) => Status::PartialFailure,
            Abort::Plane(_) | Abort::CalDav(_) => Status::Unavailable,
        }
    }
}

/// How a run plans and prints, shared by `sync` and `webhook`.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub dry_run: bool,
    pub format: Format,
    pub guard: plan::GuardLimits,
}

impl From<&SyncArgs> for Options {
    fn from(args: &SyncArgs) -> Options {
        Options {
            dry_run: args.dry_run,
            format: args.format,
            guard: plan::GuardLimits {
                max_delete: args.guard.max_delete,
                max_percent: args.guard.max_delete_percent,
                force: args.force_delete,
            },
        }
    }
}

/// Which projects a run reconciles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Every syncable project (a full sync: the cache is rewritten from scratch).
    All,
    /// `--project`: each must match a syncable project, else a usage error.
    Named(Vec<String>),
    /// A project webhook: a project that is not syncable (archived, deleted, not a member)
    /// means nothing to do.
    Hinted(String),
}

pub fn run(config: &Config, args: &SyncArgs) -> Status {
    let selection = if args.projects.is_empty() {
        Selection::All
    } else {
        Selection::Named(args.projects.clone())
    };
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let outcome = reconcile(config, &Options::from(args), &selection);
    let status = match (&outcome.report, outcome.status) {
        (Some(report), Status::Success) if args.exit_code && report.planned > 0 => Status::Pending,
        (_, status) => status,
    };
    // A dry run leaves the metrics alone (a preview must not hide the real runs' state), and
    // so does a run that found the lock taken (the run holding it will write them).
    if let Some(path) = &args.metrics_file
        && !args.dry_run
        && status != Status::LockBusy
    {
        let run = crate::support::metrics::RunMetrics::from_report(
            start,
            status.code(),
            outcome.report.as_ref(),
        );
        crate::support::metrics::write(path, &run);
    }
    status
}

/// How a reconcile ended: its status, and its report when it got as far as planning.
pub struct Outcome {
    pub status: Status,
    pub report: Option<Report>,
}

/// Takes the run lock (none for a dry run, which writes nothing and never waits for a real
/// run); `Err` is the status to exit with.
pub fn lock(
    config: &Config,
    dry_run: bool,
) -> Result<Option<crate::support::lock::RunLock>, Status> {
    if dry_run {
        return Ok(None);
    }
    match crate::support::lock::acquire(&config.lock_file, config.lock_wait) {
        Ok(lock) => Ok(Some(lock)),
        Err(error @ crate::support::lock::LockError::Busy { .. }) => {
            log::error!("{error}");
            Err(Status::LockBusy)
        }
        Err(error) => {
            log::error!("{error}");
            Err(Status::Usage)
        }
    }
}

/// The Plane client of a run, asking for the page size the cache remembers for this Plane
/// (see [`remember_per_page`]), else for `plane::PER_PAGE`.
pub fn plane_client(config: &Config) -> PlaneClient {
    let client = PlaneClient::new(
        &config.plane_base_url,
        &config.workspace_slug,
        config.plane_token.clone(),
        &config.network,
    );
    if let Some(per_page) = plane_cache(config).plane_per_page(&config.plane_base_url) {
        log::debug!("asking Plane for {per_page} items a page, as an earlier run learned");
        client.set_per_page(per_page);
    }
    client
}

/// Remembers in the cache the page size Plane accepted, when this run had to fall back to it
/// (`plane::PlaneClient::walk`): the next runs ask for it from their first request.
pub fn remember_per_page(config: &Config, plane: &PlaneClient) {
    if plane.per_page() == plane::PER_PAGE {
        return;
    }
    let mut cache = plane_cache(config);
    cache.set_plane_per_page(&config.plane_base_url, plane.per_page());
    cache.save();
}

/// The cache of this configuration, for what it keeps of Plane: the CalDAV configuration's, or
/// with feeds only one with empty CalDAV fields (its file name hashes the whole configuration).
fn plane_cache(config: &Config) -> CalendarCache {
    match &config.caldav {
        Some(caldav) => load_cache(config, caldav),
        None => CalendarCache::load(config.cache_file.as_deref(), "", "", &config.workspace_slug),
    }
}

/// The CalDAV client of a run.
pub fn dav_client(caldav: &CalDav, config: &Config) -> DavClient {
    DavClient::new(
        &caldav.username,
        &caldav.password,
        &config.network,
        caldav.roots.as_deref(),
    )
}

/// The calendar-location cache of this configuration (see `cache`).
pub fn load_cache(config: &Config, caldav: &CalDav) -> CalendarCache {
    match &config.cache_file {
        Some(path) => log::debug!("calendar cache: {}", path.display()),
        None => log::debug!("no calendar cache (CALPLANEBOT_CACHE_DIR is empty)"),
    }
    CalendarCache::load(
        config.cache_file.as_deref(),
        &caldav.url,
        &caldav.username,
        &config.workspace_slug,
    )
}

/// The listing snapshot of this configuration (see `snapshot`).
pub fn load_snapshot(config: &Config, caldav: &CalDav) -> Snapshot {
    Snapshot::load(
        config.snapshot_file.as_deref(),
        snapshot::Owner {
            caldav_url: &caldav.url,
            caldav_username: &caldav.username,
            calendar_url: caldav.calendar_url.as_deref(),
            workspace: &config.workspace_slug,
        },
        config.full_listing_every,
    )
}

/// A sync of the selected projects: lock, fetch from Plane, then each configured target —
/// CalDAV ([`caldav_jobs`], then [`finish`]) and the feeds. A target that fails does not stop
/// the other.
pub fn reconcile(config: &Config, options: &Options, selection: &Selection) -> Outcome {
    let started = Instant::now();
    let _lock = match lock(config, options.dry_run) {
        Ok(lock) => lock,
        Err(status) => {
            return Outcome {
                status,
                report: None,
            };
        }
    };
    // The feed directory is checked (and locked) before anything is read or written: a run
    // of another configuration or with another secret changes nothing anywhere.
    let mut feed_dir = match open_feed_dir(config, options.dry_run) {
        Ok(dir) => dir,
        Err(status) => {
            return Outcome {
                status,
                report: None,
            };
        }
    };
    let plane = plane_client(config);
    let mut report = Report {
        dry_run: options.dry_run,
        ..Report::default()
    };
    let aborted = |abort: Abort, mut report: Report, dav: Option<&DavClient>| {
        log::error!("{abort}");
        log::error!("nothing was changed");
        if !options.dry_run {
            remember_per_page(config, &plane);
        }
        report.plane_requests = plane.requests.get();
        report.caldav_requests = dav.map_or(0, |d| d.requests.get());
        report.seconds = started.elapsed().as_secs_f64();
        report.errors.push(abort.to_string());
        Outcome {
            status: abort.status(),
            report: Some(report),
        }
    };
    let fetched = match fetch(selection, &plane, &mut report) {
        Ok(fetched) => fetched,
        Err(abort) => return aborted(abort, report, None),
    };
    let mut statuses = Vec::new();
    let mut dav = None;
    if config.caldav.is_none() && !config.assignees.is_empty() {
        log::warn!(
            "--assignee applies to CalDAV calendars; this configuration writes feeds only, which already have one feed per member"
        );
    }
    if let Some(caldav) = &config.caldav {
        let members = match resolve_members(config, &plane, &fetched.projects) {
            Ok(members) => members,
            Err(abort) => return aborted(abort, report, None),
        };
        let client = dav_client(caldav, config);
        let mut snapshot = load_snapshot(config, caldav);
        match caldav_jobs(
            config,
            caldav,
            options,
            &plane,
            &client,
            &fetched,
            &members,
            &mut report,
            &mut snapshot,
        ) {
            Ok(CalDavJobs {
                jobs,
                layout,
                reads,
            }) => {
                let (caldav_status, done) =
                    finish(config, options, &jobs, &plane, &client, report, started);
                report = done;
                statuses.push(caldav_status);
                if caldav.calendar_url.is_none() && !options.dry_run {
                    remember(config, caldav, selection, &layout, &jobs, &report);
                }
                if !options.dry_run {
                    let failed: Vec<String> = report
                        .failures
                        .iter()
                        .filter(|f| f.action == Action::CreateCalendar)
                        .map(|f| f.url.clone())
                        .collect();
                    listing::record(
                        &client,
                        &mut snapshot,
                        &jobs,
                        &reads,
                        &report.writes,
                        &failed,
                    );
                    if *selection == Selection::All && report.errors.is_empty() {
                        snapshot.retain(&|url| jobs.iter().any(|j| j.target.url == url));
                    }
                    snapshot.save();
                }
            }
            Err(abort) if config.feeds.is_none() => {
                return aborted(abort, report, Some(&client));
            }
            Err(abort) => {
                // The feeds are written all the same: a failure on one target does not stop
                // the other.
                log::error!("{abort}; no calendar was changed");
                report.errors.push(abort.to_string());
                statuses.push(abort.status());
            }
        }
        dav = Some(client);
    }
    if let Some(dir) = &mut feed_dir {
        let removals = !matches!(selection, Selection::Hinted(_));
        statuses.push(write_feeds(
            config,
            dir,
            options,
            &plane,
            &fetched,
            selection,
            removals,
            &mut report,
        ));
    }
    let mut status = Status::combine(&statuses);
    // A project that could not be read fails the run whichever targets there are.
    if status == Status::Success && !report.errors.is_empty() {
        status = Status::PartialFailure;
    }
    if !options.dry_run {
        remember_per_page(config, &plane);
    }
    report.plane_requests = plane.requests.get();
    report.caldav_requests = dav.as_ref().map_or(0, |d| d.requests.get());
    report.seconds = started.elapsed().as_secs_f64();
    print_json(options, &report);
    log_done(&report);
    Outcome {
        status,
        report: Some(report),
    }
}

/// With `--format json`, the run's one JSON document on stdout: the CalDAV plan and the report
/// of both targets.
pub fn print_json(options: &Options, report: &Report) {
    if options.format == Format::Json {
        let _ = std::io::stdout().write_all(render::json(report).as_bytes());
    }
}

/// The one info line of a run: its summary (only when the log is read somewhere else than
/// stdout: under systemd, on a terminal, or with `>> file 2>&1`, both are one destination),
/// and its cost.
pub fn log_done(report: &Report) {
    let done = if report.dry_run {
        "dry run done, nothing written,"
    } else {
        "run done"
    };
    let summary = match &report.summary {
        Some(summary) if !render::stdout_is_stderr() => summary.as_str(),
        _ => done,
    };
    let feeds = if report.feeds_written + report.feeds_removed + report.feeds_unchanged > 0 {
        if report.dry_run {
            format!(
                ", would write {} feeds, remove {}",
                report.feeds_written, report.feeds_removed
            )
        } else {
            format!(
                ", {} feeds written, {} removed",
                report.feeds_written, report.feeds_removed
            )
        }
    } else {
        String::new()
    };
    log::info!(
        "{summary} in {:.2} s ({} issues seen; {} Plane requests, {} CalDAV requests{feeds})",
        report.seconds,
        report.issues_seen,
        report.plane_requests,
        report.caldav_requests
    );
}

/// Records in the calendar-location cache where this run found or made each calendar.
fn remember(
    config: &Config,
    caldav: &CalDav,
    selection: &Selection,
    layout: &Option<Layout>,
    jobs: &[CalendarJob],
    report: &Report,
) {
    let mut cache = load_cache(config, caldav);
    if *selection == Selection::All && report.errors.is_empty() {
        cache.clear();
    }
    match layout {
        Some(Layout::Single(url)) => cache.set_single_calendar(Some(url)),
        Some(Layout::Home(_)) => {
            cache.set_single_calendar(None);
            remember_calendars(&mut cache, jobs, report);
        }
        None => {}
    }
    cache.save();
}

/// The feed directory of a run, opened before anything else (see `feed::directory`): locked
/// for a real run, and checked against its record — another configuration or another secret
/// stops the run here, nothing changed anywhere. `Err` is the status to exit with.
pub fn open_feed_dir(config: &Config, dry_run: bool) -> Result<Option<FeedDirectory>, Status> {
    open_feed_dir_with(
        config,
        feed::Access {
            write: !dry_run,
            ..feed::Access::default()
        },
    )
}

/// [`open_feed_dir`] with the access `feeds --rotate-secret` / `--take-over` need.
pub fn open_feed_dir_with(
    config: &Config,
    access: feed::Access,
) -> Result<Option<FeedDirectory>, Status> {
    let Some(feeds) = &config.feeds else {
        return Ok(None);
    };
    match FeedDirectory::open(
        &feeds.dir,
        &config.feed_identity(),
        &feeds.secret,
        access,
        config.lock_wait,
    ) {
        Ok(dir) => Ok(Some(dir)),
        Err(error) => {
            log::error!("{error}");
            log::error!("nothing was changed");
            Err(error.status())
        }
    }
}

/// The feed target of a run (see `feed`): every project's, member's and the workspace's feed,
/// from what this run fetched; projects it did not fetch completely (or not at all, with
/// `--project`) keep their events as the files hold them. Feeds go only as far as this run's
/// knowledge goes (`feed::Truth`), and never when `removals` is off (a project webhook).
#[allow(clippy::too_many_arguments)]
fn write_feeds(
    config: &Config,
    dir: &mut FeedDirectory,
    options: &Options,
    plane: &PlaneClient,
    fetched: &Fetched,
    selection: &Selection,
    removals: bool,
    report: &mut Report,
) -> Status {
    let failed = |report: &mut Report, message: String, status: Status| {
        let message = format!("{message}; no feed was written");
        log::error!("{message}");
        report.errors.push(message);
        status
    };
    let (mut source, members_read) = match feed_source(config, plane, fetched) {
        Ok(source) => source,
        Err(error) => {
            let status = if error.is_fatal() {
                Status::Unavailable
            } else {
                Status::PartialFailure
            };
            return failed(report, error.to_string(), status);
        }
    };
    if let Err(abort) =
        confirm_feed_absences(config, plane, fetched, &mut source, dir, options.guard)
    {
        let status = abort.status();
        return failed(report, abort.to_string(), status);
    }
    if !members_read {
        log::info!(
            "the API key may not read the workspace's members: member feeds are made for the assignees seen, added and updated, and none is removed"
        );
    }
    let truth = feed::Truth {
        may_remove: removals,
        projects: (!fetched.listed.is_empty())
            .then(|| fetched.listed.iter().map(|p| p.id.clone()).collect()),
        members: members_read.then(|| source.members.iter().map(|m| m.id.clone()).collect()),
        complete: *selection == Selection::All
            && fetched.projects.iter().all(|(_, issues)| issues.complete()),
    };
    let text = options.format == Format::Text;
    let feed_options = feed::Options {
        dry_run: options.dry_run,
        guard: options.guard,
        text,
    };
    let mut stdout = std::io::stdout().lock();
    let outcome = match feed::write_all(dir, &source, &truth, feed_options, &mut stdout) {
        Ok(outcome) => outcome,
        Err(error) => {
            let status = error.status();
            return failed(report, error.to_string(), status);
        }
    };
    report_feeds(&outcome, options, report, &mut stdout)
}

/// Puts a feed outcome into the report (failures named by feed, never by file), prints the
/// feeds' summary line, and gives the feed target's status.
pub fn report_feeds(
    outcome: &feed::Outcome,
    options: &Options,
    report: &mut Report,
    stdout: &mut dyn std::io::Write,
) -> Status {
    for failure in &outcome.failures {
        let message = format!("feed {:?}: {}", failure.name, failure.error);
        log::error!("{message}");
        report.errors.push(message);
    }
    for kept in &outcome.kept {
        log::warn!("feeds: {kept}");
    }
    report.feeds_written += outcome.written;
    report.feeds_removed += outcome.removed;
    report.feeds_unchanged += outcome.unchanged;
    report.planned += outcome.written + outcome.removed;
    let summary = render::feed_summary_line(outcome, options.dry_run);
    if options.format == Format::Text {
        let _ = writeln!(stdout, "{summary}");
    }
    report.feeds_summary = Some(summary);
    outcome.status()
}

/// The feeds' side of point 1 of the deletion rules: an event in the feed files whose issue is
/// missing from its (completely read) project's list leaves the feeds only once Plane confirms
/// it is gone ([`confirm_missing`], shared with the calendars). Dated after all: it stays; no
/// clear answer, or too many to ask about: that project's events stay as the files hold them.
fn confirm_feed_absences(
    config: &Config,
    plane: &PlaneClient,
    fetched: &Fetched,
    source: &mut feed::Source,
    dir: &FeedDirectory,
    guard: plan::GuardLimits,
) -> Result<(), Abort> {
    let fresh: HashSet<&str> = source
        .projects
        .iter()
        .flat_map(|p| p.events.iter().flatten())
        .map(|e| e.event.key.1.as_str())
        .collect();
    let complete: HashSet<&str> = source
        .projects
        .iter()
        .filter(|p| p.events.is_some())
        .map(|p| p.id.as_str())
        .collect();
    let by_project: HashMap<&str, &ProjectIssues> = fetched
        .projects
        .iter()
        .map(|(p, issues)| (p.id.as_str(), issues))
        .collect();
    let mut absent: BTreeMap<String, String> = BTreeMap::new();
    feed::for_each_existing_event(dir, &source.workspace, |uid, project| {
        let Some(project) = project.filter(|p| complete.contains(p)) else {
            return true;
        };
        let Some(id) = event::issue_id_from_uid(uid, None) else {
            return true;
        };
        let escaped = crate::mapping::ics::escape_text(uid);
        let listed_undated = by_project
            .get(project)
            .is_some_and(|issues| issues.undated.contains(id));
        if !fresh.contains(escaped.as_str()) && !listed_undated {
            absent.insert(id.to_string(), project.to_string());
        }
        true
    })
    .map_err(|e| Abort::Unreadable(e.to_string()))?;
    if absent.is_empty() {
        return Ok(());
    }
    let missing: Vec<(String, String)> = absent.into_iter().collect();
    let mut carry: HashSet<String> = HashSet::new();
    match confirm_missing(plane, fetched, &missing, guard, "leave the feeds")? {
        None => carry.extend(missing.into_iter().map(|(_, project)| project)),
        Some(answers) => {
            for ((_, project_id), answer) in missing.into_iter().zip(answers) {
                match answer {
                    None | Some(Answer::Gone) => {}
                    Some(Answer::Alive(issue)) => {
                        let Some(project) = fetched.listed.iter().find(|p| p.id == project_id)
                        else {
                            continue;
                        };
                        if let Some(events) = source
                            .projects
                            .iter_mut()
                            .find(|p| p.id == project_id)
                            .and_then(|p| p.events.as_mut())
                        {
                            events.push(feed_event(&mapping_context(config), &issue, project));
                        }
                    }
                    Some(Answer::Unsure(_)) => {
                        carry.insert(project_id);
                    }
                }
            }
        }
    }
    for project in source.projects.iter_mut() {
        if carry.contains(&project.id) {
            project.events = None;
        }
    }
    Ok(())
}

/// What the feeds are made of: each listed project's events (`None` when this run did not read
/// it completely), and the workspace's members; with them, whether the members list was read
/// (`false`: a key that may not read it, whose member feeds follow the assignees seen).
pub fn feed_source(
    config: &Config,
    plane: &PlaneClient,
    fetched: &Fetched,
) -> Result<(feed::Source, bool), PlaneError> {
    let by_id: HashMap<&str, &(Project, ProjectIssues)> = fetched
        .projects
        .iter()
        .map(|entry| (entry.0.id.as_str(), entry))
        .collect();
    let ctx = mapping_context(config);
    let projects = fetched
        .listed
        .iter()
        .map(|project| {
            let events = by_id
                .get(project.id.as_str())
                .filter(|(_, issues)| issues.complete())
                .map(|(_, issues)| {
                    issues
                        .issues
                        .iter()
                        .map(|issue| feed_event(&ctx, issue, project))
                        .collect()
                });
            feed::ProjectEvents {
                id: project.id.clone(),
                name: project.name.clone(),
                events,
            }
        })
        .collect();
    let (members, read) = match plane.workspace_members() {
        Ok(members) => (
            members.iter().map(feed::MemberRef::of_member).collect(),
            true,
        ),
        Err(PlaneError::Forbidden { .. }) => (
            assignees_seen(&fetched.projects)
                .iter()
                .map(feed::MemberRef::of_assignee)
                .collect(),
            false,
        ),
        Err(error) => return Err(error),
    };
    Ok((
        feed::Source {
            workspace: config.workspace_slug.clone(),
            projects,
            members,
        },
        read,
    ))
}

/// The mapping settings of a run.
pub fn mapping_context(config: &Config) -> MappingContext<'_> {
    MappingContext {
        workspace_slug: &config.workspace_slug,
        web_url: &config.plane_web_url,
        span: config.span,
    }
}

/// One issue's event as the feeds carry it, rendered once. Plane always sends `updated_at`;
/// without it, a fixed stamp still keeps the bytes stable.
pub fn feed_event(ctx: &MappingContext, issue: &Issue, project: &Project) -> feed::FeedEvent {
    feed::FeedEvent::new(
        &event::desired_event(issue, project, ctx),
        issue
            .updated_at
            .unwrap_or(chrono::DateTime::<chrono::Utc>::UNIX_EPOCH),
        issue.assignees.iter().map(|a| a.id.clone()).collect(),
    )
}

/// Every assignee of the issues fetched, once each, by id: whom a key that may not read the
/// members list knows of (for member feeds and `--assignee`).
fn assignees_seen(fetched: &[(Project, ProjectIssues)]) -> Vec<plane::Assignee> {
    let mut seen: BTreeMap<&str, &plane::Assignee> = BTreeMap::new();
    for issue in fetched.iter().flat_map(|(_, issues)| &issues.issues) {
        for assignee in &issue.assignees {
            seen.entry(assignee.id.as_str()).or_insert(assignee);
        }
    }
    seen.into_values().cloned().collect()
}

/// Records where each job's projects live, unless creating that calendar failed.
pub fn remember_calendars(cache: &mut CalendarCache, jobs: &[CalendarJob], report: &Report) {
    for job in jobs {
        let failed = report
            .failures
            .iter()
            .any(|f| f.action == Action::CreateCalendar && f.url == job.target.url);
        let keys = cache_keys(job);
        for key in &keys {
            if failed {
                cache.remove(key);
            } else {
                cache.set(key, &job.target.url);
            }
        }
    }
}

/// The keys of a job's calendar in the calendar-location cache: an assignee view's calendar
/// is found by its member's id, a project's calendar by the project's.
pub fn cache_keys(job: &CalendarJob) -> Vec<String> {
    match &job.view {
        Some(_) => placement::member_of_calendar(&job.target.url)
            .into_iter()
            .collect(),
        None => job.scopes.iter().map(|s| s.project.id.clone()).collect(),
    }
}

/// Plan, guard, print, apply and report: everything after the inputs are gathered. Returns
/// the exit status and the report of what was done.
pub fn finish(
    config: &Config,
    options: &Options,
    jobs: &[CalendarJob],
    plane: &PlaneClient,
    dav: &DavClient,
    mut report: Report,
    started: Instant,
) -> (Status, Report) {
    let mut plan = plan::plan_changes(jobs, &config.workspace_slug);
    plan::guard_deletions(&mut plan, jobs, options.guard);
    if let Some(reason) = &plan.refused {
        log::error!(
            "refusing all {} deletions of this run: {reason}; check Plane, then re-run with --force-delete if they are right",
            plan.refused_deletions()
        );
    }
    report.unchanged = plan.unchanged;
    report.withheld = plan.withheld.len();
    report.planned = plan.calendars.len() + plan.changes.len();
    for withheld in plan.withheld.iter().filter(|w| w.reason.is_failure()) {
        report.errors.push(format!(
            "{}: {}: {}",
            withheld.calendar, withheld.summary, withheld.reason
        ));
    }
    let mut stdout = std::io::stdout().lock();
    if options.format == Format::Text {
        let _ = stdout.write_all(render::plan_text(&plan).as_bytes());
        let _ = stdout.flush();
    }
    if !options.dry_run {
        crate::reconcile::apply::apply(
            dav,
            &plan,
            &config.workspace_slug,
            &mut report,
            config.concurrency,
        );
    }
    report.plane_requests = plane.requests.get();
    report.caldav_requests = dav.requests.get();
    report.seconds = started.elapsed().as_secs_f64();
    report.summary = Some(render::summary_line(&plan, &report));
    match options.format {
        Format::Text => {
            for failure in &report.failures {
                let _ = writeln!(
                    stdout,
                    "! failed to {} {}: {}",
                    failure.action,
                    render::escape_controls(&failure.url),
                    render::escape_controls(&failure.error)
                );
            }
            let _ = writeln!(stdout, "{}", render::summary_line(&plan, &report));
        }
        // Printed once at the end of the run, with the feeds' part of the report.
        Format::Json => report.plan = serde_json::to_value(&plan).ok(),
    }
    let status = if !report.failures.is_empty() || !report.errors.is_empty() {
        Status::PartialFailure
    } else if plan.refused.is_some() {
        Status::Refused
    } else {
        Status::Success
    };
    (status, report)
}

/// Plane's word on each issue of `missing` (issue id, project id) that left its project's
/// completely read list, for any target that would drop its event: one detail request per
/// issue, asked once per run whichever target asks ([`Fetched::confirm`]); `None` for an issue
/// of a project not listed. When there are more than `--max-delete` of them, the guard refuses
/// those deletions anyway: nobody is asked, and the answer is `None` (`what` says what the
/// events would do, for the log).
fn confirm_missing(
    plane: &PlaneClient,
    fetched: &Fetched,
    missing: &[(String, String)],
    guard: plan::GuardLimits,
    what: &str,
) -> Result<Option<Vec<Option<Answer>>>, Abort> {
    if missing.len() > guard.max_delete && !guard.force {
        log::info!(
            "{} events of issues missing from Plane's lists would {what}, more than --max-delete {}: not confirming them one by one (the deletion guard keeps them)",
            missing.len(),
            guard.max_delete
        );
        return Ok(None);
    }
    if !missing.is_empty() {
        log::debug!(
            "confirming {} absences with Plane, one detail request each",
            missing.len()
        );
    }
    let mut answers = Vec::with_capacity(missing.len());
    for (id, project_id) in missing {
        answers.push(match fetched.listed.iter().find(|p| p.id == *project_id) {
            Some(project) => Some(fetched.confirm(plane, project, id)?),
            None => None,
        });
    }
    Ok(Some(answers))
}

/// What Plane said this run: the selected projects with their dated issues (none for a project
/// hint that names no syncable project: nothing to do).
pub struct Fetched {
    /// Every syncable project of the workspace, selected or not.
    pub listed: Vec<Project>,
    pub projects: Vec<(Project, ProjectIssues)>,
    /// What Plane said, by id, of issues missing from their project's list: each is asked
    /// once per run, whichever target needs the answer.
    answers: std::cell::RefCell<BTreeMap<String, Answer>>,
}

/// Plane's word on an issue missing from its project's list (a detail GET).
#[derive(Clone, Debug)]
pub enum Answer {
    /// 404 or no due date: its events may go.
    Gone,
    /// Dated after all: the walk skipped it.
    Alive(Box<Issue>),
    /// Plane answered with something calplanebot cannot read, or not at all: keep its events.
    Unsure(String),
}

impl Fetched {
    /// Asks Plane about issue `id` of `project`, once per run.
    fn confirm(&self, plane: &PlaneClient, project: &Project, id: &str) -> Result<Answer, Abort> {
        if let Some(answer) = self.answers.borrow().get(id) {
            return Ok(answer.clone());
        }
        let answer = match plane.issue(project, id) {
            Ok(None) | Ok(Some(IssueItem::Undated { .. })) => Answer::Gone,
            Ok(Some(IssueItem::Dated(issue))) => {
                log::warn!(
                    "work item {id} of project {} was missing from Plane's list but exists (the list changed while it was read): its event is kept",
                    plane::project_label(project)
                );
                Answer::Alive(Box::new(issue))
            }
            Ok(Some(IssueItem::Invalid { reason, .. })) => Answer::Unsure(reason),
            Err(error) if error.is_fatal() => return Err(error.into()),
            Err(error) => {
                log::warn!("cannot confirm that work item {id} is gone: {error}");
                Answer::Unsure(error.to_string())
            }
        };
        self.answers
            .borrow_mut()
            .insert(id.to_string(), answer.clone());
        Ok(answer)
    }
}

/// The Plane side of a run: the selected projects and their dated issues.
pub fn fetch(
    selection: &Selection,
    plane: &PlaneClient,
    report: &mut Report,
) -> Result<Fetched, Abort> {
    let list = plane.projects()?;
    for (name, reason) in &list.skipped {
        log::info!("skipping project {name:?}: {reason}");
    }
    let listed = list.projects.clone();
    let projects = match selection {
        Selection::All => list.projects,
        Selection::Named(wanted) => select_projects(list.projects, wanted)?,
        Selection::Hinted(id) => {
            let found: Vec<Project> = list.projects.into_iter().filter(|p| p.id == *id).collect();
            if found.is_empty() {
                log::info!(
                    "project {id} is not a syncable project of the workspace (archived, deleted, or the token's user is not a member): nothing to do"
                );
            }
            found
        }
    };
    let mut fetched: Vec<(Project, ProjectIssues)> = Vec::with_capacity(projects.len());
    let bar = crate::support::progress::bar(projects.len(), "Plane");
    for project in projects {
        bar.inc(1);
        let mut issues = plane.dated_issues(&project);
        report.issues_seen += issues.listed;
        if let Some(error) = issues.error.take() {
            if error.is_fatal() {
                return Err(error.into());
            }
            let message = format!(
                "{error}; nothing is deleted in project {}",
                plane::project_label(&project)
            );
            log::error!("{message}");
            report.errors.push(message);
            issues.error = Some(error);
        }
        log::debug!(
            "project {}: {} dated issues",
            plane::project_label(&project),
            issues.issues.len()
        );
        fetched.push((project, issues));
    }
    bar.finish_and_clear();
    Ok(Fetched {
        listed,
        projects: fetched,
        answers: Default::default(),
    })
}

/// The CalDAV side of a run: each calendar's desired events (from `fetched`) and stored ones,
/// read as `listing` decides (the snapshot, a change report, or in full); also what each
/// calendar's read found, for the snapshot.
#[allow(clippy::too_many_arguments)]
fn caldav_jobs(
    config: &Config,
    caldav: &CalDav,
    options: &Options,
    plane: &PlaneClient,
    dav: &DavClient,
    fetched: &Fetched,
    members: &[ViewMember],
    report: &mut Report,
    snapshot: &mut Snapshot,
) -> Result<CalDavJobs, Abort> {
    let all = fetched;
    let fetched = &fetched.projects;
    if fetched.is_empty() {
        return Ok(CalDavJobs::default());
    }
    let ctx = MappingContext {
        workspace_slug: &config.workspace_slug,
        web_url: &config.plane_web_url,
        span: config.span,
    };
    let survey = listing::survey(caldav, dav, snapshot)?;
    let views = views::views(members.to_vec(), matches!(survey.layout, Layout::Single(_)));
    let jobs = match &survey.layout {
        Layout::Single(url) => vec![placement::single_calendar_job(
            url,
            fetched,
            &ctx,
            views.first(),
        )],
        Layout::Home(home) if !views.is_empty() => views
            .iter()
            .map(|view| {
                let target = placement::view_target(
                    home,
                    &survey.calendars,
                    view,
                    config.calendar_name.as_deref(),
                );
                placement::view_job(target, fetched, &ctx, Some(view))
            })
            .collect(),
        Layout::Home(home) => {
            log::debug!("calendar home: {home}");
            let wanted: Vec<Wanted<'_>> = fetched
                .iter()
                .map(|(project, issues)| Wanted { project, issues })
                .collect();
            let targets = place_among(dav, home, &survey.calendars, &wanted)?;
            fetched
                .iter()
                .zip(targets)
                .map(|((project, issues), target)| {
                    placement::project_job(target, project, issues, &ctx)
                })
                .collect()
        }
    };

    let results =
        listing::list_calendars(dav, &jobs, &survey.calendars, snapshot, config.concurrency);
    let mut kept = Vec::with_capacity(jobs.len());
    let mut reads = HashMap::new();
    let mut counts = [0usize; 3];
    for (mut job, result) in jobs.into_iter().zip(results) {
        match result {
            None => {}
            Some(Ok(mut read)) => {
                counts[read.how as usize] += 1;
                fill_actual(&mut job, std::mem::take(&mut read.events));
                reads.insert(job.target.url.clone(), read);
            }
            Some(Err(error)) if error.is_fatal() => return Err(error.into()),
            Some(Err(error)) => {
                let message = format!("{error}; calendar skipped this run");
                log::error!("{message}");
                report.errors.push(message);
                snapshot.forget(&job.target.url);
                continue;
            }
        }
        kept.push(job);
    }
    log::debug!(
        "calendars read from the snapshot: {}, from a change report: {}, in full: {}",
        counts[How::Snapshot as usize],
        counts[How::Changes as usize],
        counts[How::Full as usize]
    );
    confirm_absences(plane, all, &mut kept, &views, config, options.guard, &ctx)?;
    if options.format == Format::Text {
        print_views(&views, &kept);
    }
    Ok(CalDavJobs {
        jobs: kept,
        layout: Some(survey.layout),
        reads,
    })
}

/// One line per assignee view before the plan: whose it is, how many dated issues it holds
/// and the calendar it writes to.
fn print_views(views: &[View], jobs: &[CalendarJob]) {
    let mut stdout = std::io::stdout().lock();
    for view in views {
        if let Some(job) = jobs.iter().find(|j| j.view.as_deref() == Some(&view.id)) {
            let _ = writeln!(
                stdout,
                "assignee view \"{}\": {} into {}",
                render::escape_controls(&view.label()),
                views::dated_issues(job.desired.len()),
                render::escape_controls(&job.target.url)
            );
        }
    }
}

/// Resolves the configuration's `--assignee` values once per run (see `views`): `users/me/`
/// when one is `me`, the workspace's members list for any other; a key that may not read the
/// list names people by the assignees of the issues fetched. A value that names nobody is a
/// usage error: nothing is written.
pub fn resolve_members(
    config: &Config,
    plane: &PlaneClient,
    fetched: &[(Project, ProjectIssues)],
) -> Result<Vec<ViewMember>, Abort> {
    if config.assignees.is_empty() {
        return Ok(Vec::new());
    }
    let me = if config.assignees.iter().any(|w| views::is_me(w)) {
        Some(plane.me()?)
    } else {
        None
    };
    let members = if config.assignees.iter().all(|w| views::is_me(w)) {
        None
    } else {
        match plane.workspace_members() {
            Ok(members) => Some(members),
            Err(PlaneError::Forbidden { .. }) => {
                log::info!(
                    "the API key may not read the workspace's members: --assignee is matched against the assignees seen"
                );
                None
            }
            Err(error) => return Err(error.into()),
        }
    };
    let seen = assignees_seen(fetched);
    let directory = views::Directory {
        me: me.as_ref(),
        members: members.as_deref(),
        seen: &seen,
    };
    let resolved = views::resolve(&config.assignees, directory).map_err(Abort::Usage)?;
    for member in &resolved {
        log::debug!("--assignee: {} (member {})", member.display_name, member.id);
    }
    Ok(resolved)
}

/// What [`caldav_jobs`] gathered.
#[derive(Default)]
struct CalDavJobs {
    jobs: Vec<CalendarJob>,
    layout: Option<Layout>,
    /// How each calendar was read, by URL.
    reads: HashMap<String, listing::Listed>,
}

/// Files each listed event under its issue id: the id in our resource name, else the id in our
/// UID (an event a client stored or moved under another name is ours all the same). When two
/// events claim one issue, the one that carries its UID under our name is kept in `actual`
/// and the other becomes a copy.
pub fn fill_actual(job: &mut CalendarJob, events: Vec<StoredEvent>) {
    let view = job.view.clone();
    let view = view.as_deref();
    for stored in events {
        let decoded = caldav::xml::href_path(&stored.url);
        let name = decoded.rsplit('/').next().unwrap_or_default();
        let uid_id = || {
            event::read_event(&stored.data)
                .ok()
                .and_then(|f| event::issue_id_from_uid(&f.uid, view).map(str::to_string))
        };
        let by_name = event::issue_id_from_resource_name(name, view).map(str::to_string);
        let Some(id) = by_name.clone().or_else(uid_id) else {
            continue;
        };
        let rank = |event: &ActualEvent| {
            let fields = event::read_event(&event.data).ok();
            let has_uid = fields.is_some_and(|f| f.uid == event::uid_for(&id, view));
            let decoded = caldav::xml::href_path(&event.url);
            let named = decoded.ends_with(&format!("/{}", event::resource_name(&id, view)));
            (has_uid, named)
        };
        let actual = ActualEvent {
            url: stored.url,
            etag: stored.etag,
            data: stored.data,
        };
        match job.actual.remove(&id) {
            None => {
                job.actual.insert(id, actual);
            }
            Some(held) => {
                let (keep, copy) = if rank(&actual) > rank(&held) {
                    (actual, held)
                } else {
                    (held, actual)
                };
                job.actual.insert(id.clone(), keep);
                job.copies.push((id, copy));
            }
        }
    }
}

/// Each project's calendar in the home (see `placement`): one PROPFIND of the home, plus one
/// per candidate calendar when a project is not found by its path or name.
pub fn place_projects(
    dav: &DavClient,
    home: &str,
    wanted: &[Wanted<'_>],
) -> Result<Vec<CalendarTarget>, Abort> {
    let calendars = dav.calendars(home)?;
    place_among(dav, home, &calendars, wanted)
}

/// [`place_projects`] among the calendars a listing of the home found.
fn place_among(
    dav: &DavClient,
    home: &str,
    calendars: &[caldav::Calendar],
    wanted: &[Wanted<'_>],
) -> Result<Vec<CalendarTarget>, Abort> {
    let mut held = BTreeMap::new();
    for url in placement::adoption_candidates(home, calendars, wanted) {
        let names: HashSet<String> = dav
            .member_hrefs(&url)?
            .iter()
            .map(|href| {
                let decoded = caldav::xml::href_path(href);
                decoded.rsplit('/').next().unwrap_or_default().to_string()
            })
            .collect();
        held.insert(url, names);
    }
    Ok(placement::place(home, calendars, wanted, &held))
}

/// `CALDAV_CALENDAR_URL` when set; else what discovery finds at `CALDAV_URL`, where a calendar
/// means single-calendar mode.
pub fn layout(settings: &CalDav, dav: &DavClient) -> Result<Layout, CalDavError> {
    if let Some(url) = &settings.calendar_url {
        return Ok(Layout::Single(caldav::with_slash(url.clone())));
    }
    let discovery = dav.discover(&settings.url)?;
    Ok(match discovery.target {
        caldav::Target::Home(home) => Layout::Home(home),
        caldav::Target::Calendar(calendar) => {
            log::info!(
                "CALDAV_URL is a calendar ({}): single-calendar mode, every project's events go into it",
                calendar.displayname.as_deref().unwrap_or(&calendar.url)
            );
            Layout::Single(calendar.url)
        }
    })
}

/// `--project` takes identifiers (case-insensitive) or UUIDs; an unknown one is a usage error.
fn select_projects(projects: Vec<Project>, wanted: &[String]) -> Result<Vec<Project>, Abort> {
    if wanted.is_empty() {
        return Ok(projects);
    }
    for want in wanted {
        let known = projects
            .iter()
            .any(|p| p.id == *want || p.identifier.eq_ignore_ascii_case(want));
        if !known {
            return Err(Abort::Usage(format!(
                "--project {want:?} matches no syncable project of the workspace (give its identifier or UUID)"
            )));
        }
    }
    Ok(projects
        .into_iter()
        .filter(|p| {
            wanted
                .iter()
                .any(|w| p.id == *w || p.identifier.eq_ignore_ascii_case(w))
        })
        .collect())
}

/// Proves each deletion the plan would make because an issue is missing from its project's
/// list. Offset pagination over a live table skips an item whenever another is deleted during
/// the walk, and the last page's `total_count` already counts that deletion, so no count can
/// show the gap (plane-api.md §3). Deletions are rare, so each one costs a detail GET: 404 or
/// no date confirms it; a dated issue is desired after all; anything else keeps the event.
///
/// When the deletions already exceed `--max-delete`, the guard refuses them all whatever Plane
/// says, so they are not asked about (unless `--force-delete`).
fn confirm_absences(
    plane: &PlaneClient,
    all: &Fetched,
    jobs: &mut [CalendarJob],
    views: &[View],
    config: &Config,
    guard: plan::GuardLimits,
    ctx: &MappingContext,
) -> Result<(), Abort> {
    let projects: HashMap<&str, &Project> = all
        .projects
        .iter()
        .map(|(p, _)| (p.id.as_str(), p))
        .collect();
    // Listed (undated, or dated but not the view's): its absence from the desired events is
    // proven by the list itself.
    let listed = |project: &str, id: &str| {
        all.projects.iter().any(|(p, issues)| {
            p.id == project
                && (issues.undated.contains(id) || issues.issues.iter().any(|i| i.id == id))
        })
    };
    let mut candidates: Vec<(usize, String, String)> = Vec::new();
    for (index, job) in jobs.iter().enumerate() {
        // Only a job with a stored event nobody wants can plan an absence (the usual run has
        // none, and pays nothing here).
        if job.actual.keys().all(|id| job.desired.contains_key(id)) {
            continue;
        }
        let plan = plan::plan_changes(std::slice::from_ref(job), &config.workspace_slug);
        for change in &plan.changes {
            let Change::Delete { url, before, .. } = change else {
                continue;
            };
            let Some(id) = event::issue_id_from_uid(&before.uid, job.view.as_deref()) else {
                continue;
            };
            // A second copy of a live event is not an absence: nothing to ask.
            let absent =
                !job.desired.contains_key(id) && job.actual.get(id).is_some_and(|a| a.url == *url);
            if let (true, Some(project)) = (absent, before.project.clone())
                && !listed(&project, id)
            {
                candidates.push((index, id.to_string(), project));
            }
        }
    }
    let missing: Vec<(String, String)> = candidates
        .iter()
        .map(|(_, id, project)| (id.clone(), project.clone()))
        .collect();
    let Some(answers) = confirm_missing(plane, all, &missing, guard, "be deleted")? else {
        return Ok(());
    };
    for ((index, id, project_id), answer) in candidates.into_iter().zip(answers) {
        let job = &mut jobs[index];
        let Some(project) = projects.get(project_id.as_str()) else {
            continue;
        };
        match answer {
            None | Some(Answer::Gone) => {}
            Some(Answer::Alive(issue)) => {
                let view = views
                    .iter()
                    .find(|v| job.view.as_deref() == Some(v.id.as_str()));
                if view.is_none_or(|v| v.wants(&issue)) {
                    let fields = event::desired_event(&issue, project, ctx);
                    let fields = event::in_view(fields, &id, job.view.as_deref());
                    job.desired.insert(id.clone(), fields);
                }
            }
            Some(Answer::Unsure(why)) => {
                if let Some(scope) = job.scope_mut(&project_id) {
                    scope.unconfirmed.insert(id, why);
                }
            }
        }
    }
    Ok(())
}
