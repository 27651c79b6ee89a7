//! Deciding create / update / delete (pure, no I/O): desired events vs the events stored in
//! each calendar → a [`Plan`] value that `render` prints and `apply` carries out.
//!
//! The safety rules of design.md live here: only events calplanebot owns are ever changed
//! (our UID and resource name, and scope marks matching the run), and an event is deleted only
//! when its project's list walk was complete.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::mapping::event::{self, ManagedFields};
use crate::plane::Project;

/// Where a calendar job's events live.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CalendarTarget {
    pub url: String,
    /// The displayname calplanebot wants (`Plane: {project}`); `None` in single-calendar mode,
    /// where the operator's calendar keeps its own name.
    pub displayname: Option<String>,
    pub state: CalendarState,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CalendarState {
    /// The calendar exists with this displayname.
    Exists { displayname: Option<String> },
    /// The calendar does not exist yet: MKCALENDAR first.
    Missing,
}

/// A project whose events live in a calendar job, and whether its events may be deleted.
#[derive(Clone, Debug)]
pub struct ProjectScope {
    pub project: Project,
    /// `Err(reason)` when the project's list walk failed or was incomplete.
    pub deletions: Result<(), String>,
    /// Issues that Plane listed but calplanebot could not read: their events are kept.
    pub keep: HashSet<String>,
    /// Issues missing from the list whose absence Plane could not confirm (and why): their
    /// events are kept.
    pub unconfirmed: BTreeMap<String, String>,
    /// Plane listed no item at all for this project (dated or not): the signature of a broken
    /// or empty answer, which must never wipe a calendar.
    pub listed_nothing: bool,
}

/// One stored event that may be ours: its resource name or its UID has our form.
#[derive(Clone, Debug)]
pub struct ActualEvent {
    pub url: String,
    pub etag: Option<String>,
    pub data: String,
}

/// Everything the plan needs to know about one calendar.
#[derive(Clone, Debug)]
pub struct CalendarJob {
    pub target: CalendarTarget,
    /// The assignee view whose events this job owns (`X-CALPLANEBOT-VIEW`); `None` for the
    /// default view, whose events carry no view mark.
    pub view: Option<String>,
    pub scopes: Vec<ProjectScope>,
    /// The desired events of this calendar, keyed by issue id.
    pub desired: BTreeMap<String, ManagedFields>,
    /// Stored events that may be ours, keyed by issue id: the one at `plane-issue-{id}.ics`,
    /// or, when a client stored or moved it under another name, the one with our UID.
    pub actual: BTreeMap<String, ActualEvent>,
    /// Further events with the same issue id in this calendar (a copy under another name, on a
    /// server that allows one UID twice): deleted when they are ours.
    pub copies: Vec<(String, ActualEvent)>,
}

impl CalendarJob {
    /// The scope of project `project_id` in this calendar, if the project is part of it.
    pub fn scope_mut(&mut self, project_id: &str) -> Option<&mut ProjectScope> {
        self.scopes.iter_mut().find(|s| s.project.id == project_id)
    }
}

/// A change to one calendar collection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum CalendarChange {
    Create {
        url: String,
        displayname: String,
    },
    Rename {
        url: String,
        from: Option<String>,
        to: String,
    },
}

/// A change to one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Change {
    Create {
        calendar: String,
        url: String,
        fields: Box<ManagedFields>,
    },
    Update {
        calendar: String,
        url: String,
        etag: Option<String>,
        before: Box<ManagedFields>,
        after: Box<ManagedFields>,
        #[serde(skip)]
        existing: String,
    },
    Delete {
        calendar: String,
        url: String,
        etag: Option<String>,
        before: Box<ManagedFields>,
    },
}

impl Change {
    pub fn url(&self) -> &str {
        match self {
            Change::Create { url, .. }
            | Change::Update { url, .. }
            | Change::Delete { url, .. } => url,
        }
    }

    pub fn calendar(&self) -> &str {
        match self {
            Change::Create { calendar, .. }
            | Change::Update { calendar, .. }
            | Change::Delete { calendar, .. } => calendar,
        }
    }
}

/// Something the plan deliberately does not do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Withheld {
    pub calendar: String,
    pub url: String,
    pub summary: String,
    pub reason: WithheldReason,
}

