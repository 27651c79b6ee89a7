//! Issue → VEVENT mapping (pure, no I/O): the seed's rules from `shared/design.md`.
//! PLACEHOLDER: being written; the public interface below is fixed.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::plane::{Issue, Project};

/// What the mapping needs besides the issue itself.
#[derive(Clone, Debug)]
pub struct MappingContext<'a> {
    /// Workspace slug: part of the issue URL and the `X-CALPLANEBOT-WORKSPACE` scope mark.
    pub workspace_slug: &'a str,
    /// Origin for issue links (`PLANE_WEB_URL`), without a trailing slash.
    pub web_url: &'a str,
}

/// The properties calplanebot manages on an event, as parsed values.
///
/// `desired_event` fills every field; `read_event` fills what it finds in a stored event
/// (a missing or malformed property becomes `None`/empty), so `desired == actual` is the
/// "nothing to do" test of the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ManagedFields {
    pub uid: String,
    pub summary: String,
    pub description: String,
    pub dtstart: Option<NaiveDate>,
    pub dtend: Option<NaiveDate>,
    pub status: Option<String>,
    pub color: Option<String>,
    pub categories: Vec<String>,
    pub url: Option<String>,
    pub workspace: Option<String>,
    pub project: Option<String>,
}

/// A stored event could not be read or merged.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("not an iCalendar object: {0}")]
    Malformed(String),
    #[error("no VEVENT in the calendar object")]
    NoEvent,
}

pub fn uid_for(issue_id: &str) -> String {
    format!("plane-issue-{issue_id}@calplanebot")
}

pub fn resource_name(issue_id: &str) -> String {
    format!("plane-issue-{issue_id}.ics")
}

pub fn desired_event(_issue: &Issue, _project: &Project, _ctx: &MappingContext) -> ManagedFields {
    unimplemented!("being written")
}

pub fn render_new(_fields: &ManagedFields, _dtstamp: DateTime<Utc>) -> String {
    unimplemented!("being written")
}

pub fn render_update(
    _existing: &str,
    _fields: &ManagedFields,
    _dtstamp: DateTime<Utc>,
) -> Result<String, EventError> {
    unimplemented!("being written")
}

pub fn read_event(_ics: &str) -> Result<ManagedFields, EventError> {
    unimplemented!("being written")
}

impl ManagedFields {
    /// One human-readable line per managed property, for the dry-run diff.
    pub fn lines(&self) -> Vec<String> {
        unimplemented!("being written")
    }
}
