//! `calplanebot sync`: the glue of one run — fetch (Plane), list (CalDAV), plan, render, apply,
//! report — and the choice of exit status. What to change is decided in `plan` and where
//! events live in `placement`; this module gathers their inputs (including the Plane requests
//! that confirm each deletion) and hands the plan on.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;
use std::time::Instant;

use crate::caldav::{self, CalDavError, DavClient, StoredEvent};
use crate::cli::{Format, SyncArgs};
use crate::config::Config;
use crate::exit::Status;
use crate::mapping::event::{self, MappingContext};
use crate::plane::{self, IssueItem, PlaneClient, PlaneError, Project, ProjectIssues};
use crate::reconcile::placement::{self, Layout, Wanted};
use crate::reconcile::plan::{
    self, ActualEvent, CalendarJob, CalendarState, CalendarTarget, Change,
};
use crate::reconcile::render::{self, Action, Report};
use crate::support::cache::CalendarCache;

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

/// The two clients of a run.
pub fn clients(config: &Config) -> (PlaneClient, DavClient) {
    (
        PlaneClient::new(
            &config.plane_base_url,
            &config.workspace_slug,
            config.plane_token.clone(),
            &config.network,
        ),
        DavClient::new(
            &config.caldav_username,
            &config.caldav_password,
            &config.network,
            config.caldav_roots.as_deref(),
        ),
    )
}

/// The calendar-location cache of this configuration (see `cache`).
pub fn load_cache(config: &Config) -> CalendarCache {
    match &config.cache_file {
        Some(path) => log::debug!("calendar cache: {}", path.display()),
        None => log::debug!("no calendar cache (CALPLANEBOT_CACHE_DIR is empty)"),
    }
    CalendarCache::load(
        config.cache_file.as_deref(),
        &config.caldav_url,
        &config.caldav_username,
        &config.workspace_slug,
    )
}

/// A sync of the selected projects: lock, gather, then [`finish`].
pub fn reconcile(config: &Config, options: &Options, selection: &Selection) -> Outcome {
    let started = Instant::now();
    let failed = |status| Outcome {
        status,
        report: None,
    };
    let _lock = match lock(config, options.dry_run) {
        Ok(lock) => lock,
        Err(status) => return failed(status),
    };
    let (plane, dav) = clients(config);
    let mut report = Report {
        dry_run: options.dry_run,
        ..Report::default()
    };
    let (jobs, layout) = match gather(config, options, selection, &plane, &dav, &mut report) {
        Ok(gathered) => gathered,
        Err(abort) => {
            log::error!("{abort}");
            log::error!("nothing was changed");
            report.plane_requests = plane.requests.get();
            report.caldav_requests = dav.requests.get();
            report.seconds = started.elapsed().as_secs_f64();
            report.errors.push(abort.to_string());
            return Outcome {
                status: abort.status(),
                report: Some(report),
            };
        }
    };
    let (status, report) = finish(config, options, &jobs, &plane, &dav, report, started);
    if config.caldav_calendar_url.is_none() && !options.dry_run {
        let mut cache = load_cache(config);
        if *selection == Selection::All && report.errors.is_empty() {
            cache.clear();
        }
        match &layout {
            Some(Layout::Single(url)) => cache.set_single_calendar(Some(url)),
            Some(Layout::Home(_)) => {
                cache.set_single_calendar(None);
                remember_calendars(&mut cache, &jobs, &report);
            }
            None => {}
        }
        cache.save();
    }
    Outcome {
        status,
        report: Some(report),
    }
}

/// Records where each job's projects live, unless creating that calendar failed.
pub fn remember_calendars(cache: &mut CalendarCache, jobs: &[CalendarJob], report: &Report) {
    for job in jobs {
        let failed = report
            .failures
            .iter()
            .any(|f| f.action == Action::CreateCalendar && f.url == job.target.url);
        for scope in &job.scopes {
            if failed {
                cache.remove(&scope.project.id);
            } else {
                cache.set(&scope.project.id, &job.target.url);
            }
        }
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
        Format::Json => {
            let _ = stdout.write_all(render::json(&plan, &report).as_bytes());
        }
    }
    // The summary line goes to stdout; the log repeats it only when the log is read elsewhere
    // (under systemd, on a terminal, or with `>> file 2>&1`, both are one destination).
    let summary = if render::stdout_is_stderr() {
        "run done".to_string()
    } else {
        render::summary_line(&plan, &report)
    };
    log::info!(
        "{summary} in {:.2} s ({} issues seen; {} Plane requests, {} CalDAV requests)",
        report.seconds,
        report.issues_seen,
        report.plane_requests,
        report.caldav_requests
    );
    let status = if !report.failures.is_empty() || !report.errors.is_empty() {
        Status::PartialFailure
    } else if plan.refused.is_some() {
        Status::Refused
    } else {
        Status::Success
    };
    (status, report)
}

