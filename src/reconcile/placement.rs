//! Which calendar each project's events belong in, and the calendar jobs built from that: pure
//! functions of the calendars found in the home and the projects of the run, shared by `sync`
//! and `webhook` so both always decide the same way.
//!
//! A project's calendar is found in this order: `{home}plane-{project_id}/`; a calendar named
//! exactly `Plane: {name}` (what the original Python CalPlaneBot created: adopted); a
//! `Plane: …` calendar holding events of this project's issues (an adopted calendar whose
//! project was renamed since: without this, the rename would create a second calendar); else a
//! new one at `{home}plane-{project_id}/`. The third step needs to know which resource names
//! the candidate calendars hold: [`adoption_candidates`] says which calendars to ask, the
//! caller asks the server, and [`place`] decides.

use std::collections::{BTreeMap, HashSet};

use crate::caldav::{self, Calendar};
use crate::mapping::event::{self, MappingContext};
use crate::plane::{self, Project, ProjectIssues};
use crate::reconcile::plan::{CalendarJob, CalendarState, CalendarTarget, ProjectScope};
use crate::reconcile::views::View;

/// Where a run's events live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One calendar for every project (single-calendar mode).
    Single(String),
    /// The calendar home, with one calendar per project.
    Home(String),
}

/// The calendar name calplanebot gives a project's calendar: `Plane: {name}`, spelled the way
/// a server stores it. XML cannot carry most control characters and turns a CR into a LF
/// (XML 1.0 §2.2, §2.11), so a name holding them would never compare equal to what the
/// server stored, and every run would rename the calendar again: line breaks and tabs become
/// spaces, other control characters U+FFFD.
pub fn calendar_displayname(project: &Project) -> String {
    server_text(&format!("Plane: {}", project.name))
}

pub use crate::support::text::server_text;

/// One project to place, with the ids of the issues whose events may already be stored
/// somewhere (its dated issues, and the ones Plane listed but calplanebot could not read).
#[derive(Clone, Copy, Debug)]
pub struct Wanted<'a> {
    pub project: &'a Project,
    pub issues: &'a ProjectIssues,
}

impl Wanted<'_> {
    fn resource_names(&self) -> HashSet<String> {
        self.issues
            .issues
            .iter()
            .map(|i| i.id.as_str())
            .chain(
                self.issues
                    .unreadable
                    .iter()
                    .filter_map(|(id, _)| id.as_deref()),
            )
            .map(|id| event::resource_name(id, None))
            .collect()
    }
}

fn path(url: &str) -> String {
    caldav::xml::href_path(url)
        .trim_end_matches('/')
        .to_string()
}

fn own_url(home: &str, project: &Project) -> String {
    format!("{home}plane-{}/", project.id)
}

