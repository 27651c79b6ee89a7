//! Printing the plan and the run's outcome: text for people (`+`/`~`/`-` lines, a unified diff
//! of the managed fields for each update, one summary line) and JSON for machines.
//!
//! A dry run and a real run print the same plan; a real run adds what failed.

use serde::Serialize;
use similar::TextDiff;

use crate::event::ManagedFields;
use crate::plan::{CalendarChange, Change, Plan};

/// What applying the plan did to one action (in plan order: calendars, then changes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub url: String,
    pub action: String,
    pub error: String,
}

/// The outcome of a run, for the summary.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    pub unchanged: usize,
    pub calendars_created: usize,
    pub calendars_renamed: usize,
    /// Failures while applying, paired with their action.
    pub failures: Vec<Failure>,
    /// Failures before planning (a project that could not be fetched, a calendar that could
    /// not be listed), as messages.
    pub errors: Vec<String>,
    pub withheld: usize,
    /// Work items Plane listed (dated or not).
    pub issues_seen: usize,
    /// Calendar and event changes in the plan (what a dry run would do).
    pub planned: usize,
    pub plane_requests: u64,
    pub caldav_requests: u64,
    pub seconds: f64,
}

impl Report {
    pub fn failed(&self) -> usize {
        self.failures.len()
    }
}

fn date(fields: &ManagedFields) -> String {
    fields
        .dtstart
        .map(|d| d.to_string())
        .unwrap_or_else(|| "no date".into())
}

/// The plan as text, one line per action, with a field diff under each update.
pub fn plan_text(plan: &Plan) -> String {
    let mut out = String::new();
    for change in &plan.calendars {
        match change {
            CalendarChange::Create { url, displayname } => {
                out.push_str(&format!("+ calendar {displayname:?} ({url})\n"));
            }
            CalendarChange::Rename { url, from, to } => {
                out.push_str(&format!(
                    "~ calendar {:?} -> {to:?} ({url})\n",
                    from.as_deref().unwrap_or("")
                ));
            }
        }
    }
    for change in &plan.changes {
        match change {
            Change::Create {
                calendar, fields, ..
            } => out.push_str(&format!(
                "+ {calendar}: {} ({})\n",
                fields.summary,
                date(fields)
            )),
            Change::Update {
                calendar,
                before,
                after,
                ..
            } => {
                out.push_str(&format!(
                    "~ {calendar}: {} ({})\n",
                    after.summary,
                    date(after)
                ));
                out.push_str(&field_diff(before, after));
            }
            Change::Delete {
                calendar, before, ..
            } => out.push_str(&format!(
                "- {calendar}: {} ({})\n",
                before.summary,
                date(before)
            )),
        }
    }
    for withheld in &plan.withheld {
        out.push_str(&format!(
            "! {}: {} — {}\n",
            withheld.calendar, withheld.summary, withheld.reason
        ));
    }
    if let Some(reason) = &plan.refused {
        out.push_str(&format!(
            "! deletion guard: {reason}; check Plane, then re-run with --force-delete to apply the deletions\n"
        ));
    }
    out
}

/// A unified diff of the managed fields, indented under the `~` line.
pub fn field_diff(before: &ManagedFields, after: &ManagedFields) -> String {
    let old = before.lines().join("\n") + "\n";
    let new = after.lines().join("\n") + "\n";
    let diff = TextDiff::from_lines(&old, &new);
    let mut out = String::new();
    for line in diff
        .unified_diff()
        .context_radius(1)
        .header("calendar", "plane")
        .to_string()
        .lines()
    {
        out.push_str("    ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The one summary line.
pub fn summary_line(plan: &Plan, report: &Report) -> String {
    let mut line = if report.dry_run {
        format!(
            "dry run: {} to create, {} to update, {} to delete, {} unchanged",
            plan.creates(),
            plan.updates(),
            plan.deletes(),
            plan.unchanged
        )
    } else {
        format!(
            "{} created, {} updated, {} deleted, {} unchanged, {} failed",
            report.created,
            report.updated,
            report.deleted,
            report.unchanged,
            report.failed()
        )
    };
    let (to_create, to_rename) =
        plan.calendars
            .iter()
            .fold((0, 0), |(c, r), change| match change {
                CalendarChange::Create { .. } => (c + 1, r),
                CalendarChange::Rename { .. } => (c, r + 1),
            });
    let (created, renamed) = if report.dry_run {
        (to_create, to_rename)
    } else {
        (report.calendars_created, report.calendars_renamed)
    };
    let verb = |dry: &'static str, done: &'static str| if report.dry_run { dry } else { done };
    if created > 0 {
        line.push_str(&format!(
            ", {created} calendar{} {}",
            plural(created),
            verb("to create", "created")
        ));
    }
    if renamed > 0 {
        line.push_str(&format!(
            ", {renamed} calendar{} {}",
            plural(renamed),
            verb("to rename", "renamed")
        ));
    }
    let refused = plan
        .withheld
        .iter()
        .filter(|w| w.reason.starts_with("deletion refused"))
        .count();
    if refused > 0 {
        line.push_str(&format!(", {refused} deletions refused"));
    }
    if report.withheld > refused {
        line.push_str(&format!(", {} withheld", report.withheld - refused));
    }
    if !report.errors.is_empty() {
        line.push_str(&format!(", {} errors", report.errors.len()));
    }
    if report.dry_run {
        line.push_str(" (nothing written)");
    }
    line
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The plan and the report as one JSON document.
pub fn json(plan: &Plan, report: &Report) -> String {
    #[derive(Serialize)]
    struct Document<'a> {
        plan: &'a Plan,
        report: &'a Report,
    }
    serde_json::to_string_pretty(&Document { plan, report }).expect("plan serializes") + "\n"
}
