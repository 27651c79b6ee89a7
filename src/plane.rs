//! The Plane side: the only place that talks to Plane's REST API (v1).
//!
//! Domain types first ([`Project`], [`Issue`]): what the rest of calplanebot knows of Plane.

use chrono::NaiveDate;
use serde::Serialize;

/// A Plane project the token can read and that is not archived.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Project {
    /// UUID.
    pub id: String,
    /// Short key such as `ALPHA` (editable in Plane, so never part of an identity).
    pub identifier: String,
    pub name: String,
}

/// Plane's priority of an issue; `None` is Plane's own "none" value (the default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Urgent,
    High,
    Medium,
    Low,
    None,
}

/// The group of an issue's state (`StateGroup` in Plane).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct State {
    pub name: String,
    pub group: StateGroup,
}

/// One dated Plane issue (work item), already validated. Undated issues never become an `Issue`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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
    /// Assignee display names, in the order Plane sent them.
    pub assignees: Vec<String>,
    pub target_date: NaiveDate,
}
