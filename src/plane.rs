//! The Plane side: the only place that talks to Plane's REST API (v1).
//!
//! Domain types first ([`Project`], [`Issue`], [`Member`]): what the rest of calplanebot knows
//! of Plane.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// A Plane project the token can read and that is not archived.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    /// UUID.
    pub id: String,
    /// Short key such as `ALPHA` (editable in Plane, so never part of an identity).
    pub identifier: String,
    pub name: String,
}

/// Plane's priority of an issue; `None` is Plane's own "none" value (the default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Urgent,
    High,
    Medium,
    Low,
    None,
}

/// The group of an issue's state (`StateGroup` in Plane).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StateGroup {
    Backlog,
    Unstarted,
    Started,
    Completed,
    Cancelled,
    Triage,
}

/// The state of an issue (from `expand=state`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub name: String,
    pub group: StateGroup,
}

/// One dated Plane issue (work item), already validated. Undated issues never become an `Issue`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    /// UUID: the stable identity of the issue and of its event.
    pub id: String,
    pub project_id: String,
    pub sequence_id: i64,
    pub name: String,
    /// Plane's rich text as HTML (`<p></p>` when empty).
    pub description_html: String,
    pub priority: Priority,
    /// `None` when the issue has no state (Plane allows it).
    pub state: Option<State>,
    /// Label names, in the order Plane sent them.
    pub labels: Vec<String>,
    /// The assignees, in the order Plane sent them (expanded: newest user first, which is not
    /// the order they were assigned in).
    pub assignees: Vec<Assignee>,
    pub target_date: NaiveDate,
    /// When work on the issue starts; `None` when Plane has none (or not a readable date: the
    /// start is optional, so a bad one only loses the span, never the event).
    pub start_date: Option<NaiveDate>,
    /// When Plane last saved the issue; `None` when the answer has none. Not a change marker:
    /// timeline drags and the daily automations change issues without touching it
    /// (plane-api.md §7).
    pub updated_at: Option<DateTime<Utc>>,
}

/// One assignee of an issue: an expanded UserLite, reduced to what calplanebot uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignee {
    /// The user's UUID: the same id as in the members lists, `users/me/` and webhook payloads.
    pub id: String,
    /// `display_name`, or `"first last"` when that is empty.
    pub name: String,
}

/// A member of the workspace (`GET workspaces/{slug}/members/`) or of a project
/// (`…/projects/{id}/members/`, which carries no role).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Member {
    /// UUID, as in an issue's assignees.
    pub id: String,
    /// Plane's handle (e.g. `labadmin`); may be empty.
    pub display_name: String,
    pub email: String,
    /// `"first last"`, trimmed; empty when Plane has neither.
    pub name: String,
    /// The workspace role: 20 Admin, 15 Member, 5 Guest (`ROLE_CHOICES` in Plane); `None` in
    /// the project members list, which has no role.
    pub role: Option<u8>,
}

impl Member {
    /// How Plane shows the person: `display_name`, or `"first last"` when that is empty — the
    /// same rule as [`Assignee::name`], so a person is named alike from either list.
    pub fn label(&self) -> &str {
        if self.display_name.is_empty() {
            &self.name
        } else {
            &self.display_name
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing (pure): Plane's JSON → domain types. Tested with captured answers.
// ---------------------------------------------------------------------------------------------

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use ureq::http;

use crate::config::{Network, Secret};
use crate::support::http::{Breaker, Counter, Reply, Retry};

/// The fields a sync needs (and `updated_at`, for the subscription feeds). Trimming with
/// `fields` matters: the default output carries `description_binary` (plane-api.md §4). A field
/// must be kept for `expand` to act on it.
pub const ISSUE_FIELDS: &str = concat!(
    "id,name,sequence_id,project,state,labels,assignees,priority,start_date,target_date,",
    "updated_at,",
    "description_html"
);
pub const ISSUE_EXPAND: &str = "state,labels,assignees";
/// The cheap question a run asks a project first (issue 23): every work item's change time,
/// dates and state, without `expand` (about a fifth of the server time of a full read,
/// `fixtures/plane/README.md`). The dates and the state are asked too because Plane changes
/// them without moving `updated_at`: timeline drags and the daily auto-close use
/// `bulk_update` (plane-api.md §7).
pub const PROBE_FIELDS: &str = "id,updated_at,start_date,target_date,state";
/// A single work item also brings its project (ProjectLite: id, identifier, name), so a
/// webhook run needs one request for both (plane-api.md §4).
pub const ONE_ISSUE_EXPAND: &str = "state,project,labels,assignees";
/// The page size asked for first, explicitly: CE's default and maximum (plane-api.md §3), so a
/// project of up to 1000 work items costs one request.
pub const PER_PAGE: u32 = 1000;
/// The page size after a server refused [`PER_PAGE`] with a 400 naming `per_page`: what Plane's
/// OpenAPI text and SDK allow. Plane Cloud's cap is unverified (plane-api.md §3).
pub const FALLBACK_PER_PAGE: u32 = 100;
/// Largest answer body accepted from Plane (a page of 1000 issues with long descriptions).
const MAX_BODY: u64 = 64 * 1024 * 1024;

/// Plane's `detail` when a 400 answer refuses the page size, i.e. its body names `per_page`
/// (CE: `{"detail":"Invalid per_page value. Cannot exceed 1000."}`, plane-api.md §3); `None`
/// for any other body, which stays the error it is. The detail is cut to 200 characters, with
/// control characters dropped: it goes into a log line.
pub fn page_size_refusal(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    if !text.contains("per_page") {
        return None;
    }
    let detail = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("detail").and_then(Value::as_str).map(str::to_string))
        .filter(|d| d.contains("per_page"))
        .unwrap_or_else(|| text.trim().to_string());
    Some(
        detail
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect(),
    )
}

/// One page of a paginated list (plane-api.md §3).
#[derive(Debug)]
pub struct Page {
    pub results: Vec<Value>,
    /// The cursor of the next page, present only while `next_page_results` is true
    /// (`next_cursor` itself is always a string, even on the last page).
    pub next_cursor: Option<String>,
}

pub fn parse_page(body: &[u8]) -> Result<Page, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let object = value
        .as_object()
        .ok_or("not a paginated envelope (expected a JSON object)")?;
    let results = match object.get("results") {
        Some(Value::Array(items)) => items.clone(),
        _ => return Err("paginated envelope without a \"results\" list".into()),
    };
    let more = match object.get("next_page_results") {
        Some(Value::Bool(more)) => *more,
        _ => return Err("paginated envelope without a boolean \"next_page_results\"".into()),
    };
    let next_cursor = if more {
        match object.get("next_cursor") {
            Some(Value::String(cursor)) if !cursor.is_empty() => Some(cursor.clone()),
            _ => return Err("\"next_page_results\" is true but \"next_cursor\" is missing".into()),
        }
    } else {
        None
    };
    Ok(Page {
        results,
        next_cursor,
    })
}

/// The user an API key belongs to (`GET users/me/`, a UserLite): who `check` says the key is,
/// and whose id an issue's assignees are matched against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// UUID, as in an issue's assignees and the members lists.
    pub id: String,
    pub display_name: String,
    pub email: String,
}

pub fn parse_user(body: &[u8]) -> Result<User, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let Some(id) = value
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| is_uuid(id))
    else {
        return Err("not a user object (no UUID \"id\")".into());
    };
    let text = |key: &str| string_field(&value, key);
    Ok(User {
        id: id.to_string(),
        display_name: text("display_name"),
        email: text("email"),
    })
}

/// Reads a members list: Plane answers both members routes with a **bare JSON array** of
/// UserLite objects, not the paginated envelope (plane-api.md §2; captures `60`, `61`). Keys
/// beyond UserLite and `role` are ignored; absent or null texts read as empty.
///
/// The list is all or nothing: an entry without a UUID id, or with a value of the wrong type,
/// makes the whole answer an error naming the entry, instead of a list with someone missing.
/// A caller deciding from it which feeds should exist must never take a member it could not
/// read for one who left. The same id listed twice is kept once (the first).
pub fn parse_members(body: &[u8]) -> Result<Vec<Member>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Array(entries) = value else {
        return Err(format!(
            "not a members list (expected a JSON array, got {})",
            kind(&value)
        ));
    };
    let mut members: Vec<Member> = Vec::with_capacity(entries.len());
    let mut seen = std::collections::HashSet::new();
    for (index, entry) in entries.iter().enumerate() {
        let member =
            read_member(entry).map_err(|reason| format!("member #{}: {reason}", index + 1))?;
        if seen.insert(member.id.clone()) {
            members.push(member);
        }
    }
    Ok(members)
}

