//! The pipeline narrowed to one issue (an issue webhook): the issue read fresh from Plane (one
//! request), its event located (the cache's calendar, else one discovery; for a deleted issue,
//! each calendar and feed that may hold it), then the engine's own plan, guard, apply and
//! report (`run::finish`) for that one event, and the feeds that hold it patched.

use std::time::Instant;

use crate::caldav::{self, DavClient, StoredEvent};
use crate::config::{CalDav, Config};
use crate::engine::cache::CalendarCache;
use crate::engine::options::{Abort, Options};
use crate::engine::run;
use crate::exit::Status;
use crate::feed;
use crate::mapping::event::{self, MappingContext};
use crate::plane::{
    self, Issue, IssueItem, PlaneClient, PlaneError, Project, ProjectEntry, ProjectIssues,
};
use crate::reconcile::placement::{self, Layout, Wanted};
use crate::reconcile::plan::{CalendarJob, CalendarState, CalendarTarget};
use crate::reconcile::render::Report;
use crate::reconcile::views::{self, View, ViewMember};

/// One issue: read it fresh (one Plane request), then change its one event in each target:
/// the calendar (plan and apply, as `sync` does) and the feeds that hold it.
pub fn reconcile_issue(
    config: &Config,
    options: &Options,
    id: &str,
    project: Option<&str>,
) -> Status {
    let started = Instant::now();
    let _lock = match run::lock(config, options.dry_run) {
        Ok(lock) => lock,
        Err(status) => return status,
    };
    let mut feed_dir = match super::feed_target::open_feed_dir(config, options.dry_run) {
        Ok(dir) => dir,
        Err(status) => return status,
    };
    let plane = run::plane_client(config);
    let mut caldav = config.caldav.as_ref().map(|settings| {
        (
            settings,
            run::dav_client(settings, config),
            run::load_cache(config, settings),
        )
    });
    let stop = |abort: Abort| {
        log::error!("{abort}");
        log::error!("nothing was changed");
        abort.status()
    };
    // Assignee views: whom they are for, resolved before an issue that is gone is looked for
    // (its assignees are unknown then), else once the issue is read.
    let mut members: Option<Vec<ViewMember>> = None;
    // Where the event is, when the delivery does not say (an issue deletion).
    let mut located = None;
    let project_id = match project {
        Some(project) => project.to_string(),
        None => match locate_issue(config, &plane, caldav.as_mut(), feed_dir.as_ref(), id) {
            Ok(Some(found)) => {
                members = found.members;
                located = found.located;
                found.project
            }
            Ok(None) => {
                log::info!("no event of work item {id} in any calendar or feed: nothing to do");
                return Status::Success;
            }
            Err(abort) => return stop(abort),
        },
    };
    let (issue, project) = match fresh_issue(&plane, &project_id, id) {
        Ok(Some(fresh)) => fresh,
        Ok(None) => return Status::Success,
        Err(abort) => return stop(abort),
    };
    if let Some(issue) = &issue
        && let Err(start) = event::first_day(issue, config.span)
    {
        log::info!(
            "work item {id} starts on {start}, after its due date {}: its event covers the due date only (--span start-to-due needs a start on or before the due date)",
            issue.target_date
        );
    }
    let mut statuses = Vec::new();
    let mut report = Report {
        dry_run: options.dry_run,
        ..Report::default()
    };
    if let Some(target) = &mut caldav {
        let issue_run = IssueRun {
            config,
            options,
            plane: &plane,
            id,
            issue: issue.as_ref(),
            project: &project,
            started,
        };
        match issue_run.caldav(target, located, members.take(), &mut report) {
            Ok(status) => statuses.push(status),
            Err(abort) => return stop(abort),
        }
    }
    if let Some(dir) = &mut feed_dir {
        statuses.push(patch_feeds(
            config,
            dir,
            options,
            id,
            issue.as_ref(),
            &project,
            &mut report,
        ));
    }
    run::account(
        &mut report,
        &plane,
        caldav.as_ref().map(|(_, dav, _)| dav),
        started,
    );
    run::print_json(options, &report);
    run::log_done(&report);
    Status::combine(&statuses)
}

