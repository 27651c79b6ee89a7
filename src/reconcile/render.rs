//! Printing the plan and the run's outcome: text for people (`+`/`~`/`-` lines, a unified diff
//! of the managed fields for each update, one summary line) and JSON for machines.
//!
//! A dry run and a real run print the same plan; a real run adds what failed.
//!
//! Every text that comes from Plane or a CalDAV server (names, summaries, descriptions, server
//! messages) goes through [`escape_controls`] before it reaches a terminal: a project named
//! with an escape sequence must not recolour, move or clear an operator's terminal, nor forge
//! a line of the plan.

use serde::Serialize;
use similar::TextDiff;

use crate::mapping::event::ManagedFields;
use crate::reconcile::plan::{CalendarChange, Change, Plan};

/// An action of the plan that failed when it was applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub url: String,
    pub action: Action,
    pub error: String,
}

/// The kinds of action a plan carries out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    CreateCalendar,
    RenameCalendar,
    Create,
    Update,
    Delete,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::CreateCalendar => "create calendar",
            Action::RenameCalendar => "rename calendar",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

pub use crate::support::text::escape_controls;

/// What a write left on the server, for the listing snapshot (`snapshot`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    /// `url` holds `data` under this ETag (`None`: the server sent none).
    Stored {
        url: String,
        etag: Option<String>,
        data: String,
    },
    Deleted {
        url: String,
    },
    /// The write went another way than planned (a 412 and a re-read, an event found under
    /// another name, a failure): what the calendar holds is not known without reading it.
    Unknown {
        url: String,
    },
}

impl Written {
    pub fn url(&self) -> &str {
        match self {
            Written::Stored { url, .. } | Written::Deleted { url } | Written::Unknown { url } => {
                url
            }
        }
    }
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
    /// The CalDAV summary line (also for the log: see `sync::log_done`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The feeds' summary line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feeds_summary: Option<String>,
    /// The CalDAV plan, for `--format json` (printed once at the end of the run, with the
    /// report of both targets).
    #[serde(skip)]
    pub plan: Option<serde_json::Value>,
    /// Feed files (re)written, removed as stale, and left as they were.
    pub feeds_written: usize,
    pub feeds_removed: usize,
    pub feeds_unchanged: usize,
    /// What each event write left on the server, in plan order (for the listing snapshot).
    #[serde(skip)]
    pub writes: Vec<Written>,
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
    let e = escape_controls;
    let mut out = String::new();
    for change in &plan.calendars {
        match change {
            CalendarChange::Create { url, displayname } => {
                out.push_str(&format!("+ calendar \"{}\" ({})\n", e(displayname), e(url)));
            }
            CalendarChange::Rename { url, from, to } => {
                out.push_str(&format!(
                    "~ calendar \"{}\" -> \"{}\" ({})\n",
                    e(from.as_deref().unwrap_or("")),
                    e(to),
                    e(url)
                ));
            }
        }
    }
    for change in &plan.changes {
        let (sign, fields) = match change {
            Change::Create { fields, .. } => ('+', fields),
            Change::Update { after, .. } => ('~', after),
            Change::Delete { before, .. } => ('-', before),
        };
        out.push_str(&format!(
            "{sign} {}: {} ({})\n",
            e(change.calendar()),
            e(&fields.summary),
            date(fields)
        ));
        if let Change::Update { before, after, .. } = change {
            out.push_str(&field_diff(before, after));
        }
    }
    for withheld in &plan.withheld {
        out.push_str(&format!(
            "! {}: {} — {}\n",
            e(&withheld.calendar),
            e(&withheld.summary),
            e(&withheld.reason.to_string())
        ));
    }
    if let Some(reason) = &plan.refused {
        out.push_str(&format!(
            "! deletion guard: {}; check Plane, then re-run with --force-delete to apply the deletions\n",
            e(reason)
        ));
    }
    out
}

/// A unified diff of two iCalendar texts, unfolded, indented under the `~` line.
pub fn text_diff(before: &str, after: &str) -> String {
    let unfold = |text: &str| text.replace("\r\n ", "").replace("\r\n", "\n");
    indented_diff(&unfold(before), &unfold(after), "feed")
}

/// A unified diff (one line of context) of `old` against Plane's `new`, each line indented and
/// escaped.
fn indented_diff(old: &str, new: &str, old_name: &str) -> String {
    let diff = TextDiff::from_lines(old, new);
    let mut out = String::new();
    for line in diff
        .unified_diff()
        .context_radius(1)
        .header(old_name, "plane")
        .to_string()
        .lines()
    {
        out.push_str("    ");
        out.push_str(&escape_controls(line));
        out.push('\n');
    }
    out
}

/// A unified diff of the managed fields, indented under the `~` line.
pub fn field_diff(before: &ManagedFields, after: &ManagedFields) -> String {
    let old = before.lines().join("\n") + "\n";
    let new = after.lines().join("\n") + "\n";
    indented_diff(&old, &new, "calendar")
}

/// The one summary line.
pub fn summary_line(plan: &Plan, report: &Report) -> String {
    let mut line = if report.dry_run {
        format!(
            "dry run: would create {}, update {}, delete {}; {} unchanged",
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
    let count = |n: usize, dry: &str, done: &str| {
        if report.dry_run {
            format!(", {dry} {n} calendar{}", plural(n))
        } else {
            format!(", {n} calendar{} {done}", plural(n))
        }
    };
    if created > 0 {
        line.push_str(&count(created, "would create", "created"));
    }
    if renamed > 0 {
        line.push_str(&count(renamed, "would rename", "renamed"));
    }
    let refused = plan.refused_deletions();
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

/// True when stdout and stderr are one open file (the same journal stream, terminal, file or
/// pipe): a line printed on stdout is then already where the log goes.
pub fn stdout_is_stderr() -> bool {
    use std::os::fd::AsFd as _;
    use std::os::unix::fs::MetadataExt as _;
    let identity = |fd: std::os::fd::BorrowedFd<'_>| {
        let file = std::fs::File::from(fd.try_clone_to_owned().ok()?);
        let meta = file.metadata().ok()?;
        Some((meta.dev(), meta.ino()))
    };
    let out = identity(std::io::stdout().as_fd());
    out.is_some() && out == identity(std::io::stderr().as_fd())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The plan and the report as one JSON document.
pub fn json(report: &Report) -> String {
    #[derive(Serialize)]
    struct Document<'a> {
        /// The CalDAV plan (`null` without a CalDAV target, or when the run stopped before it).
        plan: &'a Option<serde_json::Value>,
        report: &'a Report,
    }
    let document = Document {
        plan: &report.plan,
        report,
    };
    serde_json::to_string_pretty(&document).expect("the report serializes") + "\n"
}