/// Why a change is withheld.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WithheldReason {
    /// Our resource name holds an event calplanebot does not own (and why it is not ours).
    NameTaken(String),
    /// An event calplanebot does not own holds the issue's UID under another name (where, and
    /// why it is not ours): a create would only meet it.
    UidTaken { url: String, why: String },
    /// Not deleted: the project's list walk failed or was incomplete (and how).
    WalkIncomplete(String),
    /// Not deleted: Plane listed the issue, but calplanebot could not read it.
    IssueUnreadable,
    /// Not deleted: the project of the event is not part of this run.
    OutsideRun,
    /// Not deleted: Plane could not confirm that the issue is gone (and why).
    Unconfirmed(String),
    /// The deletion guard refused this run's deletions.
    Refused,
}

impl WithheldReason {
    /// True when this is a problem the operator must look at (the run then fails); false when
    /// it follows from a failure already reported (e.g. a failed Plane fetch) or from a rule.
    pub fn is_failure(&self) -> bool {
        match self {
            WithheldReason::NameTaken(_) | WithheldReason::UidTaken { .. } => true,
            WithheldReason::WalkIncomplete(_)
            | WithheldReason::IssueUnreadable
            | WithheldReason::OutsideRun
            | WithheldReason::Unconfirmed(_)
            | WithheldReason::Refused => false,
        }
    }

    /// A short stable name, for JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            WithheldReason::NameTaken(_) => "name_taken",
            WithheldReason::UidTaken { .. } => "uid_taken",
            WithheldReason::WalkIncomplete(_) => "walk_incomplete",
            WithheldReason::IssueUnreadable => "issue_unreadable",
            WithheldReason::OutsideRun => "outside_run",
            WithheldReason::Unconfirmed(_) => "unconfirmed",
            WithheldReason::Refused => "refused",
        }
    }
}

impl std::fmt::Display for WithheldReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WithheldReason::NameTaken(why) => write!(
                f,
                "its resource name is taken by an event calplanebot does not own ({why})"
            ),
            WithheldReason::UidTaken { url, why } => write!(
                f,
                "its UID is held at {url} by an event calplanebot does not own ({why}); remove or rename that event"
            ),
            WithheldReason::WalkIncomplete(why) => write!(f, "not deleted: {why}"),
            WithheldReason::IssueUnreadable => f.write_str(
                "not deleted: Plane listed this issue but calplanebot could not read it",
            ),
            WithheldReason::OutsideRun => {
                f.write_str("not deleted: its project is not part of this run")
            }
            WithheldReason::Unconfirmed(why) => {
                write!(
                    f,
                    "not deleted: Plane could not confirm that the issue is gone ({why})"
                )
            }
            WithheldReason::Refused => f.write_str(
                "deletion refused by the deletion guard (see below; --force-delete applies it)",
            ),
        }
    }
}

impl Serialize for Withheld {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut out = serializer.serialize_struct("Withheld", 6)?;
        out.serialize_field("calendar", &self.calendar)?;
        out.serialize_field("url", &self.url)?;
        out.serialize_field("summary", &self.summary)?;
        out.serialize_field("kind", self.reason.kind())?;
        out.serialize_field("reason", &self.reason.to_string())?;
        out.serialize_field("is_failure", &self.reason.is_failure())?;
        out.end()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub calendars: Vec<CalendarChange>,
    pub changes: Vec<Change>,
    pub withheld: Vec<Withheld>,
    pub unchanged: usize,
    /// Why the deletion guard refused this plan's deletions (they are in `withheld` then).
    pub refused: Option<String>,
    /// What each calendar job holds and loses (same order as the jobs), for the guard.
    #[serde(skip)]
    pub tallies: Vec<Tally>,
}

/// One calendar job's share of a plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Events calplanebot owns in the calendar.
    pub owned: usize,
    /// Deletions planned in it.
    pub deletes: usize,
    /// The projects those deletions belong to.
    pub deleted_projects: HashSet<String>,
}

impl Plan {
    pub fn count(&self, kind: fn(&Change) -> bool) -> usize {
        self.changes.iter().filter(|c| kind(c)).count()
    }

    pub fn creates(&self) -> usize {
        self.count(|c| matches!(c, Change::Create { .. }))
    }

    pub fn updates(&self) -> usize {
        self.count(|c| matches!(c, Change::Update { .. }))
    }

    pub fn deletes(&self) -> usize {
        self.count(|c| matches!(c, Change::Delete { .. }))
    }

    /// Deletions the guard refused.
    pub fn refused_deletions(&self) -> usize {
        self.withheld
            .iter()
            .filter(|w| w.reason == WithheldReason::Refused)
            .count()
    }
}