/// One issue of a webhook run, read fresh from Plane.
struct IssueRun<'a> {
    config: &'a Config,
    options: &'a Options,
    plane: &'a PlaneClient,
    id: &'a str,
    /// `None`: the issue has no date any more, or is gone.
    issue: Option<&'a Issue>,
    project: &'a Project,
    started: Instant,
}

impl IssueRun<'_> {
    /// The issue's event in the calendars: gather its calendar (the project's, or each assignee
    /// view's), then plan, guard, apply and report as `sync` does (`run::finish`). `Err` when
    /// the run must stop, nothing changed (no feeds to patch instead).
    fn caldav(
        &self,
        target: &mut (&CalDav, DavClient, CalendarCache),
        located: Option<(String, StoredEvent)>,
        members: Option<Vec<ViewMember>>,
        report: &mut Report,
    ) -> Result<Status, Abort> {
        let (config, id) = (self.config, self.id);
        let (settings, dav, cache) = target;
        let gathered = if config.assignees.is_empty() {
            gather_issue(
                config,
                settings,
                dav,
                cache,
                id,
                located,
                self.issue,
                self.project,
            )
        } else {
            let seen = ProjectIssues {
                issues: self.issue.into_iter().cloned().collect(),
                ..ProjectIssues::default()
            };
            let members = match members {
                Some(members) => members,
                None => super::source::resolve_members(
                    config,
                    self.plane,
                    &[(self.project.clone(), seen)],
                )?,
            };
            gather_views(
                config,
                settings,
                dav,
                cache,
                id,
                self.issue,
                self.project,
                members,
            )
        };
        match gathered {
            Ok(Gathered {
                jobs,
                discovered,
                single,
            }) => {
                let (status, done) = run::finish(
                    config,
                    self.options,
                    &jobs,
                    self.plane,
                    dav,
                    std::mem::take(report),
                    self.started,
                );
                *report = done;
                let learned = discovered && !single;
                remember(
                    settings,
                    cache,
                    &jobs,
                    learned,
                    report,
                    self.options.dry_run,
                );
                Ok(status)
            }
            Err(abort) if config.feeds.is_none() => Err(abort),
            Err(abort) => {
                // The feeds are patched all the same.
                log::error!("{abort}; no calendar was changed");
                Ok(abort.status())
            }
        }
    }
}

/// Where an issue's event is, found for a delivery that names no project (an issue deletion).
struct Located {
    project: String,
    /// The calendar and the stored event, when a calendar holds it.
    located: Option<(String, StoredEvent)>,
    /// The assignee views' people, when they had to be resolved to look.
    members: Option<Vec<ViewMember>>,
}

/// Looks for the event of issue `id` in the calendars (the project's, or each assignee view's)
/// and then in the feeds; `None` when nothing holds it.
fn locate_issue(
    config: &Config,
    plane: &PlaneClient,
    caldav: Option<&mut (&CalDav, DavClient, CalendarCache)>,
    feed_dir: Option<&feed::FeedDirectory>,
    id: &str,
) -> Result<Option<Located>, Abort> {
    let mut members = None;
    let found = match caldav {
        Some((settings, dav, cache)) if !config.assignees.is_empty() => {
            let resolved = super::source::resolve_members(config, plane, &[])?;
            let found = locate_in_views(config, settings, dav, cache, id, &resolved)?;
            members = Some(resolved);
            found
        }
        Some((settings, dav, cache)) => locate(config, settings, dav, cache, id)?,
        None => None,
    };
    if let Some((calendar, stored, project)) = found {
        return Ok(Some(Located {
            project,
            located: Some((calendar, stored)),
            members,
        }));
    }
    let in_feeds = feed_dir.and_then(|dir| {
        feed::project_of(dir, &config.workspace_slug, &event::uid_for(id, None))
            .ok()
            .flatten()
    });
    Ok(in_feeds.map(|project| Located {
        project,
        located: None,
        members,
    }))
}