/// Everything the plan needs: the desired events per calendar and the stored ones.
fn gather(
    config: &Config,
    options: &Options,
    selection: &Selection,
    plane: &PlaneClient,
    dav: &DavClient,
    report: &mut Report,
) -> Result<(Vec<CalendarJob>, Option<Layout>), Abort> {
    let list = plane.projects()?;
    for (name, reason) in &list.skipped {
        log::info!("skipping project {name:?}: {reason}");
    }
    let projects = match selection {
        Selection::All => list.projects,
        Selection::Named(wanted) => select_projects(list.projects, wanted)?,
        Selection::Hinted(id) => {
            let found: Vec<Project> = list.projects.into_iter().filter(|p| p.id == *id).collect();
            if found.is_empty() {
                log::info!(
                    "project {id} is not a syncable project of the workspace (archived, deleted, or the token's user is not a member): nothing to do"
                );
                return Ok((Vec::new(), None));
            }
            found
        }
    };
    let ctx = MappingContext {
        workspace_slug: &config.workspace_slug,
        web_url: &config.plane_web_url,
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

    let layout = layout(config, dav)?;
    let mut jobs = match &layout {
        Layout::Single(url) => vec![placement::single_calendar_job(url, &fetched, &ctx)],
        Layout::Home(home) => {
            log::debug!("calendar home: {home}");
            let wanted: Vec<Wanted<'_>> = fetched
                .iter()
                .map(|(project, issues)| Wanted { project, issues })
                .collect();
            let targets = place_projects(dav, home, &wanted)?;
            fetched
                .iter()
                .zip(targets)
                .map(|((project, issues), target)| {
                    placement::project_job(target, project, issues, &ctx)
                })
                .collect()
        }
    };

    let mut listed = Vec::with_capacity(jobs.len());
    for mut job in jobs.drain(..) {
        if let CalendarState::Exists { .. } = job.target.state {
            match dav.owned_events(&job.target.url, is_our_resource_name, event::UID_SUFFIX) {
                Ok(events) => fill_actual(&mut job, events),
                Err(error) if error.is_fatal() => return Err(error.into()),
                Err(error) => {
                    let message = format!("{error}; calendar skipped this run");
                    log::error!("{message}");
                    report.errors.push(message);
                    continue;
                }
            }
        }
        listed.push(job);
    }
    confirm_absences(plane, &fetched, &mut listed, config, options.guard, &ctx)?;
    Ok((listed, Some(layout)))
}

fn is_our_resource_name(name: &str) -> bool {
    event::issue_id_from_resource_name(name).is_some()
}

/// Files each listed event under its issue id: the id in our resource name, else the id in our
/// UID (an event a client stored or moved under another name is ours all the same). When two
/// events claim one issue, the one that carries its UID under our name is kept in `actual`
/// and the other becomes a copy.
pub fn fill_actual(job: &mut CalendarJob, events: Vec<StoredEvent>) {
    for stored in events {
        let decoded = caldav::xml::href_path(&stored.url);
        let name = decoded.rsplit('/').next().unwrap_or_default();
        let uid_id = || {
            event::read_event(&stored.data)
                .ok()
                .and_then(|f| event::issue_id_from_uid(&f.uid).map(str::to_string))
        };
        let by_name = event::issue_id_from_resource_name(name).map(str::to_string);
        let Some(id) = by_name.clone().or_else(uid_id) else {
            continue;
        };
        let rank = |event: &ActualEvent| {
            let fields = event::read_event(&event.data).ok();
            let has_uid = fields.is_some_and(|f| f.uid == event::uid_for(&id));
            let decoded = caldav::xml::href_path(&event.url);
            let named = decoded.ends_with(&format!("/{}", event::resource_name(&id)));
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
    let mut held = BTreeMap::new();
    for url in placement::adoption_candidates(home, &calendars, wanted) {
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
    Ok(placement::place(home, &calendars, wanted, &held))
}

/// `CALDAV_CALENDAR_URL` when set; else what discovery finds at `CALDAV_URL`, where a calendar
/// means single-calendar mode.
pub fn layout(config: &Config, dav: &DavClient) -> Result<Layout, CalDavError> {
    if let Some(url) = &config.caldav_calendar_url {
        return Ok(Layout::Single(caldav::with_slash(url.clone())));
    }
    let discovery = dav.discover(&config.caldav_url)?;
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
    fetched: &[(Project, ProjectIssues)],
    jobs: &mut [CalendarJob],
    config: &Config,
    guard: plan::GuardLimits,
    ctx: &MappingContext,
) -> Result<(), Abort> {
    let projects: HashMap<&str, &Project> =
        fetched.iter().map(|(p, _)| (p.id.as_str(), p)).collect();
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
            let Some(id) = event::issue_id_from_uid(&before.uid) else {
                continue;
            };
            // A second copy of a live event is not an absence: nothing to ask.
            let absent =
                !job.desired.contains_key(id) && job.actual.get(id).is_some_and(|a| a.url == *url);
            if let (true, Some(project)) = (absent, before.project.clone()) {
                candidates.push((index, id.to_string(), project));
            }
        }
    }
    if candidates.is_empty() {
        return Ok(());
    }
    if candidates.len() > guard.max_delete && !guard.force {
        log::info!(
            "{} events of issues missing from Plane's lists would be deleted, more than --max-delete {}: not confirming them one by one (the deletion guard refuses them)",
            candidates.len(),
            guard.max_delete
        );
        return Ok(());
    }
    log::debug!(
        "confirming {} deletions with Plane, one detail request each",
        candidates.len()
    );
    for (index, id, project_id) in candidates {
        let job = &mut jobs[index];
        let Some(project) = projects.get(project_id.as_str()) else {
            continue;
        };
        match plane.issue(project, &id) {
            Ok(None) | Ok(Some(IssueItem::Undated { .. })) => {}
            Ok(Some(IssueItem::Dated(issue))) => {
                log::warn!(
                    "work item {id} of project {} was missing from Plane's list but exists (the list changed while it was read): its event is kept",
                    plane::project_label(project)
                );
                job.desired
                    .insert(id.clone(), event::desired_event(&issue, project, ctx));
            }
            Ok(Some(IssueItem::Invalid { .. })) => {
                if let Some(scope) = job.scope_mut(&project_id) {
                    scope.keep.insert(id);
                }
            }
            Err(error) if error.is_fatal() => return Err(error.into()),
            Err(error) => {
                log::warn!("cannot confirm that work item {id} is gone: {error}");
                if let Some(scope) = job.scope_mut(&project_id) {
                    scope.unconfirmed.insert(id, error.to_string());
                }
            }
        }
    }
    Ok(())
}