/// What a stored event at our resource name is, for this run.
#[derive(Debug)]
pub enum Stored<'a> {
    /// No event at that resource name.
    Nothing,
    /// Ours and in scope: our UID for that issue, our workspace, a project of this calendar.
    Owned {
        event: &'a ActualEvent,
        fields: Box<ManagedFields>,
        project_id: String,
    },
    /// Looks like ours by name but is not (another workspace or project, another UID, or not
    /// readable as iCalendar): never changed, never deleted.
    NotOurs { event: &'a ActualEvent, why: String },
}

/// What a calendar itself needs: to be created, or renamed to its project's name.
fn calendar_change(job: &CalendarJob) -> Option<CalendarChange> {
    match (&job.target.state, &job.target.displayname) {
        (CalendarState::Missing, Some(name)) => Some(CalendarChange::Create {
            url: job.target.url.clone(),
            displayname: name.clone(),
        }),
        (CalendarState::Exists { displayname }, Some(name))
            if displayname.as_ref() != Some(name) =>
        {
            Some(CalendarChange::Rename {
                url: job.target.url.clone(),
                from: displayname.clone(),
                to: name.clone(),
            })
        }
        _ => None,
    }
}

/// One issue's event, decided: where it is (or goes) and what Plane wants.
struct Decided<'a> {
    calendar: &'a str,
    url: String,
    desired: Option<&'a ManagedFields>,
}

impl Decided<'_> {
    /// Puts the decision into the plan: a change, an unchanged count, or a withheld line.
    fn push(self, decision: Decision, stored: Stored<'_>, plan: &mut Plan, tally: &mut Tally) {
        let Decided {
            calendar,
            url,
            desired,
        } = self;
        let calendar = calendar.to_string();
        match decision {
            Decision::Create => plan.changes.push(Change::Create {
                calendar,
                url,
                fields: Box::new(desired.expect("create has a desired event").clone()),
            }),
            Decision::Update => {
                let Stored::Owned { event, fields, .. } = &stored else {
                    unreachable!("update needs an owned event")
                };
                plan.changes.push(Change::Update {
                    calendar,
                    url,
                    etag: event.etag.clone(),
                    before: fields.clone(),
                    after: Box::new(desired.expect("update has a desired event").clone()),
                    existing: event.data.clone(),
                });
            }
            Decision::Delete => {
                let Stored::Owned {
                    event,
                    fields,
                    project_id,
                } = stored
                else {
                    unreachable!("delete needs an owned event")
                };
                tally.deletes += 1;
                tally.deleted_projects.insert(project_id);
                plan.changes.push(Change::Delete {
                    calendar,
                    url,
                    etag: event.etag.clone(),
                    before: fields,
                });
            }
            Decision::Unchanged => plan.unchanged += 1,
            Decision::Withhold(reason) => {
                let summary = desired
                    .map(|d| d.summary.clone())
                    .or_else(|| match &stored {
                        Stored::Owned { fields, .. } => Some(fields.summary.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                plan.withheld.push(Withheld {
                    calendar,
                    url,
                    summary,
                    reason,
                });
            }
            Decision::LeaveAlone => {}
        }
    }
}

/// The decision for one issue id.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Create,
    Update,
    Unchanged,
    Delete,
    /// Nothing is done; the reason is reported.
    Withhold(WithheldReason),
    /// Not ours and not wanted: nothing to do, nothing to report.
    LeaveAlone,
}

/// The one exhaustive decision (style rule 2): each arm reads as the spec.
pub fn decide(
    desired: Option<&ManagedFields>,
    stored: &Stored<'_>,
    deletions: &Result<(), WithheldReason>,
) -> Decision {
    match (desired, stored, deletions) {
        // A dated issue without an event: create it (PUT If-None-Match: *).
        (Some(_), Stored::Nothing, _) => Decision::Create,
        // Ours and every managed property already equal (parsed values, never raw bytes).
        (Some(want), Stored::Owned { fields, .. }, _) if want == fields.as_ref() => {
            Decision::Unchanged
        }
        // Ours but different: update in place (PUT If-Match), keeping what users added.
        (Some(_), Stored::Owned { .. }, _) => Decision::Update,
        // Our resource name is taken by something we do not own: touch nothing, say so.
        (Some(_), Stored::NotOurs { why, .. }, _) => {
            Decision::Withhold(WithheldReason::NameTaken(why.clone()))
        }
        // Ours, no longer wanted, and its absence is proven (a complete walk, confirmed by id):
        // delete it.
        (None, Stored::Owned { .. }, Ok(())) => Decision::Delete,
        // Ours and not in the desired set, but its absence is not proven (an incomplete walk,
        // an unreadable item, a project outside the run, no confirmation): keep it.
        (None, Stored::Owned { .. }, Err(reason)) => Decision::Withhold(reason.clone()),
        // Not ours and not wanted: leave it byte for byte alone.
        (None, Stored::NotOurs { .. }, _) => Decision::LeaveAlone,
        // Neither wanted nor stored: nothing at all (cannot arise from a job's keys).
        (None, Stored::Nothing, _) => Decision::LeaveAlone,
    }
}

/// Classifies a stored event at issue `issue_id`'s resource name for a job of `workspace`
/// and assignee view `view`: ours only with the view's UID for the issue and the view's mark
/// (none in the default view), our workspace, and a project of the job.
pub fn classify<'a>(
    issue_id: &str,
    event: &'a ActualEvent,
    workspace: &str,
    view: Option<&str>,
    scopes: &[ProjectScope],
) -> Stored<'a> {
    let not_ours = |why: String| Stored::NotOurs { event, why };
    let fields = match event::read_event(&event.data) {
        Ok(fields) => fields,
        Err(e) => return not_ours(format!("not readable: {e}")),
    };
    if fields.uid != event::uid_for(issue_id, view) {
        return not_ours(format!("its UID is {:?}", fields.uid));
    }
    if fields.view.as_deref() != view {
        return not_ours(match &fields.view {
            Some(other) => format!("it belongs to assignee view {other:?}"),
            None => "it has no assignee view mark".to_string(),
        });
    }
    if fields.workspace.as_deref() != Some(workspace) {
        return not_ours(format!(
            "it belongs to workspace {:?}",
            fields.workspace.as_deref().unwrap_or("(none)")
        ));
    }
    let project_id = fields.project.clone().unwrap_or_default();
    if !scopes.iter().any(|s| s.project.id == project_id) {
        return not_ours(format!(
            "it belongs to project {project_id:?}, outside this run"
        ));
    }
    Stored::Owned {
        event,
        fields: Box::new(fields),
        project_id,
    }
}