fn read_member(entry: &Value) -> Result<Member, String> {
    let object = entry
        .as_object()
        .ok_or_else(|| format!("{} instead of a user object", kind(entry)))?;
    let text = |key: &str| -> Result<String, String> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(format!("\"{key}\" is not a string: {}", kind(other))),
        }
    };
    let id = text("id")?;
    if !is_uuid(&id) {
        return Err("its id is missing or not a UUID".into());
    }
    let role = match object.get("role") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_u64()
                .and_then(|r| u8::try_from(r).ok())
                .ok_or_else(|| format!("\"role\" {n} is not a role number"))?,
        ),
        Some(other) => return Err(format!("\"role\" is not a number: {}", kind(other))),
    };
    let name = format!("{} {}", text("first_name")?, text("last_name")?)
        .trim()
        .to_string();
    Ok(Member {
        id,
        display_name: text("display_name")?,
        email: text("email")?,
        name,
        role,
    })
}

/// A string member of a JSON object, empty when absent or not a string.
fn string_field(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

pub use crate::support::text::is_uuid;

/// What one project entry of the projects list means for the sync.
#[derive(Debug, PartialEq, Eq)]
pub enum ProjectEntry {
    Syncable(Project),
    /// Listed but not synced (not a member, archived, unreadable entry); the reason is logged.
    Skipped {
        name: String,
        reason: String,
    },
}

pub fn project_from_json(value: &Value) -> ProjectEntry {
    let name = value
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)")
        .to_string();
    let skipped = |reason: &str| ProjectEntry::Skipped {
        name: name.clone(),
        reason: reason.to_string(),
    };
    let Some(id) = value
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| is_uuid(id))
    else {
        return skipped("its id is missing or not a UUID");
    };
    if value.get("is_member").and_then(Value::as_bool) == Some(false) {
        return skipped("the token's user is not a member (a public project)");
    }
    if !value.get("archived_at").is_none_or(Value::is_null) {
        return skipped("archived");
    }
    let identifier = string_field(value, "identifier");
    ProjectEntry::Syncable(Project {
        id: id.to_string(),
        identifier,
        name,
    })
}

/// What one work item of a list or detail answer means for the sync.
#[derive(Debug, PartialEq, Eq)]
pub enum IssueItem {
    Dated(Issue),
    Undated {
        id: String,
    },
    /// Could not be read: its event (if any) must be kept, never deleted.
    Invalid {
        id: Option<String>,
        reason: String,
    },
}

/// Reads one work item fetched with [`ISSUE_EXPAND`]. `project_id` is the project it was listed
/// under; an item that claims another project is invalid.
/// What a probe compares of one work item (list or detail, expanded or not): its id, and its
/// `updated_at`, `start_date`, `target_date` and state id as Plane sent them. `None` without a
/// work item id.
pub fn fingerprint(item: &Value) -> Option<(String, String)> {
    let id = item.get("id")?.as_str().filter(|id| is_uuid(id))?;
    let field = |key: &str| item.get(key).cloned().unwrap_or(Value::Null);
    let state = match item.get("state") {
        Some(Value::Object(state)) => state.get("id").cloned().unwrap_or(Value::Null),
        Some(other) => other.clone(),
        None => Value::Null,
    };
    let print = Value::Array(vec![
        field("updated_at"),
        field("start_date"),
        field("target_date"),
        state,
    ]);
    Some((id.to_string(), print.to_string()))
}

pub fn issue_from_json(value: &Value, project_id: &str) -> IssueItem {
    let id = value
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| is_uuid(id))
        .map(str::to_string);
    match read_issue(value, project_id) {
        Ok(Some(issue)) => IssueItem::Dated(issue),
        Ok(None) => match id {
            Some(id) => IssueItem::Undated { id },
            None => IssueItem::Invalid {
                id: None,
                reason: "its id is missing or not a UUID".into(),
            },
        },
        Err(reason) => IssueItem::Invalid { id, reason },
    }
}

fn read_issue(value: &Value, project_id: &str) -> Result<Option<Issue>, String> {
    let object = value.as_object().ok_or("not a JSON object")?;
    let text = |key: &str| -> Result<Option<&str>, String> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(format!("\"{key}\" is not a string: {}", kind(other))),
        }
    };
    let id = text("id")?
        .filter(|id| is_uuid(id))
        .ok_or("its id is missing or not a UUID")?;
    let target_date = match text("target_date")? {
        None => return Ok(None),
        Some(date) => chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .map_err(|_| format!("\"target_date\" {date:?} is not a YYYY-MM-DD date"))?,
    };
    let start_date = text("start_date")
        .ok()
        .flatten()
        .and_then(|date| chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok());
    let project = match object.get("project") {
        Some(Value::String(p)) => p.as_str(),
        Some(Value::Object(p)) => p.get("id").and_then(Value::as_str).unwrap_or_default(),
        _ => return Err("\"project\" is missing".into()),
    };
    if project != project_id {
        return Err(format!(
            "it belongs to project {project:?}, not {project_id:?}"
        ));
    }
    let sequence_id = object
        .get("sequence_id")
        .and_then(Value::as_i64)
        .ok_or("\"sequence_id\" is missing or not an integer")?;
    let name = text("name")?.ok_or("\"name\" is missing")?.to_string();
    let description_html = text("description_html")?.unwrap_or_default().to_string();
    let priority = match text("priority")?.unwrap_or("none") {
        "urgent" => Priority::Urgent,
        "high" => Priority::High,
        "medium" => Priority::Medium,
        "low" => Priority::Low,
        "none" => Priority::None,
        other => return Err(format!("unknown priority {other:?}")),
    };
    let state = match object.get("state") {
        None | Some(Value::Null) => None,
        Some(Value::Object(state)) => {
            let name = state
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let group = match state.get("group").and_then(Value::as_str) {
                Some("backlog") => StateGroup::Backlog,
                Some("unstarted") => StateGroup::Unstarted,
                Some("started") => StateGroup::Started,
                Some("completed") => StateGroup::Completed,
                Some("cancelled") => StateGroup::Cancelled,
                Some("triage") => StateGroup::Triage,
                other => return Err(format!("unknown state group {other:?}")),
            };
            Some(State {
                name: name.to_string(),
                group,
            })
        }
        Some(other) => {
            return Err(format!(
                "\"state\" is not an expanded state object: {}",
                kind(other)
            ));
        }
    };
    let labels = entries(object.get("labels"), "labels", |label| {
        label
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| "an entry of \"labels\" has no name".to_string())
    })?;
    let assignees = entries(object.get("assignees"), "assignees", |user| {
        // Expanded assignees are UserLite objects; their `id` is the user's UUID.
        let id = user
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| is_uuid(id))
            .ok_or("an entry of \"assignees\" has no UUID id")?;
        let display = user.get("display_name").and_then(Value::as_str);
        let full = || {
            let first = user.get("first_name").and_then(Value::as_str).unwrap_or("");
            let last = user.get("last_name").and_then(Value::as_str).unwrap_or("");
            let full = format!("{first} {last}").trim().to_string();
            (!full.is_empty()).then_some(full)
        };
        let name = display
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .or_else(full)
            .ok_or("an entry of \"assignees\" has no name")?;
        Ok(Assignee {
            id: id.to_string(),
            name,
        })
    })?;
    // Rendered in the key owner's timezone with an offset, or `Z` (plane-api.md §5).
    let updated_at = match text("updated_at")? {
        None => None,
        Some(stamp) => Some(
            DateTime::parse_from_rfc3339(stamp)
                .map_err(|_| format!("\"updated_at\" {stamp:?} is not an RFC 3339 timestamp"))?
                .with_timezone(&Utc),
        ),
    };
    Ok(Some(Issue {
        id: id.to_string(),
        project_id: project_id.to_string(),
        sequence_id,
        name,
        description_html,
        priority,
        state,
        labels,
        assignees,
        target_date,
        start_date,
        updated_at,
    }))
}

/// The entries of an expanded many-to-many list (`labels`, `assignees`), each read by `read`.
fn entries<T>(
    value: Option<&Value>,
    key: &str,
    read: impl Fn(&Value) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                if !item.is_object() {
                    return Err(format!("\"{key}\" holds {} instead of objects", kind(item)));
                }
                read(item)
            })
            .collect(),
        Some(other) => Err(format!("\"{key}\" is not a list: {}", kind(other))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

// ---------------------------------------------------------------------------------------------
// The client (send side).
// ---------------------------------------------------------------------------------------------

/// A Plane request failed. The messages say what to check.
#[derive(Debug, thiserror::Error)]
pub enum PlaneError {
    #[error(
        "Plane answered 401 (no API key arrived) for {what}: check PLANE_API_TOKEN, and that no proxy strips the X-Api-Key header"
    )]
    NoKey { what: String },
    #[error(
        "Plane rejected the API key (403 \"Given API token is not valid\") for {what}: check PLANE_API_TOKEN; it may be wrong, expired or deactivated"
    )]
    BadKey { what: String },
    #[error(
        "Plane denied access to {what} (403): check PLANE_WORKSPACE_SLUG and that the token's user is a member"
    )]
    Forbidden { what: String },
    #[error(
        "Plane answered 404 for {what}: check PLANE_BASE_URL (the API origin, without /api/v1)"
    )]
    NotFound { what: String },
    #[error("Plane kept answering 429 (rate limit) for {what}")]
    RateLimited { what: String },
    #[error("not asking Plane for {what}: it stopped answering earlier in this run")]
    GaveUp { what: String },
    #[error("Plane answered HTTP {status} for {what}")]
    Status { status: u16, what: String },
    /// A 400 refusing the page size (see [`page_size_refusal`]); the walk falls back to
    /// [`FALLBACK_PER_PAGE`] once, and this is the error only when that is refused too.
    #[error("Plane refused the page size for {what} ({detail})")]
    PageSize { what: String, detail: String },
    #[error("cannot reach Plane at {origin} ({what}): {source}")]
    Transport {
        origin: String,
        what: String,
        source: ureq::Error,
    },
    #[error("Plane sent an answer calplanebot cannot read for {what}: {reason}")]
    Invalid { what: String, reason: String },
}

