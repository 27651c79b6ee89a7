//! The Plane side of a run: which projects, their dated issues, and Plane's word on an issue
//! that left its project's list (asked once per run, whichever target needs it); who the
//! `--assignee` people are.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::config::Config;
use crate::mapping::event::MappingContext;
use crate::plane::{
    self, Issue, IssueItem, OneIssue, PlaneClient, PlaneError, Project, ProjectEntry, ProjectIssues,
};
use crate::reconcile::plan::{self};
use crate::reconcile::render::Report;
use crate::reconcile::views::{self, ViewMember};

use super::options::{Abort, Selection};
use super::plane_snapshot::{PlaneSnapshot, ProjectRecord};

/// The mapping settings of a run.
pub fn mapping_context(config: &Config) -> MappingContext<'_> {
    MappingContext {
        workspace_slug: &config.workspace_slug,
        web_url: &config.plane_web_url,
        span: config.span,
    }
}

/// Every assignee of the issues fetched, once each, by id: whom a key that may not read the
/// members list knows of (for member feeds and `--assignee`).
pub fn assignees_seen(fetched: &[(Project, ProjectIssues)]) -> Vec<plane::Assignee> {
    let mut seen: BTreeMap<&str, &plane::Assignee> = BTreeMap::new();
    for issue in fetched.iter().flat_map(|(_, issues)| &issues.issues) {
        for assignee in &issue.assignees {
            seen.entry(assignee.id.as_str()).or_insert(assignee);
        }
    }
    seen.into_values().cloned().collect()
}