/// Keeps the calendar-location cache true after a webhook run: remembers the calendars this
/// run `learned` by discovery, or forgets what a failure may have made stale.
fn remember(
    settings: &CalDav,
    cache: &mut CalendarCache,
    jobs: &[CalendarJob],
    learned: bool,
    report: &Report,
    dry_run: bool,
) {
    if settings.calendar_url.is_some() || dry_run {
        return;
    }
    if report.failures.is_empty() {
        if learned {
            super::caldav_target::remember_calendars(cache, jobs, report);
        }
    } else {
        // The cached calendar may be gone: the next run discovers again.
        for key in jobs.iter().flat_map(super::caldav_target::cache_keys) {
            cache.remove(&key);
        }
        cache.set_single_calendar(None);
    }
    cache.save();
}

/// What Plane says of the issue now, in one request: the issue (`None` when it has no date or
/// is gone) and its project; `Ok(None)` when its project is not synced, so nothing is changed.
fn fresh_issue(
    plane: &PlaneClient,
    project_id: &str,
    id: &str,
) -> Result<Option<(Option<Issue>, Project)>, Abort> {
    Ok(Some(match plane.issue_with_project(project_id, id)? {
        Some((IssueItem::Dated(issue), project)) => (Some(issue), project),
        Some((IssueItem::Undated { .. }, project)) => (None, project),
        Some((IssueItem::Invalid { reason, .. }, _)) => {
            return Err(Abort::Unreadable(format!(
                "work item {id} of project {project_id} could not be read ({reason}); its event is kept"
            )));
        }
        // 404: the issue is deleted or archived — or its project is archived, which Plane
        // does not tell apart (plane-api.md §9). `sync` deletes nothing of a project it
        // cannot sync, so the project decides.
        None => match plane.project_entry(project_id) {
            Ok(ProjectEntry::Syncable(project)) => {
                log::info!(
                    "Plane answers 404 for work item {id} of project {} (deleted or archived): its event goes",
                    plane::project_label(&project)
                );
                (None, project)
            }
            Ok(ProjectEntry::Skipped { name, reason }) => {
                log::info!(
                    "work item {id} is gone with its project {name:?}, which is not synced ({reason}): calplanebot deletes nothing for it, as sync does"
                );
                return Ok(None);
            }
            Err(PlaneError::NotFound { .. } | PlaneError::Forbidden { .. }) => {
                log::info!(
                    "work item {id} is gone with its project {project_id}, which the token cannot read any more: calplanebot deletes nothing for it, as sync does"
                );
                return Ok(None);
            }
            Err(other) => return Err(other.into()),
        },
    }))
}

/// The feeds of one issue: its VEVENT leaves every feed that holds it and goes into its
/// project's, the workspace's and its assignees' feeds (when it is dated). A patch never
/// removes a feed.
fn patch_feeds(
    config: &Config,
    dir: &mut feed::FeedDirectory,
    options: &Options,
    id: &str,
    issue: Option<&Issue>,
    project: &Project,
    report: &mut Report,
) -> Status {
    let workspace = &config.workspace_slug;
    let mut into = vec![
        (
            feed::FeedId::project(&project.id),
            feed::calendar_name(&project.name),
        ),
        (
            feed::FeedId::workspace(workspace),
            feed::calendar_name(workspace),
        ),
    ];
    let event = issue.map(|issue| {
        into.extend(
            issue
                .assignees
                .iter()
                .map(|a| feed::MemberRef::of_assignee(a).feed()),
        );
        let fields = event::desired_event(issue, project, &super::source::mapping_context(config));
        event::vevent(
            &fields,
            issue
                .updated_at
                .unwrap_or(chrono::DateTime::<chrono::Utc>::UNIX_EPOCH),
        )
    });
    let patch = feed::Patch {
        uid: event::uid_for(id, None),
        event,
        into,
    };
    let feed_options = feed::Options {
        dry_run: options.dry_run,
        guard: options.guard,
        text: options.format == crate::cli::Format::Text,
    };
    let mut stdout = std::io::stdout().lock();
    match feed::patch(dir, workspace, &patch, feed_options, &mut stdout) {
        Ok(outcome) => super::feed_target::report_feeds(&outcome, options, report, &mut stdout),
        Err(error) => {
            log::error!("{error}; no feed was written");
            error.status()
        }
    }
}