/// Builds the plan for every calendar job of the run.
pub fn plan_changes(jobs: &[CalendarJob], workspace: &str) -> Plan {
    let mut plan = Plan::default();
    for job in jobs {
        plan_calendar(job, workspace, &mut plan);
    }
    plan
}

/// The deletion guard's bounds (vdirsyncer's `--force-delete`, rsync's `--max-delete`).
#[derive(Clone, Copy, Debug)]
pub struct GuardLimits {
    /// Most deletions a run may make, in total and in one calendar.
    pub max_delete: usize,
    /// Largest share (percent) of a calendar's owned events, or of all owned events, that a run
    /// may delete — checked only above [`GUARD_FLOOR`] deletions, so a small calendar can still
    /// lose its few events the normal way.
    pub max_percent: u8,
    /// `--force-delete`: no guard.
    pub force: bool,
}

/// Deletions up to this many are never refused for their share alone.
pub const GUARD_FLOOR: usize = 3;

/// Whether `deletes` of `owned` things exceed the guard's bounds: more than `max_delete`, or
/// above [`GUARD_FLOOR`] a share above `max_percent`. Calendars and feeds are held to the same
/// rule.
pub fn too_many_deletions(limits: GuardLimits, deletes: usize, owned: usize) -> bool {
    deletes > limits.max_delete
        || (deletes > GUARD_FLOOR && deletes * 100 > usize::from(limits.max_percent) * owned)
}

/// Refuses all of a plan's deletions when they look like a broken source rather than work done
/// in Plane: more than `max_delete`, a share above `max_percent` (in one calendar or in total),
/// or any deletion in a project Plane listed nothing for. Refused deletions move to `withheld`;
/// creates and updates stay.
pub fn guard_deletions(plan: &mut Plan, jobs: &[CalendarJob], limits: GuardLimits) {
    if limits.force || plan.deletes() == 0 {
        return;
    }
    let too_many = |deletes: usize, owned: usize| too_many_deletions(limits, deletes, owned);
    let mut reasons = Vec::new();
    for (job, tally) in jobs.iter().zip(&plan.tallies) {
        let name = job.target.displayname.as_deref().unwrap_or(&job.target.url);
        if too_many(tally.deletes, tally.owned) {
            reasons.push(format!(
                "{name} would lose {} of its {} events",
                tally.deletes, tally.owned
            ));
        }
        for scope in job.scopes.iter().filter(|s| s.listed_nothing) {
            if tally.deleted_projects.contains(&scope.project.id) {
                reasons.push(format!(
                    "Plane listed no work items at all for project {}, yet its calendar holds events",
                    crate::plane::project_label(&scope.project)
                ));
            }
        }
    }
    let (deletes, owned) = (
        plan.deletes(),
        plan.tallies.iter().map(|t| t.owned).sum::<usize>(),
    );
    if reasons.is_empty() && too_many(deletes, owned) {
        reasons.push(format!("the run would delete {deletes} of {owned} events"));
    }
    if reasons.is_empty() {
        return;
    }
    let reason = format!(
        "{} (limits: --max-delete {}, --max-delete-percent {})",
        reasons.join("; "),
        limits.max_delete,
        limits.max_percent
    );
    let (refused, kept): (Vec<Change>, Vec<Change>) = std::mem::take(&mut plan.changes)
        .into_iter()
        .partition(|c| matches!(c, Change::Delete { .. }));
    plan.changes = kept;
    for change in refused {
        let Change::Delete {
            calendar,
            url,
            before,
            ..
        } = change
        else {
            unreachable!("partitioned on Delete")
        };
        plan.withheld.push(Withheld {
            calendar,
            url,
            summary: before.summary.clone(),
            reason: WithheldReason::Refused,
        });
    }
    plan.refused = Some(reason);
}