impl PlaneError {
    /// Errors that make the whole run pointless even part-way: the key was refused. (Plane
    /// becoming unreachable part-way fails the projects not yet read; the run goes on with
    /// what it has, deleting nothing in those projects.)
    pub fn is_fatal(&self) -> bool {
        matches!(self, PlaneError::NoKey { .. } | PlaneError::BadKey { .. })
    }
}

/// The projects of the workspace that a run syncs, and the ones it skipped (with why).
#[derive(Debug, Default)]
pub struct ProjectList {
    pub projects: Vec<Project>,
    pub skipped: Vec<(String, String)>,
}

/// The dated issues of one project, and how far the list walk got.
#[derive(Debug, Default)]
pub struct ProjectIssues {
    /// Items Plane listed, dated or not, readable or not.
    pub listed: usize,
    /// Each listed item's [`fingerprint`], by id: what the next run's probe compares.
    pub fingerprints: BTreeMap<String, String>,
    pub issues: Vec<Issue>,
    /// Issues that were listed but could not be read: their events are kept as they are.
    pub unreadable: Vec<(Option<String>, String)>,
    /// Issues listed without a due date: the list itself says their events go, no detail
    /// request needed.
    pub undated: std::collections::HashSet<String>,
    /// The walk failed part-way: nothing may be deleted in this project.
    pub error: Option<PlaneError>,
}

impl ProjectIssues {
    /// True when every listed item was read: the walk may then justify deletions, each one
    /// still confirmed by id (offset pagination over a live table can skip an item when another
    /// is deleted during the walk, plane-api.md §3; see `sync::confirm_absences`).
    pub fn complete(&self) -> bool {
        self.error.is_none() && !self.unreadable.iter().any(|(id, _)| id.is_none())
    }
}

/// Paces requests to Plane's per-key budget (plane-api.md §6), for every thread of a run at
/// once. Plane announces the slots left in its sliding window in `X-RateLimit-Remaining`; the
/// pacer learns the budget from it — the slots left plus our own requests in the window up to
/// the one answered — and never sends while our requests in the window fill it, waiting
/// instead until the oldest has left (a 429 is never provoked). A run's first request goes
/// alone, so its answer gives the budget exactly; a later answer only ever lowers it (another
/// client of the key spends it too, or a request sent earlier reached Plane later). The
/// window's length is read from `X-RateLimit-Reset` (Plane sends `now + window`), 60 s when
/// absent. A 429 anyway pauses every thread until its `Retry-After` has passed.
#[derive(Debug)]
struct Pacer {
    /// Our requests in the window, by number: when each was answered (sent, until then).
    /// Plane counts a request when it arrives, before its answer comes: a request leaves our
    /// window no sooner than it leaves Plane's.
    sent: BTreeMap<u64, Instant>,
    /// Requests a window allows, as learned; `None` while unknown (or unlimited).
    budget: Option<u64>,
    window: Duration,
    /// The number the next request gets, in the order they are sent.
    next: u64,
    /// No request before this (a 429's `Retry-After`).
    paused_until: Option<Instant>,
    /// The end of the last wait logged, so that several threads log one wait once.
    announced: Option<Instant>,
}

const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
/// Back-off after a 429 that carries no `Retry-After` (seen on a live server): one window.
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

impl Default for Pacer {
    fn default() -> Pacer {
        Pacer {
            sent: BTreeMap::new(),
            budget: None,
            window: DEFAULT_WINDOW,
            next: 0,
            paused_until: None,
            announced: None,
        }
    }
}

impl Pacer {
    /// How long to wait before the next request may go (zero: it may go now).
    fn wait_before_request(&mut self) -> Duration {
        let now = Instant::now();
        let window = self.window;
        self.sent
            .retain(|_, at| now.saturating_duration_since(*at) < window);
        if let Some(until) = self.paused_until.filter(|until| *until > now) {
            return until - now;
        }
        match (self.budget, self.sent.values().min()) {
            (Some(budget), Some(oldest)) if self.sent.len() as u64 >= budget => {
                (*oldest + self.window + Duration::from_millis(250)).saturating_duration_since(now)
            }
            _ => Duration::ZERO,
        }
    }

    /// Takes a slot for a request if one is free now (its number); else how long to wait, and
    /// whether this wait is news for the log.
    fn take_slot(&mut self) -> Result<u64, (Duration, bool)> {
        let wait = self.wait_before_request();
        if wait.is_zero() {
            return Ok(self.sent_now());
        }
        let end = Instant::now() + wait;
        let news = self
            .announced
            .is_none_or(|seen| end > seen + Duration::from_secs(1));
        if news {
            self.announced = Some(end);
        }
        Err((wait, news))
    }

    fn sent_now(&mut self) -> u64 {
        self.sent.insert(self.next, Instant::now());
        self.next += 1;
        self.next - 1
    }

    /// Request `number` was answered (or failed) now.
    fn answered(&mut self, number: u64) {
        if let Some(at) = self.sent.get_mut(&number) {
            *at = Instant::now();
        }
    }

    /// Learns from the answer to request `number`: `remaining` slots are left after it.
    fn update(&mut self, number: u64, remaining: Option<u64>, reset_epoch: Option<u64>) {
        if let Some(remaining) = remaining {
            let ours = self.sent.range(..=number).count() as u64;
            let budget = remaining + ours;
            self.budget = Some(self.budget.map_or(budget, |known| known.min(budget)));
        }
        if let Some(reset) = reset_epoch {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            // Both ends are whole seconds: round up so the window is never underestimated.
            let window = (reset.saturating_sub(now) + 1).clamp(1, 3600);
            self.window = Duration::from_secs(window);
        }
    }

    /// A 429: nobody sends before `wait` has passed.
    fn pause(&mut self, wait: Duration) {
        let until = Instant::now() + wait;
        if self.paused_until.is_none_or(|at| at < until) {
            self.paused_until = Some(until);
        }
    }
}

pub struct PlaneClient {
    agent: ureq::Agent,
    origin: String,
    slug: String,
    token: Secret,
    pacer: Mutex<Pacer>,
    retry: Retry,
    breaker: Breaker,
    /// The page size of list walks: [`PER_PAGE`] until Plane refuses it, then
    /// [`FALLBACK_PER_PAGE`] for the rest of the run (shared by every thread using the client).
    per_page: AtomicU32,
    pub requests: Counter,
}

impl PlaneClient {
    pub fn new(base_url: &str, slug: &str, token: Secret, network: &Network) -> PlaneClient {
        PlaneClient {
            agent: crate::support::http::agent(network, None),
            origin: base_url.trim_end_matches('/').to_string(),
            slug: slug.to_string(),
            token,
            pacer: Mutex::new(Pacer::default()),
            retry: Retry::new(network, DEFAULT_RATE_LIMIT_WAIT),
            breaker: Breaker::default(),
            per_page: AtomicU32::new(PER_PAGE),
            requests: Counter::default(),
        }
    }

    /// The page size list walks ask for now: [`PER_PAGE`], or [`FALLBACK_PER_PAGE`] once Plane
    /// refused the larger one (or the caller started the client there).
    pub fn per_page(&self) -> u32 {
        self.per_page.load(Ordering::Relaxed)
    }

    /// Starts the walks at `per_page` (1 to [`PER_PAGE`]), e.g. the page size a previous run
    /// learned this Plane accepts, so that no run repeats the refused request.
    pub fn set_per_page(&self, per_page: u32) {
        self.per_page
            .store(per_page.clamp(1, PER_PAGE), Ordering::Relaxed);
    }