/// The calendar jobs of a webhook run: the project's calendar or each assignee view's (none
/// when there is nothing to look at).
struct Gathered {
    jobs: Vec<CalendarJob>,
    /// The calendar was found by discovery (not the cache): remember it.
    discovered: bool,
    /// Single-calendar mode: the project → calendar entries of the cache do not apply.
    single: bool,
}

#[allow(clippy::too_many_arguments)]
fn gather_issue(
    config: &Config,
    caldav: &CalDav,
    dav: &DavClient,
    cache: &mut CalendarCache,
    id: &str,
    mut located: Option<(String, StoredEvent)>,
    issue: Option<&Issue>,
    project: &Project,
) -> Result<Gathered, Abort> {
    let nothing = Gathered {
        jobs: Vec::new(),
        discovered: false,
        single: false,
    };
    let project_id = &project.id;
    let issue = issue.cloned();
    let project = project.clone();
    let issues = ProjectIssues {
        // The issue was read by id just now: Plane's answer is complete for it.
        listed: 1,
        issues: issue.iter().cloned().collect(),
        ..ProjectIssues::default()
    };
    let ctx = MappingContext {
        workspace_slug: &config.workspace_slug,
        web_url: &config.plane_web_url,
        span: config.span,
    };
    let fetched = [(project.clone(), issues)];
    let mut discovered = false;
    let mut single = single_calendar(caldav, cache);
    let target = if single.is_some() {
        None
    } else if let Some((calendar, _)) = &located {
        Some(existing(calendar, &project))
    } else if let Some(calendar) = cache.calendar(&project.id) {
        Some(existing(calendar, &project))
    } else {
        discovered = true;
        match super::listing::layout(caldav, dav)? {
            Layout::Single(url) => {
                cache.set_single_calendar(Some(&url));
                single = Some(url);
                None
            }
            Layout::Home(home) => {
                let wanted = [Wanted {
                    project: &project,
                    issues: &fetched[0].1,
                }];
                let target = super::caldav_target::place_projects(dav, &home, &wanted)?
                    .pop()
                    .expect("one target per project");
                if target.state == CalendarState::Missing && issue.is_none() {
                    log::info!(
                        "no calendar for project {project_id} and no event wanted: nothing to do"
                    );
                    return Ok(nothing);
                }
                Some(target)
            }
        }
    };
    let mut job = match (target, &single) {
        (Some(target), _) => placement::project_job(target, &project, &fetched[0].1, &ctx),
        (None, Some(url)) => placement::single_calendar_job(url, &fetched, &ctx, None),
        (None, None) => unreachable!("no calendar target outside single-calendar mode"),
    };
    let stored = located.take().map(|(_, stored)| stored);
    fill_stored(dav, &mut job, id, stored, &fetched[0].1)?;
    Ok(Gathered {
        jobs: vec![job],
        discovered,
        single: single.is_some(),
    })
}

/// Reads the issue's event into `job`: where the delivery's search found it (`located`); at
/// the job's resource name when an event is wanted (a create that meets our UID elsewhere
/// updates that object); under any name when it is not, so that an event a client moved still
/// goes.
fn fill_stored(
    dav: &DavClient,
    job: &mut CalendarJob,
    id: &str,
    located: Option<StoredEvent>,
    issues: &ProjectIssues,
) -> Result<(), Abort> {
    let view = job.view.clone();
    let view = view.as_deref();
    let stored: Vec<StoredEvent> = match located {
        Some(stored) => vec![stored],
        None if job.target.state == CalendarState::Missing => Vec::new(),
        None if job.desired.contains_key(id) => dav
            .get(&format!(
                "{}{}",
                job.target.url,
                event::resource_name(id, view)
            ))?
            .into_iter()
            .collect(),
        None => {
            let uid = event::uid_for(id, view);
            let mut found = dav.find_uid(&job.target.url, &uid)?;
            found.retain(|e| event::holds_uid(&e.data, &uid));
            found
        }
    };
    // An event still marked with the project the issue was in before a move is this issue's
    // event all the same (the issue id is unique in the workspace).
    for mark in stored
        .iter()
        .filter_map(|s| event::read_event(&s.data).ok()?.project)
        .filter(|mark| plane::is_uuid(mark))
    {
        if job.scopes.iter().all(|s| s.project.id != mark) {
            let moved_from = Project {
                id: mark,
                identifier: String::new(),
                name: String::new(),
            };
            job.scopes.push(placement::scope_of(&moved_from, issues));
        }
    }
    super::caldav_target::fill_actual(job, stored);
    Ok(())
}

