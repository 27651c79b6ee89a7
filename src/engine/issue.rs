//! The pipeline's steps narrowed to one issue (an issue webhook), where `sync`'s would cost
//! too much for one event: selecting the project of a deletion by where its event is, reading
//! its one event (the cache's calendar, else one discovery; one GET, not a listing), keeping
//! the cache true afterwards, and patching the feeds that hold it. `run::reconcile` runs them
//! in place of their full forms; fetch, plan, guard, apply and report are the same steps.

use crate::caldav::{self, DavClient, StoredEvent};
use crate::config::{CalDav, Config};
use crate::engine::cache::CalendarCache;
use crate::engine::options::{Abort, Options};
use crate::exit::Status;
use crate::feed;
use crate::mapping::event;
use crate::plane::{self, Issue, PlaneClient, Project, ProjectIssues};
use crate::reconcile::placement::{self, Layout, Wanted};
use crate::reconcile::plan::{CalendarJob, CalendarState, CalendarTarget};
use crate::reconcile::render::Report;
use crate::reconcile::views::{self, View, ViewMember};

use super::caldav_target::CalDavJobs;
use super::source::{Fetched, mapping_context};

/// A run narrowed to one issue: which, in which project, and what selecting it learned.
pub struct Narrowed {
    pub id: String,
    pub project: String,
    /// The calendar and the stored event, when a delivery without project found it there.
    located: Option<(String, StoredEvent)>,
    /// The assignee views' people, when they had to be resolved to look for the event.
    pub members: Option<Vec<ViewMember>>,
    /// The calendar-location cache (with CalDAV), read once and kept true at the end.
    cache: Option<CalendarCache>,
}

/// Selects the issue's project: the one the delivery names, else the one whose calendar or
/// feed holds its event (an issue deletion); `None` when nothing holds it.
pub fn select(
    config: &Config,
    plane: &PlaneClient,
    dav: Option<&DavClient>,
    feed_dir: Option<&feed::FeedDirectory>,
    id: &str,
    project: Option<&str>,
) -> Result<Option<Narrowed>, Abort> {
    let mut cache = config
        .caldav
        .as_ref()
        .map(|settings| CalendarCache::of(config, settings));
    let target = config.caldav.as_ref().zip(dav).zip(cache.as_mut());
    let mut narrowed = Narrowed {
        id: id.to_string(),
        project: String::new(),
        located: None,
        members: None,
        cache: None,
    };
    match project {
        Some(project) => narrowed.project = project.to_string(),
        None => match locate_issue(config, plane, target, feed_dir, id)? {
            Some(found) => {
                narrowed.project = found.project;
                narrowed.located = found.located;
                narrowed.members = found.members;
            }
            None => return Ok(None),
        },
    }
    narrowed.cache = cache;
    Ok(Some(narrowed))
}

impl Narrowed {
    /// Logs what `--span start-to-due` cannot do for this issue.
    pub fn note_span(&self, config: &Config, fetched: &Fetched) {
        let issue = fetched.projects.iter().flat_map(|(_, i)| &i.issues).next();
        if let Some(issue) = issue
            && let Err(start) = event::first_day(issue, config.span)
        {
            log::info!(
                "work item {} starts on {start}, after its due date {}: its event covers the due date only (--span start-to-due needs a start on or before the due date)",
                self.id,
                issue.target_date
            );
        }
    }

    /// Survey and list, narrowed: the issue's calendar (the project's, or each assignee
    /// view's) from the cache, the delivery's search or one discovery, and its one event in
    /// each. The layout is `Some` when this run discovered it.
    pub fn caldav_jobs(
        &mut self,
        config: &Config,
        settings: &CalDav,
        dav: &DavClient,
        fetched: &Fetched,
        members: Vec<ViewMember>,
    ) -> Result<CalDavJobs, Abort> {
        let Some((project, issues)) = fetched.projects.first() else {
            return Ok(CalDavJobs::default());
        };
        let Some(cache) = self.cache.as_mut() else {
            return Ok(CalDavJobs::default());
        };
        let one = Issue1 {
            config,
            dav,
            id: &self.id,
            project,
            issues,
        };
        if config.assignees.is_empty() {
            one.project_job(settings, cache, self.located.take())
        } else {
            one.view_jobs(settings, cache, members)
        }
    }