    /// Plane refused `refused` items per page: walks use [`FALLBACK_PER_PAGE`] from now on.
    /// False when there is nothing smaller to fall back to, so a refused fallback is an error
    /// and never a loop. Logged once, by the walk that made the switch.
    fn fall_back(&self, refused: u32, detail: &str) -> bool {
        if refused <= FALLBACK_PER_PAGE {
            return false;
        }
        if self
            .per_page
            .compare_exchange(
                refused,
                FALLBACK_PER_PAGE,
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            log::info!(
                "Plane refused per_page={refused} ({detail}); using {FALLBACK_PER_PAGE}, remembered in the cache when the run writes one"
            );
        }
        true
    }

    /// GET `/api/v1/{path}`: paced, retried when safe, with the status mapped to an error that
    /// says what to check.
    fn get(&self, path: &str, what: &str) -> Result<Reply, PlaneError> {
        if self.breaker.is_open() {
            return Err(PlaneError::GaveUp { what: what.into() });
        }
        let url = format!("{}/api/v1/{path}", self.origin);
        // The number of the request this thread sent last, for `observe`.
        let number = std::cell::Cell::new(0);
        let build = || {
            loop {
                let slot = self.pacer.lock().expect("pacer lock").take_slot();
                match slot {
                    Ok(taken) => {
                        number.set(taken);
                        break;
                    }
                    Err((wait, news)) => {
                        if news {
                            log::info!(
                                "Plane's rate limit is used up; waiting {:.0} s",
                                wait.as_secs_f64()
                            );
                        }
                        std::thread::sleep(wait);
                    }
                }
            }
            log::debug!("GET {url}");
            http::Request::get(&url)
                .header("X-Api-Key", self.token.expose())
                .header("Accept", "application/json")
                .body(Vec::new())
                .expect("a valid request")
        };
        let observe = |reply: Option<&Reply>| {
            let mut pacer = self.pacer.lock().expect("pacer lock");
            pacer.answered(number.get());
            match reply {
                Some(reply) if reply.is_success() => {
                    let header =
                        |name: &str| reply.header(name).and_then(|v| v.trim().parse().ok());
                    pacer.update(
                        number.get(),
                        header("X-RateLimit-Remaining"),
                        header("X-RateLimit-Reset"),
                    );
                }
                Some(reply) if reply.status == 429 => pacer.pause(self.retry.wait_after(reply, 0)),
                _ => {}
            }
        };
        let reply = self
            .retry
            .send_observed(
                &self.agent,
                &build,
                MAX_BODY,
                &self.requests,
                &what,
                &observe,
            )
            .map_err(|error| match error.source {
                ureq::Error::BodyExceedsLimit(limit) => PlaneError::Invalid {
                    what: what.to_string(),
                    reason: format!("the answer is larger than {} MiB", limit / (1024 * 1024)),
                },
                _ => {
                    if error.is_unreachable() {
                        self.breaker.trip();
                    }
                    PlaneError::Transport {
                        origin: self.origin.clone(),
                        what: what.to_string(),
                        source: error.source,
                    }
                }
            })?;
        match reply.status {
            200..=299 => Ok(reply),
            401 => Err(PlaneError::NoKey { what: what.into() }),
            403 if reply.text().contains("Given API token is not valid") => {
                Err(PlaneError::BadKey { what: what.into() })
            }
            403 => Err(PlaneError::Forbidden { what: what.into() }),
            404 => Err(PlaneError::NotFound { what: what.into() }),
            429 => Err(PlaneError::RateLimited { what: what.into() }),
            400 if let Some(detail) = page_size_refusal(&reply.body) => Err(PlaneError::PageSize {
                what: what.into(),
                detail,
            }),
            status => Err(PlaneError::Status {
                status,
                what: what.into(),
            }),
        }
    }

    /// Every page of a paginated list, handing each page's items to `each` as it arrives.
    ///
    /// A server that refuses the page size (a 400 naming `per_page`, plane-api.md §3) makes the
    /// client fall back to [`FALLBACK_PER_PAGE`] and walk the list again from its start. Plane
    /// checks `per_page` on every request, so the refusal comes with the first page, before
    /// `each` saw anything; one coming later (the server changed mid-walk) is the walk's error,
    /// so that no item is handed over twice (the next walks still use the smaller size).
    fn walk(
        &self,
        path: &str,
        query: &str,
        what: &str,
        mut each: impl FnMut(Vec<Value>),
    ) -> Result<(), PlaneError> {
        let per_page = self.per_page();
        let mut delivered = false;
        let walked = self.walk_pages(path, query, what, per_page, |items| {
            delivered = true;
            each(items)
        });
        match walked {
            Err(PlaneError::PageSize { detail, .. })
                if !delivered && self.fall_back(per_page, &detail) =>
            {
                self.walk_pages(path, query, what, FALLBACK_PER_PAGE, each)
            }
            Err(PlaneError::PageSize { what, detail }) if per_page > FALLBACK_PER_PAGE => {
                self.fall_back(per_page, &detail);
                Err(PlaneError::PageSize { what, detail })
            }
            other => other,
        }
    }

    /// [`PlaneClient::walk`] at one page size.
    fn walk_pages(
        &self,
        path: &str,
        query: &str,
        what: &str,
        per_page: u32,
        mut each: impl FnMut(Vec<Value>),
    ) -> Result<(), PlaneError> {
        let mut cursor: Option<String> = None;
        let mut pages = 0usize;
        loop {
            let mut url = format!("{path}?per_page={per_page}{query}");
            if let Some(cursor) = &cursor {
                url.push_str("&cursor=");
                url.push_str(&encode_query_value(cursor));
            }
            let reply = self.get(&url, what)?;
            let page = parse_page(&reply.body).map_err(|reason| PlaneError::Invalid {
                what: what.into(),
                reason,
            })?;
            each(page.results);
            pages += 1;
            match page.next_cursor {
                Some(next) if cursor.as_ref() != Some(&next) && pages < 100_000 => {
                    cursor = Some(next)
                }
                Some(_) => {
                    return Err(PlaneError::Invalid {
                        what: what.into(),
                        reason: "the pagination cursor does not advance".into(),
                    });
                }
                None => return Ok(()),
            }
        }
    }

    /// The user the API key belongs to: the cheapest request that proves the key works
    /// (plane-api.md §1, "Key check"). It names no workspace.
    pub fn me(&self) -> Result<User, PlaneError> {
        let what = "the key's user (users/me/)";
        let reply = self.get("users/me/", what)?;
        parse_user(&reply.body).map_err(|reason| PlaneError::Invalid {
            what: what.into(),
            reason,
        })
    }

    /// The workspace's members with their roles (plane-api.md §2: a bare array, no paging).
    /// Plane lists them only to workspace Admins and Members: for a Guest's key (or a workspace
    /// the key's user is not in) the answer is [`PlaneError::Forbidden`], and a caller can fall
    /// back to the assignees it has seen.
    pub fn workspace_members(&self) -> Result<Vec<Member>, PlaneError> {
        let what = format!(
            "the members of workspace {:?} (listed only to its Admins and Members)",
            self.slug
        );
        let reply = self.get(&format!("workspaces/{}/members/", self.slug), &what)?;
        parse_members(&reply.body).map_err(|reason| PlaneError::Invalid { what, reason })
    }

    /// The workspace's projects: members only, archived ones left out (plane-api.md §2).
    pub fn projects(&self) -> Result<ProjectList, PlaneError> {
        let what = format!("the projects of workspace {:?}", self.slug);
        let mut list = ProjectList::default();
        let mut seen = std::collections::HashSet::new();
        self.walk(
            &format!("workspaces/{}/projects/", self.slug),
            "",
            &what,
            |items| {
                for item in items {
                    match project_from_json(&item) {
                        ProjectEntry::Syncable(project) => {
                            if seen.insert(project.id.clone()) {
                                list.projects.push(project);
                            }
                        }
                        ProjectEntry::Skipped { name, reason } => list.skipped.push((name, reason)),
                    }
                }
            },
        )?;
        Ok(list)
    }

    /// The dated issues of one project: every page, de-duplicated by id, undated ones dropped.
    /// A failure part-way keeps what was read and records the error.
    pub fn dated_issues(&self, project: &Project) -> ProjectIssues {
        let what = format!("the work items of project {}", project_label(project));
        let query = format!("&expand={ISSUE_EXPAND}&fields={ISSUE_FIELDS}&order_by=created_at");
        let mut result = ProjectIssues::default();
        let mut index: HashMap<String, Option<usize>> = HashMap::new();
        let walked = self.walk(
            &format!(
                "workspaces/{}/projects/{}/work-items/",
                self.slug, project.id
            ),
            &query,
            &what,
            |items| {
                result.listed += items.len();
                for item in items {
                    if let Some((id, print)) = fingerprint(&item) {
                        result.fingerprints.insert(id, print);
                    }
                    match issue_from_json(&item, &project.id) {
                        IssueItem::Dated(issue) => match index.get(&issue.id) {
                            Some(Some(i)) => result.issues[*i] = issue,
                            _ => {
                                index.insert(issue.id.clone(), Some(result.issues.len()));
                                result.issues.push(issue);
                            }
                        },
                        IssueItem::Undated { id } => {
                            result.undated.insert(id.clone());
                            if let Some(Some(i)) = index.insert(id, None) {
                                // Seen dated on an earlier page, undated now: the later wins.
                                result.issues.swap_remove(i);
                                if let Some(moved) = result.issues.get(i) {
                                    index.insert(moved.id.clone(), Some(i));
                                }
                            }
                        }
                        IssueItem::Invalid { id, reason } => {
                            let label = id.as_deref().unwrap_or("(no id)");
                            log::warn!(
                                "skipping work item {label} of project {}: {reason}",
                                project_label(project)
                            );
                            if let Some(id) = &id {
                                index.insert(id.clone(), None);
                            }
                            result.unreadable.push((id, reason));
                        }
                    }
                }
            },
        );
        if let Err(error) = walked {
            result.error = Some(error);
        }
        result
    }