/// The jobs of the assignee views for one issue: each view's calendar (the single calendar, or
/// `plane-member-{id}/` from the cache or, failing that, the home), wanting the issue's event
/// when it is assigned to one of the view's members. A view whose calendar does not exist and
/// that wants nothing is left out.
#[allow(clippy::too_many_arguments)]
fn gather_views(
    config: &Config,
    caldav: &CalDav,
    dav: &DavClient,
    cache: &mut CalendarCache,
    id: &str,
    issue: Option<&Issue>,
    project: &Project,
    members: Vec<ViewMember>,
) -> Result<Gathered, Abort> {
    let ctx = MappingContext {
        workspace_slug: &config.workspace_slug,
        web_url: &config.plane_web_url,
        span: config.span,
    };
    let issues = ProjectIssues {
        listed: 1,
        issues: issue.into_iter().cloned().collect(),
        ..ProjectIssues::default()
    };
    let fetched = [(project.clone(), issues)];
    let mut single = single_calendar(caldav, cache);
    let mut discovered = false;
    let mut home: Option<(String, Vec<caldav::Calendar>)> = None;
    // Discovery only when a member's calendar is not in the cache.
    let needs_discovery = single.is_none()
        && views::views(members.clone(), false)
            .iter()
            .any(|v| cache.calendar(v.cache_key()).is_none());
    if needs_discovery {
        discovered = true;
        match super::listing::layout(caldav, dav)? {
            Layout::Single(url) => {
                cache.set_single_calendar(Some(&url));
                single = Some(url);
            }
            Layout::Home(url) => {
                let calendars = dav.calendars(&url)?;
                home = Some((url, calendars));
            }
        }
    }
    let mut jobs = Vec::new();
    for view in views::views(members, single.is_some()) {
        let target = match (&single, cache.calendar(view.cache_key()), &home) {
            (Some(url), _, _) => placement::single_calendar_target(url),
            (None, Some(url), _) => {
                let name = Some(view.calendar_name(config.calendar_name.as_deref()));
                CalendarTarget {
                    url: url.to_string(),
                    displayname: name.clone(),
                    state: CalendarState::Exists { displayname: name },
                }
            }
            (None, None, Some((url, calendars))) => {
                placement::view_target(url, calendars, &view, config.calendar_name.as_deref())
            }
            (None, None, None) => unreachable!("discovery ran for a view not in the cache"),
        };
        let mut job = placement::view_job(target, &fetched, &ctx, Some(&view));
        if job.target.state == CalendarState::Missing && job.desired.is_empty() {
            continue;
        }
        fill_stored(dav, &mut job, id, None, &fetched[0].1)?;
        jobs.push(job);
    }
    Ok(Gathered {
        jobs,
        discovered,
        single: single.is_some(),
    })
}