    /// Keeps the calendar-location cache true after the run: remembers the calendars this run
    /// found by discovery, or forgets what a failure may have made stale.
    pub fn remember(
        &mut self,
        settings: &CalDav,
        jobs: &[CalendarJob],
        layout: &Option<Layout>,
        report: &Report,
        dry_run: bool,
    ) {
        let Some(cache) = self.cache.as_mut() else {
            return;
        };
        if settings.calendar_url.is_some() || dry_run {
            return;
        }
        if report.failures.is_empty() {
            if matches!(layout, Some(Layout::Home(_))) {
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
    caldav: Option<((&CalDav, &DavClient), &mut CalendarCache)>,
    feed_dir: Option<&feed::FeedDirectory>,
    id: &str,
) -> Result<Option<Located>, Abort> {
    let mut members = None;
    let found = match caldav {
        Some(((settings, dav), cache)) if !config.assignees.is_empty() => {
            let resolved = super::source::resolve_members(config, plane, &[])?;
            let found = locate_in_views(config, settings, dav, cache, id, &resolved)?;
            members = Some(resolved);
            found
        }
        Some(((settings, dav), cache)) => locate(config, settings, dav, cache, id)?,
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

/// The feed step narrowed to one issue: its VEVENT leaves every feed that holds it and goes
/// into its project's, the workspace's and its assignees' feeds (when it is dated). A patch
/// never removes a feed.
pub fn patch_feeds(
    config: &Config,
    dir: &mut feed::FeedDirectory,
    options: &Options,
    id: &str,
    fetched: &Fetched,
    report: &mut Report,
) -> Status {
    let Some((project, issues)) = fetched.projects.first() else {
        return Status::Success;
    };
    let issue = issues.issues.first();
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
        let fields = event::desired_event(issue, project, &mapping_context(config));
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

/// One issue's calendar jobs, as Plane told of it this run.
struct Issue1<'a> {
    config: &'a Config,
    dav: &'a DavClient,
    id: &'a str,
    project: &'a Project,
    /// The issue (when it is dated), listed completely: it was read by id.
    issues: &'a ProjectIssues,
}

impl Issue1<'_> {
    fn issue(&self) -> Option<&Issue> {
        self.issues.issues.first()
    }

    /// The project and its issue, as the placement functions take a run's projects.
    fn as_fetched(&self) -> [(Project, ProjectIssues); 1] {
        let issues = ProjectIssues {
            listed: self.issues.listed,
            issues: self.issues.issues.clone(),
            ..ProjectIssues::default()
        };
        [(self.project.clone(), issues)]
    }

    /// The project's calendar job: the single calendar, else the calendar where the delivery's
    /// search found the event, else the cache's, else one found by discovery (none when the
    /// project has no calendar and no event is wanted).
    fn project_job(
        &self,
        settings: &CalDav,
        cache: &mut CalendarCache,
        located: Option<(String, StoredEvent)>,
    ) -> Result<CalDavJobs, Abort> {
        let (project, dav) = (self.project, self.dav);
        let mut discovered = None;
        let mut single = single_calendar(settings, cache);
        let target = if single.is_some() {
            None
        } else if let Some((calendar, _)) = &located {
            Some(existing(calendar, project))
        } else if let Some(calendar) = cache.calendar(&project.id) {
            Some(existing(calendar, project))
        } else {
            match super::listing::layout(settings, dav)? {
                Layout::Single(url) => {
                    cache.set_single_calendar(Some(&url));
                    single = Some(url.clone());
                    discovered = Some(Layout::Single(url));
                    None
                }
                Layout::Home(home) => {
                    let wanted = [Wanted {
                        project,
                        issues: self.issues,
                    }];
                    let target = super::caldav_target::place_projects(dav, &home, &wanted)?
                        .pop()
                        .expect("one target per project");
                    if target.state == CalendarState::Missing && self.issue().is_none() {
                        log::info!(
                            "no calendar for project {} and no event wanted: nothing to do",
                            project.id
                        );
                        return Ok(CalDavJobs::default());
                    }
                    discovered = Some(Layout::Home(home));
                    Some(target)
                }
            }
        };
        let ctx = mapping_context(self.config);
        let mut job = match (target, &single) {
            (Some(target), _) => placement::project_job(target, project, self.issues, &ctx),
            (None, Some(url)) => {
                placement::single_calendar_job(url, &self.as_fetched(), &ctx, None)
            }
            (None, None) => unreachable!("no calendar target outside single-calendar mode"),
        };
        self.fill_stored(&mut job, located.map(|(_, stored)| stored))?;
        Ok(CalDavJobs {
            jobs: vec![job],
            layout: discovered,
            reads: Default::default(),
        })
    }

    /// The jobs of the assignee views: each view's calendar (the single calendar, or
    /// `plane-member-{id}/` from the cache or, failing that, the home), wanting the issue's
    /// event when it is assigned to one of the view's members. A view whose calendar does not
    /// exist and that wants nothing is left out.
    fn view_jobs(
        &self,
        settings: &CalDav,
        cache: &mut CalendarCache,
        members: Vec<ViewMember>,
    ) -> Result<CalDavJobs, Abort> {
        let (config, dav) = (self.config, self.dav);
        let ctx = mapping_context(config);
        let fetched = self.as_fetched();
        let mut single = single_calendar(settings, cache);
        let mut discovered = None;
        let mut home: Option<(String, Vec<caldav::Calendar>)> = None;
        // Discovery only when a member's calendar is not in the cache.
        let needs_discovery = single.is_none()
            && views::views(members.clone(), false)
                .iter()
                .any(|v| cache.calendar(v.cache_key()).is_none());
        if needs_discovery {
            match super::listing::layout(settings, dav)? {
                Layout::Single(url) => {
                    cache.set_single_calendar(Some(&url));
                    single = Some(url.clone());
                    discovered = Some(Layout::Single(url));
                }
                Layout::Home(url) => {
                    let calendars = dav.calendars(&url)?;
                    discovered = Some(Layout::Home(url.clone()));
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
            self.fill_stored(&mut job, None)?;
            jobs.push(job);
        }
        Ok(CalDavJobs {
            jobs,
            layout: discovered,
            reads: Default::default(),
        })
    }

    /// Reads the issue's event into `job`: where the delivery's search found it (`located`);
    /// at the job's resource name when an event is wanted (a create that meets our UID
    /// elsewhere updates that object); under any name when it is not, so that an event a
    /// client moved still goes.
    fn fill_stored(
        &self,
        job: &mut CalendarJob,
        located: Option<StoredEvent>,
    ) -> Result<(), Abort> {
        let (dav, id) = (self.dav, self.id);
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
        // An event still marked with the project the issue was in before a move is this
        // issue's event all the same (the issue id is unique in the workspace).
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
                job.scopes
                    .push(placement::scope_of(&moved_from, self.issues));
            }
        }
        super::caldav_target::fill_actual(job, stored);
        Ok(())
    }
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