/// Steps one and two (own path, exact name): the calendar index of each project, and the
/// paths already claimed.
fn by_path_and_name(
    home: &str,
    calendars: &[Calendar],
    wanted: &[Wanted<'_>],
) -> (Vec<Option<usize>>, HashSet<String>) {
    let paths: Vec<String> = calendars.iter().map(|c| path(&c.url)).collect();
    let mut found: Vec<Option<usize>> = wanted
        .iter()
        .map(|w| {
            let own = path(&own_url(home, w.project));
            paths.iter().position(|p| *p == own)
        })
        .collect();
    let mut claimed: HashSet<String> = found.iter().flatten().map(|&i| paths[i].clone()).collect();
    for (w, slot) in wanted.iter().zip(found.iter_mut()) {
        if slot.is_none() {
            let name = calendar_displayname(w.project);
            *slot = calendars.iter().zip(&paths).position(|(c, p)| {
                c.displayname.as_deref() == Some(name.as_str())
                    && !claimed.contains(p)
                    && !is_other_project_calendar(&c.url, &w.project.id)
            });
            if let Some(i) = slot {
                claimed.insert(paths[*i].clone());
            }
        }
    }
    (found, claimed)
}

/// A `Plane: …` calendar that no project claims by path or name, and that is not named for a
/// project: it may be an adopted calendar whose project was renamed.
fn is_candidate(calendar: &Calendar, claimed: &HashSet<String>) -> bool {
    calendar
        .displayname
        .as_deref()
        .is_some_and(|n| n.starts_with("Plane: "))
        && !claimed.contains(&path(&calendar.url))
        && calendar_project_id(&calendar.url).is_none()
        && !is_member_calendar(&calendar.url)
}

/// The calendars whose resource names [`place`] needs: none when every project is placed by
/// its path or name (the usual case), else every unclaimed `Plane: …` calendar.
pub fn adoption_candidates(
    home: &str,
    calendars: &[Calendar],
    wanted: &[Wanted<'_>],
) -> Vec<String> {
    let (found, claimed) = by_path_and_name(home, calendars, wanted);
    if found.iter().all(Option::is_some) {
        return Vec::new();
    }
    calendars
        .iter()
        .filter(|c| is_candidate(c, &claimed))
        .map(|c| c.url.clone())
        .collect()
}

/// Each project's calendar target, in the order of `wanted`. `held` maps the URL of a
/// candidate calendar (see [`adoption_candidates`]) to the resource names it holds; a
/// candidate missing from it holds nothing this run knows of.
pub fn place(
    home: &str,
    calendars: &[Calendar],
    wanted: &[Wanted<'_>],
    held: &BTreeMap<String, HashSet<String>>,
) -> Vec<CalendarTarget> {
    let (mut found, mut claimed) = by_path_and_name(home, calendars, wanted);
    for (w, slot) in wanted.iter().zip(found.iter_mut()) {
        if slot.is_some() {
            continue;
        }
        let names = w.resource_names();
        *slot = calendars.iter().position(|c| {
            is_candidate(c, &claimed)
                && held
                    .get(&c.url)
                    .is_some_and(|held| held.iter().any(|n| names.contains(n)))
        });
        if let Some(i) = slot {
            claimed.insert(path(&calendars[*i].url));
        }
    }
    wanted
        .iter()
        .zip(found)
        .map(|(w, index)| {
            let displayname = Some(calendar_displayname(w.project));
            match index.map(|i| &calendars[i]) {
                Some(calendar) => {
                    if path(&calendar.url) != path(&own_url(home, w.project)) {
                        log::info!(
                            "adopting the existing calendar {:?} at {} for project {}",
                            calendar.displayname.as_deref().unwrap_or(""),
                            calendar.url,
                            plane::project_label(w.project)
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
                    url: own_url(home, w.project),
                    displayname,
                    state: CalendarState::Missing,
                },
            }
        })
        .collect()
}

/// The project id in a calendar path `.../plane-{uuid}/`, if it has that form.
pub fn calendar_project_id(url: &str) -> Option<String> {
    uuid_in_calendar_name(url, "plane-")
}

/// The UUID after `prefix` in the last segment of a calendar's path, if that is all it holds.
fn uuid_in_calendar_name(url: &str, prefix: &str) -> Option<String> {
    let path = caldav::xml::href_path(url);
    let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    name.strip_prefix(prefix)
        .filter(|id| plane::is_uuid(id))
        .map(str::to_string)
}

/// A calendar named `plane-{uuid}` belongs to that project, never to another one; a person's
/// calendar (`plane-member-{uuid}`) to no project.
fn is_other_project_calendar(url: &str, project_id: &str) -> bool {
    calendar_project_id(url).is_some_and(|id| id != project_id) || is_member_calendar(url)
}

/// A calendar at `.../plane-member-{uuid}/`: an assignee view's, never adopted for a project.
pub fn is_member_calendar(url: &str) -> bool {
    member_of_calendar(url).is_some()
}

/// The member id in a calendar path `.../plane-member-{uuid}/`, if it has that form.
pub fn member_of_calendar(url: &str) -> Option<String> {
    uuid_in_calendar_name(url, "plane-member-")
}

/// What a project's list walk allows: deletions only when it was read completely, and never
/// of the events of issues Plane listed but calplanebot could not read.
pub fn scope_of(project: &Project, issues: &ProjectIssues) -> ProjectScope {
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
        unconfirmed: BTreeMap::new(),
    }
}

/// The desired events of a project's issues: all of them, or in an assignee view those
/// assigned to its members, with the view's identity.
fn desired_of(
    project: &Project,
    issues: &ProjectIssues,
    ctx: &MappingContext,
    view: Option<&View>,
    into: &mut BTreeMap<String, event::ManagedFields>,
) {
    for issue in &issues.issues {
        if let Some(view) = view
            && !view.wants(issue)
        {
            continue;
        }
        let fields = event::desired_event(issue, project, ctx);
        into.insert(
            issue.id.clone(),
            event::in_view(fields, &issue.id, view.map(|v| v.id.as_str())),
        );
    }
}

/// The job of one project's own calendar.
pub fn project_job(
    target: CalendarTarget,
    project: &Project,
    issues: &ProjectIssues,
    ctx: &MappingContext,
) -> CalendarJob {
    let mut desired = BTreeMap::new();
    desired_of(project, issues, ctx, None, &mut desired);
    CalendarJob {
        target,
        view: None,
        scopes: vec![scope_of(project, issues)],
        desired,
        actual: BTreeMap::new(),
        copies: Vec::new(),
    }
}

/// The job of the one calendar of single-calendar mode, holding every project's events (or
/// the view's).
pub fn single_calendar_job(
    url: &str,
    fetched: &[(Project, ProjectIssues)],
    ctx: &MappingContext,
    view: Option<&View>,
) -> CalendarJob {
    view_job(single_calendar_target(url), fetched, ctx, view)
}

/// The job of a calendar that holds the events of every project of the run: the single
/// calendar, or an assignee view's calendar in the home.
pub fn view_job(
    target: CalendarTarget,
    fetched: &[(Project, ProjectIssues)],
    ctx: &MappingContext,
    view: Option<&View>,
) -> CalendarJob {
    let mut desired = BTreeMap::new();
    for (project, issues) in fetched {
        desired_of(project, issues, ctx, view, &mut desired);
    }
    CalendarJob {
        target,
        view: view.map(|v| v.id.clone()),
        scopes: fetched.iter().map(|(p, i)| scope_of(p, i)).collect(),
        desired,
        actual: BTreeMap::new(),
        copies: Vec::new(),
    }
}

/// An assignee view's calendar in the home (`{home}plane-member-{id}/`), found by its path
/// only: a person's calendar is never adopted by name.
pub fn view_target(
    home: &str,
    calendars: &[Calendar],
    view: &View,
    configured_name: Option<&str>,
) -> CalendarTarget {
    let url = view.calendar_url(home);
    let displayname = Some(view.calendar_name(configured_name));
    match calendars.iter().find(|c| path(&c.url) == path(&url)) {
        Some(calendar) => CalendarTarget {
            url: calendar.url.clone(),
            displayname,
            state: CalendarState::Exists {
                displayname: calendar.displayname.clone(),
            },
        },
        None => CalendarTarget {
            url,
            displayname,
            state: CalendarState::Missing,
        },
    }
}

/// The operator's calendar of single-calendar mode: it exists and keeps its own name.
pub fn single_calendar_target(url: &str) -> CalendarTarget {
    CalendarTarget {
        url: caldav::with_slash(url.to_string()),
        displayname: None,
        state: CalendarState::Exists { displayname: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plane::Issue;

    fn project(id: &str, name: &str) -> Project {
        Project {
            id: id.into(),
            identifier: name.to_uppercase(),
            name: name.into(),
        }
    }

    const HOME: &str = "http://dav/alice/";
    /// Two projects and an issue.
    const A: &str = "8063616e-4508-4635-b20d-f71dd7c779d3";
    const B: &str = "11111111-2222-4333-8444-555555555555";
    const ISSUE: &str = "9d577c4e-d35e-4940-9f10-02bd22540b3b";

    fn calendar(url: &str, name: &str) -> Calendar {
        Calendar {
            url: url.into(),
            displayname: Some(name.into()),
            components: None,
            ctag: None,
            sync_token: None,
        }
    }

    fn issues(ids: &[&str]) -> ProjectIssues {
        ProjectIssues {
            listed: ids.len(),
            issues: ids
                .iter()
                .map(|id| Issue {
                    id: id.to_string(),
                    project_id: A.into(),
                    sequence_id: 1,
                    name: "n".into(),
                    description_html: String::new(),
                    priority: plane::Priority::None,
                    state: None,
                    labels: Vec::new(),
                    assignees: Vec::new(),
                    target_date: chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
                    start_date: None,
                    updated_at: None,
                })
                .collect(),
            ..ProjectIssues::default()
        }
    }

    fn urls(targets: &[CalendarTarget]) -> Vec<(&str, bool)> {
        targets
            .iter()
            .map(|t| (t.url.as_str(), t.state == CalendarState::Missing))
            .collect()
    }

    #[test]
    fn own_path_first_then_exact_name_then_a_new_calendar() {
        let (a, b) = (project(A, "Alpha"), project(B, "Beta"));
        let none = issues(&[]);
        let wanted = [
            Wanted {
                project: &a,
                issues: &none,
            },
            Wanted {
                project: &b,
                issues: &none,
            },
        ];
        // Alpha's own path wins over a calendar that merely carries its name.
        let calendars = [
            calendar("http://dav/alice/old/", "Plane: Alpha"),
            calendar(&format!("{HOME}plane-{A}/"), "Plane: Something else"),
        ];
        assert!(adoption_candidates(HOME, &calendars, &wanted[..1]).is_empty());
        let targets = place(HOME, &calendars, &wanted, &BTreeMap::new());
        let own_b = format!("{HOME}plane-{B}/");
        assert_eq!(
            urls(&targets),
            [(calendars[1].url.as_str(), false), (own_b.as_str(), true)]
        );
        // The existing calendar is renamed to the project's name.
        assert_eq!(targets[0].displayname.as_deref(), Some("Plane: Alpha"));

        // Without its own path, Alpha adopts the calendar named exactly for it (what the
        // Python CalPlaneBot created).
        let targets = place(HOME, &calendars[..1], &wanted[..1], &BTreeMap::new());
        assert_eq!(urls(&targets), [("http://dav/alice/old/", false)]);
    }

    #[test]
    fn a_calendar_named_for_another_project_is_never_adopted() {
        let a = project(A, "Alpha");
        let none = issues(&[]);
        let wanted = [Wanted {
            project: &a,
            issues: &none,
        }];
        let calendars = [calendar(&format!("{HOME}plane-{B}/"), "Plane: Alpha")];
        let targets = place(HOME, &calendars, &wanted, &BTreeMap::new());
        assert!(targets[0].state == CalendarState::Missing);
        assert!(adoption_candidates(HOME, &calendars, &wanted).is_empty());
    }

    #[test]
    fn a_renamed_projects_adopted_calendar_is_found_by_the_events_it_holds() {
        let a = project(A, "Alpha renamed");
        let listed = issues(&[ISSUE]);
        let wanted = [Wanted {
            project: &a,
            issues: &listed,
        }];
        let calendars = [
            calendar("http://dav/alice/other/", "Plane: Unrelated"),
            calendar("http://dav/alice/old/", "Plane: Alpha"),
            calendar("http://dav/alice/mine/", "Birthdays"),
        ];
        let candidates = adoption_candidates(HOME, &calendars, &wanted);
        assert_eq!(
            candidates,
            ["http://dav/alice/other/", "http://dav/alice/old/"],
            "only unclaimed `Plane: …` calendars are asked"
        );
        let mut held = BTreeMap::new();
        held.insert(candidates[0].clone(), HashSet::from(["x.ics".to_string()]));
        held.insert(
            candidates[1].clone(),
            HashSet::from([event::resource_name(ISSUE, None)]),
        );
        let targets = place(HOME, &calendars, &wanted, &held);
        assert_eq!(urls(&targets), [("http://dav/alice/old/", false)]);
        assert_eq!(
            targets[0].state,
            CalendarState::Exists {
                displayname: Some("Plane: Alpha".into())
            }
        );
        // Nothing known of the candidates: a new calendar.
        let targets = place(HOME, &calendars, &wanted, &BTreeMap::new());
        assert!(targets[0].state == CalendarState::Missing);
    }

    #[test]
    fn names_with_control_characters_are_spelled_as_a_server_stores_them() {
        let odd = project(A, "Ops\r\nTeam\tQ4\u{7}\u{1b}[31m\u{9b}x");
        assert_eq!(
            calendar_displayname(&odd),
            "Plane: Ops  Team Q4\u{fffd}\u{fffd}[31m\u{fffd}x"
        );
        assert_eq!(
            calendar_displayname(&project(A, "Café 🚀")),
            "Plane: Café 🚀"
        );
    }

    #[test]
    fn scopes_allow_deletions_only_after_a_complete_walk() {
        let a = project(A, "Alpha");
        let complete = issues(&[ISSUE]);
        assert_eq!(scope_of(&a, &complete).deletions, Ok(()));
        let mut unreadable = issues(&[]);
        unreadable.listed = 1;
        unreadable.unreadable.push((None, "no id".into()));
        assert!(scope_of(&a, &unreadable).deletions.is_err());
        let empty = ProjectIssues::default();
        assert!(scope_of(&a, &empty).listed_nothing);
    }

    #[test]
    fn a_persons_calendar_is_found_by_its_path_and_never_adopted_for_a_project() {
        use crate::reconcile::views::{View, ViewMember};
        let member = "5d2bb0f2-1c4e-4a7b-9f0e-3a1b2c3d4e5f";
        let view = View::new(vec![ViewMember {
            id: member.into(),
            display_name: "alice".into(),
            email: String::new(),
        }]);
        let own = format!("{HOME}plane-member-{member}/");
        assert!(is_member_calendar(&own));
        assert!(!is_member_calendar(&format!("{HOME}plane-{A}/")));
        assert_eq!(member_of_calendar(&own).as_deref(), Some(member));
        // A project named like the person does not take the person's calendar, even by its
        // exact name, nor as a renamed project's calendar.
        let calendars = [calendar(&own, "Plane: alice")];
        let alice = project(A, "alice");
        let fetched = issues(&[ISSUE]);
        let wanted = [Wanted {
            project: &alice,
            issues: &fetched,
        }];
        assert!(adoption_candidates(HOME, &calendars, &wanted).is_empty());
        let held = BTreeMap::from([(own.clone(), wanted[0].resource_names())]);
        let placed = place(HOME, &calendars, &wanted, &held);
        assert_eq!(
            urls(&placed),
            [(format!("{HOME}plane-{A}/").as_str(), true)],
            "a new calendar of its own"
        );
        // The view finds it by its path, keeps its name unless configured otherwise.
        let target = view_target(HOME, &calendars, &view, None);
        assert_eq!(target.url, own);
        assert_eq!(
            target.state,
            CalendarState::Exists {
                displayname: Some("Plane: alice".into())
            }
        );
        assert_eq!(target.displayname.as_deref(), Some("Plane: alice"));
        let renamed = view_target(HOME, &calendars, &view, Some("Mine"));
        assert_eq!(renamed.displayname.as_deref(), Some("Mine"));
        let missing = view_target(HOME, &[], &view, None);
        assert_eq!(missing.state, CalendarState::Missing);
        assert_eq!(missing.url, own);
    }
}
