//! One run of the pipeline, start to end: the run lock and the feed directory first, then the
//! Plane side (`source`), each target (`caldav_target`, `feed_target`), the plan, the guard and
//! the writes (`finish`), and the report. `sync` runs it over every project; a project webhook
//! narrows it to one project; an issue webhook to one issue, with `issue`'s narrow forms of
//! the steps that would cost too much for one event.

use std::io::Write as _;
use std::time::Instant;

use crate::caldav::DavClient;
use crate::cli::Format;
use crate::config::{CalDav, Config};
use crate::engine::cache::CalendarCache;
use crate::engine::plane_snapshot::{self, PlaneSnapshot};
use crate::engine::snapshot::{self, Snapshot};
use crate::exit::Status;
use crate::plane::{self, PlaneClient};
use crate::reconcile::placement::Layout;
use crate::reconcile::plan::{self, CalendarJob};
use crate::reconcile::render::{self, Action, Report};

use super::caldav_target::{CalDavJobs, caldav_jobs, remember_calendars};
use super::feed_target::{open_feed_dir, write_feeds};
use super::issue::{self, Narrowed};
use super::listing;
use super::options::{Abort, Options, Outcome, Selection};
use super::source::{Fetched, fetch, resolve_members};

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
pub fn plane_cache(config: &Config) -> CalendarCache {
    match &config.caldav {
        Some(caldav) => CalendarCache::of(config, caldav),
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

/// The Plane snapshot of this configuration (see `plane_snapshot`).
pub fn load_plane_snapshot(config: &Config) -> PlaneSnapshot {
    PlaneSnapshot::load(
        config.plane_snapshot_file.as_deref(),
        plane_snapshot::Owner {
            plane_url: &config.plane_base_url,
            workspace: &config.workspace_slug,
            key: &config.plane_token,
        },
        config.full_listing_every,
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

/// The pipeline: lock, select and fetch from Plane, then each configured target — CalDAV
/// ([`CalDavRun::run`]: survey, list, then plan, guard, apply and report in [`finish`]) and
/// the feeds — and the run's report. Over the selected projects, or narrowed to one issue
/// (`issue`: its event read instead of a listing, the feeds patched instead of written). A
/// target that fails does not stop the other.
pub fn reconcile(config: &Config, options: &Options, selection: &Selection) -> Outcome {
    let started = Instant::now();
    let _lock = match lock(config, options.dry_run) {
        Ok(lock) => lock,
        Err(status) => return Outcome::early(status),
    };
    // The feed directory is checked (and locked) before anything is read or written: a run
    // of another configuration or with another secret changes nothing anywhere.
    let mut feed_dir = match open_feed_dir(config, options.dry_run) {
        Ok(dir) => dir,
        Err(status) => return Outcome::early(status),
    };
    let plane = plane_client(config);
    let client = config
        .caldav
        .as_ref()
        .map(|caldav| dav_client(caldav, config));
    let mut report = Report {
        dry_run: options.dry_run,
        ..Report::default()
    };
    let aborted = |abort: Abort, mut report: Report| {
        log::error!("{abort}");
        log::error!("nothing was changed");
        if !options.dry_run {
            remember_per_page(config, &plane);
        }
        account(&mut report, &plane, client.as_ref(), started);
        report.errors.push(abort.to_string());
        Outcome {
            status: abort.status(),
            report: Some(report),
        }
    };
    let (selection, mut narrowed) =
        match select(config, &plane, client.as_ref(), &feed_dir, selection) {
            Ok(Some(selected)) => selected,
            Ok(None) => return Outcome::early(Status::Success),
            Err(abort) => return aborted(abort, report),
        };
    let selection = &selection;
    let fetched = match fetch(
        selection,
        &plane,
        load_plane_snapshot(config),
        !options.dry_run,
        config.concurrency,
        &mut report,
    ) {
        Ok(fetched) => fetched,
        Err(abort) => return aborted(abort, report),
    };
    if let Some(narrowed) = &narrowed {
        if fetched.projects.is_empty() {
            // The issue's project is not synced: nothing to do, as `sync` would do nothing.
            return Outcome::early(Status::Success);
        }
        narrowed.note_span(config, &fetched);
    }
    let mut statuses = Vec::new();
    if config.caldav.is_none() && !config.assignees.is_empty() {
        log::warn!(
            "--assignee applies to CalDAV calendars; this configuration writes feeds only, which already have one feed per member"
        );
    }
    if let (Some(caldav), Some(client)) = (&config.caldav, &client) {
        let target = CalDavRun {
            config,
            caldav,
            options,
            selection,
            plane: &plane,
            client,
            started,
        };
        match target.run(&fetched, narrowed.as_mut(), &mut report) {
            Ok(status) => statuses.push(status),
            Err(abort) => return aborted(abort, report),
        }
    }
    if let Some(dir) = &mut feed_dir {
        statuses.push(match &narrowed {
            Some(one) => issue::patch_feeds(config, dir, options, &one.id, &fetched, &mut report),
            None => write_feeds(
                config,
                dir,
                options,
                &plane,
                &fetched,
                selection,
                !matches!(selection, Selection::Hinted(_)),
                &mut report,
            ),
        });
    }
    let mut status = Status::combine(&statuses);
    // A project that could not be read fails the run whichever targets there are.
    if status == Status::Success && !report.errors.is_empty() {
        status = Status::PartialFailure;
    }
    if !options.dry_run {
        remember_per_page(config, &plane);
    }
    account(&mut report, &plane, client.as_ref(), started);
    print_json(options, &report);
    log_done(&report);
    Outcome {
        status,
        report: Some(report),
    }
}

/// The select step: which projects, or which one issue in which project (for a deletion, the
/// project whose calendar or feed holds its event); `None` when an issue's event is nowhere.
fn select(
    config: &Config,
    plane: &PlaneClient,
    client: Option<&DavClient>,
    feed_dir: &Option<crate::feed::FeedDirectory>,
    selection: &Selection,
) -> Result<Option<(Selection, Option<Narrowed>)>, Abort> {
    let Selection::Issue { id, project } = selection else {
        return Ok(Some((selection.clone(), None)));
    };
    let found = issue::select(
        config,
        plane,
        client,
        feed_dir.as_ref(),
        id,
        project.as_deref(),
    )?;
    let Some(found) = found else {
        log::info!("no event of work item {id} in any calendar or feed: nothing to do");
        return Ok(None);
    };
    let selection = Selection::Issue {
        id: id.clone(),
        project: Some(found.project.clone()),
    };
    Ok(Some((selection, Some(found))))
}

/// Puts what the run cost into its report: the requests to each server, and the time.
pub fn account(
    report: &mut Report,
    plane: &PlaneClient,
    dav: Option<&DavClient>,
    started: Instant,
) {
    report.plane_requests = plane.requests.get();
    report.caldav_requests = dav.map_or(0, |d| d.requests.get());
    report.seconds = started.elapsed().as_secs_f64();
}

/// The CalDAV target of one run.
struct CalDavRun<'a> {
    config: &'a Config,
    caldav: &'a CalDav,
    options: &'a Options,
    selection: &'a Selection,
    plane: &'a PlaneClient,
    client: &'a DavClient,
    started: Instant,
}

impl CalDavRun<'_> {
    /// Resolve the views, survey and list the calendars, plan, guard and apply (`finish`), and
    /// keep what the run learned. `Err` when the run must stop there, nothing changed: a
    /// failure to resolve the views, or to reach the server without feeds to write; a
    /// failure the feeds can go on past is reported and gives the target's status.
    fn run(
        &self,
        fetched: &Fetched,
        mut narrowed: Option<&mut Narrowed>,
        report: &mut Report,
    ) -> Result<Status, Abort> {
        let (config, caldav, options) = (self.config, self.caldav, self.options);
        let members = match narrowed.as_mut().and_then(|one| one.members.take()) {
            Some(members) => members,
            None => resolve_members(config, self.plane, &fetched.projects)?,
        };
        let mut snapshot = None;
        let gathered = match narrowed.as_mut() {
            Some(one) => one.caldav_jobs(config, caldav, self.client, fetched, members),
            None => {
                let snapshot = snapshot.insert(load_snapshot(config, caldav));
                caldav_jobs(
                    config,
                    caldav,
                    options,
                    self.plane,
                    self.client,
                    fetched,
                    &members,
                    report,
                    snapshot,
                )
            }
        };
        match gathered {
            Ok(CalDavJobs {
                jobs,
                layout,
                reads,
            }) => {
                let (status, done) = finish(
                    config,
                    options,
                    &jobs,
                    self.plane,
                    self.client,
                    std::mem::take(report),
                    self.started,
                );
                *report = done;
                match (narrowed, snapshot) {
                    (Some(one), _) => {
                        one.remember(caldav, &jobs, &layout, report, options.dry_run);
                    }
                    (None, Some(mut snapshot)) if !options.dry_run => {
                        self.keep_memory(&layout, &jobs, &reads, &mut snapshot, report);
                    }
                    (None, _) => {}
                }
                Ok(status)
            }
            Err(abort) if config.feeds.is_none() => Err(abort),
            Err(abort) => {
                // The feeds are written all the same: a failure on one target does not stop
                // the other.
                log::error!("{abort}; no calendar was changed");
                report.errors.push(abort.to_string());
                Ok(abort.status())
            }
        }
    }

    /// Records where this run found or made each calendar (the cache), and what each calendar
    /// holds now (the listing snapshot).
    fn keep_memory(
        &self,
        layout: &Option<Layout>,
        jobs: &[CalendarJob],
        reads: &std::collections::HashMap<String, listing::Listed>,
        snapshot: &mut Snapshot,
        report: &Report,
    ) {
        if self.caldav.calendar_url.is_none() {
            remember(
                self.config,
                self.caldav,
                self.selection,
                layout,
                jobs,
                report,
            );
        }
        let failed: Vec<String> = report
            .failures
            .iter()
            .filter(|f| f.action == Action::CreateCalendar)
            .map(|f| f.url.clone())
            .collect();
        listing::record(self.client, snapshot, jobs, reads, &report.writes, &failed);
        if *self.selection == Selection::All && report.errors.is_empty() {
            snapshot.retain(&|url| jobs.iter().any(|j| j.target.url == url));
        }
        snapshot.save();
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
pub fn remember(
    config: &Config,
    caldav: &CalDav,
    selection: &Selection,
    layout: &Option<Layout>,
    jobs: &[CalendarJob],
    report: &Report,
) {
    let mut cache = CalendarCache::of(config, caldav);
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
    account(&mut report, plane, Some(dav), started);
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
