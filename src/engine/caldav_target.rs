//! The CalDAV target of a run: where each calendar is, what it holds (read as `listing`
//! decides), which of its events are the run's, and the proof of every deletion.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;

use crate::caldav::{self, DavClient, StoredEvent};
use crate::cli::Format;
use crate::config::{CalDav, Config};
use crate::engine::cache::CalendarCache;
use crate::engine::snapshot::Snapshot;
use crate::mapping::event::{self, MappingContext};
use crate::plane::{PlaneClient, Project};
use crate::reconcile::placement::{self, Layout, Wanted};
use crate::reconcile::plan::{self, ActualEvent, CalendarJob, CalendarTarget, Change};
use crate::reconcile::render::{self, Action, Report};
use crate::reconcile::views::{self, View, ViewMember};

use super::listing::{self, How};
use super::options::{Abort, Options};
use super::source::{Answer, Fetched, confirm_missing};

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

/// The CalDAV side of a run: each calendar's desired events (from `fetched`) and stored ones,
/// read as `listing` decides (the snapshot, a change report, or in full); also what each
/// calendar's read found, for the snapshot.
#[allow(clippy::too_many_arguments)]
pub fn caldav_jobs(
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
pub fn print_views(views: &[View], jobs: &[CalendarJob]) {
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

/// What [`caldav_jobs`] gathered.
#[derive(Default)]
pub struct CalDavJobs {
    pub jobs: Vec<CalendarJob>,
    pub layout: Option<Layout>,
    /// How each calendar was read, by URL.
    pub reads: HashMap<String, listing::Listed>,
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
pub fn place_among(
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

/// Proves each deletion the plan would make because an issue is missing from its project's
/// list. Offset pagination over a live table skips an item whenever another is deleted during
/// the walk, and the last page's `total_count` already counts that deletion, so no count can
/// show the gap (plane-api.md §3). Deletions are rare, so each one costs a detail GET: 404 or
/// no date confirms it; a dated issue is desired after all; anything else keeps the event.
///
/// When the deletions already exceed `--max-delete`, the guard refuses them all whatever Plane
/// says, so they are not asked about (unless `--force-delete`).
pub fn confirm_absences(
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