    /// The probe of one project: each work item's [`fingerprint`] by id, every page, without
    /// `expand`. An item that cannot be fingerprinted fails the probe (the project is then
    /// read in full).
    pub fn probe(&self, project: &Project) -> Result<BTreeMap<String, String>, PlaneError> {
        let what = format!(
            "the work items of project {} (probe)",
            project_label(project)
        );
        let mut prints = BTreeMap::new();
        let mut odd = None;
        self.walk(
            &format!(
                "workspaces/{}/projects/{}/work-items/",
                self.slug, project.id
            ),
            &format!("&fields={PROBE_FIELDS}&order_by=created_at"),
            &what,
            |items| {
                for item in items {
                    match fingerprint(&item) {
                        Some((id, print)) => {
                            prints.insert(id, print);
                        }
                        None => odd = Some(kind(&item)),
                    }
                }
            },
        )?;
        match odd {
            Some(kind) => Err(PlaneError::Invalid {
                what,
                reason: format!("an item without a work item id ({kind})"),
            }),
            None => Ok(prints),
        }
    }

    /// One work item by id, fresh: `None` when Plane answers 404 (deleted, archived, or its
    /// project archived — CE v1 cannot tell these apart, plane-api.md §9).
    pub fn issue(&self, project: &Project, id: &str) -> Result<Option<IssueItem>, PlaneError> {
        let what = format!("work item {id} of project {}", project_label(project));
        let path = format!(
            "workspaces/{}/projects/{}/work-items/{id}/?expand={ISSUE_EXPAND}&fields={ISSUE_FIELDS}",
            self.slug, project.id
        );
        match self.get(&path, &what) {
            Ok(reply) => {
                let value: Value =
                    serde_json::from_slice(&reply.body).map_err(|e| PlaneError::Invalid {
                        what: what.clone(),
                        reason: format!("not JSON: {e}"),
                    })?;
                Ok(Some(issue_from_json(&value, &project.id)))
            }
            Err(PlaneError::NotFound { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }
    /// One work item by id with its project, fresh, for a webhook run: `None` when Plane
    /// answers 404. The project comes from `expand=project`; a server that does not expand it
    /// costs one more request for the project itself.
    pub fn issue_with_project(
        &self,
        project_id: &str,
        id: &str,
    ) -> Result<Option<OneIssue>, PlaneError> {
        let what = format!("work item {id} of project {project_id}");
        let path = format!(
            "workspaces/{}/projects/{project_id}/work-items/{id}/?expand={ONE_ISSUE_EXPAND}&fields={ISSUE_FIELDS}",
            self.slug
        );
        let reply = match self.get(&path, &what) {
            Ok(reply) => reply,
            Err(PlaneError::NotFound { .. }) => return Ok(None),
            Err(other) => return Err(other),
        };
        let value: Value =
            serde_json::from_slice(&reply.body).map_err(|e| PlaneError::Invalid {
                what: what.clone(),
                reason: format!("not JSON: {e}"),
            })?;
        let item = issue_from_json(&value, project_id);
        let project = match value.get("project").and_then(project_lite) {
            Some(project) if project.id == project_id => project,
            _ => self.project(project_id)?,
        };
        Ok(Some(OneIssue {
            item,
            project,
            fingerprint: fingerprint(&value).map(|(_, print)| print),
        }))
    }

    /// One project by id (any project the token can read, archived or not).
    pub fn project(&self, project_id: &str) -> Result<Project, PlaneError> {
        let (value, what) = self.project_json(project_id)?;
        project_lite(&value)
            .filter(|p| p.id == project_id)
            .ok_or(PlaneError::Invalid {
                what,
                reason: "not a project object with this id".into(),
            })
    }

    /// One project by id, judged as the projects list is: syncable, or skipped and why
    /// (archived, not a member). How a webhook run decides as `sync` does.
    pub fn project_entry(&self, project_id: &str) -> Result<ProjectEntry, PlaneError> {
        let (value, what) = self.project_json(project_id)?;
        match project_from_json(&value) {
            ProjectEntry::Syncable(project) if project.id != project_id => {
                Err(PlaneError::Invalid {
                    what,
                    reason: "not a project object with this id".into(),
                })
            }
            entry => Ok(entry),
        }
    }

    fn project_json(&self, project_id: &str) -> Result<(Value, String), PlaneError> {
        let what = format!("project {project_id}");
        let reply = self.get(
            &format!("workspaces/{}/projects/{project_id}/", self.slug),
            &what,
        )?;
        let value = serde_json::from_slice(&reply.body).map_err(|e| PlaneError::Invalid {
            what: what.clone(),
            reason: format!("not JSON: {e}"),
        })?;
        Ok((value, what))
    }
}

/// One work item read by id, with its project (a webhook run's one Plane request).
pub struct OneIssue {
    pub item: IssueItem,
    pub project: Project,
    /// Its [`fingerprint`], for the Plane snapshot.
    pub fingerprint: Option<String>,
}

/// A project object's id, identifier and name (a full project or an expanded ProjectLite).
pub fn project_lite(value: &Value) -> Option<Project> {
    let id = value.get("id")?.as_str().filter(|id| is_uuid(id))?;
    let text = |key: &str| string_field(value, key);
    Some(Project {
        id: id.to_string(),
        identifier: text("identifier"),
        name: text("name"),
    })
}

/// `Name (IDENT)` for messages.
pub fn project_label(project: &Project) -> String {
    if project.identifier.is_empty() {
        project.name.clone()
    } else {
        format!("{} ({})", project.name, project.identifier)
    }
}

fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body of a captured exchange (`tests/fixtures/plane/api/`, see its README).
    fn fixture_body(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/plane/api/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let exchange: Value = serde_json::from_str(&text).unwrap();
        serde_json::to_vec(&exchange["response"]["body"]).unwrap()
    }

    const ALPHA: &str = "8063616e-4508-4635-b20d-f71dd7c779d3";
    /// The lab of 2026-12-02 (captures 60-67): project ALPHA, its admin and a second member.
    const ALPHA_2: &str = "ec601b96-eb0b-419e-8619-ce0d7fe44a7b";
    const ADMIN_2: &str = "8007022e-74f4-49aa-a657-7bf1004510ea";
    const BEA: &str = "ff870aaf-5915-402a-9ef5-72d65e82eea9";

    fn bea() -> Assignee {
        Assignee {
            id: BEA.into(),
            name: "bea".into(),
        }
    }

    fn admin_2() -> Assignee {
        Assignee {
            id: ADMIN_2.into(),
            name: "labadmin".into(),
        }
    }

    #[test]
    fn captured_list_gives_assignee_ids_names_and_updated_at() {
        for capture in [
            "66-work-items-list-product-fields",
            "66-work-items-list-product-nofields",
        ] {
            let page = parse_page(&fixture_body(capture)).unwrap();
            let items: Vec<IssueItem> = page
                .results
                .iter()
                .map(|v| issue_from_json(v, ALPHA_2))
                .collect();
            let [IssueItem::Dated(login), IssueItem::Dated(offsite)] = &items[..] else {
                panic!("{capture}: {items:?}")
            };
            assert_eq!(login.assignees, Vec::new(), "{capture}");
            assert_eq!(
                login.updated_at.unwrap().to_rfc3339(),
                "2026-12-02T16:53:08.329791+00:00"
            );
            // Newest user first, as Plane expands them (not the order they were assigned in).
            assert_eq!(offsite.assignees, vec![bea(), admin_2()], "{capture}");
            assert_eq!(
                offsite.updated_at.unwrap().to_rfc3339(),
                "2026-12-02T16:53:17.566535+00:00"
            );
            assert_eq!(offsite.target_date.to_string(), "2026-12-08");
        }
    }

    #[test]
    fn captured_detail_gives_assignee_ids_names_and_updated_at() {
        let body = fixture_body("67-work-item-detail-expand-assignees");
        let value: Value = serde_json::from_slice(&body).unwrap();
        let IssueItem::Dated(issue) = issue_from_json(&value, ALPHA_2) else {
            panic!()
        };
        assert_eq!(issue.id, "fd15a77b-d8b9-4b09-8444-0560afc0c8a8");
        assert_eq!(issue.assignees, vec![bea(), admin_2()]);
        assert_eq!(
            issue.updated_at,
            Some(
                DateTime::parse_from_rfc3339("2026-12-02T16:53:17.566535Z")
                    .unwrap()
                    .with_timezone(&Utc)
            )
        );
        // Unexpanded, `assignees` is a list of bare ids (the PATCH answer): never read as names.
        let patched: Value =
            serde_json::from_slice(&fixture_body("64-patch-assignees-add-member")).unwrap();
        let mut unexpanded = value.clone();
        unexpanded["assignees"] = patched["assignees"].clone();
        assert!(matches!(
            issue_from_json(&unexpanded, ALPHA_2),
            IssueItem::Invalid { reason, .. } if reason.contains("assignees")
        ));
    }

    #[test]
    fn captured_workspace_members_give_ids_names_and_roles() {
        let members = parse_members(&fixture_body("60-workspace-members")).unwrap();
        assert_eq!(
            members,
            vec![
                Member {
                    id: BEA.into(),
                    display_name: "bea".into(),
                    email: "bea.member@acme.test".into(),
                    name: "Bea Member".into(),
                    role: Some(15),
                },
                Member {
                    id: ADMIN_2.into(),
                    display_name: "labadmin".into(),
                    email: "admin@acme.test".into(),
                    name: "Lab Admin".into(),
                    role: Some(20),
                },
            ]
        );
    }

    #[test]
    fn captured_project_members_have_no_role() {
        let members = parse_members(&fixture_body("61-project-members")).unwrap();
        let summary: Vec<(&str, &str, Option<u8>)> = members
            .iter()
            .map(|m| (m.id.as_str(), m.display_name.as_str(), m.role))
            .collect();
        assert_eq!(summary, [(BEA, "bea", None), (ADMIN_2, "labadmin", None)]);
    }

    /// A client of the Plane simulator, with its key.
    fn simulated(sim: &calplanebot_testbed::plane_sim::PlaneSim, key: &str) -> PlaneClient {
        PlaneClient::new(
            &sim.base_url(),
            &sim.workspace_slug(),
            Secret::new(key),
            &Network::default(),
        )
    }

    #[test]
    fn workspace_members_and_me_from_a_simulated_plane() {
        use calplanebot_testbed::plane_sim::{PlaneSim, Seed};
        let sim = PlaneSim::start(Seed::lab_2026_12_02()).unwrap();
        let plane = simulated(&sim, &sim.token());
        let members = plane.workspace_members().unwrap();
        let summary: Vec<(&str, &str, Option<u8>)> = members
            .iter()
            .map(|m| (m.id.as_str(), m.name.as_str(), m.role))
            .collect();
        assert_eq!(
            summary,
            [
                (BEA, "Bea Member", Some(15)),
                (ADMIN_2, "Lab Admin", Some(20))
            ]
        );
        // The key's user is matched to assignees by this id.
        assert_eq!(plane.me().unwrap().id, ADMIN_2);
        assert_eq!(sim.count("GET", "/members/"), 1);
    }

    #[test]
    fn a_guest_key_is_forbidden_the_members_list_and_a_bad_key_is_a_bad_key() {
        use calplanebot_testbed::plane_sim::{Fault, FaultRule, PlaneSim, ROLE_GUEST, Seed};
        let mut seed = Seed::lab_2026_12_02();
        seed.users[0].role = Some(ROLE_GUEST);
        let sim = PlaneSim::start(seed).unwrap();
        let plane = simulated(&sim, &sim.token());
        let error = plane.workspace_members().unwrap_err();
        assert!(
            matches!(&error, PlaneError::Forbidden { what } if what.contains("Admins and Members")),
            "{error:?}"
        );
        assert!(
            !error.is_fatal(),
            "the caller falls back to the assignees it saw"
        );
        assert_eq!(sim.count("GET", "/members/"), 1, "a 403 is not retried");
        // The same key still reads the projects it is a member of.
        assert_eq!(plane.projects().unwrap().projects.len(), 1);
        let wrong = simulated(&sim, "plane_api_wrong");
        assert!(matches!(
            wrong.workspace_members(),
            Err(PlaneError::BadKey { .. })
        ));
        // A members answer Plane would never send is Invalid, not a shorter list.
        sim.inject_fault(FaultRule::new(
            "/members/",
            Fault::Status(200, r#"[{"display_name": "no id"}]"#.into()),
        ));
        sim.with_world(|w| w.users[0].role = Some(15));
        assert!(matches!(
            plane.workspace_members(),
            Err(PlaneError::Invalid { reason, .. }) if reason.contains("member #1")
        ));
    }

    #[test]
    fn only_a_400_naming_per_page_is_a_refused_page_size() {
        assert_eq!(
            page_size_refusal(br#"{"detail":"Invalid per_page value. Cannot exceed 1000."}"#)
                .as_deref(),
            Some("Invalid per_page value. Cannot exceed 1000.")
        );
        assert_eq!(
            page_size_refusal(br#"{"detail":"Invalid per_page value. Cannot exceed 100."}"#)
                .as_deref(),
            Some("Invalid per_page value. Cannot exceed 100.")
        );
        // Another server's wording, or no JSON at all: the text, without control characters.
        assert_eq!(
            page_size_refusal(b"per_page must be <= 100\r\n").as_deref(),
            Some("per_page must be <= 100")
        );
        assert_eq!(
            page_size_refusal(br#"{"error": "bad per_page", "detail": 5}"#).as_deref(),
            Some(r#"{"error": "bad per_page", "detail": 5}"#)
        );
        assert_eq!(
            page_size_refusal(format!("per_page {}", "x".repeat(500)).as_bytes())
                .map(|d| d.chars().count()),
            Some(200)
        );
        // Any other 400 stays the error it is.
        for body in [
            &br#"{"detail":"Invalid cursor parameter."}"#[..],
            br#"{"detail":"Error in parsing"}"#,
            b"",
            b"<html>Bad Request</html>",
        ] {
            assert_eq!(page_size_refusal(body), None, "{body:?}");
        }
    }

    #[test]
    fn a_plane_refusing_1000_a_page_is_walked_again_with_100_and_never_looped() {
        use calplanebot_testbed::plane_sim::{PlaneSim, Seed};
        let sim = PlaneSim::start(Seed::lab_2026_12_02()).unwrap();
        let walks = |sim: &PlaneSim| -> Vec<(String, u16)> {
            sim.requests()
                .into_iter()
                .filter(|r| r.path.ends_with("/projects/"))
                .map(|r| (r.query, r.status))
                .collect()
        };
        // CE: one request at 1000.
        let plane = simulated(&sim, &sim.token());
        assert_eq!(plane.per_page(), PER_PAGE);
        assert_eq!(plane.projects().unwrap().projects.len(), 1);
        assert_eq!(walks(&sim), [("per_page=1000".to_string(), 200)]);

        // A Plane capped at 100: refused once, walked again from the start with 100, and the
        // client stays at 100 for the rest of the run.
        sim.set_max_per_page(100);
        sim.reset_requests();
        let plane = simulated(&sim, &sim.token());
        assert_eq!(plane.projects().unwrap().projects.len(), 1);
        assert_eq!(plane.per_page(), FALLBACK_PER_PAGE);
        plane.projects().unwrap();
        assert_eq!(
            walks(&sim),
            [
                ("per_page=1000".to_string(), 400),
                ("per_page=100".to_string(), 200),
                ("per_page=100".to_string(), 200)
            ]
        );

        // A client started at the remembered 100 never asks for 1000.
        sim.reset_requests();
        let remembered = simulated(&sim, &sim.token());
        remembered.set_per_page(FALLBACK_PER_PAGE);
        remembered.projects().unwrap();
        assert_eq!(walks(&sim), [("per_page=100".to_string(), 200)]);

        // A Plane refusing 100 too: that refusal is the error, after two requests.
        sim.set_max_per_page(50);
        sim.reset_requests();
        let plane = simulated(&sim, &sim.token());
        let error = plane.projects().unwrap_err();
        assert!(
            matches!(&error, PlaneError::PageSize { detail, .. } if detail.contains("Cannot exceed 50")),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("refused the page size"),
            "{error}"
        );
        assert_eq!(walks(&sim).len(), 2, "{:?}", walks(&sim));
        assert_eq!(plane.projects().unwrap_err().to_string(), error.to_string());
        assert_eq!(walks(&sim).len(), 3, "no second fallback");
    }

    #[test]
    fn a_refusal_after_the_first_page_fails_the_walk_without_handing_items_over_twice() {
        use calplanebot_testbed::plane_sim::{Fault, FaultRule, PlaneSim, Seed, SeedIssue};
        let sim = PlaneSim::start(Seed::lab_2026_12_02()).unwrap();
        let plane = simulated(&sim, &sim.token());
        let project = plane.projects().unwrap().projects.remove(0);
        for n in 0..150 {
            sim.with_world(|w| {
                w.add_issue(SeedIssue::new(&project.id, format!("Bulk {n}")).due("2027-01-15"))
            });
        }
        let all = plane.dated_issues(&project).listed;
        assert!(all > 150, "{all}");
        // Walks of 120 a page; the server starts refusing that between the two pages.
        plane.set_per_page(120);
        sim.inject_fault(
            FaultRule::new(
                "/work-items/",
                Fault::Status(
                    400,
                    r#"{"detail":"Invalid per_page value. Cannot exceed 100."}"#.into(),
                ),
            )
            .query_contains("cursor="),
        );
        let broken = plane.dated_issues(&project);
        assert!(
            matches!(broken.error, Some(PlaneError::PageSize { .. })),
            "{:?}",
            broken.error
        );
        assert_eq!(broken.listed, 120, "the first page, once");
        assert!(!broken.complete());
        // The next walk asks for 100 from its start.
        assert_eq!(plane.per_page(), FALLBACK_PER_PAGE);
        sim.reset_requests();
        let again = plane.dated_issues(&project);
        assert!(again.complete());
        assert_eq!(again.listed, all);
        assert!(
            sim.requests()
                .iter()
                .all(|r| r.query.starts_with("per_page=100&") && r.status == 200)
        );
    }

    #[test]
    fn a_400_not_naming_per_page_is_still_an_error_and_keeps_the_page_size() {
        use calplanebot_testbed::plane_sim::{Fault, FaultRule, PlaneSim, Seed};
        let sim = PlaneSim::start(Seed::lab_2026_12_02()).unwrap();
        sim.inject_fault(FaultRule::new(
            "/projects/",
            Fault::Status(400, r#"{"detail":"Invalid cursor parameter."}"#.into()),
        ));
        let plane = simulated(&sim, &sim.token());
        assert!(matches!(
            plane.projects(),
            Err(PlaneError::Status { status: 400, .. })
        ));
        assert_eq!(plane.per_page(), PER_PAGE);
        assert_eq!(sim.count("GET", "/projects/"), 1);
    }

    #[test]
    fn hostile_members_lists_are_errors_naming_the_entry() {
        let cases: [(&[u8], &str); 12] = [
            (b"<!DOCTYPE html><html></html>", "not JSON"),
            (b"", "not JSON"),
            (
                br#"{"results": [], "next_page_results": false}"#,
                "expected a JSON array, got an object",
            ),
            (br#"{"detail": "x"}"#, "an object"),
            (b"null", "got null"),
            (
                br#"[{"id": "ff870aaf-5915-402a-9ef5-72d65e82eea9"}, 5]"#,
                "member #2: a number",
            ),
            (br#"[{"email": "a@b"}]"#, "member #1: its id is missing"),
            (br#"[{"id": "../../etc", "email": "a@b"}]"#, "not a UUID"),
            (br#"[{"id": 7}]"#, "\"id\" is not a string"),
            (
                br#"[{"id": "ff870aaf-5915-402a-9ef5-72d65e82eea9", "role": "admin"}]"#,
                "\"role\" is not a number",
            ),
            (
                br#"[{"id": "ff870aaf-5915-402a-9ef5-72d65e82eea9", "role": 300}]"#,
                "not a role number",
            ),
            (
                br#"[{"id": "ff870aaf-5915-402a-9ef5-72d65e82eea9", "email": ["a"]}]"#,
                "\"email\" is not a string",
            ),
        ];
        for (body, expected) in cases {
            match parse_members(body) {
                Err(reason) => assert!(reason.contains(expected), "{expected}: {reason}"),
                Ok(members) => panic!("{expected}: {members:?}"),
            }
        }
        // A lone surrogate is not valid JSON text for serde_json: an error, not a panic.
        let lone = br#"[{"id": "ff870aaf-5915-402a-9ef5-72d65e82eea9", "last_name": "\ud800"}]"#;
        assert!(parse_members(lone).is_err());
    }

    #[test]
    fn odd_but_valid_members_are_read_as_sent() {
        let huge = "\u{202e}Ω😀\u{0}".repeat(100_000);
        let body = serde_json::json!([
            {"id": BEA, "first_name": huge, "last_name": null, "display_name": "b\u{e9}a",
             "email": "bea@acme.test", "role": 5, "is_bot": false, "extra": {"x": [1]}},
            {"id": BEA, "display_name": "duplicate"},
            {"id": ADMIN_2}
        ]);
        let members = parse_members(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(members.len(), 2, "the duplicate id is kept once");
        assert_eq!(members[0].name, huge);
        assert_eq!(members[0].display_name, "béa");
        assert_eq!(members[0].role, Some(5));
        assert_eq!(
            members[1],
            Member {
                id: ADMIN_2.into(),
                display_name: String::new(),
                email: String::new(),
                name: String::new(),
                role: None,
            }
        );
        assert_eq!(parse_members(b"[]").unwrap(), Vec::new());
    }

    #[test]
    fn captured_expanded_list_gives_dated_issues_and_skips_undated() {
        let page = parse_page(&fixture_body("12-work-items-list-expand")).unwrap();
        assert_eq!(page.next_cursor, None, "next_page_results is false");
        let items: Vec<IssueItem> = page
            .results
            .iter()
            .map(|v| issue_from_json(v, ALPHA))
            .collect();
        assert_eq!(
            items[0],
            IssueItem::Undated {
                id: "7c4478ad-66ca-4ce3-94dd-074c8f14b06e".into()
            }
        );
        let IssueItem::Dated(ship) = &items[1] else {
            panic!("{:?}", items[1])
        };
        assert_eq!(ship.name, "Ship CalDAV export");
        assert_eq!(ship.sequence_id, 3);
        assert_eq!(ship.priority, Priority::Medium);
        assert_eq!(
            ship.state,
            Some(State {
                name: "In Progress".into(),
                group: StateGroup::Started
            })
        );
        assert_eq!(ship.labels, vec!["calendar", "feature"]);
        assert_eq!(ship.target_date.to_string(), "2026-12-06");
        let IssueItem::Dated(login) = &items[2] else {
            panic!("{:?}", items[2])
        };
        assert_eq!(
            login.description_html,
            "<p>Users get logged out after <b>5 min</b>.</p>"
        );
        assert_eq!(login.state.as_ref().unwrap().group, StateGroup::Completed);
    }

    #[test]
    fn captured_pages_follow_next_cursor_until_next_page_results_is_false() {
        let first = parse_page(&fixture_body("13-work-items-page1-per_page2")).unwrap();
        assert_eq!(first.next_cursor.as_deref(), Some("2:1:0"));
        assert_eq!(first.results.len(), 2);
        let second = parse_page(&fixture_body("13-work-items-page2")).unwrap();
        // `next_cursor` is still a string ("2:2:0") but `next_page_results` says stop.
        assert_eq!(second.next_cursor, None);
        let past_end = parse_page(&fixture_body("13-work-items-page3-last")).unwrap();
        assert!(past_end.results.is_empty());
    }

    #[test]
    fn unexpanded_state_is_an_invalid_item_not_a_guess() {
        let page = parse_page(&fixture_body("11-work-items-list")).unwrap();
        let dated: Vec<IssueItem> = page
            .results
            .iter()
            .map(|v| issue_from_json(v, ALPHA))
            .filter(|i| !matches!(i, IssueItem::Undated { .. }))
            .collect();
        assert!(!dated.is_empty());
        for item in dated {
            assert!(
                matches!(&item, IssueItem::Invalid { id: Some(_), reason } if reason.contains("state")),
                "{item:?}"
            );
        }
    }

    #[test]
    fn captured_users_me_gives_the_keys_user() {
        let user = parse_user(&fixture_body("25-users-me")).unwrap();
        assert_eq!(
            user,
            User {
                id: "9be036ed-f8f9-4d2c-a2bb-a38f3d9b2105".into(),
                display_name: "labadmin".into(),
                email: "admin@acme.test".into(),
            }
        );
        // A web app's HTML page, or JSON that is not a user, is not a working API.
        assert!(parse_user(b"<!DOCTYPE html><html></html>").is_err());
        assert!(parse_user(b"{\"detail\": \"x\"}").is_err());
        assert!(parse_user(br#"{"id": "../me", "email": "x"}"#).is_err());
    }

    #[test]
    fn captured_projects_list_gives_syncable_projects() {
        let page = parse_page(&fixture_body("10-projects-list")).unwrap();
        let entries: Vec<ProjectEntry> = page.results.iter().map(project_from_json).collect();
        assert!(entries.contains(&ProjectEntry::Syncable(Project {
            id: ALPHA.into(),
            identifier: "ALPHA".into(),
            name: "Alpha Calendar".into(),
        })));
    }

    #[test]
    fn non_members_and_archived_projects_are_skipped() {
        let base = serde_json::json!({
            "id": ALPHA, "identifier": "A", "name": "A", "is_member": true, "archived_at": null
        });
        let mut public = base.clone();
        public["is_member"] = Value::Bool(false);
        assert!(
            matches!(project_from_json(&public), ProjectEntry::Skipped { reason, .. } if reason.contains("member"))
        );
        let mut archived = base.clone();
        archived["archived_at"] = Value::String("2026-11-01T00:00:00Z".into());
        assert!(
            matches!(project_from_json(&archived), ProjectEntry::Skipped { reason, .. } if reason == "archived")
        );
        let mut bad_id = base;
        bad_id["id"] = Value::String("../../etc".into());
        assert!(matches!(
            project_from_json(&bad_id),
            ProjectEntry::Skipped { .. }
        ));
    }

    fn issue_json() -> Value {
        serde_json::json!({
            "id": "9d577c4e-d35e-4940-9f10-02bd22540b3b",
            "project": ALPHA,
            "sequence_id": 7,
            "name": "n",
            "description_html": null,
            "priority": "high",
            "state": {"id": "x", "name": "Todo", "color": "#000", "group": "unstarted"},
            "labels": [{"name": "b"}, {"name": "a"}],
            "assignees": [{"id": BEA, "display_name": "", "first_name": "Jörg", "last_name": "K"}],
            "target_date": "2028-02-29",
            "updated_at": "2026-12-02T22:23:20.123456+05:30"
        })
    }

    #[test]
    fn a_start_date_is_read_and_a_bad_one_only_loses_the_span() {
        let read = |start: Value| {
            let mut json = issue_json();
            json["start_date"] = start;
            match issue_from_json(&json, ALPHA) {
                IssueItem::Dated(issue) => issue.start_date.map(|d| d.to_string()),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(read(Value::from("2028-02-01")), Some("2028-02-01".into()));
        assert_eq!(read(Value::Null), None);
        assert_eq!(read(Value::from("01/02/2028")), None);
        assert_eq!(read(Value::from(20280201)), None);
        assert!(ISSUE_FIELDS.split(',').any(|f| f == "start_date"));
    }

    #[test]
    fn a_well_formed_issue_reads_with_defaults_and_fallbacks() {
        let IssueItem::Dated(issue) = issue_from_json(&issue_json(), ALPHA) else {
            panic!()
        };
        assert_eq!(issue.description_html, "");
        assert_eq!(
            issue.assignees,
            vec![Assignee {
                id: BEA.into(),
                name: "Jörg K".into()
            }]
        );
        assert_eq!(issue.labels, vec!["b", "a"]);
        // An offset (the key owner's timezone) is converted to UTC.
        assert_eq!(
            issue.updated_at.unwrap().to_rfc3339(),
            "2026-12-02T16:53:20.123456+00:00"
        );
        let mut bare = issue_json();
        bare.as_object_mut().unwrap().remove("updated_at");
        bare["assignees"] = Value::Null;
        let IssueItem::Dated(issue) = issue_from_json(&bare, ALPHA) else {
            panic!()
        };
        assert_eq!((issue.updated_at, issue.assignees), (None, Vec::new()));
    }

    #[test]
    fn hostile_items_are_invalid_with_a_reason_naming_the_field() {
        let cases: [(&str, Value, &str); 13] = [
            (
                "target_date",
                Value::String("2026-02-30".into()),
                "target_date",
            ),
            ("priority", Value::String("blocker".into()), "priority"),
            ("name", Value::Number(5.into()), "name"),
            ("labels", Value::String("x".into()), "labels"),
            (
                "state",
                serde_json::json!({"name": "x", "group": "weird"}),
                "state group",
            ),
            ("sequence_id", Value::Null, "sequence_id"),
            (
                "project",
                Value::String("other".into()),
                "belongs to project",
            ),
            (
                "updated_at",
                Value::String("2026-12-02 16:53".into()),
                "updated_at",
            ),
            (
                "updated_at",
                Value::String("2026-12-02T25:00:00Z".into()),
                "updated_at",
            ),
            (
                "updated_at",
                Value::Number(1_796_230_400.into()),
                "updated_at",
            ),
            (
                "assignees",
                serde_json::json!([{"display_name": "no id"}]),
                "UUID id",
            ),
            (
                "assignees",
                serde_json::json!([{"id": "bea", "display_name": "bea"}]),
                "UUID id",
            ),
            ("assignees", serde_json::json!([BEA]), "instead of objects"),
        ];
        for (key, value, expected) in cases {
            let mut item = issue_json();
            item[key] = value;
            match issue_from_json(&item, ALPHA) {
                IssueItem::Invalid {
                    id: Some(_),
                    reason,
                } => {
                    assert!(reason.contains(expected), "{key}: {reason}")
                }
                other => panic!("{key}: {other:?}"),
            }
        }
        assert!(matches!(
            issue_from_json(&Value::String("x".into()), ALPHA),
            IssueItem::Invalid { id: None, .. }
        ));
    }

    #[test]
    fn broken_envelopes_are_errors() {
        for body in [
            &b"not json"[..],
            b"[]",
            b"{\"results\": {}}",
            b"{\"results\": [], \"next_page_results\": \"yes\"}",
            b"{\"results\": [], \"next_page_results\": true}",
        ] {
            assert!(
                parse_page(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn pacer_waits_only_when_the_budget_is_used_up() {
        let mut pacer = Pacer::default();
        assert!(pacer.wait_before_request().is_zero());
        let first = pacer.sent_now();
        pacer.update(first, Some(3), None);
        assert!(pacer.wait_before_request().is_zero());
        let second = pacer.sent_now();
        pacer.update(second, Some(0), None);
        let wait = pacer.wait_before_request();
        assert!(wait > Duration::from_secs(59) && wait <= DEFAULT_WINDOW + Duration::from_secs(1));
    }

    #[test]
    fn pacer_learns_the_window_from_the_reset_header() {
        let mut pacer = Pacer::default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let first = pacer.sent_now();
        pacer.update(first, Some(0), Some(now + 2));
        let wait = pacer.wait_before_request();
        assert!(wait <= Duration::from_secs(4), "{wait:?}");
        // A request the pacer counted itself lowers the budget before the answer comes.
        let mut pacer = Pacer::default();
        let first = pacer.sent_now();
        pacer.update(first, Some(1), Some(now + 60));
        pacer.sent_now();
        assert!(!pacer.wait_before_request().is_zero());
    }

    #[test]
    fn pacer_of_several_threads_takes_no_stale_budget() {
        let mut pacer = Pacer::default();
        // Three requests go out at once.
        let (a, _, c) = (pacer.sent_now(), pacer.sent_now(), pacer.sent_now());
        // The last one's answer comes first: nothing is left.
        pacer.update(c, Some(0), None);
        assert!(!pacer.wait_before_request().is_zero());
        // The first one's answer comes late and says 2 (Plane answered it first): the budget
        // stays the smaller one learned.
        pacer.update(a, Some(2), None);
        assert!(!pacer.wait_before_request().is_zero());

        let mut pacer = Pacer::default();
        let first = pacer.sent_now();
        let second = pacer.sent_now();
        pacer.sent_now();
        pacer.update(first, Some(2), None);
        assert!(
            !pacer.wait_before_request().is_zero(),
            "a budget of 3, and 3 of ours in the window"
        );
        // An answer that shows a larger budget (a request sent before it reached Plane after
        // it) does not raise it.
        pacer.update(second, Some(5), None);
        assert!(!pacer.wait_before_request().is_zero());
    }

    #[test]
    fn a_429_pauses_every_request_and_the_wait_is_logged_once() {
        let mut pacer = Pacer::default();
        pacer.pause(Duration::from_secs(30));
        let Err((wait, news)) = pacer.take_slot() else {
            panic!("a slot during the pause");
        };
        assert!(wait > Duration::from_secs(29), "{wait:?}");
        assert!(news);
        let Err((_, news)) = pacer.take_slot() else {
            panic!("a slot during the pause");
        };
        assert!(!news, "a second thread does not log the same wait");
        // A shorter pause does not shorten a longer one.
        pacer.pause(Duration::from_secs(1));
        assert!(pacer.wait_before_request() > Duration::from_secs(29));
    }

    #[test]
    fn uuids_are_recognised_strictly() {
        assert!(is_uuid("8063616e-4508-4635-b20d-f71dd7c779d3"));
        assert!(!is_uuid("8063616e-4508-4635-b20d-f71dd7c779d"));
        assert!(!is_uuid("8063616e_4508-4635-b20d-f71dd7c779d3"));
        assert!(!is_uuid("../../../../../../../../../../../../.."));
    }
}