/// [`locate`] for assignee views: the issue's event in each view's calendar (the single one,
/// or the members' calendars the cache knows, else those in the home), at the view's resource
/// name. Returns the first one found.
fn locate_in_views(
    config: &Config,
    caldav: &CalDav,
    dav: &DavClient,
    cache: &CalendarCache,
    id: &str,
    members: &[ViewMember],
) -> Result<Option<(String, StoredEvent, String)>, Abort> {
    let look =
        |calendar: &str, view: &View| -> Result<Option<(String, StoredEvent, String)>, Abort> {
            let name = event::resource_name(id, Some(&view.id));
            let Some(stored) = dav.get(&format!("{calendar}{name}"))? else {
                return Ok(None);
            };
            let owned = event::read_event(&stored.data).ok().filter(|fields| {
                fields.uid == event::uid_for(id, Some(&view.id))
                    && fields.view.as_deref() == Some(view.id.as_str())
                    && fields.workspace.as_deref() == Some(config.workspace_slug.as_str())
            });
            Ok(match owned.and_then(|f| f.project) {
                Some(project) if plane::is_uuid(&project) => {
                    Some((calendar.to_string(), stored, project))
                }
                _ => None,
            })
        };
    let people = views::views(members.to_vec(), false);
    let single = match single_calendar(caldav, cache) {
        Some(url) => Some(url),
        None if people
            .iter()
            .all(|v| cache.calendar(v.cache_key()).is_some()) =>
        {
            None
        }
        None => match super::listing::layout(caldav, dav)? {
            Layout::Single(url) => Some(url),
            Layout::Home(home) => {
                for view in &people {
                    if let Some(found) = look(&view.calendar_url(&home), view)? {
                        return Ok(Some(found));
                    }
                }
                return Ok(None);
            }
        },
    };
    if let Some(url) = single {
        return match views::views(members.to_vec(), true).first() {
            Some(view) => look(&url, view),
            None => Ok(None),
        };
    }
    for view in &people {
        if let Some(url) = cache.calendar(view.cache_key())
            && let Some(found) = look(url, view)?
        {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// The one calendar of single-calendar mode: `CALDAV_CALENDAR_URL`, or the calendar an earlier
/// run found `CALDAV_URL` to be.
fn single_calendar(caldav: &CalDav, cache: &CalendarCache) -> Option<String> {
    match &caldav.calendar_url {
        Some(url) => Some(caldav::with_slash(url.clone())),
        None => cache.single_calendar().map(str::to_string),
    }
}

/// A calendar known to exist from the cache or the search: this run does not know its
/// current name, so it keeps it (a project webhook or `sync` renames calendars).
fn existing(url: &str, project: &Project) -> CalendarTarget {
    let displayname = Some(placement::calendar_displayname(project));
    CalendarTarget {
        url: url.to_string(),
        displayname: displayname.clone(),
        state: CalendarState::Exists { displayname },
    }
}

/// Finds the event of issue `id` when the delivery names no project: in the single calendar,
/// else in the cached calendars, else in every calplanebot calendar of the home. Returns the
/// calendar, the event and the project its scope mark names; only an event calplanebot owns
/// in this workspace counts.
fn locate(
    config: &Config,
    caldav: &CalDav,
    dav: &DavClient,
    cache: &CalendarCache,
    id: &str,
) -> Result<Option<(String, StoredEvent, String)>, Abort> {
    let name = event::resource_name(id, None);
    let look = |calendar: &str| -> Result<Option<(String, StoredEvent, String)>, Abort> {
        let Some(stored) = dav.get(&format!("{calendar}{name}"))? else {
            return Ok(None);
        };
        let Ok(fields) = event::read_event(&stored.data) else {
            return Ok(None);
        };
        let ours = fields.uid == event::uid_for(id, None)
            && fields.view.is_none()
            && fields.workspace.as_deref() == Some(config.workspace_slug.as_str());
        match fields.project {
            Some(project) if ours && plane::is_uuid(&project) => {
                Ok(Some((calendar.to_string(), stored, project)))
            }
            _ => Ok(None),
        }
    };
    if let Some(url) = single_calendar(caldav, cache) {
        return look(&url);
    }
    let tried = cache.calendars();
    for calendar in &tried {
        if let Some(found) = look(calendar)? {
            return Ok(Some(found));
        }
    }
    let home = match super::listing::layout(caldav, dav)? {
        Layout::Single(url) => return look(&url),
        Layout::Home(home) => home,
    };
    for calendar in dav.calendars(&home)? {
        let plane_calendar = calendar
            .displayname
            .as_deref()
            .is_some_and(|n| n.starts_with("Plane: "))
            || caldav::xml::href_path(&calendar.url)
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .is_some_and(|n| n.starts_with("plane-"));
        if plane_calendar
            && !tried.contains(&calendar.url)
            && let Some(found) = look(&calendar.url)?
        {
            return Ok(Some(found));
        }
    }
    Ok(None)
}