fn plan_calendar(job: &CalendarJob, workspace: &str, plan: &mut Plan) {
    let calendar = job
        .target
        .displayname
        .clone()
        .unwrap_or_else(|| job.target.url.clone());
    plan.calendars.extend(calendar_change(job));
    let scope_of: HashMap<&str, &ProjectScope> = job
        .scopes
        .iter()
        .map(|s| (s.project.id.as_str(), s))
        .collect();
    // May an owned event of this project, for this issue, be deleted?
    let deletions = |project_id: &str, id: &str| match scope_of.get(project_id) {
        Some(scope) if scope.keep.contains(id) => Err(WithheldReason::IssueUnreadable),
        Some(scope) if let Some(why) = scope.unconfirmed.get(id) => {
            Err(WithheldReason::Unconfirmed(why.clone()))
        }
        Some(scope) => scope
            .deletions
            .clone()
            .map_err(WithheldReason::WalkIncomplete),
        None => Err(WithheldReason::OutsideRun),
    };
    let ids: std::collections::BTreeSet<&String> =
        job.desired.keys().chain(job.actual.keys()).collect();
    let mut tally = Tally::default();
    for id in ids {
        let desired = job.desired.get(id);
        let stored = match job.actual.get(id) {
            Some(event) => classify(id, event, workspace, job.view.as_deref(), &job.scopes),
            None => Stored::Nothing,
        };
        let allowed = match &stored {
            Stored::Owned { project_id, .. } => {
                tally.owned += 1;
                deletions(project_id, id)
            }
            Stored::NotOurs { .. } | Stored::Nothing => Ok(()),
        };
        let name = event::resource_name(id, job.view.as_deref());
        let url = job
            .actual
            .get(id)
            .map_or_else(|| format!("{}{name}", job.target.url), |e| e.url.clone());
        let decision = match decide(desired, &stored, &allowed) {
            // Not at our name but under our UID: say where, a create would only meet it.
            Decision::Withhold(WithheldReason::NameTaken(why))
                if !url.ends_with(&format!("/{name}")) =>
            {
                Decision::Withhold(WithheldReason::UidTaken {
                    url: url.clone(),
                    why,
                })
            }
            decision => decision,
        };
        let change = Decided {
            calendar: &calendar,
            url,
            desired,
        };
        change.push(decision, stored, plan, &mut tally);
    }
    // A second copy of an event: one calendar shows it twice. Ours → it goes (under the same
    // rules as any deletion); anything else is left alone.
    for (id, copy) in &job.copies {
        if let Stored::Owned {
            fields, project_id, ..
        } = classify(id, copy, workspace, job.view.as_deref(), &job.scopes)
        {
            tally.owned += 1;
            if deletions(&project_id, id).is_ok() {
                tally.deletes += 1;
                tally.deleted_projects.insert(project_id);
                plan.changes.push(Change::Delete {
                    calendar: calendar.clone(),
                    url: copy.url.clone(),
                    etag: copy.etag.clone(),
                    before: fields,
                });
            }
        }
    }
    plan.tallies.push(tally);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone, Utc};

    const ISSUE: &str = "9d577c4e-d35e-4940-9f10-02bd22540b3b";
    const PROJECT: &str = "8063616e-4508-4635-b20d-f71dd7c779d3";

    fn fields(summary: &str) -> ManagedFields {
        ManagedFields {
            uid: event::uid_for(ISSUE, None),
            summary: summary.into(),
            description: "---\nPriority: None\nProject: P".into(),
            dtstart: NaiveDate::from_ymd_opt(2026, 12, 24),
            dtend: NaiveDate::from_ymd_opt(2026, 12, 25),
            status: Some("CONFIRMED".into()),
            color: None,
            categories: vec![],
            url: Some(format!("https://p/acme/projects/{PROJECT}/issues/{ISSUE}")),
            workspace: Some("acme".into()),
            project: Some(PROJECT.into()),
            view: None,
        }
    }

    fn stored(fields: &ManagedFields) -> ActualEvent {
        let dtstamp = Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 0).unwrap();
        ActualEvent {
            url: format!(
                "http://dav/alice/plane-{PROJECT}/{}",
                event::resource_name(ISSUE, None)
            ),
            etag: Some("\"e1\"".into()),
            data: event::render_new(fields, dtstamp),
        }
    }

    fn scope(deletions: Result<(), String>) -> ProjectScope {
        ProjectScope {
            project: Project {
                id: PROJECT.into(),
                identifier: "P".into(),
                name: "P".into(),
            },
            deletions,
            keep: HashSet::new(),
            unconfirmed: BTreeMap::new(),
            listed_nothing: false,
        }
    }

    #[test]
    fn every_arm_of_the_decision() {
        let want = fields("[1] a");
        let event = stored(&want);
        let owned = |f: ManagedFields| Stored::Owned {
            event: &event,
            fields: Box::new(f),
            project_id: PROJECT.into(),
        };
        let foreign = Stored::NotOurs {
            event: &event,
            why: "other".into(),
        };
        let ok = Ok(());
        let failed = Err(WithheldReason::WalkIncomplete("walk failed".to_string()));

        assert_eq!(decide(Some(&want), &Stored::Nothing, &ok), Decision::Create);
        assert_eq!(
            decide(Some(&want), &owned(want.clone()), &ok),
            Decision::Unchanged
        );
        assert_eq!(
            decide(Some(&want), &owned(fields("[1] old")), &ok),
            Decision::Update
        );
        assert!(matches!(
            decide(Some(&want), &foreign, &ok),
            Decision::Withhold(reason @ WithheldReason::NameTaken(_)) if reason.is_failure()
        ));
        assert_eq!(decide(None, &owned(want.clone()), &ok), Decision::Delete);
        assert!(matches!(
            decide(None, &owned(want.clone()), &failed),
            Decision::Withhold(reason) if !reason.is_failure() && reason.to_string().contains("walk failed")
        ));
        assert_eq!(decide(None, &foreign, &ok), Decision::LeaveAlone);
        assert_eq!(decide(None, &Stored::Nothing, &ok), Decision::LeaveAlone);
    }

    #[test]
    fn ownership_needs_our_uid_workspace_and_a_project_of_the_run() {
        let scopes = [scope(Ok(()))];
        let mine = stored(&fields("a"));
        assert!(matches!(
            classify(ISSUE, &mine, "acme", None, &scopes),
            Stored::Owned { .. }
        ));

        let mut other_ws = fields("a");
        other_ws.workspace = Some("other".into());
        let e = stored(&other_ws);
        assert!(matches!(
            classify(ISSUE, &e, "acme", None, &scopes),
            Stored::NotOurs { .. }
        ));

        let mut other_project = fields("a");
        other_project.project = Some("11111111-1111-1111-1111-111111111111".into());
        let e = stored(&other_project);
        assert!(matches!(
            classify(ISSUE, &e, "acme", None, &scopes),
            Stored::NotOurs { .. }
        ));

        let mut other_uid = fields("a");
        other_uid.uid = "someone-else@example.com".into();
        let e = stored(&other_uid);
        assert!(matches!(
            classify(ISSUE, &e, "acme", None, &scopes),
            Stored::NotOurs { .. }
        ));

        let garbage = ActualEvent {
            url: "u".into(),
            etag: None,
            data: "not a calendar".into(),
        };
        assert!(matches!(
            classify(ISSUE, &garbage, "acme", None, &scopes),
            Stored::NotOurs { .. }
        ));
    }

    #[test]
    fn a_view_owns_only_its_own_events_and_the_default_view_none_of_a_views() {
        let scopes = [scope(Ok(()))];
        let alice = event::view_id(&["5d2bb0f2-1c4e-4a7b-9f0e-3a1b2c3d4e5f"]);
        let bob = event::view_id(&["6e3cc1a3-2d5f-4b8c-a01f-4b2c3d4e5f60"]);
        let in_view = |view: Option<&str>| stored(&event::in_view(fields("a"), ISSUE, view));
        let (team, mine, other) = (in_view(None), in_view(Some(&alice)), in_view(Some(&bob)));
        let owned = |e: &ActualEvent, view: Option<&str>| {
            matches!(
                classify(ISSUE, e, "acme", view, &scopes),
                Stored::Owned { .. }
            )
        };
        assert!(owned(&mine, Some(&alice)));
        assert!(owned(&team, None));
        assert!(
            !owned(&mine, None),
            "the team's run never owns a view's event"
        );
        assert!(
            !owned(&team, Some(&alice)),
            "a view never owns the team's event"
        );
        assert!(!owned(&other, Some(&alice)), "nor another view's");
        // The right UID with another view's mark (or none) is not ours either.
        let mut forged = event::in_view(fields("a"), ISSUE, Some(&alice));
        forged.view = Some(bob.clone());
        assert!(!owned(&stored(&forged), Some(&alice)));
        forged.view = None;
        assert!(!owned(&stored(&forged), Some(&alice)));
    }

    fn job(
        desired: Option<ManagedFields>,
        actual: Option<ManagedFields>,
        scope: ProjectScope,
    ) -> CalendarJob {
        CalendarJob {
            view: None,
            target: CalendarTarget {
                url: format!("http://dav/alice/plane-{PROJECT}/"),
                displayname: Some("Plane: P".into()),
                state: CalendarState::Exists {
                    displayname: Some("Plane: P".into()),
                },
            },
            scopes: vec![scope],
            desired: desired
                .map(|d| (ISSUE.to_string(), d))
                .into_iter()
                .collect(),
            actual: actual
                .map(|a| (ISSUE.to_string(), stored(&a)))
                .into_iter()
                .collect(),
            copies: Vec::new(),
        }
    }

    #[test]
    fn plan_has_update_with_before_after_and_the_stored_etag() {
        let plan = plan_changes(
            &[job(Some(fields("new")), Some(fields("old")), scope(Ok(())))],
            "acme",
        );
        assert_eq!(plan.updates(), 1);
        let Change::Update {
            before,
            after,
            etag,
            ..
        } = &plan.changes[0]
        else {
            panic!("{plan:?}")
        };
        assert_eq!(
            (before.summary.as_str(), after.summary.as_str()),
            ("old", "new")
        );
        assert_eq!(etag.as_deref(), Some("\"e1\""));
    }

    #[test]
    fn unreadable_issues_and_failed_walks_keep_their_events() {
        let mut keep = scope(Ok(()));
        keep.keep.insert(ISSUE.to_string());
        let plan = plan_changes(&[job(None, Some(fields("a")), keep)], "acme");
        assert_eq!(plan.deletes(), 0);
        assert_eq!(plan.withheld.len(), 1);
        assert_eq!(plan.withheld[0].reason, WithheldReason::IssueUnreadable);
        assert!(!plan.withheld[0].reason.is_failure());

        let plan = plan_changes(
            &[job(None, Some(fields("a")), scope(Err("500".into())))],
            "acme",
        );
        assert_eq!((plan.deletes(), plan.withheld.len()), (0, 1));

        let plan = plan_changes(&[job(None, Some(fields("a")), scope(Ok(())))], "acme");
        assert_eq!(plan.deletes(), 1);
    }

    /// Issue 12, point 3: a second copy of our event under another name (on a server that
    /// allows one UID twice in a calendar) is ours and goes; a foreign copy stays.
    #[test]
    fn a_second_copy_of_our_event_is_deleted_and_a_foreign_one_left_alone() {
        let mut with_copies = job(Some(fields("a")), Some(fields("a")), scope(Ok(())));
        let mut copy = stored(&fields("a"));
        copy.url = format!("http://dav/alice/plane-{PROJECT}/copy.ics");
        let mut foreign = stored(&fields("a"));
        foreign.url = format!("http://dav/alice/plane-{PROJECT}/theirs.ics");
        foreign.data = foreign.data.replace(
            "X-CALPLANEBOT-WORKSPACE:acme",
            "X-CALPLANEBOT-WORKSPACE:other",
        );
        with_copies.copies = vec![(ISSUE.to_string(), copy), (ISSUE.to_string(), foreign)];
        let plan = plan_changes(std::slice::from_ref(&with_copies), "acme");
        assert_eq!(
            (plan.unchanged, plan.deletes(), plan.changes.len()),
            (1, 1, 1)
        );
        assert!(plan.changes[0].url().ends_with("/copy.ics"), "{plan:?}");
        assert_eq!(plan.tallies[0].owned, 2);
        // A walk that failed deletes no copy either.
        with_copies.scopes[0].deletions = Err("500".into());
        let plan = plan_changes(&[with_copies], "acme");
        assert_eq!(plan.deletes(), 0);
    }

    /// Issue 12, point 1: a deletion Plane could not confirm is withheld, not applied.
    #[test]
    fn an_unconfirmed_absence_keeps_its_event() {
        let mut unsure = scope(Ok(()));
        unsure
            .unconfirmed
            .insert(ISSUE.to_string(), "Plane answered 502".into());
        let plan = plan_changes(&[job(None, Some(fields("a")), unsure)], "acme");
        assert_eq!(plan.deletes(), 0);
        assert!(
            matches!(&plan.withheld[..], [w] if w.reason == WithheldReason::Unconfirmed("Plane answered 502".into()))
        );
    }

    #[test]
    fn missing_calendars_are_created_and_renamed_projects_renamed() {
        let mut missing = job(Some(fields("a")), None, scope(Ok(())));
        missing.target.state = CalendarState::Missing;
        let plan = plan_changes(&[missing], "acme");
        assert!(
            matches!(&plan.calendars[..], [CalendarChange::Create { displayname, .. }] if displayname == "Plane: P")
        );
        assert_eq!(plan.creates(), 1);

        let mut renamed = job(Some(fields("a")), Some(fields("a")), scope(Ok(())));
        renamed.target.state = CalendarState::Exists {
            displayname: Some("Plane: Old".into()),
        };
        let plan = plan_changes(&[renamed], "acme");
        assert!(
            matches!(&plan.calendars[..], [CalendarChange::Rename { to, .. }] if to == "Plane: P")
        );
        assert_eq!((plan.unchanged, plan.changes.len()), (1, 0));
    }

    /// A job with `owned` stored events of which the first `gone` are no longer desired.
    fn shrinking_job(owned: usize, gone: usize, listed_nothing: bool) -> CalendarJob {
        let mut job = job(None, None, scope(Ok(())));
        job.scopes[0].listed_nothing = listed_nothing;
        for n in 0..owned {
            let id = format!("9d577c4e-d35e-4940-9f10-{n:012}");
            let mut f = fields("x");
            f.uid = event::uid_for(&id, None);
            let mut stored = stored(&f);
            stored.data = event::render_new(&f, Utc::now());
            job.actual.insert(id.clone(), stored);
            if n >= gone {
                job.desired.insert(id, f);
            }
        }
        job
    }

    fn limits(max_delete: usize, max_percent: u8, force: bool) -> GuardLimits {
        GuardLimits {
            max_delete,
            max_percent,
            force,
        }
    }

    #[test]
    fn the_guard_refuses_mass_deletions_and_keeps_creates_and_updates() {
        let jobs = [shrinking_job(40, 30, false)];
        let mut plan = plan_changes(&jobs, "acme");
        assert_eq!((plan.deletes(), plan.tallies[0].owned), (30, 40));
        guard_deletions(&mut plan, &jobs, limits(100, 50, false));
        assert_eq!(plan.deletes(), 0);
        assert_eq!(plan.withheld.len(), 30);
        assert!(
            plan.refused
                .as_deref()
                .unwrap()
                .contains("would lose 30 of its 40 events")
        );

        let mut plan = plan_changes(&jobs, "acme");
        guard_deletions(&mut plan, &jobs, limits(100, 50, true));
        assert_eq!((plan.deletes(), plan.refused.as_deref()), (30, None));

        let mut plan = plan_changes(&jobs, "acme");
        guard_deletions(&mut plan, &jobs, limits(100, 80, false));
        assert_eq!(plan.deletes(), 30, "75% is within 80%");
        let mut plan = plan_changes(&jobs, "acme");
        guard_deletions(&mut plan, &jobs, limits(29, 80, false));
        assert_eq!(plan.deletes(), 0, "30 is more than 29");
    }

    #[test]
    fn small_calendars_may_lose_a_few_events_but_never_to_an_empty_answer() {
        let jobs = [shrinking_job(3, 3, false)];
        let mut plan = plan_changes(&jobs, "acme");
        guard_deletions(&mut plan, &jobs, limits(20, 50, false));
        assert_eq!(plan.deletes(), 3, "3 deletions are at the floor");

        let jobs = [shrinking_job(2, 2, true)];
        let mut plan = plan_changes(&jobs, "acme");
        guard_deletions(&mut plan, &jobs, limits(20, 50, false));
        assert_eq!(plan.deletes(), 0);
        assert!(
            plan.refused
                .as_deref()
                .unwrap()
                .contains("listed no work items")
        );
    }
}