/// Plane's word on each issue of `missing` (issue id, project id) that left its project's
/// completely read list, for any target that would drop its event: one detail request per
/// issue, asked once per run whichever target asks ([`Fetched::confirm`]); `None` for an issue
/// of a project not listed. When there are more than `--max-delete` of them, the guard refuses
/// those deletions anyway: nobody is asked, and the answer is `None` (`what` says what the
/// events would do, for the log).
pub fn confirm_missing(
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
/// hint that names no syncable project, or an issue of a project not synced: nothing to do).
#[derive(Default)]
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

/// The Plane side of a run: the selected projects and their dated issues; for one issue, that
/// issue and its project. Each project is probed first when the Plane snapshot has a record of
/// it, and read in full only when the probe finds a change (or fails); up to `concurrency`
/// projects at once. `memory` learns what was read, and is saved when `save` (not in a dry
/// run); the issues come out of it, so they are held once.
pub fn fetch(
    selection: &Selection,
    plane: &PlaneClient,
    mut memory: PlaneSnapshot,
    save: bool,
    concurrency: usize,
    report: &mut Report,
) -> Result<Fetched, Abort> {
    if let Selection::Issue { id, project } = selection {
        return match project {
            Some(project) => fetch_issue(plane, &mut memory, save, project, id),
            None => Ok(Fetched::default()),
        };
    }
    let list = plane.projects()?;
    for (name, reason) in &list.skipped {
        log::info!("skipping project {name:?}: {reason}");
    }
    let listed = list.projects.clone();
    let projects = match selection {
        Selection::All => list.projects,
        Selection::Named(wanted) => select_projects(list.projects, wanted)?,
        Selection::Issue { .. } => unreachable!("an issue is fetched by id"),
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
    let mut reads = read_projects(plane, &memory, &projects, concurrency);
    for (project, (issues, how)) in projects.iter().zip(reads.iter_mut()) {
        if let Some(error) = issues.error.take() {
            if error.is_fatal() {
                return Err(error.into());
            }
            let message = format!(
                "{error}; nothing is deleted in project {}",
                plane::project_label(project)
            );
            log::error!("{message}");
            report.errors.push(message);
            issues.error = Some(error);
        }
        // A complete full read becomes the project's record (moved, not copied: the issues
        // come back below, once the snapshot is saved).
        if *how == Read::Full
            && let Some(kept) = memory.put(&project.id, std::mem::take(issues))
        {
            *issues = kept;
            *how = Read::Unrecorded;
        }
    }
    if *selection == Selection::All {
        memory.retain(|id| listed.iter().any(|p| p.id == id));
    }
    if save {
        memory.save();
    }
    let mut fetched: Vec<(Project, ProjectIssues)> = Vec::with_capacity(projects.len());
    let mut probed = 0;
    for (project, (issues, how)) in projects.into_iter().zip(reads) {
        let issues = match how {
            Read::Unrecorded => issues,
            Read::Unchanged | Read::Full => memory
                .take(&project.id)
                .expect("the record of a project read this run"),
        };
        probed += usize::from(how == Read::Unchanged);
        report.issues_seen += issues.listed;
        log::debug!(
            "project {}: {} dated issues{}",
            plane::project_label(&project),
            issues.issues.len(),
            if how == Read::Unchanged {
                " (unchanged since the last read)"
            } else {
                ""
            }
        );
        fetched.push((project, issues));
    }
    log::debug!(
        "projects unchanged by their probe: {probed}, read in full: {}",
        fetched.len() - probed
    );
    Ok(Fetched {
        listed,
        projects: fetched,
        answers: Default::default(),
    })
}

/// How a project was read this run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Read {
    /// The probe found it as the Plane snapshot recorded it: its issues are the record's.
    Unchanged,
    /// Read in full (no record, a change, or a failed probe).
    Full,
    /// Read in full, but not completely (an error, an unreadable item): not recorded.
    Unrecorded,
}

/// Reads each project ([`read_project`]), up to `concurrency` at once, in the order given.
/// After an error that fails the run (the key), no further project is started.
fn read_projects(
    plane: &PlaneClient,
    memory: &PlaneSnapshot,
    projects: &[Project],
    concurrency: usize,
) -> Vec<(ProjectIssues, Read)> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let results: Vec<Mutex<Option<(ProjectIssues, Read)>>> =
        projects.iter().map(|_| Mutex::new(None)).collect();
    let bar = crate::support::progress::bar(projects.len(), "Plane");
    std::thread::scope(|scope| {
        for _ in 0..concurrency.clamp(1, projects.len().max(1)) {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(project) = projects.get(index) else {
                        break;
                    };
                    let read = read_project(plane, project, memory.record(&project.id));
                    if read.0.error.as_ref().is_some_and(PlaneError::is_fatal) {
                        stop.store(true, Ordering::Relaxed);
                    }
                    *results[index].lock().expect("result lock") = Some(read);
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner().expect("result lock").unwrap_or_else(|| {
                // Not started: the run fails on the error that stopped it.
                let issues = ProjectIssues {
                    error: Some(PlaneError::GaveUp {
                        what: "the work items (the run stopped)".into(),
                    }),
                    ..ProjectIssues::default()
                };
                (issues, Read::Full)
            })
        })
        .collect()
}

/// One project: its record when the probe finds no change, else a full read.
fn read_project(
    plane: &PlaneClient,
    project: &Project,
    record: Option<&ProjectRecord>,
) -> (ProjectIssues, Read) {
    if let Some(record) = record {
        let label = plane::project_label(project);
        match plane.probe(project) {
            Ok(prints) if prints == record.fingerprints => {
                return (ProjectIssues::default(), Read::Unchanged);
            }
            Ok(_) => log::debug!("project {label}: changed since the last read"),
            Err(error) if error.is_fatal() => {
                let issues = ProjectIssues {
                    error: Some(error),
                    ..ProjectIssues::default()
                };
                return (issues, Read::Full);
            }
            Err(error) => {
                log::warn!("{error}; reading project {label} in full");
            }
        }
    }
    (plane.dated_issues(project), Read::Full)
}

/// The Plane side narrowed to one issue: what Plane says of it now, in one request — the
/// issue (left out when it has no date or is gone) in its project, listed completely (it was
/// read by id); nothing when its project is not synced, so that nothing is changed. The Plane
/// snapshot's record of the project learns it, so the next run's probe finds no change.
fn fetch_issue(
    plane: &PlaneClient,
    memory: &mut PlaneSnapshot,
    save: bool,
    project_id: &str,
    id: &str,
) -> Result<Fetched, Abort> {
    let (issue, project, print) = match plane.issue_with_project(project_id, id)? {
        Some(OneIssue {
            item: IssueItem::Dated(issue),
            project,
            fingerprint,
        }) => (Some(issue), project, fingerprint),
        Some(OneIssue {
            item: IssueItem::Undated { .. },
            project,
            fingerprint,
        }) => (None, project, fingerprint),
        Some(OneIssue {
            item: IssueItem::Invalid { reason, .. },
            ..
        }) => {
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
                (None, project, None)
            }
            Ok(ProjectEntry::Skipped { name, reason }) => {
                log::info!(
                    "work item {id} is gone with its project {name:?}, which is not synced ({reason}): calplanebot deletes nothing for it, as sync does"
                );
                memory.forget(project_id);
                if save {
                    memory.save();
                }
                return Ok(Fetched::default());
            }
            Err(PlaneError::NotFound { .. } | PlaneError::Forbidden { .. }) => {
                log::info!(
                    "work item {id} is gone with its project {project_id}, which the token cannot read any more: calplanebot deletes nothing for it, as sync does"
                );
                memory.forget(project_id);
                if save {
                    memory.save();
                }
                return Ok(Fetched::default());
            }
            Err(other) => return Err(other.into()),
        },
    };
    memory.patch(&project.id, id, print.as_deref(), issue.as_ref());
    if save {
        memory.save();
    }
    Ok(Fetched {
        listed: vec![project.clone()],
        projects: vec![(
            project,
            ProjectIssues {
                listed: 1,
                issues: issue.into_iter().collect(),
                ..ProjectIssues::default()
            },
        )],
        answers: Default::default(),
    })
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

/// `--project` takes identifiers (case-insensitive) or UUIDs; an unknown one is a usage error.
pub fn select_projects(projects: Vec<Project>, wanted: &[String]) -> Result<Vec<Project>, Abort> {
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
