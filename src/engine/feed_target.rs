//! The feed target of a run: the feed directory opened and checked, what the feeds are made
//! of, the proof of every event that leaves them, and the report of what was written.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::cli::Format;
use crate::config::Config;
use crate::exit::Status;
use crate::feed::{self, FeedDirectory};
use crate::mapping::event::{self, MappingContext};
use crate::plane::{Issue, PlaneClient, PlaneError, Project, ProjectIssues};
use crate::reconcile::plan::{self};
use crate::reconcile::render::Report;

use super::options::{Abort, Options, Selection};
use super::source::{Answer, Fetched, assignees_seen, confirm_missing, mapping_context};

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
        &crate::feed::Identity::of(config),
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
pub fn write_feeds(
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
    let summary = feed::summary_line(outcome, options.dry_run);
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
pub fn confirm_feed_absences(
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
