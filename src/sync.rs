//! `calplanebot sync`: the glue of one run — fetch (Plane), list (CalDAV), plan, render, apply,
//! report — and the choice of exit status. All decisions live in `plan`; this module only
//! gathers their inputs and hands the plan on.

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::time::Instant;

use crate::cache::CalendarCache;
use crate::caldav::{self, CalDavError, Calendar, DavClient};
use crate::cli::{Format, SyncArgs};
use crate::config::Config;
use crate::event::{self, MappingContext};
use crate::exit::Status;
use crate::plan::{self, ActualEvent, CalendarJob, CalendarState, CalendarTarget, ProjectScope};
use crate::plane::{self, IssueItem, PlaneClient, PlaneError, Project, ProjectIssues};
use crate::render::{self, Report};

/// Why a run stopped before it could plan anything.
#[derive(Debug, thiserror::Error)]
pub enum Abort {
    #[error("{0}")]
    Plane(#[from] PlaneError),
    #[error("{0}")]
    CalDav(#[from] CalDavError),
    #[error("{0}")]
    Usage(String),
}

impl Abort {
    pub fn status(&self) -> Status {
        match self {
            Abort::Usage(_) => Status::Usage,
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
        let run =
            crate::metrics::RunMetrics::from_report(start, status.code(), outcome.report.as_ref());
        crate::metrics::write(path, &run);
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
pub fn lock(config: &Config, dry_run: bool) -> Result<Option<crate::lock::RunLock>, Status> {
    if dry_run {
        return Ok(None);
    }
    match crate::lock::acquire(&config.lock_file, config.lock_wait) {
        Ok(lock) => Ok(Some(lock)),
        Err(error @ crate::lock::LockError::Busy { .. }) => {
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
    let (jobs, layout) = match gather(config, selection, &plane, &dav, &mut report) {
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
            .any(|f| f.action == "create calendar" && f.url == job.target.url);
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
            plan.withheld
                .iter()
                .filter(|w| w.reason.starts_with("deletion refused"))
                .count()
        );
    }
    report.unchanged = plan.unchanged;
    report.withheld = plan.withheld.len();
    report.planned = plan.calendars.len() + plan.changes.len();
    for withheld in plan.withheld.iter().filter(|w| w.is_failure) {
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
        crate::apply::apply(
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
                    failure.action, failure.url, failure.error
                );
            }
            let _ = writeln!(stdout, "{}", render::summary_line(&plan, &report));
        }
        Format::Json => {
            let _ = stdout.write_all(render::json(&plan, &report).as_bytes());
        }
    }
    log::info!(
        "{} in {:.2} s ({} issues seen; {} Plane requests, {} CalDAV requests)",
        render::summary_line(&plan, &report),
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
    let bar = crate::progress::bar(projects.len(), "Plane");
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
        Layout::Single(url) => vec![single_calendar_job(url, &fetched, &ctx)],
        Layout::Home(home) => {
            log::debug!("calendar home: {home}");
            let calendars = dav.calendars(home)?;
            let targets = project_calendars(dav, home, &calendars, &fetched)?;
            fetched
                .iter()
                .zip(targets)
                .map(|((project, issues), target)| project_job(target, project, issues, &ctx))
                .collect()
        }
    };

    let mut listed = Vec::with_capacity(jobs.len());
    for mut job in jobs.drain(..) {
        if let CalendarState::Exists { .. } = job.target.state {
            match dav.owned_events(&job.target.url, |name| {
                event::issue_id_from_resource_name(name).is_some()
            }) {
                Ok(events) => {
                    for stored in events {
                        let name = stored.url.rsplit('/').next().unwrap_or_default();
                        let decoded = caldav::xml::href_path(name);
                        if let Some(id) = event::issue_id_from_resource_name(&decoded) {
                            job.actual.insert(
                                id.to_string(),
                                ActualEvent {
                                    url: stored.url,
                                    etag: stored.etag,
                                    data: stored.data,
                                },
                            );
                        }
                    }
                }
                Err(error) if error.is_fatal() => return Err(error.into()),
                Err(error) => {
                    let message = format!("{error}; calendar skipped this run");
                    log::error!("{message}");
                    report.errors.push(message);
                    continue;
                }
            }
        }
        confirm_absences(plane, &fetched, &mut job, &ctx)?;
        listed.push(job);
    }
    Ok((listed, Some(layout)))
}

/// Where a run's events live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One calendar for every project (single-calendar mode).
    Single(String),
    /// The calendar home, with one calendar per project.
    Home(String),
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

fn scope_of(project: &Project, issues: &ProjectIssues) -> ProjectScope {
    let deletions = match (&issues.error, issues.complete()) {
        (Some(error), _) => Err(format!(
            "the work items of its project could not be read ({error})"
        )),
        (None, false) => Err("some work items of its project could not be read".to_string()),
        (None, true) => Ok(()),
    };
    ProjectScope {
        project: project.clone(),
        listed_nothing: issues.error.is_none() && issues.listed == 0,
        deletions,
        keep: issues
            .unreadable
            .iter()
            .filter_map(|(id, _)| id.clone())
            .collect(),
    }
}

fn desired_of(
    project: &Project,
    issues: &ProjectIssues,
    ctx: &MappingContext,
    into: &mut BTreeMap<String, event::ManagedFields>,
) {
    for issue in &issues.issues {
        into.insert(issue.id.clone(), event::desired_event(issue, project, ctx));
    }
}

/// The calendar name calplanebot gives a project's calendar.
pub fn calendar_displayname(project: &Project) -> String {
    format!("Plane: {}", project.name)
}

/// Finds each project's calendar, in this order: `{home}plane-{project_id}/`; a calendar named
/// exactly `Plane: {name}` (what the original Python CalPlaneBot created: adopted); a
/// `Plane: …` calendar holding events of this project's issues (an adopted calendar whose
/// project was renamed since: without this, the rename would create a second calendar); else
/// a new one at `{home}plane-{project_id}/`. The last probe costs one PROPFIND per candidate
/// calendar, and only for projects the first two steps did not place.
pub fn project_calendars(
    dav: &DavClient,
    home: &str,
    calendars: &[Calendar],
    fetched: &[(Project, ProjectIssues)],
) -> Result<Vec<CalendarTarget>, Abort> {
    let path = |url: &str| {
        caldav::xml::href_path(url)
            .trim_end_matches('/')
            .to_string()
    };
    let own_url = |project: &Project| format!("{home}plane-{}/", project.id);
    let mut found: Vec<Option<&Calendar>> = fetched
        .iter()
        .map(|(project, _)| {
            let wanted = path(&own_url(project));
            calendars.iter().find(|c| path(&c.url) == wanted)
        })
        .collect();
    let mut claimed: HashSet<String> = found.iter().flatten().map(|c| path(&c.url)).collect();
    for ((project, _), slot) in fetched.iter().zip(found.iter_mut()) {
        if slot.is_none() {
            let name = calendar_displayname(project);
            *slot = calendars.iter().find(|c| {
                c.displayname.as_deref() == Some(name.as_str())
                    && !claimed.contains(&path(&c.url))
                    && !is_other_project_calendar(&c.url, &project.id)
            });
            if let Some(calendar) = slot {
                claimed.insert(path(&calendar.url));
            }
        }
    }
    let mut members: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    for ((_, issues), slot) in fetched.iter().zip(found.iter_mut()) {
        if slot.is_some() {
            continue;
        }
        let names: HashSet<String> = issues
            .issues
            .iter()
            .map(|i| i.id.clone())
            .chain(issues.unreadable.iter().filter_map(|(id, _)| id.clone()))
            .map(|id| event::resource_name(&id))
            .collect();
        for calendar in calendars.iter().filter(|c| {
            c.displayname
                .as_deref()
                .is_some_and(|n| n.starts_with("Plane: "))
                && !claimed.contains(&path(&c.url))
                && !is_any_project_calendar(&c.url)
        }) {
            let held = match members.get(&calendar.url) {
                Some(held) => held,
                None => {
                    let hrefs = dav.member_hrefs(&calendar.url)?;
                    let held = hrefs
                        .iter()
                        .map(|h| {
                            let decoded = caldav::xml::href_path(h);
                            decoded.rsplit('/').next().unwrap_or_default().to_string()
                        })
                        .collect();
                    members.entry(calendar.url.clone()).or_insert(held)
                }
            };
            if held.iter().any(|name| names.contains(name)) {
                claimed.insert(path(&calendar.url));
                *slot = Some(calendar);
                break;
            }
        }
    }
    Ok(fetched
        .iter()
        .zip(found)
        .map(|((project, _), calendar)| {
            let displayname = Some(calendar_displayname(project));
            match calendar {
                Some(calendar) => {
                    if path(&calendar.url) != path(&own_url(project)) {
                        log::info!(
                            "adopting the existing calendar {:?} at {} for project {}",
                            calendar.displayname.as_deref().unwrap_or(""),
                            calendar.url,
                            plane::project_label(project)
                        );
                    }
                    CalendarTarget {
                        url: calendar.url.clone(),
                        displayname,
                        state: CalendarState::Exists {
                            displayname: calendar.displayname.clone(),
                        },
                    }
                }
                None => CalendarTarget {
                    url: own_url(project),
                    displayname,
                    state: CalendarState::Missing,
                },
            }
        })
        .collect())
}

fn project_job(
    target: CalendarTarget,
    project: &Project,
    issues: &ProjectIssues,
    ctx: &MappingContext,
) -> CalendarJob {
    let mut desired = BTreeMap::new();
    desired_of(project, issues, ctx, &mut desired);
    CalendarJob {
        target,
        scopes: vec![scope_of(project, issues)],
        desired,
        actual: BTreeMap::new(),
    }
}

/// The project id in a calendar path `.../plane-{uuid}/`, if it has that form.
fn calendar_project_id(url: &str) -> Option<String> {
    let path = caldav::xml::href_path(url);
    let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    name.strip_prefix("plane-")
        .filter(|id| plane::is_uuid(id))
        .map(str::to_string)
}

/// A calendar named `plane-{uuid}` belongs to that project, never to another one.
fn is_other_project_calendar(url: &str, project_id: &str) -> bool {
    calendar_project_id(url).is_some_and(|id| id != project_id)
}

fn is_any_project_calendar(url: &str) -> bool {
    calendar_project_id(url).is_some()
}

pub fn single_calendar_job(
    url: &str,
    fetched: &[(Project, ProjectIssues)],
    ctx: &MappingContext,
) -> CalendarJob {
    let mut desired = BTreeMap::new();
    for (project, issues) in fetched {
        desired_of(project, issues, ctx, &mut desired);
    }
    CalendarJob {
        target: CalendarTarget {
            url: caldav::with_slash(url.to_string()),
            displayname: None,
            state: CalendarState::Exists { displayname: None },
        },
        scopes: fetched.iter().map(|(p, i)| scope_of(p, i)).collect(),
        desired,
        actual: BTreeMap::new(),
    }
}

/// Offset pagination over a live table can skip an item when another is deleted during the
/// walk (plane-api.md §3). When a walk saw fewer items than Plane counted, each event that
/// would be deleted is confirmed with a detail GET first: 404 or no date → delete; dated → it
/// is desired after all; anything else → keep.
fn confirm_absences(
    plane: &PlaneClient,
    fetched: &[(Project, ProjectIssues)],
    job: &mut CalendarJob,
    ctx: &MappingContext,
) -> Result<(), Abort> {
    let unsure: HashSet<&str> = fetched
        .iter()
        .filter(|(_, issues)| issues.complete() && !issues.consistent)
        .map(|(project, _)| project.id.as_str())
        .collect();
    if unsure.is_empty() {
        return Ok(());
    }
    let candidates: Vec<(String, String)> = job
        .actual
        .iter()
        .filter(|(id, _)| !job.desired.contains_key(*id))
        .filter_map(|(id, stored)| {
            let project = event::read_event(&stored.data).ok()?.project?;
            unsure
                .contains(project.as_str())
                .then(|| (id.clone(), project))
        })
        .collect();
    for (id, project_id) in candidates {
        let Some((project, _)) = fetched.iter().find(|(p, _)| p.id == project_id) else {
            continue;
        };
        match plane.issue(project, &id) {
            Ok(None) | Ok(Some(IssueItem::Undated { .. })) => {}
            Ok(Some(IssueItem::Dated(issue))) => {
                job.desired
                    .insert(id.clone(), event::desired_event(&issue, project, ctx));
            }
            Ok(Some(IssueItem::Invalid { .. })) => keep(job, &project_id, &id),
            Err(error) if error.is_fatal() => return Err(error.into()),
            Err(error) => {
                log::warn!("cannot confirm that work item {id} is gone: {error}");
                keep(job, &project_id, &id);
            }
        }
    }
    Ok(())
}

fn keep(job: &mut CalendarJob, project_id: &str, id: &str) {
    if let Some(scope) = job.scopes.iter_mut().find(|s| s.project.id == project_id) {
        scope.keep.insert(id.to_string());
    }
}
